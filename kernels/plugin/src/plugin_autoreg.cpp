// libedgeperc_trt_plugin_autoreg.so: the same plugin, registered when the library is loaded, for
// loaders that only dlopen a library and expect it to register itself: trtexec --staticPlugins
// (--plugins), Polygraphy --plugins / LoadPlugins (`edgeperc build --plugin`) and ctypes.CDLL.
// It does not link libnvinfer: it finds getPluginRegistry in the libnvinfer already loaded in the
// process (also when Python's tensorrt module loaded it RTLD_LOCAL), else loads
// libnvinfer.so.<major of the headers it was compiled against>, as a DT_NEEDED entry would.
// Where TensorRT is absent it loads, says so on stderr, and registers nothing.
// Do not pass this library to IPluginRegistry::loadLibrary / --dynamicPlugins: use
// libedgeperc_trt_plugin.so there (loadLibrary refuses creators that are already registered).
#include <NvInferRuntime.h>
#include <NvInferVersion.h>
#include <dlfcn.h>

#include <string>

#include "roi_warp_plugin.h"

namespace {

using GetRegistryFn = nvinfer1::IPluginRegistry* (*)();

GetRegistryFn findGetPluginRegistry() {
  const std::string own = "libnvinfer.so." + std::to_string(NV_TENSORRT_MAJOR);
  // 1. A libnvinfer already in the process: the headers' major first, then other releases.
  for (std::string const& soname : {own, std::string("libnvinfer.so.10"), std::string("libnvinfer.so.11"),
                                    std::string("libnvinfer.so.12"), std::string("libnvinfer.so")}) {
    if (void* handle = dlopen(soname.c_str(), RTLD_LAZY | RTLD_NOLOAD)) {
      void* symbol = dlsym(handle, "getPluginRegistry");
      dlclose(handle);  // drops the reference RTLD_NOLOAD added; the library stays loaded
      if (symbol) return reinterpret_cast<GetRegistryFn>(symbol);
    }
  }
  if (void* symbol = dlsym(RTLD_DEFAULT, "getPluginRegistry")) return reinterpret_cast<GetRegistryFn>(symbol);
  // 2. None loaded yet: load the one these headers describe and keep it (a later `import
  //    tensorrt` of the same soname gets this copy, hence the same registry).
  if (void* handle = dlopen(own.c_str(), RTLD_LAZY | RTLD_LOCAL)) {
    if (void* symbol = dlsym(handle, "getPluginRegistry")) return reinterpret_cast<GetRegistryFn>(symbol);
    dlclose(handle);
  }
  return nullptr;
}

struct Registrar {
  Registrar() {
    static edgeperc::plugin::RoiWarpPluginCreator creator;
    GetRegistryFn getRegistry = findGetPluginRegistry();
    if (getRegistry == nullptr) {
      edgeperc::plugin::logPluginError(
          "no libnvinfer in the process or on the library path: nothing registered");
      return;
    }
    nvinfer1::IPluginRegistry* registry = getRegistry();
    if (registry == nullptr || !registry->registerCreator(creator, creator.getPluginNamespace())) {
      edgeperc::plugin::logPluginError("registering the creator failed (already registered?)");
    }
  }
};

Registrar gRegistrar;

}  // namespace

// Lets a caller check that this library was loaded (and stays loaded) without calling TensorRT.
extern "C" __attribute__((visibility("default"))) int edgeperc_trt_plugin_autoreg_loaded() { return 1; }

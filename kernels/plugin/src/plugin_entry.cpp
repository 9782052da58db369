// Entry points of libedgeperc_trt_plugin.so for TensorRT 10's plugin-library loading:
// IPluginRegistry::loadLibrary (Python: trt.get_plugin_registry().load_library), trtexec
// --dynamicPlugins, and plugin libraries serialized into version-compatible engines
// (IBuilderConfig::setPluginsToSerialize). TensorRT dlopens the library, calls setLoggerFinder,
// then registers every creator getCreators returns under the creator's own namespace.
// Nothing is registered at load time, so loading never needs libnvinfer symbols.
#include <NvInferRuntime.h>

#include "roi_warp_plugin.h"

#define EDGEPERC_PLUGIN_EXPORT __attribute__((visibility("default")))

extern "C" EDGEPERC_PLUGIN_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder) {
  edgeperc::plugin::setPluginLoggerFinder(finder);
}

extern "C" EDGEPERC_PLUGIN_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) {
  static edgeperc::plugin::RoiWarpPluginCreator roiWarpCreator;
  static nvinfer1::IPluginCreatorInterface* const creators[] = {&roiWarpCreator};
  nbCreators = static_cast<int32_t>(sizeof(creators) / sizeof(creators[0]));
  return creators;
}

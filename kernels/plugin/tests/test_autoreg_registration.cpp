// Loads libedgeperc_trt_plugin_autoreg.so the way trtexec --staticPlugins / Polygraphy / ctypes do
// (plain dlopen) after a stand-in libnvinfer was loaded RTLD_LOCAL (as Python's tensorrt module
// loads it), or with the stand-in only on the library path (--search-path mode), and checks the
// creator registered itself under edgeperc::EdgepercRoiWarp version 1. Exit 77 = skipped.
#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s preloaded|search-path FAKE_LIBNVINFER AUTOREG_LIBRARY\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  void* fake = nullptr;
  if (mode == "preloaded") {
    fake = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    if (!fake) {
      std::fprintf(stderr, "cannot load %s: %s\n", argv[2], dlerror());
      return 1;
    }
  }
  void* plugin = dlopen(argv[3], RTLD_NOW | RTLD_LOCAL);
  if (!plugin) {
    std::fprintf(stderr, "cannot load %s: %s\n", argv[3], dlerror());
    return 1;
  }
  if (mode == "search-path") {
    // The autoreg library must have loaded libnvinfer.so.<major> from LD_LIBRARY_PATH itself.
    fake = dlopen(argv[2], RTLD_NOW | RTLD_NOLOAD);
    if (!fake) {
      std::fprintf(stderr, "the autoreg library did not load %s\n", argv[2]);
      return 1;
    }
  }
  auto is_stub = reinterpret_cast<int (*)()>(dlsym(fake, "fake_nvinfer_is_stub"));
  auto registered = reinterpret_cast<int (*)(char*, int)>(dlsym(fake, "fake_nvinfer_registered"));
  if (!is_stub || !registered) return 1;
  if (is_stub()) {
    std::printf("skipped: the stand-in registry is implemented for TensorRT 11 headers only\n");
    return 77;
  }
  char keys[512] = {};
  const int n = registered(keys, sizeof(keys) - 1);
  std::printf("%s: %d creator(s) registered: %s\n", mode.c_str(), n, keys);
  const bool ok = n == 1 && std::strcmp(keys, "edgeperc::EdgepercRoiWarp/1;") == 0;
  std::printf("%d passed, %d failed\n", ok ? 1 : 0, ok ? 0 : 1);
  return ok ? 0 : 1;
}

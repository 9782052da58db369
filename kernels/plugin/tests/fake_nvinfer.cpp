// Test double of libnvinfer for the autoreg library: exports getPluginRegistry() with a registry
// that records what registers itself, so the load-time registration path runs without TensorRT.
// Built as libnvinfer.so.<NV_TENSORRT_MAJOR> inside the build tree only. IPluginRegistry's pure
// virtuals differ between releases; they are implemented for the 11.x headers, and with other
// headers this library is a stub the driver reports as skipped.
#include <NvInferRuntime.h>

#include <cstring>
#include <string>
#include <vector>

#define FAKE_EXPORT extern "C" __attribute__((visibility("default")))

#if NV_TENSORRT_MAJOR >= 11
namespace {

class FakeRegistry : public nvinfer1::IPluginRegistry {
 public:
  ~FakeRegistry() noexcept override = default;
  void setErrorRecorder(nvinfer1::IErrorRecorder* const) noexcept override {}
  nvinfer1::IErrorRecorder* getErrorRecorder() const noexcept override { return nullptr; }
  bool isParentSearchEnabled() const override { return false; }
  void setParentSearchEnabled(bool const) override {}
  nvinfer1::IPluginRegistry::PluginLibraryHandle loadLibrary(nvinfer1::AsciiChar const*) noexcept override { return nullptr; }
  void deregisterLibrary(nvinfer1::IPluginRegistry::PluginLibraryHandle) noexcept override {}
  bool registerCreator(nvinfer1::IPluginCreatorInterface& creator, nvinfer1::AsciiChar const* const ns) noexcept override {
    if (std::strcmp(creator.getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") != 0) return false;
    auto& v3 = static_cast<nvinfer1::IPluginCreatorV3One&>(creator);
    const std::string key = std::string(ns ? ns : "") + "::" + v3.getPluginName() + "/" + v3.getPluginVersion();
    for (auto const& existing : keys)
      if (existing == key) return false;
    keys.push_back(key);
    creators.push_back(&creator);
    return true;
  }
  nvinfer1::IPluginCreatorInterface* const* getAllCreators(int32_t* const n) const noexcept override {
    *n = static_cast<int32_t>(creators.size());
    return creators.data();
  }
  nvinfer1::IPluginCreatorInterface* getCreator(nvinfer1::AsciiChar const* const, nvinfer1::AsciiChar const* const,
                                                nvinfer1::AsciiChar const* const) noexcept override {
    return nullptr;
  }
  bool deregisterCreator(nvinfer1::IPluginCreatorInterface const&) noexcept override { return false; }
  nvinfer1::IPluginResource* acquirePluginResource(nvinfer1::AsciiChar const*, nvinfer1::IPluginResource*) noexcept override {
    return nullptr;
  }
  int32_t releasePluginResource(nvinfer1::AsciiChar const*) noexcept override { return 0; }
  nvinfer1::IPluginCreatorInterface* const* getAllCreatorsRecursive(int32_t* const n) noexcept override {
    return getAllCreators(n);
  }

  std::vector<std::string> keys;
  std::vector<nvinfer1::IPluginCreatorInterface*> creators;
};

FakeRegistry& registry() {
  static FakeRegistry instance;
  return instance;
}

}  // namespace

FAKE_EXPORT nvinfer1::IPluginRegistry* getPluginRegistry() noexcept { return &registry(); }
FAKE_EXPORT int fake_nvinfer_is_stub() { return 0; }
FAKE_EXPORT int fake_nvinfer_registered(char* out, int size) {
  std::string joined;
  for (auto const& k : registry().keys) joined += k + ";";
  std::strncpy(out, joined.c_str(), static_cast<size_t>(size));
  return static_cast<int>(registry().keys.size());
}
#else
FAKE_EXPORT nvinfer1::IPluginRegistry* getPluginRegistry() noexcept { return nullptr; }
FAKE_EXPORT int fake_nvinfer_is_stub() { return 1; }
FAKE_EXPORT int fake_nvinfer_registered(char*, int) { return 0; }
#endif

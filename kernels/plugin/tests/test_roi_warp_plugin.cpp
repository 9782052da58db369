// Host-side unit test of the EdgepercRoiWarp plugin: runs without a GPU and without libnvinfer.
//  - the FP16/FP32 sampler mirror equals the shared uint8 ep_roi_warp_pixel bit for bit;
//  - the creator's fields, attribute parsing/validation and serialisation round trip;
//  - format/type support, output types, dimension checks in configurePlugin/onShapeChange;
//  - the launcher rejects bad arguments before touching CUDA, and a launch without a device fails
//    cleanly (an error code, no crash).
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "edgeperc/common.h"
#include "roi_warp_launch.h"
#include "roi_warp_plugin.h"
#include "roi_warp_sample.h"

extern "C" void setLoggerFinder(nvinfer1::ILoggerFinder* finder);
extern "C" nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators);

using namespace edgeperc::plugin;
using nvinfer1::DataType;
using nvinfer1::PluginField;
using nvinfer1::PluginFieldCollection;
using nvinfer1::PluginFieldType;
using nvinfer1::TensorFormat;

namespace {

int gPassed = 0, gFailed = 0;

#define CHECK(cond)                                                       \
  do {                                                                    \
    if (cond) {                                                           \
      ++gPassed;                                                          \
    } else {                                                              \
      ++gFailed;                                                          \
      std::fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
    }                                                                     \
  } while (0)

class CapturingLogger : public nvinfer1::ILogger {
 public:
  void log(Severity, nvinfer1::AsciiChar const* msg) noexcept override { last = msg; }
  std::string last;
};

class Finder : public nvinfer1::ILoggerFinder {
 public:
  nvinfer1::ILogger* findLogger() override { return &logger; }
  CapturingLogger logger;
};

void testSamplerMatchesShared() {
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const int sizes[][2] = {{1, 1}, {1, 7}, {5, 3}, {17, 23}, {40, 31}};
  int compared = 0, mismatched = 0;
  for (auto const& hw : sizes) {
    for (int channels = 1; channels <= kMaxChannels; ++channels) {
      const int h = hw[0], w = hw[1];
      const int64_t stride = (int64_t)w * channels;
      std::vector<uint8_t> u8((size_t)(h * stride));
      for (auto& v : u8) v = (uint8_t)(rng() & 0xFF);
      std::vector<float> f32(u8.begin(), u8.end());
      for (int trial = 0; trial < 40; ++trial) {
        float m[9];
        switch (trial % 5) {
          case 0:  // affine: scale + shift, partly off the frame
            m[0] = 1.f + 0.7f * u(rng); m[1] = 0.3f * u(rng); m[2] = 20.f * u(rng);
            m[3] = 0.3f * u(rng); m[4] = 1.f + 0.7f * u(rng); m[5] = 20.f * u(rng);
            m[6] = 0.f; m[7] = 0.f; m[8] = 1.f;
            break;
          case 1:  // perspective
            for (int k = 0; k < 9; ++k) m[k] = u(rng);
            m[0] += 1.f; m[4] += 1.f; m[6] *= 0.01f; m[7] *= 0.01f; m[8] = 1.f + 0.2f * u(rng);
            break;
          case 2:  // degenerate: w == 0 everywhere
            for (float& v : m) v = 0.f;
            break;
          case 3:  // far off the frame
            m[0] = 1.f; m[1] = 0.f; m[2] = 1e4f * u(rng); m[3] = 0.f; m[4] = 1.f; m[5] = -1e4f;
            m[6] = 0.f; m[7] = 0.f; m[8] = 1.f;
            break;
          default:  // huge coefficients (overflow to inf -> pad)
            for (float& v : m) v = 1e30f * u(rng);
            break;
        }
        const float pad = (float)(rng() & 0xFF);
        for (int oy = 0; oy < 9; ++oy)
          for (int ox = 0; ox < 9; ++ox)
            for (int c = 0; c < channels; ++c) {
              const float a = ep_roi_warp_pixel(u8.data(), h, w, stride, channels, c, m, ox, oy, pad);
              const float b = ep_plugin_warp_pixel(f32.data(), h, w, stride, channels, c, m, ox, oy, pad);
              const float d = ep_plugin_warp_pixel(u8.data(), h, w, stride, channels, c, m, ox, oy, pad);
              ++compared;
              if (std::memcmp(&a, &b, sizeof a) != 0 || std::memcmp(&a, &d, sizeof a) != 0) ++mismatched;
            }
      }
    }
  }
  std::printf("sampler: %d samples compared, %d differ\n", compared, mismatched);
  CHECK(compared > 0);
  CHECK(mismatched == 0);
}

struct Fields {
  int32_t out_h = 400, out_w = 300, channels = 3, max_rois = 16, fp16 = 0;
  float pad = 114.f, scale = 1.f / 255.f;
  std::vector<float> mean{0.485f, 0.456f, 0.406f}, std{0.229f, 0.224f, 0.225f};
  std::vector<PluginField> list;
  PluginFieldCollection fc{};
  PluginFieldCollection const* build() {
    list = {PluginField("out_h", &out_h, PluginFieldType::kINT32, 1),
            PluginField("out_w", &out_w, PluginFieldType::kINT32, 1),
            PluginField("channels", &channels, PluginFieldType::kINT32, 1),
            PluginField("pad_value", &pad, PluginFieldType::kFLOAT32, 1),
            PluginField("scale", &scale, PluginFieldType::kFLOAT32, 1),
            PluginField("mean", mean.data(), PluginFieldType::kFLOAT32, (int32_t)mean.size()),
            PluginField("std", std.data(), PluginFieldType::kFLOAT32, (int32_t)std.size()),
            PluginField("max_rois", &max_rois, PluginFieldType::kINT32, 1),
            PluginField("fp16_output", &fp16, PluginFieldType::kINT32, 1)};
    fc.nbFields = (int32_t)list.size();
    fc.fields = list.data();
    return &fc;
  }
};

nvinfer1::DynamicPluginTensorDesc desc(std::vector<int64_t> dims, DataType type) {
  nvinfer1::DynamicPluginTensorDesc d{};
  d.desc.dims.nbDims = (int32_t)dims.size();
  for (size_t i = 0; i < dims.size(); ++i) d.desc.dims.d[i] = dims[i];
  d.desc.type = type;
  d.desc.format = TensorFormat::kLINEAR;
  d.min = d.max = d.opt = d.desc.dims;
  return d;
}

void testCreatorAndPlugin(Finder& finder) {
  int32_t n = 0;
  nvinfer1::IPluginCreatorInterface* const* creators = getCreators(n);
  CHECK(n == 1 && creators != nullptr && creators[0] != nullptr);
  CHECK(std::string(creators[0]->getInterfaceInfo().kind) == "PLUGIN CREATOR_V3ONE");
  auto* creator = static_cast<nvinfer1::IPluginCreatorV3One*>(creators[0]);
  CHECK(std::string(creator->getPluginName()) == "EdgepercRoiWarp");
  CHECK(std::string(creator->getPluginVersion()) == "1");
  CHECK(std::string(creator->getPluginNamespace()) == "edgeperc");
  PluginFieldCollection const* names = creator->getFieldNames();
  std::string joined;
  for (int i = 0; i < names->nbFields; ++i) joined += std::string(names->fields[i].name) + ",";
  CHECK(joined == "out_h,out_w,channels,pad_value,scale,mean,std,max_rois,fp16_output,");

  Fields f;
  std::unique_ptr<nvinfer1::IPluginV3> plugin(creator->createPlugin("crop", f.build(), nvinfer1::TensorRTPhase::kBUILD));
  CHECK(plugin != nullptr);
  if (!plugin) return;
  auto* core = static_cast<nvinfer1::IPluginV3OneCore*>(plugin->getCapabilityInterface(nvinfer1::PluginCapabilityType::kCORE));
  auto* build = static_cast<nvinfer1::IPluginV3OneBuild*>(plugin->getCapabilityInterface(nvinfer1::PluginCapabilityType::kBUILD));
  auto* runtime = static_cast<nvinfer1::IPluginV3OneRuntime*>(plugin->getCapabilityInterface(nvinfer1::PluginCapabilityType::kRUNTIME));
  CHECK(core && build && runtime);
  CHECK(std::string(core->getInterfaceInfo().kind) == "PLUGIN_V3ONE_CORE");
  CHECK(std::string(build->getInterfaceInfo().kind) == "PLUGIN_V3ONE_BUILD");
  CHECK(std::string(runtime->getInterfaceInfo().kind) == "PLUGIN_V3ONE_RUNTIME");
  CHECK(std::string(core->getPluginName()) == "EdgepercRoiWarp" && std::string(core->getPluginNamespace()) == "edgeperc");
  CHECK(build->getNbOutputs() == 1);

  DataType in_types[2] = {DataType::kHALF, DataType::kFLOAT};
  DataType out_type = DataType::kINT32;
  CHECK(build->getOutputDataTypes(&out_type, 1, in_types, 2) == 0 && out_type == DataType::kFLOAT);

  // Formats: frame FP16/FP32/UINT8, rois FP32, output FP32 or FP16; linear only.
  nvinfer1::DynamicPluginTensorDesc io[3] = {desc({-1, -1, 3}, DataType::kHALF), desc({-1, 9}, DataType::kFLOAT),
                                             desc({-1, 3, 400, 300}, DataType::kFLOAT)};
  CHECK(build->supportsFormatCombination(0, io, 2, 1));
  io[0].desc.type = DataType::kINT8;
  CHECK(!build->supportsFormatCombination(0, io, 2, 1));
  io[0].desc.type = DataType::kFLOAT;
  io[1].desc.type = DataType::kHALF;
  CHECK(!build->supportsFormatCombination(1, io, 2, 1));
  io[1].desc.type = DataType::kFLOAT;
  CHECK(build->supportsFormatCombination(1, io, 2, 1));
  io[2].desc.type = DataType::kHALF;
  CHECK(build->supportsFormatCombination(2, io, 2, 1));
  io[2].desc.type = DataType::kINT32;
  CHECK(!build->supportsFormatCombination(2, io, 2, 1));
  io[2].desc.type = DataType::kFLOAT;
  io[2].desc.format = TensorFormat::kHWC8;
  CHECK(!build->supportsFormatCombination(2, io, 2, 1));
  io[2].desc.format = TensorFormat::kLINEAR;

  // Dimension checks at build time (configurePlugin) and run time (onShapeChange).
  CHECK(build->configurePlugin(io, 2, io + 2, 1) == 0);
  io[1].max.d[0] = 17;  // profile max above max_rois = 16
  CHECK(build->configurePlugin(io, 2, io + 2, 1) != 0);
  CHECK(finder.logger.last.find("max_rois") != std::string::npos);
  io[1].max.d[0] = 16;
  nvinfer1::DynamicPluginTensorDesc gray = desc({-1, -1}, DataType::kHALF);
  nvinfer1::DynamicPluginTensorDesc in_gray[2] = {gray, io[1]};
  CHECK(build->configurePlugin(in_gray, 2, io + 2, 1) != 0);  // 2-D frame but channels = 3
  nvinfer1::DynamicPluginTensorDesc bad_rois[2] = {io[0], desc({-1, 8}, DataType::kFLOAT)};
  CHECK(build->configurePlugin(bad_rois, 2, io + 2, 1) != 0);
  nvinfer1::DynamicPluginTensorDesc square[2] = {io[0], desc({-1, 3, 3}, DataType::kFLOAT)};
  CHECK(build->configurePlugin(square, 2, io + 2, 1) == 0);

  nvinfer1::PluginTensorDesc rt[3] = {desc({1080, 1920, 3}, DataType::kHALF).desc, desc({4, 9}, DataType::kFLOAT).desc,
                                      desc({4, 3, 400, 300}, DataType::kFLOAT).desc};
  CHECK(runtime->onShapeChange(rt, 2, rt + 2, 1) == 0);
  rt[0].dims.d[2] = 4;
  CHECK(runtime->onShapeChange(rt, 2, rt + 2, 1) != 0);
  CHECK(finder.logger.last.find("channel") != std::string::npos);
  rt[0].dims.d[2] = 3;
  rt[1].dims.d[0] = 17;
  CHECK(runtime->onShapeChange(rt, 2, rt + 2, 1) != 0);
  rt[1].dims.d[0] = 4;

  // Serialisation round trip: the runtime phase recreates an identical plugin.
  PluginFieldCollection const* serial = runtime->getFieldsToSerialize();
  CHECK(serial != nullptr && serial->nbFields == 9);
  std::unique_ptr<nvinfer1::IPluginV3> again(creator->createPlugin("crop", serial, nvinfer1::TensorRTPhase::kRUNTIME));
  CHECK(again != nullptr);
  if (again) {
    auto* a = static_cast<nvinfer1::IPluginV3OneBuild*>(again->getCapabilityInterface(nvinfer1::PluginCapabilityType::kBUILD));
    CHECK(std::string(a->getMetadataString()) == build->getMetadataString());
    RoiWarpConfig const& c = static_cast<RoiWarpPlugin*>(static_cast<nvinfer1::IPluginV3OneCore*>(
        again->getCapabilityInterface(nvinfer1::PluginCapabilityType::kCORE)))->config();
    CHECK(c.out_h == 400 && c.out_w == 300 && c.channels == 3 && c.max_rois == 16 && c.pad_value == 114.f);
    CHECK(c.mean.size() == 3 && c.mean[1] == 0.456f && c.std[2] == 0.225f);
  }
  std::unique_ptr<nvinfer1::IPluginV3> copy(plugin->clone());
  CHECK(copy != nullptr && copy.get() != plugin.get());
  std::unique_ptr<nvinfer1::IPluginV3> attached(runtime->attachToContext(nullptr));
  CHECK(attached != nullptr && attached.get() != plugin.get());

  // Enqueue: bad dims are refused before any launch.
  const void* inputs[2] = {nullptr, nullptr};
  void* outputs[1] = {nullptr};
  rt[1].dims.d[1] = 8;
  CHECK(runtime->enqueue(rt, rt + 2, inputs, outputs, nullptr, nullptr) == EP_ERR_BAD_SHAPE);
  rt[1].dims.d[1] = 9;
  rt[1].dims.d[0] = 0;  // no RoIs: nothing to do
  CHECK(runtime->enqueue(rt, rt + 2, inputs, outputs, nullptr, nullptr) == EP_OK);
}

void testAttributeParsing(Finder& finder) {
  RoiWarpPluginCreator creator;
  auto make = [&](Fields& f) {
    return std::unique_ptr<nvinfer1::IPluginV3>(creator.createPlugin("x", f.build(), nvinfer1::TensorRTPhase::kBUILD));
  };
  { Fields f; f.out_h = 0; CHECK(make(f) == nullptr); CHECK(finder.logger.last.find("out_h") != std::string::npos); }
  { Fields f; f.channels = 5; CHECK(make(f) == nullptr); CHECK(finder.logger.last.find("channels") != std::string::npos); }
  { Fields f; f.mean = {0.1f, 0.2f}; CHECK(make(f) == nullptr); CHECK(finder.logger.last.find("mean") != std::string::npos); }
  { Fields f; f.std = {0.2f, 0.f, 0.2f}; CHECK(make(f) == nullptr); CHECK(finder.logger.last.find("std") != std::string::npos); }
  { Fields f; f.max_rois = 70000; CHECK(make(f) == nullptr); }
  { Fields f; f.fp16 = 2; CHECK(make(f) == nullptr); }
  { Fields f; f.scale = NAN; CHECK(make(f) == nullptr); }
  {  // mean/std of length 1 broadcast to the channels
    Fields f; f.mean = {0.5f}; f.std = {0.25f};
    auto p = make(f);
    CHECK(p != nullptr);
    if (p) {
      auto const& c = static_cast<RoiWarpPlugin*>(static_cast<nvinfer1::IPluginV3OneCore*>(
          p->getCapabilityInterface(nvinfer1::PluginCapabilityType::kCORE)))->config();
      CHECK(c.mean.size() == 3 && c.mean[2] == 0.5f && c.std.size() == 3 && c.std[0] == 0.25f);
    }
  }
  {  // out_h/out_w are required; the rest default
    int32_t h = 64;
    PluginField only[] = {PluginField("out_h", &h, PluginFieldType::kINT32, 1)};
    PluginFieldCollection fc{1, only};
    CHECK(creator.createPlugin("x", &fc, nvinfer1::TensorRTPhase::kBUILD) == nullptr);
    CHECK(finder.logger.last.find("required") != std::string::npos);
  }
  {  // other numeric field types (INT64, FLOAT64, FLOAT16) are accepted; a non-integer int is not
    int64_t h = 32;
    double w = 48.0;
    uint16_t scale_half = 0x3C00;  // 1.0
    float pad = 7.5f;
    PluginField fields[] = {PluginField("out_h", &h, static_cast<PluginFieldType>(10), 1),
                            PluginField("out_w", &w, PluginFieldType::kFLOAT64, 1),
                            PluginField("scale", &scale_half, PluginFieldType::kFLOAT16, 1),
                            PluginField("pad_value", &pad, PluginFieldType::kFLOAT32, 1)};
    PluginFieldCollection fc{4, fields};
    std::unique_ptr<nvinfer1::IPluginV3> p(creator.createPlugin("x", &fc, nvinfer1::TensorRTPhase::kBUILD));
    CHECK(p != nullptr);
    if (p) {
      auto const& c = static_cast<RoiWarpPlugin*>(static_cast<nvinfer1::IPluginV3OneCore*>(
          p->getCapabilityInterface(nvinfer1::PluginCapabilityType::kCORE)))->config();
      CHECK(c.out_h == 32 && c.out_w == 48 && c.scale == 1.f && c.channels == 1 && c.max_rois == 256);
    }
    w = 48.5;
    CHECK(creator.createPlugin("x", &fc, nvinfer1::TensorRTPhase::kBUILD) == nullptr);
  }
  {  // FP16 output requested: output type HALF, FP32 refused
    Fields f; f.fp16 = 1;
    auto p = make(f);
    CHECK(p != nullptr);
    if (p) {
      auto* b = static_cast<nvinfer1::IPluginV3OneBuild*>(p->getCapabilityInterface(nvinfer1::PluginCapabilityType::kBUILD));
      DataType in_types[2] = {DataType::kHALF, DataType::kFLOAT};
      DataType out_type = DataType::kFLOAT;
      CHECK(b->getOutputDataTypes(&out_type, 1, in_types, 2) == 0 && out_type == DataType::kHALF);
      nvinfer1::DynamicPluginTensorDesc io[3] = {desc({-1, -1, 3}, DataType::kHALF), desc({-1, 9}, DataType::kFLOAT),
                                                 desc({-1, 3, 400, 300}, DataType::kFLOAT)};
      CHECK(!b->supportsFormatCombination(2, io, 2, 1));
    }
  }
  CHECK(creator.createPlugin("x", nullptr, nvinfer1::TensorRTPhase::kBUILD) == nullptr);
}

void testLauncher() {
  RoiWarpArgs a{};
  a.frame_h = 8; a.frame_w = 8; a.channels = 1; a.row_stride = 8; a.n_rois = 1; a.out_h = 4; a.out_w = 4;
  a.scale = 1.f; a.mean[0] = 0.f; a.inv_std[0] = 1.f;
  CHECK(launchRoiWarp(a, FrameType::kUint8, OutputType::kFloat32, nullptr) == EP_ERR_NULL_POINTER);
  RoiWarpArgs b = a; b.n_rois = kMaxRoisPerLaunch + 1;
  CHECK(launchRoiWarp(b, FrameType::kUint8, OutputType::kFloat32, nullptr) == EP_ERR_TOO_MANY_ROIS);
  b = a; b.row_stride = 7;
  CHECK(launchRoiWarp(b, FrameType::kUint8, OutputType::kFloat32, nullptr) == EP_ERR_BAD_STRIDE);
  b = a; b.channels = 0;
  CHECK(launchRoiWarp(b, FrameType::kUint8, OutputType::kFloat32, nullptr) == EP_ERR_BAD_SHAPE);
  b = a; b.out_w = 0;
  CHECK(launchRoiWarp(b, FrameType::kUint8, OutputType::kFloat32, nullptr) == EP_ERR_BAD_SHAPE);
  b = a; b.n_rois = 0;
  CHECK(launchRoiWarp(b, FrameType::kUint8, OutputType::kFloat32, nullptr) == EP_OK);

  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    // No GPU here: a well-formed launch must fail with EP_ERR_CUDA, not crash. (The pointers are
    // host pointers, so this branch must never run where a device exists.)
    uint8_t frame[64] = {};
    float rois[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    float out[16] = {};
    b = a; b.frame = frame; b.rois = rois; b.out = out;
    CHECK(launchRoiWarp(b, FrameType::kUint8, OutputType::kFloat32, nullptr) == EP_ERR_CUDA);
    CHECK(launchRoiWarp(b, FrameType::kFloat16, OutputType::kFloat16, nullptr) == EP_ERR_CUDA);
    std::printf("launcher: no CUDA device, a launch fails cleanly with EP_ERR_CUDA\n");
  } else {
    std::printf("launcher: %d CUDA device(s); device launches are covered by the GPU tests\n", devices);
  }
}

}  // namespace

int main() {
  Finder finder;
  setLoggerFinder(&finder);
  testSamplerMatchesShared();
  testCreatorAndPlugin(finder);
  testAttributeParsing(finder);
  testLauncher();
  setLoggerFinder(nullptr);
  std::printf("%d passed, %d failed\n", gPassed, gFailed);
  return gFailed == 0 ? 0 : 1;
}

// EdgepercRoiWarp plugin and creator (host side). The kernel is in roi_warp_kernel.cu.
#include "roi_warp_plugin.h"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <sstream>

#include "edgeperc/common.h"
#include "roi_warp_launch.h"

namespace edgeperc {
namespace plugin {

using nvinfer1::DataType;
using nvinfer1::Dims;
using nvinfer1::PluginField;
using nvinfer1::PluginFieldCollection;
using nvinfer1::PluginFieldType;
using nvinfer1::TensorFormat;

namespace {

std::atomic<nvinfer1::ILoggerFinder*> gLoggerFinder{nullptr};

// PluginFieldType::kINT64 (10) by value: spelled numerically so the source also compiles against
// headers that predate the enumerator name.
constexpr auto kFieldInt64 = static_cast<PluginFieldType>(10);
constexpr auto kFieldBf16 = static_cast<PluginFieldType>(9);

float halfBitsToFloat(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1U, exponent = (h >> 10) & 0x1FU, mantissa = h & 0x3FFU;
  float value;
  if (exponent == 0) {
    value = std::ldexp(static_cast<float>(mantissa), -24);
  } else if (exponent == 31) {
    value = mantissa ? NAN : INFINITY;
  } else {
    value = std::ldexp(static_cast<float>(mantissa | 0x400U), static_cast<int>(exponent) - 25);
  }
  return sign ? -value : value;
}

// Numbers of a field, whatever numeric PluginFieldType it carries; false for strings/unknown.
bool readNumbers(PluginField const& field, std::vector<double>& out) {
  out.clear();
  if (field.length < 0 || (field.length > 0 && field.data == nullptr)) return false;
  const auto n = static_cast<size_t>(field.length);
  const auto* bytes = static_cast<const unsigned char*>(field.data);
  auto take = [&](auto sample) {
    using T = decltype(sample);
    for (size_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, bytes + i * sizeof(T), sizeof(T));
      out.push_back(static_cast<double>(v));
    }
  };
  switch (field.type) {
    case PluginFieldType::kFLOAT32: take(float{}); return true;
    case PluginFieldType::kFLOAT64: take(double{}); return true;
    case PluginFieldType::kINT8: take(int8_t{}); return true;
    case PluginFieldType::kINT16: take(int16_t{}); return true;
    case PluginFieldType::kINT32: take(int32_t{}); return true;
    case kFieldInt64: take(int64_t{}); return true;
    case PluginFieldType::kFLOAT16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t bits;
        std::memcpy(&bits, bytes + i * 2, 2);
        out.push_back(halfBitsToFloat(bits));
      }
      return true;
    case kFieldBf16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t bits;
        std::memcpy(&bits, bytes + i * 2, 2);
        const uint32_t word = static_cast<uint32_t>(bits) << 16;
        float v;
        std::memcpy(&v, &word, 4);
        out.push_back(v);
      }
      return true;
    default: return false;
  }
}

std::string readInt(PluginField const& field, int32_t& target) {
  std::vector<double> values;
  if (!readNumbers(field, values) || values.size() != 1)
    return std::string("attribute ") + field.name + " must be one integer";
  const double v = values[0];
  if (!std::isfinite(v) || v != std::floor(v) || v < -2147483648.0 || v > 2147483647.0)
    return std::string("attribute ") + field.name + " must be an integer";
  target = static_cast<int32_t>(v);
  return "";
}

std::string readFloat(PluginField const& field, float& target) {
  std::vector<double> values;
  if (!readNumbers(field, values) || values.size() != 1)
    return std::string("attribute ") + field.name + " must be one number";
  target = static_cast<float>(values[0]);
  return "";
}

std::string readFloats(PluginField const& field, std::vector<float>& target) {
  std::vector<double> values;
  if (!readNumbers(field, values) || values.empty())
    return std::string("attribute ") + field.name + " must be a non-empty list of numbers";
  target.assign(values.begin(), values.end());
  return "";
}

std::string dimsText(Dims const& d) {
  std::ostringstream s;
  s << "[";
  for (int32_t i = 0; i < d.nbDims; ++i) s << (i ? ", " : "") << d.d[i];
  s << "]";
  return s.str();
}

}  // namespace

void setPluginLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept { gLoggerFinder.store(finder); }

void logPluginError(std::string const& message) noexcept {
  try {
    const std::string line = std::string(kPluginNamespace) + "::" + kRoiWarpName + ": " + message;
    nvinfer1::ILoggerFinder* finder = gLoggerFinder.load();
    nvinfer1::ILogger* logger = finder ? finder->findLogger() : nullptr;
    if (logger) {
      logger->log(nvinfer1::ILogger::Severity::kERROR, line.c_str());
    } else {
      std::fprintf(stderr, "[E] %s\n", line.c_str());
    }
  } catch (...) {
  }
}

std::string normaliseConfig(RoiWarpConfig& c) {
  if (c.out_h < 1 || c.out_h > kMaxOutputSide || c.out_w < 1 || c.out_w > kMaxOutputSide)
    return "out_h and out_w must be in 1.." + std::to_string(kMaxOutputSide) + " (got " +
           std::to_string(c.out_h) + "x" + std::to_string(c.out_w) + ")";
  if (c.channels < 1 || c.channels > kMaxChannels)
    return "channels must be in 1.." + std::to_string(kMaxChannels) + " (got " + std::to_string(c.channels) + ")";
  if (c.max_rois < 1 || c.max_rois > kMaxRoisPerLaunch)
    return "max_rois must be in 1.." + std::to_string(kMaxRoisPerLaunch) + " (got " + std::to_string(c.max_rois) + ")";
  if (c.fp16_output != 0 && c.fp16_output != 1) return "fp16_output must be 0 or 1";
  if (!std::isfinite(c.pad_value)) return "pad_value must be finite";
  if (!std::isfinite(c.scale)) return "scale must be finite";
  for (auto* values : {&c.mean, &c.std}) {
    const char* name = values == &c.mean ? "mean" : "std";
    if (values->size() == 1) values->assign(static_cast<size_t>(c.channels), values->front());
    if (values->size() != static_cast<size_t>(c.channels))
      return std::string(name) + " must have 1 or channels (" + std::to_string(c.channels) + ") values, got " +
             std::to_string(values->size());
    for (float v : *values) {
      if (!std::isfinite(v)) return std::string(name) + " values must be finite";
      if (values == &c.std && !(std::fabs(v) > 0.0F)) return "std values must be non-zero";
    }
  }
  return "";
}

std::string configFromFields(PluginFieldCollection const* fc, RoiWarpConfig& c) {
  if (fc == nullptr || fc->nbFields < 0 || (fc->nbFields > 0 && fc->fields == nullptr))
    return "no plugin fields given";
  bool have_h = false, have_w = false;
  for (int32_t i = 0; i < fc->nbFields; ++i) {
    PluginField const& f = fc->fields[i];
    if (f.name == nullptr) continue;
    const std::string name = f.name;
    std::string error;
    if (name == "out_h") {
      error = readInt(f, c.out_h);
      have_h = true;
    } else if (name == "out_w") {
      error = readInt(f, c.out_w);
      have_w = true;
    } else if (name == "channels") {
      error = readInt(f, c.channels);
    } else if (name == "max_rois") {
      error = readInt(f, c.max_rois);
    } else if (name == "fp16_output") {
      error = readInt(f, c.fp16_output);
    } else if (name == "pad_value") {
      error = readFloat(f, c.pad_value);
    } else if (name == "scale") {
      error = readFloat(f, c.scale);
    } else if (name == "mean") {
      error = readFloats(f, c.mean);
    } else if (name == "std") {
      error = readFloats(f, c.std);
    }
    if (!error.empty()) return error;
  }
  if (!have_h || !have_w) return "attributes out_h and out_w are required";
  return normaliseConfig(c);
}

// ---------------------------------------------------------------------------------------------
// RoiWarpPlugin

RoiWarpPlugin::RoiWarpPlugin(std::string layer_name, RoiWarpConfig config)
    : mLayerName(std::move(layer_name)), mConfig(std::move(config)) {
  std::ostringstream s;
  s << "out=" << mConfig.out_h << "x" << mConfig.out_w << " channels=" << mConfig.channels
    << " pad=" << mConfig.pad_value << " scale=" << mConfig.scale << " mean=";
  for (size_t i = 0; i < mConfig.mean.size(); ++i) s << (i ? "," : "") << mConfig.mean[i];
  s << " std=";
  for (size_t i = 0; i < mConfig.std.size(); ++i) s << (i ? "," : "") << mConfig.std[i];
  s << " max_rois=" << mConfig.max_rois << " fp16_output=" << mConfig.fp16_output;
  mMetadata = s.str();
}

nvinfer1::IPluginCapability* RoiWarpPlugin::getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept {
  switch (type) {
    case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
    case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
    case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
  }
  return nullptr;
}

nvinfer1::IPluginV3* RoiWarpPlugin::clone() noexcept {
  try {
    return new RoiWarpPlugin(mLayerName, mConfig);
  } catch (std::exception const& e) {
    logPluginError(std::string("clone failed: ") + e.what());
  }
  return nullptr;
}

char const* RoiWarpPlugin::getPluginName() const noexcept { return kRoiWarpName; }
char const* RoiWarpPlugin::getPluginVersion() const noexcept { return kRoiWarpVersion; }
char const* RoiWarpPlugin::getPluginNamespace() const noexcept { return kPluginNamespace; }

std::string RoiWarpPlugin::checkDims(Dims const& frame, Dims const& rois) const {
  if (frame.nbDims != 2 && frame.nbDims != 3)
    return "frame must be [H, W] or [H, W, C], got " + dimsText(frame);
  const int64_t c = frame.nbDims == 3 ? frame.d[2] : 1;
  if (c != -1 && c != mConfig.channels)
    return "frame has " + std::to_string(c) + " channel(s) but the attribute channels is " +
           std::to_string(mConfig.channels);
  for (int32_t i = 0; i < 2; ++i)
    if (frame.d[i] == 0) return "frame is empty " + dimsText(frame);
  const bool flat = rois.nbDims == 2 && (rois.d[1] == 9 || rois.d[1] == -1);
  const bool square = rois.nbDims == 3 && (rois.d[1] == 3 || rois.d[1] == -1) && (rois.d[2] == 3 || rois.d[2] == -1);
  if (!flat && !square) return "rois must be [N, 9] or [N, 3, 3], got " + dimsText(rois);
  if (rois.d[0] > mConfig.max_rois)
    return std::to_string(rois.d[0]) + " RoIs exceed max_rois " + std::to_string(mConfig.max_rois);
  return "";
}

int32_t RoiWarpPlugin::configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                       nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept {
  if (in == nullptr || out == nullptr || nbInputs != 2 || nbOutputs != 1) return -1;
  std::string error = checkDims(in[0].desc.dims, in[1].desc.dims);
  // The profile's largest N must fit too: the check happens at build time, not on the device.
  if (error.empty() && in[1].max.nbDims >= 1 && in[1].max.d[0] > mConfig.max_rois)
    error = "the optimisation profile allows " + std::to_string(in[1].max.d[0]) + " RoIs, above max_rois " +
            std::to_string(mConfig.max_rois);
  if (!error.empty()) {
    logPluginError(mLayerName + ": " + error);
    return -1;
  }
  return 0;
}

int32_t RoiWarpPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                                          int32_t nbInputs) const noexcept {
  if (outputTypes == nullptr || nbOutputs != 1 || nbInputs != 2 || inputTypes == nullptr) return -1;
  outputTypes[0] = mConfig.fp16_output ? DataType::kHALF : DataType::kFLOAT;
  return 0;
}

int32_t RoiWarpPlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
                                       nvinfer1::DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/,
                                       nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                                       nvinfer1::IExprBuilder& exprBuilder) noexcept {
  if (inputs == nullptr || outputs == nullptr || nbInputs != 2 || nbOutputs != 1) return -1;
  // Dims known now (constants) are checked here; the rest in configurePlugin/onShapeChange.
  Dims frame{}, rois{};
  frame.nbDims = inputs[0].nbDims;
  rois.nbDims = inputs[1].nbDims;
  if (frame.nbDims < 0 || frame.nbDims > Dims::MAX_DIMS || rois.nbDims < 1 || rois.nbDims > Dims::MAX_DIMS) return -1;
  for (int32_t i = 0; i < frame.nbDims; ++i)
    frame.d[i] = inputs[0].d[i]->isConstant() ? inputs[0].d[i]->getConstantValue() : -1;
  for (int32_t i = 0; i < rois.nbDims; ++i)
    rois.d[i] = inputs[1].d[i]->isConstant() ? inputs[1].d[i]->getConstantValue() : -1;
  const std::string error = checkDims(frame, rois);
  if (!error.empty()) {
    logPluginError(mLayerName + ": " + error);
    return -1;
  }
  outputs[0].nbDims = 4;
  outputs[0].d[0] = inputs[1].d[0];
  outputs[0].d[1] = exprBuilder.constant(mConfig.channels);
  outputs[0].d[2] = exprBuilder.constant(mConfig.out_h);
  outputs[0].d[3] = exprBuilder.constant(mConfig.out_w);
  return 0;
}

bool RoiWarpPlugin::supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut,
                                              int32_t nbInputs, int32_t nbOutputs) noexcept {
  if (inOut == nullptr || nbInputs != 2 || nbOutputs != 1 || pos < 0 || pos > 2) return false;
  nvinfer1::PluginTensorDesc const& d = inOut[pos].desc;
  if (d.format != TensorFormat::kLINEAR) return false;
  switch (pos) {
    // UINT8 is offered for TensorRT releases that pass it to plugins; the ONNX form feeds FP16.
    case 0: return d.type == DataType::kHALF || d.type == DataType::kFLOAT || d.type == DataType::kUINT8;
    case 1: return d.type == DataType::kFLOAT;
    default:
      return mConfig.fp16_output ? d.type == DataType::kHALF
                                 : (d.type == DataType::kFLOAT || d.type == DataType::kHALF);
  }
}

int32_t RoiWarpPlugin::getNbOutputs() const noexcept { return 1; }

size_t RoiWarpPlugin::getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const*, int32_t,
                                       nvinfer1::DynamicPluginTensorDesc const*, int32_t) const noexcept {
  return 0;
}

char const* RoiWarpPlugin::getTimingCacheID() noexcept { return mMetadata.c_str(); }
char const* RoiWarpPlugin::getMetadataString() noexcept { return mMetadata.c_str(); }

int32_t RoiWarpPlugin::onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
                                     nvinfer1::PluginTensorDesc const* out, int32_t nbOutputs) noexcept {
  if (in == nullptr || out == nullptr || nbInputs != 2 || nbOutputs != 1) return -1;
  const std::string error = checkDims(in[0].dims, in[1].dims);
  if (!error.empty()) {
    logPluginError(mLayerName + ": " + error);
    return -1;
  }
  return 0;
}

int32_t RoiWarpPlugin::enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
                               void const* const* inputs, void* const* outputs, void* /*workspace*/,
                               cudaStream_t stream) noexcept {
  if (inputDesc == nullptr || outputDesc == nullptr || inputs == nullptr || outputs == nullptr) return EP_ERR_NULL_POINTER;
  Dims const& frame = inputDesc[0].dims;
  Dims const& rois = inputDesc[1].dims;
  const std::string error = checkDims(frame, rois);
  if (!error.empty()) {
    logPluginError(mLayerName + ": " + error);
    return EP_ERR_BAD_SHAPE;
  }
  FrameType frame_type;
  switch (inputDesc[0].type) {
    case DataType::kUINT8: frame_type = FrameType::kUint8; break;
    case DataType::kHALF: frame_type = FrameType::kFloat16; break;
    case DataType::kFLOAT: frame_type = FrameType::kFloat32; break;
    default: logPluginError(mLayerName + ": unsupported frame data type"); return EP_ERR_BAD_ARGUMENT;
  }
  const OutputType out_type = outputDesc[0].type == DataType::kHALF ? OutputType::kFloat16 : OutputType::kFloat32;

  RoiWarpArgs args{};
  args.frame = inputs[0];
  args.frame_h = static_cast<int32_t>(frame.d[0]);
  args.frame_w = static_cast<int32_t>(frame.d[1]);
  args.channels = mConfig.channels;
  args.row_stride = frame.d[1] * mConfig.channels;
  args.rois = static_cast<const float*>(inputs[1]);
  args.n_rois = static_cast<int32_t>(rois.d[0]);
  args.out = outputs[0];
  args.out_h = mConfig.out_h;
  args.out_w = mConfig.out_w;
  args.pad = mConfig.pad_value;
  args.scale = mConfig.scale;
  for (int32_t c = 0; c < mConfig.channels; ++c) {
    args.mean[c] = mConfig.mean[static_cast<size_t>(c)];
    args.inv_std[c] = 1.0F / mConfig.std[static_cast<size_t>(c)];
  }
  if (frame.d[0] > INT32_MAX || frame.d[1] > INT32_MAX) {
    logPluginError(mLayerName + ": frame side above 2^31-1 " + dimsText(frame));
    return EP_ERR_BAD_SHAPE;
  }
  const int32_t status = launchRoiWarp(args, frame_type, out_type, stream);
  if (status != EP_OK) logPluginError(mLayerName + ": launch failed with status " + std::to_string(status));
  return status;
}

nvinfer1::IPluginV3* RoiWarpPlugin::attachToContext(nvinfer1::IPluginResourceContext* /*context*/) noexcept {
  return clone();  // no per-context resources
}

PluginFieldCollection const* RoiWarpPlugin::getFieldsToSerialize() noexcept {
  // Rebuilt on each call: the fields point into this object's config, which clones do not share.
  mSerialFields.clear();
  mSerialFields.emplace_back("out_h", &mConfig.out_h, PluginFieldType::kINT32, 1);
  mSerialFields.emplace_back("out_w", &mConfig.out_w, PluginFieldType::kINT32, 1);
  mSerialFields.emplace_back("channels", &mConfig.channels, PluginFieldType::kINT32, 1);
  mSerialFields.emplace_back("pad_value", &mConfig.pad_value, PluginFieldType::kFLOAT32, 1);
  mSerialFields.emplace_back("scale", &mConfig.scale, PluginFieldType::kFLOAT32, 1);
  mSerialFields.emplace_back("mean", mConfig.mean.data(), PluginFieldType::kFLOAT32,
                             static_cast<int32_t>(mConfig.mean.size()));
  mSerialFields.emplace_back("std", mConfig.std.data(), PluginFieldType::kFLOAT32,
                             static_cast<int32_t>(mConfig.std.size()));
  mSerialFields.emplace_back("max_rois", &mConfig.max_rois, PluginFieldType::kINT32, 1);
  mSerialFields.emplace_back("fp16_output", &mConfig.fp16_output, PluginFieldType::kINT32, 1);
  mSerialCollection.nbFields = static_cast<int32_t>(mSerialFields.size());
  mSerialCollection.fields = mSerialFields.data();
  return &mSerialCollection;
}

// ---------------------------------------------------------------------------------------------
// RoiWarpPluginCreator

RoiWarpPluginCreator::RoiWarpPluginCreator() {
  mFieldNames.emplace_back("out_h", nullptr, PluginFieldType::kINT32, 1);
  mFieldNames.emplace_back("out_w", nullptr, PluginFieldType::kINT32, 1);
  mFieldNames.emplace_back("channels", nullptr, PluginFieldType::kINT32, 1);
  mFieldNames.emplace_back("pad_value", nullptr, PluginFieldType::kFLOAT32, 1);
  mFieldNames.emplace_back("scale", nullptr, PluginFieldType::kFLOAT32, 1);
  mFieldNames.emplace_back("mean", nullptr, PluginFieldType::kFLOAT32, kMaxChannels);
  mFieldNames.emplace_back("std", nullptr, PluginFieldType::kFLOAT32, kMaxChannels);
  mFieldNames.emplace_back("max_rois", nullptr, PluginFieldType::kINT32, 1);
  mFieldNames.emplace_back("fp16_output", nullptr, PluginFieldType::kINT32, 1);
  mCollection.nbFields = static_cast<int32_t>(mFieldNames.size());
  mCollection.fields = mFieldNames.data();
}

char const* RoiWarpPluginCreator::getPluginName() const noexcept { return kRoiWarpName; }
char const* RoiWarpPluginCreator::getPluginVersion() const noexcept { return kRoiWarpVersion; }
char const* RoiWarpPluginCreator::getPluginNamespace() const noexcept { return kPluginNamespace; }
PluginFieldCollection const* RoiWarpPluginCreator::getFieldNames() noexcept { return &mCollection; }

nvinfer1::IPluginV3* RoiWarpPluginCreator::createPlugin(char const* name, PluginFieldCollection const* fc,
                                                        nvinfer1::TensorRTPhase /*phase*/) noexcept {
  try {
    RoiWarpConfig config;
    const std::string error = configFromFields(fc, config);
    const std::string layer = name ? name : kRoiWarpName;
    if (!error.empty()) {
      logPluginError(layer + ": " + error);
      return nullptr;
    }
    return new RoiWarpPlugin(layer, std::move(config));
  } catch (std::exception const& e) {
    logPluginError(std::string("createPlugin failed: ") + e.what());
  } catch (...) {
    logPluginError("createPlugin failed");
  }
  return nullptr;
}

}  // namespace plugin
}  // namespace edgeperc

// EdgepercRoiWarp: TensorRT IPluginV3 that crops, perspective-warps (bilinear, constant pad) and
// normalises a batch of RoIs from a full camera frame into NCHW network input, on the GPU.
//
//   inputs : frame  [H, W] or [H, W, C]  FP16 | FP32 (| UINT8 where TensorRT allows it), 0..255
//            rois   [N, 9] or [N, 3, 3]  FP32, row-major 3x3 matrices mapping OUTPUT pixel
//                                         (ox, oy, 1) to SOURCE pixel coordinates (OpenCV
//                                         WARP_INVERSE_MAP convention)
//   output : crops  [N, C, out_h, out_w] FP32 (FP16 when fp16_output=1 or the builder picks it)
//            crops = (sample * scale - mean[c]) / std[c]; samples off the frame read pad_value
//
// Only API present in TensorRT 10.0+ (IPluginV3, IPluginV3OneCore/Build/Runtime,
// IPluginCreatorV3One) is used, so it compiles against JetPack 6 (TensorRT 10.3) and later.
#pragma once

#include <NvInferRuntime.h>

#include <string>
#include <vector>

namespace edgeperc {
namespace plugin {

constexpr char const* kRoiWarpName = "EdgepercRoiWarp";
constexpr char const* kRoiWarpVersion = "1";
constexpr char const* kPluginNamespace = "edgeperc";

// Plugin attributes (PluginFieldCollection / ONNX node attributes).
struct RoiWarpConfig {
  int32_t out_h{0};
  int32_t out_w{0};
  int32_t channels{1};
  float pad_value{0.0F};
  float scale{1.0F / 255.0F};
  std::vector<float> mean{0.0F};  // 1 value (broadcast) or `channels` values
  std::vector<float> std{1.0F};
  int32_t max_rois{256};
  int32_t fp16_output{0};
};

// Checks every field and broadcasts 1-element mean/std to `channels`; "" when valid, else one
// line naming the field and its allowed range.
std::string normaliseConfig(RoiWarpConfig& config);

// Reads fields by name (numbers of any integer/float PluginFieldType are accepted, since the ONNX
// parser and hand-written callers pick different ones); unknown names are ignored. "" when valid.
std::string configFromFields(nvinfer1::PluginFieldCollection const* fields, RoiWarpConfig& config);

// Logging: through TensorRT's ILoggerFinder once the library entry point received one, else stderr.
void setPluginLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept;
void logPluginError(std::string const& message) noexcept;

class RoiWarpPlugin : public nvinfer1::IPluginV3,
                      public nvinfer1::IPluginV3OneCore,
                      public nvinfer1::IPluginV3OneBuild,
                      public nvinfer1::IPluginV3OneRuntime {
 public:
  RoiWarpPlugin(std::string layer_name, RoiWarpConfig config);
  ~RoiWarpPlugin() override = default;

  RoiWarpConfig const& config() const noexcept { return mConfig; }

  // IPluginV3
  nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
  nvinfer1::IPluginV3* clone() noexcept override;

  // IPluginV3OneCore
  char const* getPluginName() const noexcept override;
  char const* getPluginVersion() const noexcept override;
  char const* getPluginNamespace() const noexcept override;

  // IPluginV3OneBuild
  int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
                          nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
  int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
                             nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;
  int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
                          nvinfer1::DimsExprs const* shapeInputs, int32_t nbShapeInputs,
                          nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                          nvinfer1::IExprBuilder& exprBuilder) noexcept override;
  bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut,
                                 int32_t nbInputs, int32_t nbOutputs) noexcept override;
  int32_t getNbOutputs() const noexcept override;
  size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                          nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;
  char const* getTimingCacheID() noexcept override;
  char const* getMetadataString() noexcept override;

  // IPluginV3OneRuntime
  int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
                        nvinfer1::PluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
  int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
                  void const* const* inputs, void* const* outputs, void* workspace,
                  cudaStream_t stream) noexcept override;
  nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
  nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

 private:
  // "" when the frame/rois dims (-1 = unknown yet) fit the attributes, else the reason.
  std::string checkDims(nvinfer1::Dims const& frame, nvinfer1::Dims const& rois) const;

  std::string mLayerName;
  RoiWarpConfig mConfig;
  std::string mMetadata;
  std::vector<nvinfer1::PluginField> mSerialFields;
  nvinfer1::PluginFieldCollection mSerialCollection{};
};

class RoiWarpPluginCreator : public nvinfer1::IPluginCreatorV3One {
 public:
  RoiWarpPluginCreator();
  ~RoiWarpPluginCreator() override = default;

  char const* getPluginName() const noexcept override;
  char const* getPluginVersion() const noexcept override;
  char const* getPluginNamespace() const noexcept override;
  nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override;
  nvinfer1::IPluginV3* createPlugin(char const* name, nvinfer1::PluginFieldCollection const* fc,
                                    nvinfer1::TensorRTPhase phase) noexcept override;

 private:
  std::vector<nvinfer1::PluginField> mFieldNames;
  nvinfer1::PluginFieldCollection mCollection{};
};

}  // namespace plugin
}  // namespace edgeperc

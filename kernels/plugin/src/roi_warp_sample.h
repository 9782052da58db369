// Per-pixel sampling for the EdgepercRoiWarp TensorRT plugin: the shared ep_roi_warp_sample
// (kernels/include/edgeperc/roi_warp.h) for every frame element type the plugin accepts.
//
// TensorRT documents kUINT8 as unsupported for plugin I/O (PluginTensorDesc::type), so the ONNX
// form casts the uint8 camera frame to FP16 (lossless for 0..255) in front of the plugin;
// kernels/plugin/tests/test_roi_warp_plugin.cpp checks float and uint8 frames sample alike.
#pragma once
#include "edgeperc/roi_warp.h"

namespace edgeperc {
namespace plugin {

template <typename T>
EP_HD float ep_plugin_warp_pixel(const T* src, int32_t height, int32_t width, int64_t row_stride,
                                 int32_t channels, int32_t c, const float* m, int32_t ox,
                                 int32_t oy, float pad) {
  return ep_roi_warp_sample(src, height, width, row_stride, channels, c, m, ox, oy, pad);
}

}  // namespace plugin
}  // namespace edgeperc

// Host-side launcher of the EdgepercRoiWarp CUDA kernel. Plain C++ (no TensorRT types), so the
// plugin (compiled by the C++ compiler) and the kernel (compiled by nvcc) share only this.
#pragma once
#include <cuda_runtime_api.h>
#include <stdint.h>

namespace edgeperc {
namespace plugin {

constexpr int32_t kMaxChannels = 4;      // gray, RGB, RGBA
constexpr int32_t kMaxRoisPerLaunch = 65535;  // gridDim.y limit
constexpr int32_t kMaxOutputSide = 16384;

enum class FrameType : int32_t { kUint8 = 0, kFloat16 = 1, kFloat32 = 2 };
enum class OutputType : int32_t { kFloat32 = 0, kFloat16 = 1 };

// One batched crop-warp-normalise: frame (H, W, C) HWC contiguous rows of `row_stride` elements;
// rois (N, 9) float32 row-major 3x3 output->source matrices; out (N, C, out_h, out_w) NCHW.
// All pointers are device pointers. out = (sample * scale - mean[c]) * inv_std[c].
struct RoiWarpArgs {
  const void* frame;
  int32_t frame_h;
  int32_t frame_w;
  int32_t channels;
  int64_t row_stride;
  const float* rois;
  int32_t n_rois;
  void* out;
  int32_t out_h;
  int32_t out_w;
  float pad;  // in source units (0..255), applied before normalisation
  float scale;
  float mean[kMaxChannels];
  float inv_std[kMaxChannels];
};

// Returns an EpStatus (0 = launched): argument errors are caught before any CUDA call; a failed
// launch (no device, bad configuration) is EP_ERR_CUDA. Enqueues on `stream`, never synchronises.
int32_t launchRoiWarp(RoiWarpArgs const& args, FrameType frame_type, OutputType out_type,
                      cudaStream_t stream) noexcept;

}  // namespace plugin
}  // namespace edgeperc

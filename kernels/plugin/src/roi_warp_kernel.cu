// CUDA kernel of the EdgepercRoiWarp plugin: one thread per output pixel of one RoI, all channels.
// The per-pixel arithmetic is edgeperc/roi_warp.h (via roi_warp_sample.h), shared with the host
// library and the standalone CUDA library.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "edgeperc/common.h"
#include "roi_warp_launch.h"
#include "roi_warp_sample.h"

namespace edgeperc {
namespace plugin {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ void store(float* dst, float v) { *dst = v; }
__device__ __forceinline__ void store(__half* dst, float v) { *dst = __float2half_rn(v); }

template <typename TIn, typename TOut>
__global__ void __launch_bounds__(kThreads)
    roiWarpKernel(const TIn* __restrict__ frame, const float* __restrict__ rois,
                  TOut* __restrict__ out, RoiWarpArgs args) {
  const int64_t plane = (int64_t)args.out_h * args.out_w;
  const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= plane) return;
  const int64_t roi = blockIdx.y;
  const int32_t ox = (int32_t)(idx % args.out_w);
  const int32_t oy = (int32_t)(idx / args.out_w);
  float m[9];
#pragma unroll
  for (int k = 0; k < 9; ++k) m[k] = rois[roi * 9 + k];
  TOut* dst = out + roi * args.channels * plane + idx;
  for (int32_t c = 0; c < args.channels; ++c) {
    const float v = ep_plugin_warp_pixel(frame, args.frame_h, args.frame_w, args.row_stride,
                                         args.channels, c, m, ox, oy, args.pad);
    store(dst + c * plane, ep_normalise(v, args.scale, args.mean[c], args.inv_std[c]));
  }
}

template <typename TIn, typename TOut>
int32_t launchTyped(RoiWarpArgs const& args, cudaStream_t stream) {
  const int64_t plane = (int64_t)args.out_h * args.out_w;
  const dim3 block(kThreads);
  const dim3 grid((unsigned)((plane + kThreads - 1) / kThreads), (unsigned)args.n_rois);
  roiWarpKernel<TIn, TOut><<<grid, block, 0, stream>>>(static_cast<const TIn*>(args.frame),
                                                        args.rois, static_cast<TOut*>(args.out),
                                                        args);
  return cudaGetLastError() == cudaSuccess ? EP_OK : EP_ERR_CUDA;
}

template <typename TIn>
int32_t launchFor(RoiWarpArgs const& args, OutputType out_type, cudaStream_t stream) {
  switch (out_type) {
    case OutputType::kFloat32: return launchTyped<TIn, float>(args, stream);
    case OutputType::kFloat16: return launchTyped<TIn, __half>(args, stream);
  }
  return EP_ERR_BAD_ARGUMENT;
}

}  // namespace

int32_t launchRoiWarp(RoiWarpArgs const& args, FrameType frame_type, OutputType out_type,
                      cudaStream_t stream) noexcept {
  if (args.n_rois < 0 || args.n_rois > kMaxRoisPerLaunch) return EP_ERR_TOO_MANY_ROIS;
  if (args.frame_h <= 0 || args.frame_w <= 0 || args.out_h <= 0 || args.out_w <= 0 ||
      args.out_h > kMaxOutputSide || args.out_w > kMaxOutputSide)
    return EP_ERR_BAD_SHAPE;
  if (args.channels < 1 || args.channels > kMaxChannels) return EP_ERR_BAD_SHAPE;
  if (args.row_stride < (int64_t)args.frame_w * args.channels) return EP_ERR_BAD_STRIDE;
  if (args.n_rois == 0) return EP_OK;  // nothing to write; no launch with a zero grid
  if (args.frame == nullptr || args.rois == nullptr || args.out == nullptr)
    return EP_ERR_NULL_POINTER;
  switch (frame_type) {
    case FrameType::kUint8: return launchFor<uint8_t>(args, out_type, stream);
    case FrameType::kFloat16: return launchFor<__half>(args, out_type, stream);
    case FrameType::kFloat32: return launchFor<float>(args, out_type, stream);
  }
  return EP_ERR_BAD_ARGUMENT;
}

}  // namespace plugin
}  // namespace edgeperc

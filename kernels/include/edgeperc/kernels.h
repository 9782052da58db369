// C ABI of the pre/post-processing kernels. Host library (libedgeperc_kernels_host.so): ep_*.
// CUDA library (libedgeperc_kernels_cuda.so): ep_cuda_* on device pointers and a stream, and
// ep_cuda_*_host taking host pointers (copy in, launch, copy out; for tests and simple callers).
// Every function returns an EpStatus, checks its arguments before touching memory, and is told
// the size of every buffer it reads or writes, so bad input is an error code, never a crash.
#pragma once
#include <stdint.h>

#include "edgeperc/common.h"

#if defined(_WIN32)
#define EP_API __declspec(dllexport)
#else
#define EP_API __attribute__((visibility("default")))
#endif

#define EP_ABI_VERSION 1
#define EP_MAX_DIM (1 << 20)  // per side; larger frames are tiled by the caller
#define EP_MAX_CHANNELS 4

enum EpOutDtype { EP_OUT_F32 = 0, EP_OUT_F16 = 1 };

#ifdef __cplusplus
extern "C" {
#endif

EP_API int32_t ep_abi_version(void);
EP_API const char* ep_status_name(int32_t status);

// (height, width, channels) uint8 HWC frame, rows `row_stride` bytes apart, `src_bytes` readable
// from src -> dense (out_h, out_w, channels) uint8; OpenCV INTER_AREA, out <= in on both axes.
EP_API int32_t ep_area_downsample_u8(const uint8_t* src, int64_t src_bytes, int32_t height,
                                     int32_t width, int64_t row_stride, int32_t channels,
                                     int32_t out_h, int32_t out_w, uint8_t* out, int64_t out_bytes);

// Frame + n_rois row-major 3x3 matrices (output pixel -> source pixel, WARP_INVERSE_MAP) ->
// (n_rois, channels, out_h, out_w) float32 or float16 (bits), bilinear, outside pixels read
// `pad` (0..255 scale), each value (v * scale[c] - mean[c]) / std[c]. n_rois <= max_rois.
EP_API int32_t ep_roi_warp_normalise(const uint8_t* src, int64_t src_bytes, int32_t height,
                                     int32_t width, int64_t row_stride, int32_t channels,
                                     const float* matrices, int32_t n_rois, int32_t max_rois,
                                     int32_t out_h, int32_t out_w, const float* scale,
                                     const float* mean, const float* std, float pad,
                                     int32_t out_dtype, void* out, int64_t out_bytes);

// (height, width) float32 probabilities (row_stride in elements) -> prob > threshold, eroded by
// a disk/square of radius erode_px, 8-connected components in raster order of their first pixel:
// boxes[k] = (x0, y0, x1, y1, area), x1/y1 exclusive, for k < min(total, max_boxes);
// *n_components = total (may exceed max_boxes: call again with more room). eroded (0/1) and
// labels (0 = background, k + 1) are optional dense (height, width) outputs of aux_elems each.
EP_API int32_t ep_mask_components(const float* prob, int64_t prob_elems, int32_t height,
                                  int32_t width, int64_t row_stride, float threshold,
                                  int32_t erode_px, int32_t shape, int32_t max_boxes,
                                  int32_t* boxes, int32_t* n_components, uint8_t* eroded,
                                  int32_t* labels, int64_t aux_elems);

// Frame -> (channels, out_h, out_w + 2 * pad_cols) float32: cv2.resize INTER_LINEAR geometry,
// normalised, columns wrapped around (left pad = rightmost columns, right pad = leftmost).
EP_API int32_t ep_panorama_input(const uint8_t* src, int64_t src_bytes, int32_t height,
                                 int32_t width, int64_t row_stride, int32_t channels,
                                 int32_t out_h, int32_t out_w, int32_t pad_cols, const float* scale,
                                 const float* mean, const float* std, float* out,
                                 int64_t out_bytes);

// ---- CUDA library -------------------------------------------------------------------------
// Device variants: src/matrices/prob/out/boxes/n_components/eroded/labels/workspace are device
// (or mapped host) pointers; scale/mean/std are host pointers (copied into the launch).
EP_API int32_t ep_cuda_device_count(int32_t* count);  // EP_ERR_NO_DEVICE when none is usable
EP_API const char* ep_cuda_last_error(void);          // message of this thread's last CUDA error

EP_API int32_t ep_cuda_area_downsample_u8(const uint8_t* src, int64_t src_bytes, int32_t height,
                                          int32_t width, int64_t row_stride, int32_t channels,
                                          int32_t out_h, int32_t out_w, uint8_t* out,
                                          int64_t out_bytes, void* stream);
EP_API int32_t ep_cuda_roi_warp_normalise(const uint8_t* src, int64_t src_bytes, int32_t height,
                                          int32_t width, int64_t row_stride, int32_t channels,
                                          const float* matrices, int32_t n_rois, int32_t max_rois,
                                          int32_t out_h, int32_t out_w, const float* scale,
                                          const float* mean, const float* std, float pad,
                                          int32_t out_dtype, void* out, int64_t out_bytes,
                                          void* stream);
EP_API int64_t ep_cuda_mask_workspace_bytes(int32_t height, int32_t width);
EP_API int32_t ep_cuda_mask_components(const float* prob, int64_t prob_elems, int32_t height,
                                       int32_t width, int64_t row_stride, float threshold,
                                       int32_t erode_px, int32_t shape, int32_t max_boxes,
                                       int32_t* boxes, int32_t* n_components, uint8_t* eroded,
                                       int32_t* labels, int64_t aux_elems, void* workspace,
                                       int64_t workspace_bytes, void* stream);
EP_API int32_t ep_cuda_panorama_input(const uint8_t* src, int64_t src_bytes, int32_t height,
                                      int32_t width, int64_t row_stride, int32_t channels,
                                      int32_t out_h, int32_t out_w, int32_t pad_cols,
                                      const float* scale, const float* mean, const float* std,
                                      float* out, int64_t out_bytes, void* stream);

// Device memory and timing helpers (benchmarks and callers without cuda-python or CuPy).
// kind: 1 host->device, 2 device->host, 3 device->device (cudaMemcpyKind values).
EP_API int32_t ep_cuda_malloc(void** ptr, int64_t bytes);
EP_API int32_t ep_cuda_free(void* ptr);
EP_API int32_t ep_cuda_memcpy(void* dst, const void* src, int64_t bytes, int32_t kind);
EP_API int32_t ep_cuda_synchronize(void);
EP_API int32_t ep_cuda_device_name(char* buf, int32_t size);
// One pass over `bytes` device bytes (their sum into *out, a device uint64): the memory-read
// floor any kernel that reads a frame once is measured against.
EP_API int32_t ep_cuda_sum_bytes(const uint8_t* src, int64_t bytes, unsigned long long* out,
                                 void* stream);

// Host-pointer variants: same arguments as the host library's functions.
EP_API int32_t ep_cuda_area_downsample_u8_host(const uint8_t* src, int64_t src_bytes,
                                               int32_t height, int32_t width, int64_t row_stride,
                                               int32_t channels, int32_t out_h, int32_t out_w,
                                               uint8_t* out, int64_t out_bytes);
// Zero-copy (Jetson): the frame is page-locked and mapped in place, the kernel reads it over
// the bus instead of copying it first; on an integrated GPU that is the same DRAM.
EP_API int32_t ep_cuda_area_downsample_u8_zero_copy(const uint8_t* src, int64_t src_bytes,
                                                    int32_t height, int32_t width,
                                                    int64_t row_stride, int32_t channels,
                                                    int32_t out_h, int32_t out_w, uint8_t* out,
                                                    int64_t out_bytes);
EP_API int32_t ep_cuda_roi_warp_normalise_host(const uint8_t* src, int64_t src_bytes,
                                               int32_t height, int32_t width, int64_t row_stride,
                                               int32_t channels, const float* matrices,
                                               int32_t n_rois, int32_t max_rois, int32_t out_h,
                                               int32_t out_w, const float* scale,
                                               const float* mean, const float* std, float pad,
                                               int32_t out_dtype, void* out, int64_t out_bytes);
EP_API int32_t ep_cuda_mask_components_host(const float* prob, int64_t prob_elems,
                                            int32_t height, int32_t width, int64_t row_stride,
                                            float threshold, int32_t erode_px, int32_t shape,
                                            int32_t max_boxes, int32_t* boxes,
                                            int32_t* n_components, uint8_t* eroded,
                                            int32_t* labels, int64_t aux_elems);
EP_API int32_t ep_cuda_panorama_input_host(const uint8_t* src, int64_t src_bytes, int32_t height,
                                           int32_t width, int64_t row_stride, int32_t channels,
                                           int32_t out_h, int32_t out_w, int32_t pad_cols,
                                           const float* scale, const float* mean,
                                           const float* std, float* out, int64_t out_bytes);

#ifdef __cplusplus
}
#endif

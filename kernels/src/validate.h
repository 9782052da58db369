// Argument checks shared by the host library and the CUDA library's host-side wrappers: every
// entry point runs these before it touches a buffer, so bad input is a status code.
#pragma once
#include <math.h>
#include <stdint.h>

#include "edgeperc/kernels.h"
#include "edgeperc/mask.h"
#include "edgeperc/roi_batch.h"

namespace ep {

inline bool valid_channels(int32_t c) { return c == 1 || c == 3 || c == 4; }

// uint8 HWC frame with row stride: the last byte read is (h-1)*stride + w*c - 1 < src_bytes.
inline int32_t check_frame(const void* src, int64_t src_bytes, int32_t h, int32_t w,
                           int64_t stride, int32_t c) {
  if (!src) return EP_ERR_NULL_POINTER;
  if (h <= 0 || w <= 0 || h > EP_MAX_DIM || w > EP_MAX_DIM || !valid_channels(c))
    return EP_ERR_BAD_SHAPE;
  if (stride < (int64_t)w * c || stride > INT64_MAX / 4 / h) return EP_ERR_BAD_STRIDE;
  if (src_bytes < (int64_t)(h - 1) * stride + (int64_t)w * c) return EP_ERR_BAD_SHAPE;
  return EP_OK;
}

inline int32_t check_out(const void* out, int64_t out_bytes, int64_t needed) {
  if (!out) return EP_ERR_NULL_POINTER;
  return out_bytes < needed ? EP_ERR_BAD_SHAPE : EP_OK;
}

inline bool valid_dim(int32_t d) { return d > 0 && d <= EP_MAX_DIM; }

inline int32_t check_area(const uint8_t* src, int64_t src_bytes, int32_t h, int32_t w,
                          int64_t stride, int32_t c, int32_t out_h, int32_t out_w,
                          const uint8_t* out, int64_t out_bytes) {
  int32_t st = check_frame(src, src_bytes, h, w, stride, c);
  if (st != EP_OK) return st;
  if (!valid_dim(out_h) || !valid_dim(out_w)) return EP_ERR_BAD_SHAPE;
  if (out_h > h || out_w > w) return EP_ERR_BAD_ARGUMENT;  // area is a downsample only
  return check_out(out, out_bytes, (int64_t)out_h * out_w * c);
}

// Per-channel normalisation: all finite, std != 0; inv_std computed once here, in float.
inline int32_t make_norm(const float* scale, const float* mean, const float* std, int32_t c,
                         EpNorm* norm) {
  if (!scale || !mean || !std) return EP_ERR_NULL_POINTER;
  for (int32_t k = 0; k < c; ++k) {
    if (!isfinite(scale[k]) || !isfinite(mean[k]) || !isfinite(std[k]) || std[k] == 0.f)
      return EP_ERR_BAD_ARGUMENT;
    norm->scale[k] = scale[k];
    norm->mean[k] = mean[k];
    norm->inv_std[k] = 1.f / std[k];
  }
  for (int32_t k = c; k < EP_MAX_CHANNELS; ++k) norm->scale[k] = norm->mean[k] = norm->inv_std[k] = 0.f;
  return EP_OK;
}

inline int64_t roi_out_bytes(int32_t n, int32_t c, int32_t out_h, int32_t out_w, int32_t dtype) {
  return (int64_t)n * c * out_h * out_w * (dtype == EP_OUT_F16 ? 2 : 4);
}

// RoI arguments other than the matrices' contents (which may live on the device).
inline int32_t check_roi(const uint8_t* src, int64_t src_bytes, int32_t h, int32_t w,
                         int64_t stride, int32_t c, const float* matrices, int32_t n_rois,
                         int32_t max_rois, int32_t out_h, int32_t out_w, float pad,
                         int32_t dtype, const void* out, int64_t out_bytes) {
  int32_t st = check_frame(src, src_bytes, h, w, stride, c);
  if (st != EP_OK) return st;
  if (max_rois <= 0 || max_rois > (1 << 16) || n_rois < 0 || !isfinite(pad) ||
      (dtype != EP_OUT_F32 && dtype != EP_OUT_F16))
    return EP_ERR_BAD_ARGUMENT;
  if (n_rois > max_rois) return EP_ERR_TOO_MANY_ROIS;
  if (!valid_dim(out_h) || !valid_dim(out_w)) return EP_ERR_BAD_SHAPE;
  if (n_rois == 0) return EP_OK;
  if (!matrices) return EP_ERR_NULL_POINTER;
  return check_out(out, out_bytes, roi_out_bytes(n_rois, c, out_h, out_w, dtype));
}

inline int32_t check_matrices_finite(const float* m, int32_t n_rois) {
  for (int64_t k = 0; k < (int64_t)n_rois * 9; ++k)
    if (!isfinite(m[k])) return EP_ERR_BAD_ARGUMENT;
  return EP_OK;
}

inline int32_t check_mask(const float* prob, int64_t prob_elems, int32_t h, int32_t w,
                          int64_t stride, float threshold, int32_t erode_px, int32_t shape,
                          int32_t max_boxes, const int32_t* boxes, const int32_t* n_components,
                          const void* eroded, const void* labels, int64_t aux_elems) {
  if (!prob || !n_components) return EP_ERR_NULL_POINTER;
  if (h <= 0 || w <= 0 || (int64_t)h * w > INT32_MAX - 1) return EP_ERR_BAD_SHAPE;
  if (stride < w || stride > INT64_MAX / 4 / h) return EP_ERR_BAD_STRIDE;
  if (prob_elems < (int64_t)(h - 1) * stride + w) return EP_ERR_BAD_SHAPE;
  if (isnan(threshold) || erode_px < 0 || erode_px > 255 ||
      (shape != EP_ERODE_DISK && shape != EP_ERODE_SQUARE) || max_boxes < 0)
    return EP_ERR_BAD_ARGUMENT;
  if (max_boxes > 0 && !boxes) return EP_ERR_NULL_POINTER;
  if ((eroded || labels) && aux_elems < (int64_t)h * w) return EP_ERR_BAD_SHAPE;
  return EP_OK;
}

inline int32_t check_panorama(const uint8_t* src, int64_t src_bytes, int32_t h, int32_t w,
                              int64_t stride, int32_t c, int32_t out_h, int32_t out_w,
                              int32_t pad_cols, const float* out, int64_t out_bytes) {
  int32_t st = check_frame(src, src_bytes, h, w, stride, c);
  if (st != EP_OK) return st;
  if (!valid_dim(out_h) || !valid_dim(out_w)) return EP_ERR_BAD_SHAPE;
  if (pad_cols < 0 || pad_cols > EP_MAX_DIM) return EP_ERR_BAD_ARGUMENT;
  return check_out(out, out_bytes, (int64_t)c * out_h * (out_w + 2LL * pad_cols) * 4);
}

}  // namespace ep

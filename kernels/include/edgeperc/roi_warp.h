// RoI crop-warp-normalise, per output pixel. The 3x3 matrix maps OUTPUT pixel (ox, oy, 1) to
// SOURCE pixel coordinates (OpenCV's WARP_INVERSE_MAP convention, integer pixel positions);
// samples outside the frame read `pad` (BORDER_CONSTANT). Used by the CUDA kernel, the host loop
// and the TensorRT plugin alike.
#pragma once
#include <math.h>

#include "edgeperc/common.h"

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#endif

// One element of a frame as float: 8-bit camera frames, and the FP32/FP16 frames a TensorRT
// plugin receives (TensorRT has no uint8 plugin I/O).
EP_HD float ep_load(const uint8_t* p) { return (float)*p; }
EP_HD float ep_load(const float* p) { return *p; }
#if defined(__CUDACC__)
EP_HD float ep_load(const __half* p) { return __half2float(*p); }
#endif

// Bilinear sample of channel `c` of an HWC image with `row_stride` elements per row.
template <typename T>
EP_HD float ep_bilinear(const T* src, int32_t height, int32_t width, int64_t row_stride,
                        int32_t channels, int32_t c, float x, float y, float pad) {
  const float fx0 = floorf(x), fy0 = floorf(y);
  const int32_t x0 = (int32_t)fx0, y0 = (int32_t)fy0;
  const float ax = x - fx0, ay = y - fy0;
  float p[4];
  for (int k = 0; k < 4; ++k) {
    const int32_t xi = x0 + (k & 1), yi = y0 + (k >> 1);
    p[k] = (xi >= 0 && yi >= 0 && xi < width && yi < height)
               ? ep_load(src + ((int64_t)yi * row_stride + (int64_t)xi * channels + c))
               : pad;
  }
  return (1.f - ay) * ((1.f - ax) * p[0] + ax * p[1]) + ay * ((1.f - ax) * p[2] + ax * p[3]);
}

EP_HD float ep_bilinear_u8(const uint8_t* src, int32_t height, int32_t width, int64_t row_stride,
                           int32_t channels, int32_t c, float x, float y, float pad) {
  return ep_bilinear(src, height, width, row_stride, channels, c, x, y, pad);
}

// Source coordinates of output pixel (ox, oy) of one RoI; false when the sample is all padding
// (degenerate projection, NaN, or both taps outside the frame on an axis).
EP_HD bool ep_roi_source_xy(const float* m /* 9, row-major */, int32_t ox, int32_t oy,
                            int32_t height, int32_t width, float* sx, float* sy) {
  const float fx = (float)ox, fy = (float)oy;
  const float w = m[6] * fx + m[7] * fy + m[8];
  if (!(fabsf(w) > 1e-12f)) return false;
  *sx = (m[0] * fx + m[1] * fy + m[2]) / w;
  *sy = (m[3] * fx + m[4] * fy + m[5]) / w;
  return *sx > -2.f && *sy > -2.f && *sx < (float)width + 1.f && *sy < (float)height + 1.f;
}

// Source value (0..255 scale, float) for output pixel (ox, oy) of one RoI, any element type.
template <typename T>
EP_HD float ep_roi_warp_sample(const T* src, int32_t height, int32_t width, int64_t row_stride,
                               int32_t channels, int32_t c, const float* m /* 9, row-major */,
                               int32_t ox, int32_t oy, float pad) {
  float sx, sy;
  if (!ep_roi_source_xy(m, ox, oy, height, width, &sx, &sy)) return pad;
  return ep_bilinear(src, height, width, row_stride, channels, c, sx, sy, pad);
}

EP_HD float ep_roi_warp_pixel(const uint8_t* src, int32_t height, int32_t width, int64_t row_stride,
                              int32_t channels, int32_t c, const float* m, int32_t ox, int32_t oy,
                              float pad) {
  return ep_roi_warp_sample(src, height, width, row_stride, channels, c, m, ox, oy, pad);
}

// Network input value: (v / 255 - mean) / std, written as (v * scale - mean) * inv_std.
EP_HD float ep_normalise(float v, float scale, float mean, float inv_std) {
  return (v * scale - mean) * inv_std;
}

// Area downsample (OpenCV INTER_AREA semantics for out <= in), per output pixel. Shared by the
// host loop and the CUDA kernel; the weights and the float accumulation order replicate
// OpenCV's resizeArea_/resizeAreaFast_ so that uint8 results are bit-exact with cv2.resize.
#pragma once
#include <float.h>
#include <math.h>

#include "edgeperc/common.h"

// Round half to even, then clamp to 0..255 (OpenCV's saturate_cast<uchar>(float) = cvRound).
EP_HD uint8_t ep_saturate_u8(float v) {
  const float r = rintf(v);
  return r <= 0.f ? (uint8_t)0 : (r >= 255.f ? (uint8_t)255 : (uint8_t)r);
}

// OpenCV derives the scale as 1 / (dst / src) in double; copy that, not src / dst, since the
// two differ in the last bit for some sizes and the tables follow the bits.
EP_HD double ep_area_scale(int32_t src_size, int32_t dst_size) {
  return 1.0 / ((double)dst_size / (double)src_size);
}

// Integer factor when both axes divide exactly (OpenCV's "is_area_fast"), else 0.
EP_HD int32_t ep_area_int_factor(int32_t src_size, int32_t dst_size) {
  const double s = ep_area_scale(src_size, dst_size);
  const double is = rint(s);
  return fabs(s - is) < DBL_EPSILON ? (int32_t)is : 0;
}

// The source cells one output cell covers along one axis: `count` consecutive indices from
// `start`; the first and last may be partial (weights w_first / w_last), the rest w_mid.
struct EpAreaSpan {
  int32_t start, count;
  float w_first, w_mid, w_last;
};

// Same arithmetic as OpenCV's computeResizeAreaTab (double, 1e-3 slack) for one output index.
EP_HD EpAreaSpan ep_area_span(int32_t d, int32_t src_size, double scale) {
  const double f1 = d * scale, f2 = f1 + scale;
  const double cell = fmin(scale, (double)src_size - f1);
  int32_t s1 = (int32_t)ceil(f1), s2 = (int32_t)floor(f2);
  s2 = s2 < src_size - 1 ? s2 : src_size - 1;
  s1 = s1 < s2 ? s1 : s2;
  const bool left = (double)s1 - f1 > 1e-3, right = f2 - (double)s2 > 1e-3;
  const int32_t full = s2 > s1 ? s2 - s1 : 0;
  EpAreaSpan span;
  span.start = left ? s1 - 1 : s1;
  span.count = (left ? 1 : 0) + full + (right ? 1 : 0);
  const float mid = (float)(1.0 / cell);
  const float wl = (float)(((double)s1 - f1) / cell);
  const float wr = (float)(fmin(fmin(f2 - (double)s2, 1.0), cell) / cell);
  span.w_mid = mid;  // entry 0 / entry count-1 are the partial cells when present
  span.w_first = left ? wl : (full > 0 ? mid : (right ? wr : mid));
  span.w_last = right ? wr : (full > 0 ? mid : (left ? wl : mid));
  return span;
}

EP_HD float ep_area_weight(const EpAreaSpan& s, int32_t k) {
  return k == 0 ? s.w_first : (k == s.count - 1 ? s.w_last : s.w_mid);
}

// Exact integer factors: integer sum; 2x2 rounds (sum + 2) >> 2 as OpenCV's SIMD path does,
// other factors round sum * (1/area) in float (its scalar path).
EP_HD uint8_t ep_area_fast_pixel(const uint8_t* src, int64_t row_stride, int32_t channels,
                                 int32_t fx, int32_t fy, int32_t ox, int32_t oy, int32_t c) {
  int64_t sum = 0;  // OpenCV's int sum overflows past 2^31 / 255 source pixels per output
  const uint8_t* base = src + (int64_t)oy * fy * row_stride + (int64_t)ox * fx * channels + c;
  for (int32_t y = 0; y < fy; ++y) {
    const uint8_t* row = base + (int64_t)y * row_stride;
    for (int32_t x = 0; x < fx; ++x) sum += row[(int64_t)x * channels];
  }
  if (fx == 2 && fy == 2) return (uint8_t)((sum + 2) >> 2);
  return ep_saturate_u8((float)sum * (1.f / (float)(fx * fy)));
}

// General ratios: per source row, weighted x-sum in float (x order), then rows weighted and
// added in y order, as OpenCV's resizeArea_ does; spans come from ep_area_span.
EP_HD uint8_t ep_area_pixel(const uint8_t* src, int64_t row_stride, int32_t channels,
                            const EpAreaSpan& sx, const EpAreaSpan& sy, int32_t c) {
  float sum = 0.f;
  for (int32_t j = 0; j < sy.count; ++j) {
    const uint8_t* row = src + (int64_t)(sy.start + j) * row_stride + c;
    float buf = 0.f;
    for (int32_t k = 0; k < sx.count; ++k)
      buf = buf + (float)row[(int64_t)(sx.start + k) * channels] * ep_area_weight(sx, k);
    sum = sum + ep_area_weight(sy, j) * buf;
  }
  return ep_saturate_u8(sum);
}

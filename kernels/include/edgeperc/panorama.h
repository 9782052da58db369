// Panorama input, per output pixel: cv2.resize INTER_LINEAR source coordinates (half-pixel
// centres, edge clamp), float bilinear, normalise, and circular padding along longitude.
#pragma once
#include <math.h>

#include "edgeperc/area.h"
#include "edgeperc/common.h"

// OpenCV's coordinate for output index d: fx = (d + 0.5) * scale - 0.5 in float, clamped so
// that both taps lie inside (a clamped tap gets weight 0).
EP_HD void ep_linear_coord(int32_t d, double scale, int32_t src_size, int32_t* s0, int32_t* s1,
                           float* frac) {
  float f = (float)((d + 0.5) * scale - 0.5);
  int32_t s = (int32_t)floorf(f);
  f = f - (float)s;
  if (s < 0) s = 0, f = 0.f;
  if (s >= src_size - 1) s = src_size - 1, f = 0.f;
  *s0 = s;
  *s1 = s + 1 < src_size ? s + 1 : src_size - 1;
  *frac = f;
}

// Resized value (0..255 scale) of output pixel (ox, oy), channel c.
EP_HD float ep_resize_linear_pixel(const uint8_t* src, int32_t height, int32_t width,
                                   int64_t row_stride, int32_t channels, int32_t out_h,
                                   int32_t out_w, int32_t ox, int32_t oy, int32_t c) {
  int32_t x0, x1, y0, y1;
  float fx, fy;
  ep_linear_coord(ox, ep_area_scale(width, out_w), width, &x0, &x1, &fx);
  ep_linear_coord(oy, ep_area_scale(height, out_h), height, &y0, &y1, &fy);
  const uint8_t* r0 = src + (int64_t)y0 * row_stride + c;
  const uint8_t* r1 = src + (int64_t)y1 * row_stride + c;
  const float p00 = r0[(int64_t)x0 * channels], p01 = r0[(int64_t)x1 * channels];
  const float p10 = r1[(int64_t)x0 * channels], p11 = r1[(int64_t)x1 * channels];
  return (1.f - fy) * ((1.f - fx) * p00 + fx * p01) + fy * ((1.f - fx) * p10 + fx * p11);
}

// Resized column that padded output column j shows: left pad = rightmost columns, right pad =
// leftmost (longitude wraps), any pad width.
EP_HD int32_t ep_wrap_column(int32_t j, int32_t pad_cols, int32_t out_w) {
  const int32_t k = (j - pad_cols) % out_w;
  return k < 0 ? k + out_w : k;
}

EP_HD int64_t ep_panorama_width(int32_t out_w, int32_t pad_cols) { return out_w + 2LL * pad_cols; }

// Host loop of the area downsample: the same per-pixel functions as the CUDA kernel.
#include <vector>

#include "edgeperc/area.h"
#include "validate.h"

extern "C" EP_API int32_t ep_area_downsample_u8(const uint8_t* src, int64_t src_bytes,
                                                int32_t height, int32_t width, int64_t row_stride,
                                                int32_t channels, int32_t out_h, int32_t out_w,
                                                uint8_t* out, int64_t out_bytes) {
  const int32_t st = ep::check_area(src, src_bytes, height, width, row_stride, channels, out_h,
                                    out_w, out, out_bytes);
  if (st != EP_OK) return st;
  const int32_t fx = ep_area_int_factor(width, out_w), fy = ep_area_int_factor(height, out_h);
  if (fx && fy) {
    for (int32_t oy = 0; oy < out_h; ++oy)
      for (int32_t ox = 0; ox < out_w; ++ox)
        for (int32_t c = 0; c < channels; ++c)
          out[((int64_t)oy * out_w + ox) * channels + c] =
              ep_area_fast_pixel(src, row_stride, channels, fx, fy, ox, oy, c);
    return EP_OK;
  }
  // Spans depend on one axis only: computed once per column and per row here (the CUDA kernel
  // recomputes them per thread, which costs less than the reads).
  const double scale_x = ep_area_scale(width, out_w), scale_y = ep_area_scale(height, out_h);
  std::vector<EpAreaSpan> xs(out_w), ys(out_h);
  for (int32_t ox = 0; ox < out_w; ++ox) xs[ox] = ep_area_span(ox, width, scale_x);
  for (int32_t oy = 0; oy < out_h; ++oy) ys[oy] = ep_area_span(oy, height, scale_y);
  for (int32_t oy = 0; oy < out_h; ++oy)
    for (int32_t ox = 0; ox < out_w; ++ox)
      for (int32_t c = 0; c < channels; ++c)
        out[((int64_t)oy * out_w + ox) * channels + c] =
            ep_area_pixel(src, row_stride, channels, xs[ox], ys[oy], c);
  return EP_OK;
}

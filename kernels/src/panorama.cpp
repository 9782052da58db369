// Host loop of the panorama input (resize + normalise + circular padding).
#include "edgeperc/panorama.h"
#include "edgeperc/roi_warp.h"
#include "validate.h"

extern "C" EP_API int32_t ep_panorama_input(const uint8_t* src, int64_t src_bytes, int32_t height,
                                            int32_t width, int64_t row_stride, int32_t channels,
                                            int32_t out_h, int32_t out_w, int32_t pad_cols,
                                            const float* scale, const float* mean,
                                            const float* std, float* out, int64_t out_bytes) {
  int32_t st = ep::check_panorama(src, src_bytes, height, width, row_stride, channels, out_h,
                                  out_w, pad_cols, out, out_bytes);
  if (st != EP_OK) return st;
  EpNorm norm;
  if ((st = ep::make_norm(scale, mean, std, channels, &norm)) != EP_OK) return st;
  const int64_t padded = ep_panorama_width(out_w, pad_cols);
  for (int32_t c = 0; c < channels; ++c)
    for (int32_t oy = 0; oy < out_h; ++oy)
      for (int64_t j = 0; j < padded; ++j) {
        const int32_t ox = ep_wrap_column((int32_t)j, pad_cols, out_w);
        const float v = ep_resize_linear_pixel(src, height, width, row_stride, channels, out_h,
                                               out_w, ox, oy, c);
        out[((int64_t)c * out_h + oy) * padded + j] =
            ep_normalise(v, norm.scale[c], norm.mean[c], norm.inv_std[c]);
      }
  return EP_OK;
}

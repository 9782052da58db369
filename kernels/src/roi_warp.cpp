// Host loop of the batched RoI crop-warp-normalise.
#include "edgeperc/half.h"
#include "edgeperc/roi_batch.h"
#include "validate.h"

extern "C" EP_API int32_t ep_roi_warp_normalise(
    const uint8_t* src, int64_t src_bytes, int32_t height, int32_t width, int64_t row_stride,
    int32_t channels, const float* matrices, int32_t n_rois, int32_t max_rois, int32_t out_h,
    int32_t out_w, const float* scale, const float* mean, const float* std, float pad,
    int32_t out_dtype, void* out, int64_t out_bytes) {
  int32_t st = ep::check_roi(src, src_bytes, height, width, row_stride, channels, matrices, n_rois,
                             max_rois, out_h, out_w, pad, out_dtype, out, out_bytes);
  if (st != EP_OK) return st;
  EpNorm norm;
  if ((st = ep::make_norm(scale, mean, std, channels, &norm)) != EP_OK) return st;
  if (n_rois == 0) return EP_OK;
  if ((st = ep::check_matrices_finite(matrices, n_rois)) != EP_OK) return st;
  const int64_t plane = (int64_t)out_h * out_w;
  float vals[EP_MAX_CHANNELS];
  for (int32_t n = 0; n < n_rois; ++n)
    for (int32_t oy = 0; oy < out_h; ++oy)
      for (int32_t ox = 0; ox < out_w; ++ox) {
        ep_roi_output_pixel(src, height, width, row_stride, channels, matrices + 9 * n, ox, oy,
                            norm, pad, vals);
        const int64_t base = (int64_t)n * channels * plane + (int64_t)oy * out_w + ox;
        for (int32_t c = 0; c < channels; ++c) {
          if (out_dtype == EP_OUT_F16)
            static_cast<uint16_t*>(out)[base + c * plane] = ep_float_to_half_bits(vals[c]);
          else
            static_cast<float*>(out)[base + c * plane] = vals[c];
        }
      }
  return EP_OK;
}

// One output pixel of the batched RoI crop-warp-normalise, all channels: the projection is
// computed once per pixel (roi_warp.h), then each channel is sampled and normalised.
#pragma once
#include "edgeperc/roi_warp.h"

// Normalisation constants as the kernels take them: inv_std = 1 / std precomputed in float.
struct EpNorm {
  float scale[4], mean[4], inv_std[4];
};

// vals[c] for c < channels: normalised value of output pixel (ox, oy) of the RoI with matrix m.
EP_HD void ep_roi_output_pixel(const uint8_t* src, int32_t height, int32_t width,
                               int64_t row_stride, int32_t channels, const float* m, int32_t ox,
                               int32_t oy, const EpNorm& norm, float pad, float* vals) {
  float sx = 0.f, sy = 0.f;
  const bool inside = ep_roi_source_xy(m, ox, oy, height, width, &sx, &sy);
  for (int32_t c = 0; c < channels; ++c) {
    const float v =
        inside ? ep_bilinear_u8(src, height, width, row_stride, channels, c, sx, sy, pad) : pad;
    vals[c] = ep_normalise(v, norm.scale[c], norm.mean[c], norm.inv_std[c]);
  }
}

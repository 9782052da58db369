// Bad input must come back as a status code, before any buffer is touched. Buffers are sized
// exactly (heap vectors), so under EDGEPERC_ASAN a read or write one byte too far fails the run.
#include <math.h>

#include <vector>

#include "check.h"
#include "edgeperc/kernels.h"
#include "edgeperc/mask.h"

static const float kOne[4] = {1.f, 1.f, 1.f, 1.f}, kZero[4] = {0.f, 0.f, 0.f, 0.f};

static void area_cases() {
  std::vector<uint8_t> src(10 * 16 * 3), out(4 * 4 * 3);
  const uint8_t* s = src.data();
  uint8_t* o = out.data();
  const int64_t sb = (int64_t)src.size(), ob = (int64_t)out.size();
  CHECK_EQ(ep_area_downsample_u8(nullptr, sb, 10, 16, 48, 3, 4, 4, o, ob), EP_ERR_NULL_POINTER);
  CHECK_EQ(ep_area_downsample_u8(s, sb, 10, 16, 48, 3, 4, 4, nullptr, ob), EP_ERR_NULL_POINTER);
  CHECK_EQ(ep_area_downsample_u8(s, sb, 0, 16, 48, 3, 4, 4, o, ob), EP_ERR_BAD_SHAPE);
  CHECK_EQ(ep_area_downsample_u8(s, sb, 10, -1, 48, 3, 4, 4, o, ob), EP_ERR_BAD_SHAPE);
  CHECK_EQ(ep_area_downsample_u8(s, sb, 10, 16, 48, 2, 4, 4, o, ob), EP_ERR_BAD_SHAPE);
  CHECK_EQ(ep_area_downsample_u8(s, sb, 10, 16, 47, 3, 4, 4, o, ob), EP_ERR_BAD_STRIDE);
  CHECK_EQ(ep_area_downsample_u8(s, sb - 1, 10, 16, 48, 3, 4, 4, o, ob), EP_ERR_BAD_SHAPE);
  CHECK_EQ(ep_area_downsample_u8(s, sb, 10, 16, 48, 3, 4, 4, o, ob - 1), EP_ERR_BAD_SHAPE);
  CHECK_EQ(ep_area_downsample_u8(s, sb, 10, 16, 48, 3, 0, 4, o, ob), EP_ERR_BAD_SHAPE);
  CHECK_EQ(ep_area_downsample_u8(s, sb, 10, 16, 48, 3, 11, 4, o, ob), EP_ERR_BAD_ARGUMENT);
  CHECK_EQ(ep_area_downsample_u8(s, sb, 10, 16, INT64_MAX / 2, 3, 4, 4, o, ob), EP_ERR_BAD_STRIDE);
  CHECK_EQ(ep_area_downsample_u8(s, sb, 1 << 21, 16, 48, 3, 4, 4, o, ob), EP_ERR_BAD_SHAPE);
  // Exactly sized buffers with a stride wider than the row: valid, and read within bounds.
  std::vector<uint8_t> tight(9 * 48 + 48);
  CHECK_EQ(ep_area_downsample_u8(tight.data(), (int64_t)tight.size(), 10, 16, 48, 3, 4, 4, o, ob),
           EP_OK);
  std::vector<uint8_t> strided(9 * 50 + 48);
  CHECK_EQ(ep_area_downsample_u8(strided.data(), (int64_t)strided.size(), 10, 16, 50, 3, 4, 4, o,
                                 ob), EP_OK);
  CHECK_EQ(ep_area_downsample_u8(strided.data(), (int64_t)strided.size(), 10, 16, 50, 3, 3, 5, o,
                                 ob), EP_OK);
}

static void roi_cases() {
  std::vector<uint8_t> src(8 * 8 * 3);
  std::vector<float> m(9 * 3, 0.f), out(3 * 3 * 5 * 5);
  for (int k = 0; k < 3; ++k) m[9 * k] = m[9 * k + 4] = m[9 * k + 8] = 1.f;
  const uint8_t* s = src.data();
  const int64_t sb = (int64_t)src.size(), ob = (int64_t)out.size() * 4;
  float* o = out.data();
  CHECK_EQ(ep_roi_warp_normalise(s, sb, 8, 8, 24, 3, m.data(), 3, 3, 5, 5, kOne, kZero, kOne, 0.f,
                                 EP_OUT_F32, o, ob), EP_OK);
  CHECK_EQ(ep_roi_warp_normalise(s, sb, 8, 8, 24, 3, m.data(), 3, 2, 5, 5, kOne, kZero, kOne, 0.f,
                                 EP_OUT_F32, o, ob), EP_ERR_TOO_MANY_ROIS);
  CHECK_EQ(ep_roi_warp_normalise(s, sb, 8, 8, 24, 3, m.data(), 3, 0, 5, 5, kOne, kZero, kOne, 0.f,
                                 EP_OUT_F32, o, ob), EP_ERR_BAD_ARGUMENT);
  CHECK_EQ(ep_roi_warp_normalise(s, sb, 8, 8, 24, 3, m.data(), -1, 3, 5, 5, kOne, kZero, kOne,
                                 0.f, EP_OUT_F32, o, ob), EP_ERR_BAD_ARGUMENT);
  CHECK_EQ(ep_roi_warp_normalise(s, sb, 8, 8, 24, 3, nullptr, 3, 3, 5, 5, kOne, kZero, kOne, 0.f,
                                 EP_OUT_F32, o, ob), EP_ERR_NULL_POINTER);
  CHECK_EQ(ep_roi_warp_normalise(s, sb, 8, 8, 24, 3, m.data(), 3, 3, 5, 5, nullptr, kZero, kOne,
                                 0.f, EP_OUT_F32, o, ob), EP_ERR_NULL_POINTER);
  CHECK_EQ(ep_roi_warp_normalise(s, sb, 8, 8, 24, 3, m.data(), 3, 3, 5, 5, kOne, kZero, kOne, 0.f,
                                 EP_OUT_F32, o, ob - 4), EP_ERR_BAD_SHAPE);
  CHECK_EQ(ep_roi_warp_normalise(s, sb, 8, 8, 24, 3, m.data(), 3, 3, 5, 5, kOne, kZero, kOne, 0.f,
                                 7, o, ob), EP_ERR_BAD_ARGUMENT);
  CHECK_EQ(ep_roi_warp_normalise(s, sb, 8, 8, 24, 3, m.data(), 3, 3, 5, 5, kOne, kZero, kOne, NAN,
                                 EP_OUT_F32, o, ob), EP_ERR_BAD_ARGUMENT);
  CHECK_EQ(ep_roi_warp_normalise(s, sb, 8, 8, 20, 3, m.data(), 3, 3, 5, 5, kOne, kZero, kOne, 0.f,
                                 EP_OUT_F32, o, ob), EP_ERR_BAD_STRIDE);
  const float zero_std[3] = {1.f, 0.f, 1.f};
  CHECK_EQ(ep_roi_warp_normalise(s, sb, 8, 8, 24, 3, m.data(), 3, 3, 5, 5, kOne, kZero, zero_std,
                                 0.f, EP_OUT_F32, o, ob), EP_ERR_BAD_ARGUMENT);
  m[4] = INFINITY;
  CHECK_EQ(ep_roi_warp_normalise(s, sb, 8, 8, 24, 3, m.data(), 3, 3, 5, 5, kOne, kZero, kOne, 0.f,
                                 EP_OUT_F32, o, ob), EP_ERR_BAD_ARGUMENT);
  // Half output needs half the bytes: an exactly sized buffer passes.
  std::vector<uint16_t> half(3 * 3 * 5 * 5);
  m[4] = 1.f;
  CHECK_EQ(ep_roi_warp_normalise(s, sb, 8, 8, 24, 3, m.data(), 3, 3, 5, 5, kOne, kZero, kOne, 0.f,
                                 EP_OUT_F16, half.data(), (int64_t)half.size() * 2), EP_OK);
}

static void mask_cases() {
  std::vector<float> prob(6 * 7, 0.9f);
  std::vector<int32_t> boxes(5 * 2), labels(6 * 7);
  std::vector<uint8_t> eroded(6 * 7);
  int32_t n = 0;
  const float* p = prob.data();
  int32_t* b = boxes.data();
  CHECK_EQ(ep_mask_components(p, 42, 6, 7, 7, 0.5f, 1, EP_ERODE_DISK, 2, b, &n, eroded.data(),
                              labels.data(), 42), EP_OK);
  CHECK_EQ(n, 1);
  CHECK_EQ(ep_mask_components(nullptr, 42, 6, 7, 7, 0.5f, 1, 0, 2, b, &n, nullptr, nullptr, 0),
           EP_ERR_NULL_POINTER);
  CHECK_EQ(ep_mask_components(p, 42, 6, 7, 7, 0.5f, 1, 0, 2, b, nullptr, nullptr, nullptr, 0),
           EP_ERR_NULL_POINTER);
  CHECK_EQ(ep_mask_components(p, 42, 6, 7, 7, 0.5f, 1, 0, 2, nullptr, &n, nullptr, nullptr, 0),
           EP_ERR_NULL_POINTER);
  CHECK_EQ(ep_mask_components(p, 42, 0, 7, 7, 0.5f, 1, 0, 2, b, &n, nullptr, nullptr, 0),
           EP_ERR_BAD_SHAPE);
  CHECK_EQ(ep_mask_components(p, 41, 6, 7, 7, 0.5f, 1, 0, 2, b, &n, nullptr, nullptr, 0),
           EP_ERR_BAD_SHAPE);
  CHECK_EQ(ep_mask_components(p, 42, 6, 7, 6, 0.5f, 1, 0, 2, b, &n, nullptr, nullptr, 0),
           EP_ERR_BAD_STRIDE);
  CHECK_EQ(ep_mask_components(p, 42, 6, 7, 7, NAN, 1, 0, 2, b, &n, nullptr, nullptr, 0),
           EP_ERR_BAD_ARGUMENT);
  CHECK_EQ(ep_mask_components(p, 42, 6, 7, 7, 0.5f, -1, 0, 2, b, &n, nullptr, nullptr, 0),
           EP_ERR_BAD_ARGUMENT);
  CHECK_EQ(ep_mask_components(p, 42, 6, 7, 7, 0.5f, 1, 2, 2, b, &n, nullptr, nullptr, 0),
           EP_ERR_BAD_ARGUMENT);
  CHECK_EQ(ep_mask_components(p, 42, 6, 7, 7, 0.5f, 1, 0, 2, b, &n, nullptr, labels.data(), 41),
           EP_ERR_BAD_SHAPE);
  CHECK_EQ(ep_mask_components(p, 42, 1 << 16, 1 << 16, 1 << 16, 0.5f, 1, 0, 2, b, &n, nullptr,
                              nullptr, 0), EP_ERR_BAD_SHAPE);
  // max_boxes = 0 only counts.
  CHECK_EQ(ep_mask_components(p, 42, 6, 7, 7, 0.5f, 0, 0, 0, nullptr, &n, nullptr, nullptr, 0),
           EP_OK);
  CHECK_EQ(n, 1);
}

static void panorama_cases() {
  std::vector<uint8_t> src(5 * 9);
  std::vector<float> out(1 * 3 * (4 + 2 * 3));
  const int64_t ob = (int64_t)out.size() * 4;
  CHECK_EQ(ep_panorama_input(src.data(), 45, 5, 9, 9, 1, 3, 4, 3, kOne, kZero, kOne, out.data(),
                             ob), EP_OK);
  CHECK_EQ(ep_panorama_input(src.data(), 45, 5, 9, 9, 1, 3, 4, 4, kOne, kZero, kOne, out.data(),
                             ob), EP_ERR_BAD_SHAPE);
  CHECK_EQ(ep_panorama_input(src.data(), 45, 5, 9, 9, 1, 3, 4, -1, kOne, kZero, kOne, out.data(),
                             ob), EP_ERR_BAD_ARGUMENT);
  CHECK_EQ(ep_panorama_input(src.data(), 45, 5, 9, 9, 1, 3, 4, 3, kOne, nullptr, kOne, out.data(),
                             ob), EP_ERR_NULL_POINTER);
  CHECK_EQ(ep_panorama_input(src.data(), 44, 5, 9, 9, 1, 3, 4, 3, kOne, kZero, kOne, out.data(),
                             ob), EP_ERR_BAD_SHAPE);
  CHECK_EQ(ep_panorama_input(src.data(), 45, 5, 9, 9, 1, 3, 0, 3, kOne, kZero, kOne, out.data(),
                             ob), EP_ERR_BAD_SHAPE);
  // Upsampling is allowed here (cv2 INTER_LINEAR semantics hold both ways).
  std::vector<float> big(1 * 10 * 20);
  CHECK_EQ(ep_panorama_input(src.data(), 45, 5, 9, 9, 1, 10, 20, 0, kOne, kZero, kOne, big.data(),
                             (int64_t)big.size() * 4), EP_OK);
}

int main() {
  area_cases();
  roi_cases();
  mask_cases();
  panorama_cases();
  TEST_MAIN_END("test_bad_input");
}

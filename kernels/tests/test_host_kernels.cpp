// Known-value tests of the host library (pytest compares it with numpy/OpenCV at scale).
#include <math.h>
#include <string.h>

#include <vector>

#include "check.h"
#include "edgeperc/half.h"
#include "edgeperc/kernels.h"
#include "edgeperc/mask.h"

static const float kOne[4] = {1.f, 1.f, 1.f, 1.f}, kZero[4] = {0.f, 0.f, 0.f, 0.f};

static void test_area() {
  // 2x2 factor rounds (sum + 2) >> 2 like OpenCV's fast path: 1+2+3+4 = 10 -> 3 (not 2).
  const uint8_t a[4] = {1, 2, 3, 4};
  uint8_t o = 0;
  CHECK_EQ(ep_area_downsample_u8(a, 4, 2, 2, 2, 1, 1, 1, &o, 1), EP_OK);
  CHECK_EQ(o, 3);
  // Factor 2 on one axis only goes through sum * 0.5f with round-half-even: 1+2 = 3 -> 2.
  const uint8_t b[2] = {1, 2};
  CHECK_EQ(ep_area_downsample_u8(b, 2, 1, 2, 2, 1, 1, 1, &o, 1), EP_OK);
  CHECK_EQ(o, 2);
  // 5 -> 2 columns (scale 2.5): weights .4 .4 .2 | .2 .4 .4.
  const uint8_t row[5] = {10, 20, 30, 40, 50};
  uint8_t two[2] = {0, 0};
  CHECK_EQ(ep_area_downsample_u8(row, 5, 1, 5, 5, 1, 1, 2, two, 2), EP_OK);
  CHECK_EQ(two[0], 18);
  CHECK_EQ(two[1], 42);
  // A constant RGB frame stays constant at any ratio, strided rows included.
  std::vector<uint8_t> frame(7 * 40, 0);
  for (int y = 0; y < 7; ++y)
    for (int x = 0; x < 11; ++x) {
      frame[y * 40 + 3 * x] = 9, frame[y * 40 + 3 * x + 1] = 99, frame[y * 40 + 3 * x + 2] = 255;
    }
  uint8_t out[3 * 3 * 4];
  CHECK_EQ(ep_area_downsample_u8(frame.data(), (int64_t)frame.size(), 7, 11, 40, 3, 3, 4, out,
                                 sizeof out), EP_OK);
  for (int i = 0; i < 12; ++i) {
    CHECK_EQ(out[3 * i], 9);
    CHECK_EQ(out[3 * i + 1], 99);
    CHECK_EQ(out[3 * i + 2], 255);
  }
}

static void test_roi() {
  const uint8_t img[2 * 3] = {0, 10, 20, 30, 40, 50};  // 2x3 gray
  const float identity[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  const float scale[1] = {0.5f}, mean[1] = {1.f}, std_[1] = {2.f};
  float out[6];
  CHECK_EQ(ep_roi_warp_normalise(img, 6, 2, 3, 3, 1, identity, 1, 4, 2, 3, scale, mean, std_, 0.f,
                                 EP_OUT_F32, out, sizeof out), EP_OK);
  for (int i = 0; i < 6; ++i) CHECK(out[i] == (img[i] * 0.5f - 1.f) * 0.5f);
  // Half a pixel right: the mean of neighbours; the last column blends with the pad value.
  const float shift[9] = {1, 0, 0.5f, 0, 1, 0, 0, 0, 1};
  CHECK_EQ(ep_roi_warp_normalise(img, 6, 2, 3, 3, 1, shift, 1, 1, 2, 3, kOne, kZero, kOne, 100.f,
                                 EP_OUT_F32, out, sizeof out), EP_OK);
  CHECK(out[0] == 5.f && out[1] == 15.f && out[2] == 60.f);
  // Entirely off the frame, and a degenerate (w = 0) matrix: every value is the pad.
  const float away[18] = {1, 0, 1e6f, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  float two[12];
  CHECK_EQ(ep_roi_warp_normalise(img, 6, 2, 3, 3, 1, away, 2, 2, 2, 3, kOne, kZero, kOne, 7.f,
                                 EP_OUT_F32, two, sizeof two), EP_OK);
  for (int i = 0; i < 12; ++i) CHECK(two[i] == 7.f);
  uint16_t half[6];
  CHECK_EQ(ep_roi_warp_normalise(img, 6, 2, 3, 3, 1, identity, 1, 1, 2, 3, kOne, kZero, kOne, 0.f,
                                 EP_OUT_F16, half, sizeof half), EP_OK);
  CHECK_EQ(half[1], 0x4900);  // 10.0
  CHECK_EQ(ep_roi_warp_normalise(img, 6, 2, 3, 3, 1, identity, 0, 1, 2, 3, kOne, kZero, kOne, 0.f,
                                 EP_OUT_F32, nullptr, 0), EP_OK);  // no RoIs: nothing to do
}

static void test_half() {
  CHECK_EQ(ep_float_to_half_bits(1.f), 0x3c00);
  CHECK_EQ(ep_float_to_half_bits(-2.f), 0xc000);
  CHECK_EQ(ep_float_to_half_bits(65504.f), 0x7bff);
  CHECK_EQ(ep_float_to_half_bits(65520.f), 0x7c00);
  CHECK_EQ(ep_float_to_half_bits(ldexpf(1.f, -24)), 0x0001);
  CHECK_EQ(ep_float_to_half_bits(ldexpf(1.f, -25)), 0x0000);  // tie to even
  CHECK_EQ(ep_float_to_half_bits(1e-8f), 0x0000);
  CHECK_EQ(ep_float_to_half_bits(NAN) & 0x7e00, 0x7e00);
  CHECK_EQ(ep_float_to_half_bits(1.f + ldexpf(1.f, -11)), 0x3c00);  // tie to even
}

static void test_mask() {
  // cv2.getStructuringElement(MORPH_ELLIPSE, (5, 5)): rows 0 and 4 are a single pixel.
  CHECK_EQ(ep_disk_half_width(2, -2), 0);
  CHECK_EQ(ep_disk_half_width(2, -1), 2);
  CHECK_EQ(ep_disk_half_width(2, 0), 2);
  CHECK_EQ(ep_disk_half_width(0, 0), 0);
  // Two blobs touching diagonally are one 8-connected component; the third stands alone.
  const int h = 5, w = 8;
  const char* rows[h] = {"11......", "11......", "..1...1.", "......11", "........"};
  std::vector<float> prob(h * w);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) prob[y * w + x] = rows[y][x] == '1' ? 0.9f : 0.1f;
  int32_t boxes[4 * 5], n = -1, labels[h * w];
  uint8_t eroded[h * w];
  CHECK_EQ(ep_mask_components(prob.data(), h * w, h, w, w, 0.5f, 0, EP_ERODE_DISK, 4, boxes, &n,
                              eroded, labels, h * w), EP_OK);
  CHECK_EQ(n, 2);
  const int32_t want[2][5] = {{0, 0, 3, 3, 5}, {6, 2, 8, 4, 3}};
  CHECK(memcmp(boxes, want, sizeof want) == 0);
  CHECK_EQ(labels[0], 1);
  CHECK_EQ(labels[2 * w + 6], 2);
  CHECK_EQ(labels[4 * w], 0);
  // max_boxes = 1: the count is still 2, only one box is written.
  int32_t one[5] = {-1, -1, -1, -1, -1};
  CHECK_EQ(ep_mask_components(prob.data(), h * w, h, w, w, 0.5f, 0, EP_ERODE_DISK, 1, one, &n,
                              nullptr, nullptr, 0), EP_OK);
  CHECK_EQ(n, 2);
  CHECK(memcmp(one, want[0], sizeof one) == 0);
  // A 5x5 square eroded by radius 1 leaves its 3x3 core; the frame border counts as foreground.
  std::vector<float> sq(9 * 9, 0.f);
  for (int y = 2; y < 7; ++y)
    for (int x = 2; x < 7; ++x) sq[y * 9 + x] = 1.f;
  CHECK_EQ(ep_mask_components(sq.data(), 81, 9, 9, 9, 0.5f, 1, EP_ERODE_SQUARE, 4, boxes, &n,
                              nullptr, nullptr, 0), EP_OK);
  CHECK_EQ(n, 1);
  const int32_t core[5] = {3, 3, 6, 6, 9};
  CHECK(memcmp(boxes, core, sizeof core) == 0);
  std::vector<float> full(4 * 4, 1.f);
  CHECK_EQ(ep_mask_components(full.data(), 16, 4, 4, 4, 0.5f, 3, EP_ERODE_DISK, 4, boxes, &n,
                              nullptr, nullptr, 0), EP_OK);
  CHECK_EQ(n, 1);
  CHECK_EQ(boxes[4], 16);
}

static void test_panorama() {
  const uint8_t img[4] = {0, 1, 2, 3};  // 1x4 gray, same size out: columns wrap by 2
  float out[8];
  CHECK_EQ(ep_panorama_input(img, 4, 1, 4, 4, 1, 1, 4, 2, kOne, kZero, kOne, out, sizeof out),
           EP_OK);
  const float want[8] = {2, 3, 0, 1, 2, 3, 0, 1};
  for (int i = 0; i < 8; ++i) CHECK(out[i] == want[i]);
  // 1x4 -> 1x2: cv2 INTER_LINEAR takes the mean of each pair at exactly 2x.
  float two[2];
  CHECK_EQ(ep_panorama_input(img, 4, 1, 4, 4, 1, 1, 2, 0, kOne, kZero, kOne, two, sizeof two),
           EP_OK);
  CHECK(two[0] == 0.5f && two[1] == 2.5f);
}

int main() {
  CHECK_EQ(ep_abi_version(), EP_ABI_VERSION);
  CHECK(strcmp(ep_status_name(EP_ERR_TOO_MANY_ROIS), "too many rois") == 0);
  test_area();
  test_roi();
  test_half();
  test_mask();
  test_panorama();
  TEST_MAIN_END("test_host_kernels");
}

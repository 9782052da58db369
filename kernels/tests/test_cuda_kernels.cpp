// CUDA library: argument checks run without a GPU; with one, every kernel must reproduce the
// host library bit for bit on pseudo-random inputs. Exit 77 (ctest: skipped) when no GPU.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <vector>

#include "check.h"
#include "edgeperc/kernels.h"
#include "edgeperc/mask.h"

static const float kScale[3] = {1.f / 255, 1.f / 255, 1.f / 255};
static const float kMean[3] = {0.485f, 0.456f, 0.406f}, kStd[3] = {0.229f, 0.224f, 0.225f};

static std::vector<uint8_t> noise(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = (uint8_t)((seed = seed * 1664525u + 1013904223u) >> 24);
  return v;
}

static void bad_input_without_device() {
  std::vector<uint8_t> src(16 * 16), out(4 * 4);
  CHECK_EQ(ep_cuda_area_downsample_u8_host(nullptr, 256, 16, 16, 16, 1, 4, 4, out.data(), 16),
           EP_ERR_NULL_POINTER);
  CHECK_EQ(ep_cuda_area_downsample_u8_host(src.data(), 256, 16, 16, 15, 1, 4, 4, out.data(), 16),
           EP_ERR_BAD_STRIDE);
  const float m[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  std::vector<float> roi(4 * 4);
  CHECK_EQ(ep_cuda_roi_warp_normalise_host(src.data(), 256, 16, 16, 16, 1, m, 2, 1, 4, 4, kScale,
                                           kMean, kStd, 0.f, EP_OUT_F32, roi.data(), 64),
           EP_ERR_TOO_MANY_ROIS);
  int32_t n = 0;
  std::vector<float> prob(16);
  CHECK_EQ(ep_cuda_mask_components_host(prob.data(), 16, 4, 4, 4, 0.5f, 1, 7, 0, nullptr, &n,
                                        nullptr, nullptr, 0), EP_ERR_BAD_ARGUMENT);
  CHECK_EQ(ep_cuda_mask_workspace_bytes(0, 4), -1);
}

static void compare_with_host() {
  const int h = 333, w = 517, c = 3;
  const std::vector<uint8_t> frame = noise((size_t)h * w * c, 1);
  for (int pass = 0; pass < 2; ++pass) {  // general ratio, then an exact factor
    const int oh = pass ? 111 : 64, ow = pass ? 47 : 100;
    std::vector<uint8_t> a(oh * ow * c), b(oh * ow * c);
    CHECK_EQ(ep_area_downsample_u8(frame.data(), frame.size(), h, w, w * c, c, oh, ow, a.data(),
                                   a.size()), EP_OK);
    CHECK_EQ(ep_cuda_area_downsample_u8_host(frame.data(), frame.size(), h, w, w * c, c, oh, ow,
                                             b.data(), b.size()), EP_OK);
    CHECK(a == b);
    CHECK_EQ(ep_cuda_area_downsample_u8_zero_copy(frame.data(), frame.size(), h, w, w * c, c, oh,
                                                  ow, b.data(), b.size()), EP_OK);
    CHECK(a == b);
  }
  const float m[18] = {0.7f, 0.2f, -20.f, -0.1f, 0.9f, 30.f, 1e-4f, -2e-4f, 1.f,
                       2.f, 0.f, 300.f, 0.f, 2.f, 100.f, 0.f, 0.f, 1.f};
  for (int dtype = 0; dtype < 2; ++dtype) {
    const size_t n = 2 * c * 96 * 80 * (dtype ? 2 : 4);
    std::vector<uint8_t> a(n), b(n);
    CHECK_EQ(ep_roi_warp_normalise(frame.data(), frame.size(), h, w, w * c, c, m, 2, 16, 96, 80,
                                   kScale, kMean, kStd, 114.f, dtype, a.data(), n), EP_OK);
    CHECK_EQ(ep_cuda_roi_warp_normalise_host(frame.data(), frame.size(), h, w, w * c, c, m, 2, 16,
                                             96, 80, kScale, kMean, kStd, 114.f, dtype, b.data(),
                                             n), EP_OK);
    CHECK(a == b);
  }
  std::vector<float> prob((size_t)h * w);
  for (size_t i = 0; i < prob.size(); ++i) prob[i] = frame[3 * i] / 255.f * (frame[3 * i + 1] > 60);
  for (int shape = 0; shape < 2; ++shape) {
    std::vector<int32_t> ba(5 * 4096), bb(5 * 4096), la(h * w), lb(h * w);
    int32_t na = -1, nb = -2;
    CHECK_EQ(ep_mask_components(prob.data(), prob.size(), h, w, w, 0.3f, 1, shape, 4096, ba.data(),
                                &na, nullptr, la.data(), h * w), EP_OK);
    CHECK_EQ(ep_cuda_mask_components_host(prob.data(), prob.size(), h, w, w, 0.3f, 1, shape, 4096,
                                          bb.data(), &nb, nullptr, lb.data(), h * w), EP_OK);
    CHECK_EQ(na, nb);
    CHECK(ba == bb);
    CHECK(la == lb);
  }
  const size_t pn = (size_t)c * 128 * (256 + 2 * 16);
  std::vector<float> pa(pn), pb(pn);
  CHECK_EQ(ep_panorama_input(frame.data(), frame.size(), h, w, w * c, c, 128, 256, 16, kScale,
                             kMean, kStd, pa.data(), pn * 4), EP_OK);
  CHECK_EQ(ep_cuda_panorama_input_host(frame.data(), frame.size(), h, w, w * c, c, 128, 256, 16,
                                       kScale, kMean, kStd, pb.data(), pn * 4), EP_OK);
  CHECK(memcmp(pa.data(), pb.data(), pn * 4) == 0);
}

int main() {
  bad_input_without_device();
  int32_t count = 0;
  if (ep_cuda_device_count(&count) != EP_OK) {
    printf("test_cuda_kernels: argument checks %s; no GPU (%s): device comparisons skipped\n",
           g_failures ? "FAILED" : "ok", ep_cuda_last_error());
    return g_failures ? 1 : 77;
  }
  compare_with_host();
  TEST_MAIN_END("test_cuda_kernels");
}

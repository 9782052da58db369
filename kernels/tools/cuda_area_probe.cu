// Repro of a device-only defect found on an H100 (CUDA 13.0, driver 580, sm_90) on 2026-11-22:
// the general-ratio area kernel (same per-element code as the host build, which matches cv2
// bit for bit) gives wrong values on the GPU. Constant-100 image 37x53 -> 10x7: the first output
// row comes out ~68 instead of 100 here; through libedgeperc_kernels_cuda.so the whole output was 0
// (status EP_OK), and kernels/tests/test_cuda_kernels fails 21 checks (roi_warp, mask_components,
// panorama after the first mismatch). The spans (ep_area_span) compute identically on device and
// host, so the divergence is inside ep_area_pixel / the kernel. Integer factors (area_fast) match.
//   nvcc -arch=sm_90 --fmad=false -std=c++17 -I kernels/include kernels/tools/cuda_area_probe.cu -o probe && ./probe
#include <cuda_runtime.h>

#include <cstdio>
#include <vector>

#include "edgeperc/area.h"

__global__ void area_kernel(const uint8_t* src, int32_t h, int32_t w, int64_t stride, int32_t c,
                            int32_t out_h, int32_t out_w, uint8_t* out) {
  const double scale_x = ep_area_scale(w, out_w), scale_y = ep_area_scale(h, out_h);
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (int64_t)out_h * out_w * c;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int32_t ch = (int32_t)(i % c), ox = (int32_t)((i / c) % out_w);
    const int32_t oy = (int32_t)(i / c / out_w);
    out[i] = ep_area_pixel(src, stride, c, ep_area_span(ox, w, scale_x), ep_area_span(oy, h, scale_y), ch);
  }
}

int main() {
  const int h = 37, w = 53, oh = 10, ow = 7;
  std::vector<uint8_t> img(h * w, 100), dev(oh * ow, 7), host(oh * ow);
  uint8_t *d_src, *d_out;
  cudaMalloc(&d_src, h * w);
  cudaMalloc(&d_out, oh * ow);
  cudaMemcpy(d_src, img.data(), h * w, cudaMemcpyHostToDevice);
  area_kernel<<<1, 256>>>(d_src, h, w, w, 1, oh, ow, d_out);
  printf("launch: %s, sync: %s\n", cudaGetErrorString(cudaGetLastError()), cudaGetErrorString(cudaDeviceSynchronize()));
  cudaMemcpy(dev.data(), d_out, oh * ow, cudaMemcpyDeviceToHost);
  int bad = 0;
  for (int i = 0; i < oh * ow; ++i) {
    const int oy = i / ow, ox = i % ow;
    host[i] = ep_area_pixel(img.data(), w, 1, ep_area_span(ox, w, ep_area_scale(w, ow)),
                            ep_area_span(oy, h, ep_area_scale(h, oh)), 0);
    bad += host[i] != dev[i];
  }
  printf("device row 0: ");
  for (int x = 0; x < ow; ++x) printf("%d ", dev[x]);
  printf("\nhost row 0:   ");
  for (int x = 0; x < ow; ++x) printf("%d ", host[x]);
  printf("\n%d of %d outputs differ\n", bad, oh * ow);
  return bad ? 1 : 0;
}

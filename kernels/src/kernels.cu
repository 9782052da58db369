// CUDA launches of the kernels; the per-pixel arithmetic is the EP_HD code the host loops call.
// Built with --fmad=false so that the device rounds like the host build (bit-exact outputs).
//
// Mask labelling is union-find (Playne & Hawick 2018 style: merge with atomicMin, then
// compress), not label propagation: propagation needs as many sweeps as the longest path through
// a component (hundreds for a 400 px barcode), union-find a fixed five launches whatever the
// shapes. Boxes come from an atomic min/max reduction into per-component slots, numbered in
// raster order of each component's first pixel (its root), so the host gets final boxes.
#include <cuda_runtime.h>
#include <stdio.h>

#include "edgeperc/area.h"
#include "edgeperc/half.h"
#include "edgeperc/mask.h"
#include "edgeperc/panorama.h"
#include "edgeperc/roi_batch.h"
#include "validate.h"

namespace {

thread_local char g_error[512] = "";

int32_t cuda_fail(cudaError_t err, const char* what) {
  snprintf(g_error, sizeof g_error, "%s: %s (%s = %d)", what, cudaGetErrorString(err),
           cudaGetErrorName(err), (int)err);
  return err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver ? EP_ERR_NO_DEVICE
                                                                        : EP_ERR_CUDA;
}

#define EP_CUDA(call)                                   \
  do {                                                  \
    const cudaError_t err_ = (call);                    \
    if (err_ != cudaSuccess) return cuda_fail(err_, #call); \
  } while (0)

#define EP_STATUS(call)                  \
  do {                                   \
    const int32_t st_ = (call);          \
    if (st_ != EP_OK) return st_;        \
  } while (0)

constexpr int kThreads = 256;

unsigned grid_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return (unsigned)(blocks < (1 << 20) ? (blocks > 0 ? blocks : 1) : (1 << 20));
}

#define EP_GRID_STRIDE(i, n)                                                     \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (int64_t)gridDim.x * blockDim.x)

// ---- kernels ------------------------------------------------------------------------------
__global__ void area_fast_kernel(const uint8_t* src, int64_t stride, int32_t c, int32_t fx,
                                 int32_t fy, int32_t out_h, int32_t out_w, uint8_t* out) {
  EP_GRID_STRIDE(i, (int64_t)out_h * out_w * c) {
    const int32_t ch = (int32_t)(i % c), ox = (int32_t)((i / c) % out_w);
    const int32_t oy = (int32_t)(i / c / out_w);
    out[i] = ep_area_fast_pixel(src, stride, c, fx, fy, ox, oy, ch);
  }
}

__global__ void area_kernel(const uint8_t* src, int32_t h, int32_t w, int64_t stride, int32_t c,
                            int32_t out_h, int32_t out_w, uint8_t* out) {
  const double scale_x = ep_area_scale(w, out_w), scale_y = ep_area_scale(h, out_h);
  EP_GRID_STRIDE(i, (int64_t)out_h * out_w * c) {
    const int32_t ch = (int32_t)(i % c), ox = (int32_t)((i / c) % out_w);
    const int32_t oy = (int32_t)(i / c / out_w);
    out[i] = ep_area_pixel(src, stride, c, ep_area_span(ox, w, scale_x),
                           ep_area_span(oy, h, scale_y), ch);
  }
}

// One thread per output pixel (n, oy, ox), all channels: the projection is computed once and
// each channel plane is written coalesced across the warp.
template <int kDtype>
__global__ void roi_kernel(const uint8_t* src, int32_t h, int32_t w, int64_t stride, int32_t c,
                           const float* matrices, int32_t n_rois, int32_t out_h, int32_t out_w,
                           EpNorm norm, float pad, void* out) {
  const int64_t plane = (int64_t)out_h * out_w;
  EP_GRID_STRIDE(i, plane * n_rois) {
    const int64_t n = i / plane, p = i - n * plane;
    const int32_t oy = (int32_t)(p / out_w), ox = (int32_t)(p - (int64_t)oy * out_w);
    float vals[EP_MAX_CHANNELS];
    ep_roi_output_pixel(src, h, w, stride, c, matrices + 9 * n, ox, oy, norm, pad, vals);
    const int64_t base = n * c * plane + p;
    for (int32_t k = 0; k < c; ++k) {
      if (kDtype == EP_OUT_F16)
        static_cast<uint16_t*>(out)[base + k * plane] = ep_float_to_half_bits(vals[k]);
      else
        static_cast<float*>(out)[base + k * plane] = vals[k];
    }
  }
}

__global__ void panorama_kernel(const uint8_t* src, int32_t h, int32_t w, int64_t stride,
                                int32_t c, int32_t out_h, int32_t out_w, int32_t pad_cols,
                                EpNorm norm, float* out) {
  const int64_t padded = ep_panorama_width(out_w, pad_cols);
  EP_GRID_STRIDE(i, (int64_t)c * out_h * padded) {
    const int32_t j = (int32_t)(i % padded), oy = (int32_t)((i / padded) % out_h);
    const int32_t ch = (int32_t)(i / padded / out_h);
    const float v = ep_resize_linear_pixel(src, h, w, stride, c, out_h, out_w,
                                           ep_wrap_column(j, pad_cols, out_w), oy, ch);
    out[i] = ep_normalise(v, norm.scale[ch], norm.mean[ch], norm.inv_std[ch]);
  }
}

__global__ void mask_threshold_kernel(const float* prob, int64_t stride, int32_t h, int32_t w,
                                      float threshold, uint8_t* bin) {
  EP_GRID_STRIDE(i, (int64_t)h * w) {
    bin[i] = ep_threshold(prob[(i / w) * stride + i % w], threshold);
  }
}

__global__ void mask_erode_kernel(const uint8_t* bin, int32_t h, int32_t w, int32_t r,
                                  int32_t shape, uint8_t* fg, int32_t* parent, uint8_t* eroded) {
  EP_GRID_STRIDE(i, (int64_t)h * w) {
    const uint8_t e = ep_erode_pixel(bin, h, w, (int32_t)(i % w), (int32_t)(i / w), r, shape);
    fg[i] = e;
    parent[i] = e ? (int32_t)i : -1;
    if (eroded) eroded[i] = e;
  }
}

__global__ void mask_merge_kernel(const uint8_t* fg, int32_t* parent, int32_t h, int32_t w) {
  EP_GRID_STRIDE(i, (int64_t)h * w) {
    ep_merge_pixel(fg, parent, h, w, (int32_t)(i % w), (int32_t)(i / w));
  }
}

__global__ void mask_compress_kernel(const uint8_t* fg, int32_t* parent, int32_t hw) {
  EP_GRID_STRIDE(i, hw) {
    if (fg[i]) parent[i] = ep_uf_find(parent, (int32_t)i);
  }
}

__global__ void mask_row_roots_kernel(const int32_t* parent, int32_t h, int32_t w,
                                      int32_t* row_count) {
  EP_GRID_STRIDE(y, h) {
    int32_t n = 0;
    for (int32_t x = 0; x < w; ++x) n += parent[y * w + x] == y * w + x;
    row_count[y] = n;
  }
}

// One block: exclusive scan of the per-row root counts (rows in chunks, one chunk a thread).
__global__ void mask_scan_kernel(const int32_t* row_count, int32_t h, int32_t* row_off,
                                 int32_t* total) {
  __shared__ int32_t part[1024];
  const int32_t t = threadIdx.x, chunk = (h + 1023) / 1024;
  const int32_t begin = t * chunk < h ? t * chunk : h;
  const int32_t end = begin + chunk < h ? begin + chunk : h;
  int32_t s = 0;
  for (int32_t r = begin; r < end; ++r) s += row_count[r];
  part[t] = s;
  __syncthreads();
  for (int32_t off = 1; off < 1024; off <<= 1) {
    const int32_t v = t >= off ? part[t - off] : 0;
    __syncthreads();
    part[t] += v;
    __syncthreads();
  }
  int32_t run = t ? part[t - 1] : 0;
  for (int32_t r = begin; r < end; ++r) {
    row_off[r] = run;
    run += row_count[r];
  }
  if (t == 1023) *total = part[1023];
}

__global__ void mask_emit_kernel(const int32_t* parent, int32_t h, int32_t w,
                                 const int32_t* row_off, int32_t* ids, int32_t max_boxes,
                                 int32_t* boxes) {
  EP_GRID_STRIDE(y, h) {
    int32_t k = row_off[y];
    for (int32_t x = 0; x < w; ++x) {
      const int32_t i = (int32_t)y * w + x;
      if (parent[i] != i) continue;
      ids[i] = k;
      if (k < max_boxes) {
        int32_t* b = boxes + 5 * (int64_t)k;
        b[0] = x, b[1] = (int32_t)y, b[2] = x + 1, b[3] = (int32_t)y + 1, b[4] = 0;
      }
      ++k;
    }
  }
}

__global__ void mask_stats_kernel(const int32_t* parent, int32_t h, int32_t w, const int32_t* ids,
                                  int32_t max_boxes, int32_t* boxes, int32_t* labels) {
  EP_GRID_STRIDE(i, (int64_t)h * w) {
    const int32_t root = parent[i];
    if (root < 0) {
      if (labels) labels[i] = 0;
      continue;
    }
    const int32_t k = ids[root];
    if (labels) labels[i] = k + 1;
    if (k < max_boxes) {
      int32_t* b = boxes + 5 * (int64_t)k;
      const int32_t x = (int32_t)(i % w), y = (int32_t)(i / w);
      atomicMin(&b[0], x);
      atomicMax(&b[2], x + 1);
      atomicMax(&b[3], y + 1);
      atomicAdd(&b[4], 1);
    }
  }
}

// 16-byte loads, byte sums with __vsadu4, one atomic per warp: close to a pure read.
__global__ void sum_bytes_kernel(const uint8_t* src, int64_t bytes, unsigned long long* out) {
  const int64_t vecs = bytes / 16;
  const uint4* v = reinterpret_cast<const uint4*>(src);
  unsigned long long s = 0;
  EP_GRID_STRIDE(i, vecs) {
    const uint4 q = v[i];
    s += __vsadu4(q.x, 0) + __vsadu4(q.y, 0) + __vsadu4(q.z, 0) + __vsadu4(q.w, 0);
  }
  if (blockIdx.x == 0 && threadIdx.x == 0)
    for (int64_t i = vecs * 16; i < bytes; ++i) s += src[i];
  for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(0xffffffffu, s, off);
  if ((threadIdx.x & 31) == 0) atomicAdd(out, s);
}

// ---- workspace and buffers -----------------------------------------------------------------
int64_t align_up(int64_t n) { return (n + 255) & ~int64_t(255); }

struct MaskWorkspace {
  uint8_t *bin, *fg;
  int32_t *parent, *ids, *row_count, *row_off, *total;
};

int64_t mask_workspace_bytes(int32_t h, int32_t w) {
  const int64_t hw = (int64_t)h * w;
  return 2 * align_up(hw) + 2 * align_up(4 * hw) + align_up(4LL * h) + align_up(4LL * (h + 1)) +
         align_up(4);
}

MaskWorkspace split_workspace(void* ws, int32_t h, int32_t w) {
  const int64_t hw = (int64_t)h * w;
  uint8_t* p = static_cast<uint8_t*>(ws);
  MaskWorkspace m;
  m.bin = p, p += align_up(hw);
  m.fg = p, p += align_up(hw);
  m.parent = reinterpret_cast<int32_t*>(p), p += align_up(4 * hw);
  m.ids = reinterpret_cast<int32_t*>(p), p += align_up(4 * hw);
  m.row_count = reinterpret_cast<int32_t*>(p), p += align_up(4LL * h);
  m.row_off = reinterpret_cast<int32_t*>(p), p += align_up(4LL * (h + 1));
  m.total = reinterpret_cast<int32_t*>(p);
  return m;
}

// Device allocation freed on every return path.
struct DeviceBuffer {
  void* ptr = nullptr;
  ~DeviceBuffer() {
    if (ptr) cudaFree(ptr);
  }
  cudaError_t alloc(int64_t bytes) { return cudaMalloc(&ptr, bytes > 0 ? (size_t)bytes : 1); }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr);
  }
};

// Host frame (strided) -> dense device copy; returns its row stride.
int32_t upload_frame(const uint8_t* src, int32_t h, int32_t w, int64_t stride, int32_t c,
                     DeviceBuffer* buf) {
  const int64_t row = (int64_t)w * c;
  EP_CUDA(buf->alloc(row * h));
  EP_CUDA(cudaMemcpy2D(buf->ptr, (size_t)row, src, (size_t)stride, (size_t)row, (size_t)h,
                       cudaMemcpyHostToDevice));
  return EP_OK;
}

int32_t launch_status(const char* what) {
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? EP_OK : cuda_fail(err, what);
}

}  // namespace

// ---- C ABI: device pointers --------------------------------------------------------------------
extern "C" {

EP_API const char* ep_cuda_last_error(void) { return g_error; }

EP_API int32_t ep_cuda_device_count(int32_t* count) {
  if (!count) return EP_ERR_NULL_POINTER;
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  *count = err == cudaSuccess ? n : 0;
  if (err != cudaSuccess) {
    cuda_fail(err, "cudaGetDeviceCount");
    return EP_ERR_NO_DEVICE;
  }
  if (n == 0) {
    snprintf(g_error, sizeof g_error, "cudaGetDeviceCount: 0 devices");
    return EP_ERR_NO_DEVICE;
  }
  return EP_OK;
}

EP_API int32_t ep_cuda_area_downsample_u8(const uint8_t* src, int64_t src_bytes, int32_t height,
                                          int32_t width, int64_t row_stride, int32_t channels,
                                          int32_t out_h, int32_t out_w, uint8_t* out,
                                          int64_t out_bytes, void* stream) {
  EP_STATUS(ep::check_area(src, src_bytes, height, width, row_stride, channels, out_h, out_w, out,
                           out_bytes));
  const int32_t fx = ep_area_int_factor(width, out_w), fy = ep_area_int_factor(height, out_h);
  const int64_t n = (int64_t)out_h * out_w * channels;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (fx && fy)
    area_fast_kernel<<<grid_for(n), kThreads, 0, s>>>(src, row_stride, channels, fx, fy, out_h,
                                                      out_w, out);
  else
    area_kernel<<<grid_for(n), kThreads, 0, s>>>(src, height, width, row_stride, channels, out_h,
                                                 out_w, out);
  return launch_status("area_downsample launch");
}

EP_API int32_t ep_cuda_roi_warp_normalise(const uint8_t* src, int64_t src_bytes, int32_t height,
                                          int32_t width, int64_t row_stride, int32_t channels,
                                          const float* matrices, int32_t n_rois, int32_t max_rois,
                                          int32_t out_h, int32_t out_w, const float* scale,
                                          const float* mean, const float* std, float pad,
                                          int32_t out_dtype, void* out, int64_t out_bytes,
                                          void* stream) {
  EP_STATUS(ep::check_roi(src, src_bytes, height, width, row_stride, channels, matrices, n_rois,
                          max_rois, out_h, out_w, pad, out_dtype, out, out_bytes));
  EpNorm norm;
  EP_STATUS(ep::make_norm(scale, mean, std, channels, &norm));
  if (n_rois == 0) return EP_OK;
  const int64_t pixels = (int64_t)n_rois * out_h * out_w;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (out_dtype == EP_OUT_F16)
    roi_kernel<EP_OUT_F16><<<grid_for(pixels), kThreads, 0, s>>>(
        src, height, width, row_stride, channels, matrices, n_rois, out_h, out_w, norm, pad, out);
  else
    roi_kernel<EP_OUT_F32><<<grid_for(pixels), kThreads, 0, s>>>(
        src, height, width, row_stride, channels, matrices, n_rois, out_h, out_w, norm, pad, out);
  return launch_status("roi_warp_normalise launch");
}

EP_API int64_t ep_cuda_mask_workspace_bytes(int32_t height, int32_t width) {
  if (height <= 0 || width <= 0 || (int64_t)height * width > INT32_MAX - 1) return -1;
  return mask_workspace_bytes(height, width);
}

EP_API int32_t ep_cuda_mask_components(const float* prob, int64_t prob_elems, int32_t height,
                                       int32_t width, int64_t row_stride, float threshold,
                                       int32_t erode_px, int32_t shape, int32_t max_boxes,
                                       int32_t* boxes, int32_t* n_components, uint8_t* eroded,
                                       int32_t* labels, int64_t aux_elems, void* workspace,
                                       int64_t workspace_bytes, void* stream) {
  EP_STATUS(ep::check_mask(prob, prob_elems, height, width, row_stride, threshold, erode_px, shape,
                           max_boxes, boxes, n_components, eroded, labels, aux_elems));
  if (!workspace) return EP_ERR_NULL_POINTER;
  if (workspace_bytes < mask_workspace_bytes(height, width)) return EP_ERR_BAD_SHAPE;
  const MaskWorkspace m = split_workspace(workspace, height, width);
  const int32_t hw = height * width;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const unsigned g = grid_for(hw), gr = grid_for(height);
  mask_threshold_kernel<<<g, kThreads, 0, s>>>(prob, row_stride, height, width, threshold, m.bin);
  mask_erode_kernel<<<g, kThreads, 0, s>>>(m.bin, height, width, erode_px, shape, m.fg, m.parent,
                                           eroded);
  mask_merge_kernel<<<g, kThreads, 0, s>>>(m.fg, m.parent, height, width);
  mask_compress_kernel<<<g, kThreads, 0, s>>>(m.fg, m.parent, hw);
  mask_row_roots_kernel<<<gr, kThreads, 0, s>>>(m.parent, height, width, m.row_count);
  mask_scan_kernel<<<1, 1024, 0, s>>>(m.row_count, height, m.row_off, n_components);
  mask_emit_kernel<<<gr, kThreads, 0, s>>>(m.parent, height, width, m.row_off, m.ids, max_boxes,
                                           boxes);
  mask_stats_kernel<<<g, kThreads, 0, s>>>(m.parent, height, width, m.ids, max_boxes, boxes,
                                           labels);
  return launch_status("mask_components launch");
}

EP_API int32_t ep_cuda_panorama_input(const uint8_t* src, int64_t src_bytes, int32_t height,
                                      int32_t width, int64_t row_stride, int32_t channels,
                                      int32_t out_h, int32_t out_w, int32_t pad_cols,
                                      const float* scale, const float* mean, const float* std,
                                      float* out, int64_t out_bytes, void* stream) {
  EP_STATUS(ep::check_panorama(src, src_bytes, height, width, row_stride, channels, out_h, out_w,
                               pad_cols, out, out_bytes));
  EpNorm norm;
  EP_STATUS(ep::make_norm(scale, mean, std, channels, &norm));
  const int64_t n = (int64_t)channels * out_h * ep_panorama_width(out_w, pad_cols);
  panorama_kernel<<<grid_for(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      src, height, width, row_stride, channels, out_h, out_w, pad_cols, norm, out);
  return launch_status("panorama_input launch");
}

EP_API int32_t ep_cuda_malloc(void** ptr, int64_t bytes) {
  if (!ptr) return EP_ERR_NULL_POINTER;
  if (bytes <= 0) return EP_ERR_BAD_SHAPE;
  EP_CUDA(cudaMalloc(ptr, (size_t)bytes));
  return EP_OK;
}

EP_API int32_t ep_cuda_free(void* ptr) {
  EP_CUDA(cudaFree(ptr));
  return EP_OK;
}

EP_API int32_t ep_cuda_memcpy(void* dst, const void* src, int64_t bytes, int32_t kind) {
  if (!dst || !src) return EP_ERR_NULL_POINTER;
  if (bytes < 0) return EP_ERR_BAD_SHAPE;
  if (kind < 1 || kind > 3) return EP_ERR_BAD_ARGUMENT;
  EP_CUDA(cudaMemcpy(dst, src, (size_t)bytes, static_cast<cudaMemcpyKind>(kind)));
  return EP_OK;
}

EP_API int32_t ep_cuda_synchronize(void) {
  EP_CUDA(cudaDeviceSynchronize());
  return EP_OK;
}

EP_API int32_t ep_cuda_device_name(char* buf, int32_t size) {
  if (!buf) return EP_ERR_NULL_POINTER;
  if (size <= 0) return EP_ERR_BAD_SHAPE;
  int dev = 0;
  cudaDeviceProp prop;
  EP_CUDA(cudaGetDevice(&dev));
  EP_CUDA(cudaGetDeviceProperties(&prop, dev));
  snprintf(buf, (size_t)size, "%s (sm_%d%d, %d SMs, %.1f GiB)", prop.name, prop.major, prop.minor,
           prop.multiProcessorCount, prop.totalGlobalMem / 1073741824.0);
  return EP_OK;
}

EP_API int32_t ep_cuda_sum_bytes(const uint8_t* src, int64_t bytes, unsigned long long* out,
                                 void* stream) {
  if (!src || !out) return EP_ERR_NULL_POINTER;
  if (bytes <= 0) return EP_ERR_BAD_SHAPE;
  if (reinterpret_cast<uintptr_t>(src) % 16) return EP_ERR_BAD_ARGUMENT;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  EP_CUDA(cudaMemsetAsync(out, 0, sizeof *out, s));
  const unsigned blocks = grid_for(bytes / 16 + 1);  // capped: fewer atomics, still saturating
  sum_bytes_kernel<<<blocks < 2048 ? blocks : 2048, kThreads, 0, s>>>(src, bytes, out);
  return launch_status("sum_bytes launch");
}

// ---- C ABI: host pointers (copy in, launch, copy out) -----------------------------------------
EP_API int32_t ep_cuda_area_downsample_u8_host(const uint8_t* src, int64_t src_bytes,
                                               int32_t height, int32_t width, int64_t row_stride,
                                               int32_t channels, int32_t out_h, int32_t out_w,
                                               uint8_t* out, int64_t out_bytes) {
  EP_STATUS(ep::check_area(src, src_bytes, height, width, row_stride, channels, out_h, out_w, out,
                           out_bytes));
  DeviceBuffer d_src, d_out;
  EP_STATUS(upload_frame(src, height, width, row_stride, channels, &d_src));
  const int64_t n = (int64_t)out_h * out_w * channels;
  EP_CUDA(d_out.alloc(n));
  const int64_t dense = (int64_t)width * channels;
  EP_STATUS(ep_cuda_area_downsample_u8(d_src.as<uint8_t>(), dense * height, height, width, dense,
                                       channels, out_h, out_w, d_out.as<uint8_t>(), n, nullptr));
  EP_CUDA(cudaMemcpy(out, d_out.ptr, (size_t)n, cudaMemcpyDeviceToHost));
  return EP_OK;
}

EP_API int32_t ep_cuda_area_downsample_u8_zero_copy(const uint8_t* src, int64_t src_bytes,
                                                    int32_t height, int32_t width,
                                                    int64_t row_stride, int32_t channels,
                                                    int32_t out_h, int32_t out_w, uint8_t* out,
                                                    int64_t out_bytes) {
  EP_STATUS(ep::check_area(src, src_bytes, height, width, row_stride, channels, out_h, out_w, out,
                           out_bytes));
  const int64_t span = (int64_t)(height - 1) * row_stride + (int64_t)width * channels;
  void* host = const_cast<uint8_t*>(src);
  // Read-only registration is optional (a device attribute); retry without it where refused.
  if (cudaHostRegister(host, (size_t)span, cudaHostRegisterMapped | cudaHostRegisterReadOnly) !=
      cudaSuccess) {
    cudaGetLastError();
    EP_CUDA(cudaHostRegister(host, (size_t)span, cudaHostRegisterMapped));
  }
  void* mapped = nullptr;
  DeviceBuffer d_out;
  int32_t st = EP_OK;
  const int64_t n = (int64_t)out_h * out_w * channels;
  cudaError_t err = cudaHostGetDevicePointer(&mapped, host, 0);
  if (err == cudaSuccess) err = d_out.alloc(n);
  if (err == cudaSuccess) {
    st = ep_cuda_area_downsample_u8(static_cast<const uint8_t*>(mapped), span, height, width,
                                    row_stride, channels, out_h, out_w, d_out.as<uint8_t>(), n,
                                    nullptr);
    if (st == EP_OK) err = cudaMemcpy(out, d_out.ptr, (size_t)n, cudaMemcpyDeviceToHost);
  }
  cudaHostUnregister(host);
  if (err != cudaSuccess) return cuda_fail(err, "zero-copy area downsample");
  return st;
}

EP_API int32_t ep_cuda_roi_warp_normalise_host(const uint8_t* src, int64_t src_bytes,
                                               int32_t height, int32_t width, int64_t row_stride,
                                               int32_t channels, const float* matrices,
                                               int32_t n_rois, int32_t max_rois, int32_t out_h,
                                               int32_t out_w, const float* scale,
                                               const float* mean, const float* std, float pad,
                                               int32_t out_dtype, void* out, int64_t out_bytes) {
  EP_STATUS(ep::check_roi(src, src_bytes, height, width, row_stride, channels, matrices, n_rois,
                          max_rois, out_h, out_w, pad, out_dtype, out, out_bytes));
  EpNorm norm;
  EP_STATUS(ep::make_norm(scale, mean, std, channels, &norm));
  if (n_rois == 0) return EP_OK;
  EP_STATUS(ep::check_matrices_finite(matrices, n_rois));
  DeviceBuffer d_src, d_m, d_out;
  EP_STATUS(upload_frame(src, height, width, row_stride, channels, &d_src));
  EP_CUDA(d_m.alloc(36LL * n_rois));
  EP_CUDA(cudaMemcpy(d_m.ptr, matrices, 36ULL * n_rois, cudaMemcpyHostToDevice));
  const int64_t bytes = ep::roi_out_bytes(n_rois, channels, out_h, out_w, out_dtype);
  EP_CUDA(d_out.alloc(bytes));
  const int64_t dense = (int64_t)width * channels;
  EP_STATUS(ep_cuda_roi_warp_normalise(d_src.as<uint8_t>(), dense * height, height, width, dense,
                                       channels, d_m.as<float>(), n_rois, max_rois, out_h, out_w,
                                       scale, mean, std, pad, out_dtype, d_out.ptr, bytes,
                                       nullptr));
  EP_CUDA(cudaMemcpy(out, d_out.ptr, (size_t)bytes, cudaMemcpyDeviceToHost));
  return EP_OK;
}

EP_API int32_t ep_cuda_mask_components_host(const float* prob, int64_t prob_elems,
                                            int32_t height, int32_t width, int64_t row_stride,
                                            float threshold, int32_t erode_px, int32_t shape,
                                            int32_t max_boxes, int32_t* boxes,
                                            int32_t* n_components, uint8_t* eroded,
                                            int32_t* labels, int64_t aux_elems) {
  EP_STATUS(ep::check_mask(prob, prob_elems, height, width, row_stride, threshold, erode_px, shape,
                           max_boxes, boxes, n_components, eroded, labels, aux_elems));
  const int64_t hw = (int64_t)height * width, ws_bytes = mask_workspace_bytes(height, width);
  DeviceBuffer d_prob, d_ws, d_boxes, d_n, d_eroded, d_labels;
  EP_CUDA(d_prob.alloc(4 * hw));
  EP_CUDA(cudaMemcpy2D(d_prob.ptr, 4 * (size_t)width, prob, 4 * (size_t)row_stride,
                       4 * (size_t)width, (size_t)height, cudaMemcpyHostToDevice));
  EP_CUDA(d_ws.alloc(ws_bytes));
  EP_CUDA(d_boxes.alloc(20LL * max_boxes));
  EP_CUDA(d_n.alloc(4));
  if (eroded) EP_CUDA(d_eroded.alloc(hw));
  if (labels) EP_CUDA(d_labels.alloc(4 * hw));
  EP_STATUS(ep_cuda_mask_components(d_prob.as<float>(), hw, height, width, width, threshold,
                                    erode_px, shape, max_boxes, d_boxes.as<int32_t>(),
                                    d_n.as<int32_t>(), d_eroded.as<uint8_t>(),
                                    d_labels.as<int32_t>(), hw, d_ws.ptr, ws_bytes, nullptr));
  int32_t total = 0;
  EP_CUDA(cudaMemcpy(&total, d_n.ptr, 4, cudaMemcpyDeviceToHost));
  const int32_t kept = total < max_boxes ? total : max_boxes;
  if (kept > 0) EP_CUDA(cudaMemcpy(boxes, d_boxes.ptr, 20ULL * kept, cudaMemcpyDeviceToHost));
  if (eroded) EP_CUDA(cudaMemcpy(eroded, d_eroded.ptr, (size_t)hw, cudaMemcpyDeviceToHost));
  if (labels) EP_CUDA(cudaMemcpy(labels, d_labels.ptr, 4 * (size_t)hw, cudaMemcpyDeviceToHost));
  *n_components = total;
  return EP_OK;
}

EP_API int32_t ep_cuda_panorama_input_host(const uint8_t* src, int64_t src_bytes, int32_t height,
                                           int32_t width, int64_t row_stride, int32_t channels,
                                           int32_t out_h, int32_t out_w, int32_t pad_cols,
                                           const float* scale, const float* mean,
                                           const float* std, float* out, int64_t out_bytes) {
  EP_STATUS(ep::check_panorama(src, src_bytes, height, width, row_stride, channels, out_h, out_w,
                               pad_cols, out, out_bytes));
  EpNorm norm;
  EP_STATUS(ep::make_norm(scale, mean, std, channels, &norm));
  DeviceBuffer d_src, d_out;
  EP_STATUS(upload_frame(src, height, width, row_stride, channels, &d_src));
  const int64_t bytes = 4LL * channels * out_h * ep_panorama_width(out_w, pad_cols);
  EP_CUDA(d_out.alloc(bytes));
  const int64_t dense = (int64_t)width * channels;
  EP_STATUS(ep_cuda_panorama_input(d_src.as<uint8_t>(), dense * height, height, width, dense,
                                   channels, out_h, out_w, pad_cols, scale, mean, std,
                                   d_out.as<float>(), bytes, nullptr));
  EP_CUDA(cudaMemcpy(out, d_out.ptr, (size_t)bytes, cudaMemcpyDeviceToHost));
  return EP_OK;
}

}  // extern "C"

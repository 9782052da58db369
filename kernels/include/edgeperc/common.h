// Shared by the host build (C++ compiler) and the CUDA build (nvcc): per-element arithmetic is
// written once as EP_HD inline functions; CUDA kernels and host loops both call them.
#pragma once
#include <stdint.h>

#if defined(__CUDACC__)
#define EP_HD __host__ __device__ __forceinline__
#else
#define EP_HD inline
#endif

// Status codes of the C ABI (0 = ok); Python turns each into a named exception.
enum EpStatus {
  EP_OK = 0,
  EP_ERR_NULL_POINTER = 1,
  EP_ERR_BAD_SHAPE = 2,
  EP_ERR_BAD_STRIDE = 3,
  EP_ERR_TOO_MANY_ROIS = 4,
  EP_ERR_BAD_ARGUMENT = 5,
  EP_ERR_CUDA = 6,
  EP_ERR_NO_DEVICE = 7,
};

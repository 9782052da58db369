// ABI version and status names, shared by both libraries.
#include "edgeperc/kernels.h"

extern "C" {

EP_API int32_t ep_abi_version(void) { return EP_ABI_VERSION; }

EP_API const char* ep_status_name(int32_t status) {
  switch (status) {
    case EP_OK: return "ok";
    case EP_ERR_NULL_POINTER: return "null pointer";
    case EP_ERR_BAD_SHAPE: return "bad shape";
    case EP_ERR_BAD_STRIDE: return "bad stride";
    case EP_ERR_TOO_MANY_ROIS: return "too many rois";
    case EP_ERR_BAD_ARGUMENT: return "bad argument";
    case EP_ERR_CUDA: return "cuda error";
    case EP_ERR_NO_DEVICE: return "no cuda device";
    default: return "unknown status";
  }
}

}  // extern "C"

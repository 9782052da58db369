// float -> IEEE half bits with round-to-nearest-even, written out so that the host build, the
// CUDA build and numpy's astype(float16) agree bit for bit (no dependence on cuda_fp16.h).
#pragma once
#include <string.h>

#include "edgeperc/common.h"

EP_HD uint32_t ep_float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
#endif
}

EP_HD uint16_t ep_float_to_half_bits(float f) {
  const uint32_t x = ep_float_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return (uint16_t)(sign | (ax > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  // >= 65520 rounds to inf
  uint32_t h, rem, halfway;
  if (ax < 0x38800000u) {                                     // below 2^-14: subnormal or zero
    if (ax < 0x33000000u) return (uint16_t)sign;              // below 2^-25: zero
    const uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u, shift = 126u - e;
    h = m >> shift;
    rem = m & ((1u << shift) - 1u);
    halfway = 1u << (shift - 1u);
  } else {
    h = ((((ax >> 23) - 112u) << 10) | ((ax & 0x7fffffu) >> 13));
    rem = ax & 0x1fffu;
    halfway = 0x1000u;
  }
  if (rem > halfway || (rem == halfway && (h & 1u))) ++h;
  return (uint16_t)(sign | h);
}

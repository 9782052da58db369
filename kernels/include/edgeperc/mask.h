// Mask post-processing, per pixel: threshold, erosion by a disk (OpenCV MORPH_ELLIPSE) or a
// square, and the union-find steps of 8-connected labelling. The host loop runs the union-find
// sequentially; the CUDA kernels run the same find/union with atomicMin (Playne & Hawick style),
// where a component's root is its smallest linear index, i.e. its first pixel in raster order.
#pragma once
#include <math.h>

#include "edgeperc/common.h"

enum EpErodeShape { EP_ERODE_DISK = 0, EP_ERODE_SQUARE = 1 };

// Half-width of row dy of cv2.getStructuringElement(MORPH_ELLIPSE, (2r+1, 2r+1)): same double
// arithmetic and round-half-even as OpenCV, so the disk matches it pixel for pixel.
EP_HD int32_t ep_disk_half_width(int32_t r, int32_t dy) {
  if (dy < -r || dy > r) return -1;
  const double inv_r2 = r ? 1.0 / ((double)r * r) : 0.0;
  const int32_t dx = (int32_t)rint((double)r * sqrt((double)(r * r - dy * dy) * inv_r2));
  return dx < r ? dx : r;
}

// NaN compares false: a NaN probability is background.
EP_HD uint8_t ep_threshold(float p, float threshold) { return p > threshold ? 1 : 0; }

// Eroded value of (x, y) on a dense (h, w) 0/1 mask. Pixels outside the image count as
// foreground (cv2.erode's default border), so objects cut by the frame edge keep that side.
EP_HD uint8_t ep_erode_pixel(const uint8_t* bin, int32_t h, int32_t w, int32_t x, int32_t y,
                             int32_t r, int32_t shape) {
  if (!bin[(int64_t)y * w + x]) return 0;
  for (int32_t dy = -r; dy <= r; ++dy) {
    const int32_t yy = y + dy;
    if (yy < 0 || yy >= h) continue;
    const int32_t hw = shape == EP_ERODE_SQUARE ? r : ep_disk_half_width(r, dy);
    const uint8_t* row = bin + (int64_t)yy * w;
    const int32_t x0 = x - hw < 0 ? 0 : x - hw, x1 = x + hw >= w ? w - 1 : x + hw;
    for (int32_t xx = x0; xx <= x1; ++xx)
      if (!row[xx]) return 0;
  }
  return 1;
}

EP_HD int32_t ep_atomic_min_i32(int32_t* p, int32_t v) {
#if defined(__CUDA_ARCH__)
  return atomicMin(p, v);
#else
  const int32_t old = *p;
  if (v < old) *p = v;
  return old;
#endif
}

EP_HD int32_t ep_uf_find(const int32_t* parent_, int32_t a) {
#if defined(__CUDA_ARCH__)
  const volatile int32_t* parent = parent_;  // other threads relink roots while we walk
#else
  const int32_t* parent = parent_;
#endif
  int32_t p = parent[a];
  while (p != a) {
    a = p;
    p = parent[a];
  }
  return a;
}

// Link the trees of a and b under the smaller root; retried when another thread moved a root.
EP_HD void ep_uf_union(int32_t* parent, int32_t a, int32_t b) {
  for (;;) {
    a = ep_uf_find(parent, a);
    b = ep_uf_find(parent, b);
    if (a == b) return;
    if (a < b) {
      const int32_t t = a;
      a = b;
      b = t;
    }
    const int32_t old = ep_atomic_min_i32(&parent[a], b);  // a > b: hang a under b
    if (old == a) return;
    a = old;
  }
}

// Union pixel i = (x, y) with its already-visited 8-neighbours (W, NW, N, NE): enough for
// 8-connectivity, since every neighbour pair is visited from one of its two ends.
EP_HD void ep_merge_pixel(const uint8_t* fg, int32_t* parent, int32_t h, int32_t w, int32_t x,
                          int32_t y) {
  (void)h;
  const int32_t i = y * w + x;
  if (!fg[i]) return;
  if (x > 0 && fg[i - 1]) ep_uf_union(parent, i, i - 1);
  if (y > 0) {
    const int32_t up = i - w;
    if (x > 0 && fg[up - 1]) ep_uf_union(parent, i, up - 1);
    if (fg[up]) ep_uf_union(parent, i, up);
    if (x + 1 < w && fg[up + 1]) ep_uf_union(parent, i, up + 1);
  }
}

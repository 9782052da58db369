// Host loop of the mask post-processing: threshold, erosion, union-find labelling (sequential
// here, the same find/union as the CUDA kernels), boxes in raster order of first pixels.
#include <vector>

#include "edgeperc/mask.h"
#include "validate.h"

extern "C" EP_API int32_t ep_mask_components(const float* prob, int64_t prob_elems, int32_t height,
                                             int32_t width, int64_t row_stride, float threshold,
                                             int32_t erode_px, int32_t shape, int32_t max_boxes,
                                             int32_t* boxes, int32_t* n_components,
                                             uint8_t* eroded, int32_t* labels,
                                             int64_t aux_elems) {
  const int32_t st = ep::check_mask(prob, prob_elems, height, width, row_stride, threshold,
                                    erode_px, shape, max_boxes, boxes, n_components, eroded,
                                    labels, aux_elems);
  if (st != EP_OK) return st;
  const int32_t hw = height * width;
  std::vector<uint8_t> bin(hw), fg(hw);
  for (int32_t y = 0; y < height; ++y)
    for (int32_t x = 0; x < width; ++x)
      bin[y * width + x] = ep_threshold(prob[(int64_t)y * row_stride + x], threshold);
  std::vector<int32_t> parent(hw), ids(hw, -1);
  for (int32_t y = 0; y < height; ++y)
    for (int32_t x = 0; x < width; ++x) {
      const int32_t i = y * width + x;
      fg[i] = ep_erode_pixel(bin.data(), height, width, x, y, erode_px, shape);
      parent[i] = fg[i] ? i : -1;
    }
  for (int32_t y = 0; y < height; ++y)
    for (int32_t x = 0; x < width; ++x) ep_merge_pixel(fg.data(), parent.data(), height, width, x, y);
  // A root is its component's smallest index, so raster order meets it before its other pixels.
  int32_t total = 0;
  for (int32_t y = 0; y < height; ++y)
    for (int32_t x = 0; x < width; ++x) {
      const int32_t i = y * width + x;
      if (eroded) eroded[i] = fg[i];
      if (!fg[i]) {
        if (labels) labels[i] = 0;
        continue;
      }
      const int32_t root = ep_uf_find(parent.data(), i);
      parent[i] = root;
      if (root == i) {
        ids[i] = total;
        if (total < max_boxes) {
          int32_t* b = boxes + 5 * (int64_t)total;
          b[0] = x, b[1] = y, b[2] = x + 1, b[3] = y + 1, b[4] = 0;
        }
        ++total;
      }
      const int32_t k = ids[root];
      if (labels) labels[i] = k + 1;
      if (k < max_boxes) {
        int32_t* b = boxes + 5 * (int64_t)k;
        if (x < b[0]) b[0] = x;
        if (x + 1 > b[2]) b[2] = x + 1;
        b[3] = y + 1;
        b[4] += 1;
      }
    }
  *n_components = total;
  return EP_OK;
}

#pragma once
// A view of a device tensor: pointer, dtype, shape and strides in the logical order [B, H, S, D].
// Any strides with a unit innermost one: BHSD and BSHD are both just strides; nothing is copied.
#include <cstdint>

#include "codegen/key.h"

namespace vecattn {

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::bf16;
  int64_t shape[4] = {0, 0, 0, 0};    // B, H, S, D
  int64_t stride[4] = {0, 0, 0, 0};   // in elements

  // Contiguous memory laid out [B, H, S, D].
  static Tensor bhsd(void* data, DType dtype, int64_t b, int64_t h, int64_t s, int64_t d) {
    return Tensor{data, dtype, {b, h, s, d}, {h * s * d, s * d, d, 1}};
  }
  // Contiguous memory laid out [B, S, H, D] (what a fused QKV projection usually yields).
  static Tensor bshd(void* data, DType dtype, int64_t b, int64_t s, int64_t h, int64_t d) {
    return Tensor{data, dtype, {b, h, s, d}, {s * h * d, d, h * d, 1}};
  }

  int64_t batch() const { return shape[0]; }
  int64_t heads() const { return shape[1]; }
  int64_t seq_len() const { return shape[2]; }
  int64_t head_dim() const { return shape[3]; }
};

}  // namespace vecattn

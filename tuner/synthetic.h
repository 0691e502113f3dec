#pragma once
// Synthetic attention inputs with a vertical-vector pattern (docs/semantics.md §0): q rows share a mean
// direction and a fraction of key columns point along it, so every query block sees the same few
// strong columns. The fraction sets the selection density, which drives the attention cost.
#include <cuda.h>

#include <cstdint>
#include <random>
#include <vector>

#include "runtime/tensor.h"

namespace vecattn::tuner {

// Device memory for one [B, H, S, D] tensor (BHSD), freed with the object.
class DeviceTensor {
 public:
  DeviceTensor(int64_t b, int64_t h, int64_t s, int64_t d, DType t);
  ~DeviceTensor();
  DeviceTensor(const DeviceTensor&) = delete;
  DeviceTensor& operator=(const DeviceTensor&) = delete;

  const Tensor& view() const { return view_; }
  size_t bytes() const { return bytes_; }

  // Rows of noise (about N(0, 1)) plus weight * dir on a `fraction` of the rows. The host makes
  // one pool of rows and copies it around with a rotating offset: filling tens of GiB row by row
  // would take minutes, and the pattern, not the exact values, is what matters.
  void fill(std::mt19937_64& rng, const std::vector<float>& dir, double fraction, float weight);
  std::vector<uint16_t> download() const;
  // Host bits in [B, H, S, D] order (what a .npy file holds), element count checked.
  void upload(const std::vector<uint16_t>& bits);

 private:
  CUdeviceptr ptr_ = 0;
  size_t bytes_ = 0;
  Tensor view_;
};

// q, k, v and an output of one shape, filled with the pattern (or, with pattern false, plain
// noise: no shared direction, no strong columns).
struct AttentionInputs {
  AttentionInputs(int64_t batch, int64_t q_heads, int64_t kv_heads, int64_t seq_len, int64_t head_dim, DType t,
                  double strong_fraction, std::mt19937_64& rng, bool pattern = true);
  DeviceTensor q, k, v, out;
};

}  // namespace vecattn::tuner

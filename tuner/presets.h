#pragma once
// The keys users need, as presets: `vlm` (VLM prefill, causal) and `dit` (video DiT, non-causal).
#include <string>
#include <vector>

#include "codegen/key.h"

namespace vecattn::tuner {

struct KeyGrid {
  std::vector<int> pq{64, 128};
  std::vector<int> bk{16, 32, 64};
  std::vector<int> gk{1, 2, 4, 8, 16, 32, 64};
  std::vector<int> head_dim{128};
  std::vector<DType> dtype{DType::bf16, DType::fp16};
  std::vector<bool> causal{true};
  std::vector<KernelKind> kernels{KernelKind::pool, KernelKind::select, KernelKind::sparse_attn, KernelKind::dense_attn};
};

// Throws Error(invalid_argument) for an unknown name.
KeyGrid preset(const std::string& name);

// Every key the grid needs for an arch: select and sparse_attn per (pq, bk, gk, d, dtype, causal),
// pool per (pq, d, dtype), dense_attn per (d, dtype, causal); illegal combinations left out.
std::vector<KernelKey> grid_keys(const KeyGrid& grid, const std::string& arch);

}  // namespace vecattn::tuner

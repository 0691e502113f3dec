#pragma once
// CPU reference of docs/semantics.md §2-§6 (select, attend, statistics) in fp64, the yardstick every GPU
// kernel is compared against. All tensors are host floats already rounded to the dtype, in
// logical contiguous [B, H, S, D] order; q has Hq heads, k and v have Hkv heads.
#include <cstdint>
#include <vector>

#include "codegen/key.h"

namespace vecattn::ref {

struct Problem {
  int64_t B = 1, Hq = 1, Hkv = 1, S = 1, D = 64;  // q head h reads kv head h / (Hq / Hkv)
  DType dtype = DType::bf16;
  int pq = 64, bk = 16, gk = 16;
  bool causal = true;
  std::vector<float> thresholds;  // one per q head, each in (0, 1]
  int64_t dense_prefix = 0;       // rows [0, dense_prefix) attend densely

  int64_t nq() const { return (S + pq - 1) / pq; }
  int64_t words() const { return (S + 63) / 64; }  // mask words per query block
  int64_t kv_head(int64_t h) const { return h / (Hq / Hkv); }
  // Throws std::invalid_argument naming the first inconsistent field.
  void check() const;
};

// Pooled q rounded to the dtype: [B, Hq, nq, D] (docs/semantics.md §2).
std::vector<float> pooled_q(const Problem& p, const std::vector<float>& q);

struct SelectResult {
  // [B, Hq, nq, W], W = ceil(S / 64): bit j % 64 of word j / 64 set iff key j is selected.
  std::vector<uint64_t> mask;
  // [B, Hq, nq, S]: s(i, j) + gap - m_t (>= 0 means selected) for candidate keys, NaN otherwise.
  std::vector<float> margin;
};
// docs/semantics.md §3-§4, scores accumulated in double.
SelectResult select(const Problem& p, const std::vector<float>& q, const std::vector<float>& k);

// Keys row r of (b, h) attends to under `mask` (docs/semantics.md §5.1, dense_prefix included), ascending.
std::vector<int64_t> attended(const Problem& p, const std::vector<uint64_t>& mask, int64_t b, int64_t h, int64_t r);

// fp64 attention over the sets `mask` gives (layout of SelectResult::mask): [B, Hq, S, D].
// A row with an empty set outputs zeros.
std::vector<double> attend(const Problem& p, const std::vector<float>& q, const std::vector<float>& k,
                           const std::vector<float>& v, const std::vector<uint64_t>& mask);

// fp64 dense attention (causal per p.causal): [B, Hq, S, D].
std::vector<double> dense(const Problem& p, const std::vector<float>& q, const std::vector<float>& k,
                          const std::vector<float>& v);

struct Stats {
  std::vector<double> density_per_head;  // [Hq]: mean over batches and rows of |set| / |visible|
  double sparsity = 0;                   // 1 - mean density over every row of every head and batch
};
Stats stats(const Problem& p, const std::vector<uint64_t>& mask);

// Full-attention probability mass (fp64 softmax over every visible key) that row r of (b, h)
// puts on its attended set.
double recall(const Problem& p, const std::vector<float>& q, const std::vector<float>& k,
              const std::vector<uint64_t>& mask, int64_t b, int64_t h, int64_t r);

}  // namespace vecattn::ref

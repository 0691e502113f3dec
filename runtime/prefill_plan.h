#pragma once
// The host side of a prefill, before anything touches a GPU: every argument checked (each bad
// input a typed error naming it and what is allowed) and the sizes derived from them.
#include <cstdint>
#include <vector>

#include "runtime/runtime.h"

namespace vecattn {

struct PrefillPlan {
  int64_t batch = 0, q_heads = 0, kv_heads = 0, seq_len = 0, head_dim = 0;
  DType dtype = DType::bf16;
  int pq = 0, bk = 0, gk = 0;
  bool causal = false;
  int64_t pooled = 0;           // nq = ceil(S / pq)
  int64_t words = 0;            // mask words per pooled row = ceil(S / 64)
  std::vector<float> gaps;      // -ln(threshold) per q head
  int64_t dense_prefix = 0;     // clamped to S

  int64_t units() const { return batch * q_heads; }          // independent (batch, head) pairs
  int64_t pooled_bytes_per_unit() const { return pooled * head_dim * 2; }
  int64_t mask_bytes_per_unit() const { return pooled * words * 8; }
  int64_t count_bytes_per_unit() const { return pooled * 4; }
  // A chunk of n units lays out [pooled q | mask | counts], each part 256-byte aligned.
  int64_t chunk_bytes(int64_t n) const;
};

// Validates q, k, v, out and params for a prefill (v and out may be null for select only).
// Throws Error(invalid_argument) or Error(unsupported).
PrefillPlan plan_prefill(const Tensor& q, const Tensor& k, const Tensor* v, const Tensor* out,
                         const PrefillParams& params);

// Validates a dense attention call.
void check_dense(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out);

// Default cap on the prefill workspace: 2.5 GiB, or $VECATTN_WORKSPACE_MB.
size_t workspace_budget_bytes();

}  // namespace vecattn

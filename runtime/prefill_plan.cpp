#include "runtime/prefill_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "codegen/error.h"
#include "runtime/validate.h"
#include "templates/params.h"

namespace vecattn {
namespace {

[[noreturn]] void bad(const std::string& m) { throw Error(Status::invalid_argument, m); }
[[noreturn]] void unsupported(const std::string& m) { throw Error(Status::unsupported, m); }

constexpr int64_t kAlign = 256;
int64_t align_up(int64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

bool is_pow2(int v) { return v > 0 && (v & (v - 1)) == 0; }

// k and v share [B, Hkv, S, D]; q shares B, S, D and has Hq heads.
void check_qkv(const Tensor& q, const Tensor& k, const Tensor* v, const Tensor* out) {
  check_tensor(q, "q");
  check_tensor(k, "k");
  check_same_dtype(q, "q", k, "k");
  if (q.dtype != DType::fp16 && q.dtype != DType::bf16) unsupported("q: dtype must be fp16 or bf16");
  if (k.batch() != q.batch() || k.seq_len() != q.seq_len() || k.head_dim() != q.head_dim())
    bad(fmt::format("k: shape [{}, {}, {}, {}] does not match q [{}, {}, {}, {}]: batch, seq_len and head_dim must "
                    "agree",
                    k.shape[0], k.shape[1], k.shape[2], k.shape[3], q.shape[0], q.shape[1], q.shape[2], q.shape[3]));
  if (q.heads() % k.heads() != 0)
    bad(fmt::format("q has {} heads and k has {}: q heads must be a multiple of kv heads (GQA)", q.heads(), k.heads()));
  if (q.head_dim() != 64 && q.head_dim() != 128)
    unsupported(fmt::format("head_dim {} is not supported: use 64 or 128", q.head_dim()));
  if (v) {
    check_tensor(*v, "v");
    check_same_dtype(q, "q", *v, "v");
    const int64_t e[4] = {k.shape[0], k.shape[1], k.shape[2], k.shape[3]};
    check_shape(*v, "v", e, "k");
  }
  if (out) {
    check_tensor(*out, "out");
    check_distinct_elements(*out, "out");
    check_same_dtype(q, "q", *out, "out");
    const int64_t e[4] = {q.shape[0], q.shape[1], q.shape[2], q.shape[3]};
    check_shape(*out, "out", e, "q");
    check_no_overlap(*out, "out", q, "q");
    check_no_overlap(*out, "out", k, "k");
    if (v) check_no_overlap(*out, "out", *v, "v");
  }
  if (q.batch() > 65535) bad(fmt::format("q: batch {} is over 65535", q.batch()));
  if (q.heads() > kMaxQHeads) unsupported(fmt::format("q has {} heads: at most {} are supported", q.heads(), kMaxQHeads));
}

}  // namespace

int64_t PrefillPlan::chunk_bytes(int64_t n) const {
  return align_up(n * pooled_bytes_per_unit()) + align_up(n * mask_bytes_per_unit()) + align_up(n * count_bytes_per_unit());
}

PrefillPlan plan_prefill(const Tensor& q, const Tensor& k, const Tensor* v, const Tensor* out, const PrefillParams& p) {
  check_qkv(q, k, v, out);
  if (p.pq != 64 && p.pq != 128) unsupported(fmt::format("pq (q_pooling_size) {} is not supported: use 64 or 128", p.pq));
  if (p.bk != 16 && p.bk != 32 && p.bk != 64)
    unsupported(fmt::format("bk (k_local_size) {} is not supported: use 16, 32 or 64", p.bk));
  if (!is_pow2(p.gk) || p.gk > 128)
    unsupported(fmt::format("gk (group_k_block) {} is not supported: use a power of two from 1 to 128", p.gk));
  if (p.causal && p.pq % p.bk != 0)
    bad(fmt::format("causal selection needs pq % bk == 0, but pq {} and bk {}", p.pq, p.bk));
  if (p.dense_prefix < 0) bad(fmt::format("dense_prefix {} is negative", p.dense_prefix));

  PrefillPlan plan;
  plan.batch = q.batch();
  plan.q_heads = q.heads();
  plan.kv_heads = k.heads();
  plan.seq_len = q.seq_len();
  plan.head_dim = q.head_dim();
  plan.dtype = q.dtype;
  plan.pq = p.pq;
  plan.bk = p.bk;
  plan.gk = p.gk;
  plan.causal = p.causal;
  plan.pooled = (plan.seq_len + p.pq - 1) / p.pq;
  plan.words = (plan.seq_len + 63) / 64;
  plan.dense_prefix = std::min(p.dense_prefix, plan.seq_len);

  auto gap = [](float t, const std::string& what) {
    if (!(t > 0.f && t <= 1.f)) bad(fmt::format("{} {} is outside (0, 1]", what, t));
    return float(-std::log(double(t)));
  };
  if (p.thresholds) {
    if (p.num_thresholds != plan.q_heads)
      bad(fmt::format("thresholds has {} values but q has {} heads: give one per q head", p.num_thresholds, plan.q_heads));
    for (int64_t h = 0; h < plan.q_heads; ++h) plan.gaps.push_back(gap(p.thresholds[h], fmt::format("thresholds[{}]", h)));
  } else {
    if (p.num_thresholds != 0) bad("num_thresholds is set but thresholds is null");
    plan.gaps.assign(size_t(plan.q_heads), gap(p.threshold, "threshold"));
  }
  return plan;
}

void check_dense(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out) { check_qkv(q, k, &v, &out); }

size_t workspace_budget_bytes() {
  if (const char* mb = std::getenv("VECATTN_WORKSPACE_MB"); mb && std::atoll(mb) > 0)
    return size_t(std::atoll(mb)) << 20;
  return size_t(2560) << 20;
}

}  // namespace vecattn

#include "reference/vecattn_ref.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "reference/dtype.h"
#include "reference/pool_ref.h"

namespace vecattn::ref {

namespace {

[[noreturn]] void fail(const std::string& what) { throw std::invalid_argument("vecattn::ref: " + what); }

void check_size(const char* name, size_t got, int64_t want) {
  if (got != size_t(want))
    fail(std::string(name) + " holds " + std::to_string(got) + " values; expected " + std::to_string(want));
}

bool bit(const uint64_t* words, int64_t j) { return (words[j >> 6] >> (j & 63)) & 1u; }

// Half-open range of keys block i may select (docs/semantics.md §4.2): causal blocks never select the
// sink block or their own diagonal block, which they attend anyway.
struct Range {
  int64_t lo, hi;
};
Range candidates(const Problem& p, int64_t i) {
  if (!p.causal) return {0, p.S};
  return {p.pq, std::max<int64_t>(p.pq, i * p.pq)};
}

// Four independent partial sums: the dot products dominate the O(S^2 D) loops, and one serial
// accumulator would leave them latency-bound. The summation order is fixed, so results are
// deterministic.
double dot(const float* a, const float* b, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t d = 0;
  for (; d + 4 <= n; d += 4) {
    s0 += double(a[d]) * b[d];
    s1 += double(a[d + 1]) * b[d + 1];
    s2 += double(a[d + 2]) * b[d + 2];
    s3 += double(a[d + 3]) * b[d + 3];
  }
  for (; d < n; ++d) s0 += double(a[d]) * b[d];
  return (s0 + s1) + (s2 + s3);
}

// MinP walk of docs/semantics.md §4 over the candidates [lo, hi) of one query block; s is indexed by key.
void select_block(const Problem& p, const std::vector<double>& s, Range c, double gap, uint64_t* words,
                  float* margin) {
  const int64_t G = int64_t(p.gk) * p.bk;
  for (int64_t g0 = c.lo / G * G; g0 < c.hi; g0 += G) {
    const int64_t first = std::max(g0, c.lo), end = std::min(g0 + G, c.hi);
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t t0 = first; t0 < end; t0 += p.bk) {
      const int64_t t1 = std::min<int64_t>(t0 + p.bk, end);
      for (int64_t j = t0; j < t1; ++j) m = std::max(m, s[size_t(j)]);
      for (int64_t j = t0; j < t1; ++j) {
        const double mj = s[size_t(j)] + gap - m;
        // The margins are differences of O(1) doubles, far from float underflow, so the
        // float keeps the sign the decision was made on.
        margin[j] = float(mj);
        if (mj >= 0) words[j >> 6] |= uint64_t(1) << (j & 63);
      }
    }
  }
}

// The attended set of docs/semantics.md §5.1 for row r, written into `out` (reused across rows).
void row_set(const Problem& p, const uint64_t* words, int64_t r, std::vector<int64_t>& out) {
  out.clear();
  if (r < p.dense_prefix || !p.causal) {
    const bool dense_row = r < p.dense_prefix;
    const int64_t end = p.causal ? r + 1 : p.S;
    for (int64_t j = 0; j < end; ++j)
      if (dense_row || bit(words, j)) out.push_back(j);
    return;
  }
  // Selected keys lie below the diagonal block; the sink block is cut at r only in block 0.
  const int64_t sink = std::min<int64_t>(p.pq, p.S), diag = r / p.pq * p.pq;
  for (int64_t j = 0; j <= r; ++j)
    if (j < sink || j >= diag || bit(words, j)) out.push_back(j);
}

// One output row: softmax over `set` of q.k * scale, times V, all in double.
void attend_row(const float* q, const float* K, const float* V, int64_t D, double scale,
                const std::vector<int64_t>& set, std::vector<double>& logits, double* out) {
  std::fill(out, out + D, 0.0);
  if (set.empty()) return;
  logits.resize(set.size());
  double mx = -std::numeric_limits<double>::infinity();
  for (size_t n = 0; n < set.size(); ++n) {
    logits[n] = dot(q, K + set[n] * D, D) * scale;
    mx = std::max(mx, logits[n]);
  }
  double sum = 0;
  for (size_t n = 0; n < set.size(); ++n) {
    const double w = std::exp(logits[n] - mx);
    sum += w;
    const float* v = V + set[n] * D;
    for (int64_t d = 0; d < D; ++d) out[d] += w * v[d];
  }
  for (int64_t d = 0; d < D; ++d) out[d] /= sum;
}

// Runs attend_row over every row, with the set of (b, h, r) given by fill(b, h, r, set).
template <class Fill>
std::vector<double> attention(const Problem& p, const std::vector<float>& q, const std::vector<float>& k,
                              const std::vector<float>& v, Fill fill) {
  check_size("q", q.size(), p.B * p.Hq * p.S * p.D);
  check_size("k", k.size(), p.B * p.Hkv * p.S * p.D);
  check_size("v", v.size(), p.B * p.Hkv * p.S * p.D);
  const double scale = 1.0 / std::sqrt(double(p.D));
  std::vector<double> out(q.size());
  std::vector<int64_t> set;
  std::vector<double> logits;
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.Hq; ++h) {
      const int64_t kv = (b * p.Hkv + p.kv_head(h)) * p.S * p.D;
      for (int64_t r = 0; r < p.S; ++r) {
        const int64_t row = ((b * p.Hq + h) * p.S + r) * p.D;
        fill(b, h, r, set);
        attend_row(&q[size_t(row)], &k[size_t(kv)], &v[size_t(kv)], p.D, scale, set, logits, &out[size_t(row)]);
      }
    }
  return out;
}

const uint64_t* mask_row(const Problem& p, const std::vector<uint64_t>& mask, int64_t b, int64_t h, int64_t i) {
  return &mask[size_t(((b * p.Hq + h) * p.nq() + i) * p.words())];
}

void check_mask(const Problem& p, const std::vector<uint64_t>& mask) {
  check_size("mask", mask.size(), p.B * p.Hq * p.nq() * p.words());
}

}  // namespace

void Problem::check() const {
  if (B < 1 || Hq < 1 || Hkv < 1 || S < 1 || D < 1) fail("B, Hq, Hkv, S and D must all be positive");
  if (Hq % Hkv) fail("Hq " + std::to_string(Hq) + " is not a multiple of Hkv " + std::to_string(Hkv));
  if (pq < 1 || bk < 1 || gk < 1) fail("pq, bk and gk must all be positive");
  if (causal && pq % bk) fail("causal selection needs pq % bk == 0 (docs/semantics.md §4.4)");
  if (int64_t(thresholds.size()) != Hq)
    fail(std::to_string(thresholds.size()) + " thresholds for " + std::to_string(Hq) + " q heads");
  for (float t : thresholds)
    if (!(t > 0 && t <= 1)) fail("threshold " + std::to_string(t) + " is not in (0, 1]");
  if (dense_prefix < 0) fail("dense_prefix is negative");
}

std::vector<float> pooled_q(const Problem& p, const std::vector<float>& q) {
  p.check();
  check_size("q", q.size(), p.B * p.Hq * p.S * p.D);
  const std::vector<double> mean = pool(q, p.B, p.Hq, p.S, p.D, p.pq);
  std::vector<float> out(mean.size());
  for (size_t n = 0; n < mean.size(); ++n) out[n] = round_to(p.dtype, mean[n]);
  return out;
}

SelectResult select(const Problem& p, const std::vector<float>& q, const std::vector<float>& k) {
  const std::vector<float> qp = pooled_q(p, q);
  check_size("k", k.size(), p.B * p.Hkv * p.S * p.D);
  const int64_t nq = p.nq(), W = p.words();
  // The GPU scales the pooled row in fp32 and rounds it to the dtype before the MMA; so do we.
  const float scale = float(1.0 / std::sqrt(double(p.D)));
  SelectResult res;
  res.mask.assign(size_t(p.B * p.Hq * nq * W), 0);
  res.margin.assign(size_t(p.B * p.Hq * nq * p.S), std::numeric_limits<float>::quiet_NaN());
  std::vector<float> qs(size_t(p.D));
  std::vector<double> s(size_t(p.S));
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.Hq; ++h) {
      const double gap = -std::log(double(p.thresholds[size_t(h)]));
      const float* K = &k[size_t((b * p.Hkv + p.kv_head(h)) * p.S * p.D)];
      for (int64_t i = 0; i < nq; ++i) {
        const int64_t bhi = (b * p.Hq + h) * nq + i;
        for (int64_t d = 0; d < p.D; ++d) qs[size_t(d)] = round_to(p.dtype, qp[size_t(bhi * p.D + d)] * scale);
        const Range c = candidates(p, i);
        for (int64_t j = c.lo; j < c.hi; ++j) s[size_t(j)] = dot(qs.data(), K + j * p.D, p.D);
        select_block(p, s, c, gap, &res.mask[size_t(bhi * W)], &res.margin[size_t(bhi * p.S)]);
      }
    }
  return res;
}

std::vector<int64_t> attended(const Problem& p, const std::vector<uint64_t>& mask, int64_t b, int64_t h, int64_t r) {
  p.check();
  check_mask(p, mask);
  if (b < 0 || b >= p.B || h < 0 || h >= p.Hq || r < 0 || r >= p.S) fail("(b, h, r) out of range");
  std::vector<int64_t> set;
  row_set(p, mask_row(p, mask, b, h, r / p.pq), r, set);
  return set;
}

std::vector<double> attend(const Problem& p, const std::vector<float>& q, const std::vector<float>& k,
                           const std::vector<float>& v, const std::vector<uint64_t>& mask) {
  p.check();
  check_mask(p, mask);
  return attention(p, q, k, v, [&](int64_t b, int64_t h, int64_t r, std::vector<int64_t>& set) {
    row_set(p, mask_row(p, mask, b, h, r / p.pq), r, set);
  });
}

std::vector<double> dense(const Problem& p, const std::vector<float>& q, const std::vector<float>& k,
                          const std::vector<float>& v) {
  p.check();
  return attention(p, q, k, v, [&](int64_t, int64_t, int64_t r, std::vector<int64_t>& set) {
    set.resize(size_t(p.causal ? r + 1 : p.S));
    for (size_t j = 0; j < set.size(); ++j) set[j] = int64_t(j);
  });
}

Stats stats(const Problem& p, const std::vector<uint64_t>& mask) {
  p.check();
  check_mask(p, mask);
  Stats st;
  st.density_per_head.assign(size_t(p.Hq), 0.0);
  std::vector<int64_t> set;
  double total = 0;
  for (int64_t h = 0; h < p.Hq; ++h) {
    double sum = 0;
    for (int64_t b = 0; b < p.B; ++b)
      for (int64_t r = 0; r < p.S; ++r) {
        row_set(p, mask_row(p, mask, b, h, r / p.pq), r, set);
        sum += double(set.size()) / double(p.causal ? r + 1 : p.S);
      }
    st.density_per_head[size_t(h)] = sum / double(p.B * p.S);
    total += sum;
  }
  st.sparsity = 1.0 - total / double(p.B * p.Hq * p.S);
  return st;
}

double recall(const Problem& p, const std::vector<float>& q, const std::vector<float>& k,
              const std::vector<uint64_t>& mask, int64_t b, int64_t h, int64_t r) {
  const std::vector<int64_t> set = attended(p, mask, b, h, r);
  check_size("q", q.size(), p.B * p.Hq * p.S * p.D);
  check_size("k", k.size(), p.B * p.Hkv * p.S * p.D);
  const float* qr = &q[size_t(((b * p.Hq + h) * p.S + r) * p.D)];
  const float* K = &k[size_t((b * p.Hkv + p.kv_head(h)) * p.S * p.D)];
  const double scale = 1.0 / std::sqrt(double(p.D));
  const int64_t visible = p.causal ? r + 1 : p.S;
  std::vector<double> logits(static_cast<size_t>(visible));
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < visible; ++j) {
    logits[size_t(j)] = dot(qr, K + j * p.D, p.D) * scale;
    mx = std::max(mx, logits[size_t(j)]);
  }
  double all = 0, kept = 0;
  for (int64_t j = 0; j < visible; ++j) all += std::exp(logits[size_t(j)] - mx);
  for (int64_t j : set) kept += std::exp(logits[size_t(j)] - mx);
  return kept / all;
}

}  // namespace vecattn::ref

// The fp64 CPU reference (docs/semantics.md) checked on cases small enough to work out by hand, and on
// random ones against the properties the spec states. Every GPU test trusts this reference.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>

#include "reference/dtype.h"
#include "reference/vecattn_ref.h"

using namespace vecattn;
using namespace vecattn::ref;

namespace {

// gap = -ln(t) is 1 up to float rounding of t; hand cases keep every margin >= 0.5 away from 0.
const float kGapOne = float(std::exp(-1.0));

Problem problem(int64_t S, int pq, int bk, int gk, bool causal, float t, DType dtype = DType::bf16) {
  Problem p;
  p.S = S;
  p.D = 64;
  p.pq = pq;
  p.bk = bk;
  p.gk = gk;
  p.causal = causal;
  p.dtype = dtype;
  p.thresholds = {t};
  return p;
}

// Every q row is 8 * e0, so the pooled row scaled by 1/sqrt(64) is exactly e0 and
// s(i, j) = k[j][0]: scores are whatever the test writes there (values exact in fp16 and bf16).
std::vector<float> q_unit(const Problem& p) {
  std::vector<float> q(size_t(p.B * p.Hq * p.S * p.D), 0.0f);
  for (size_t row = 0; row < q.size(); row += size_t(p.D)) q[row] = 8.0f;
  return q;
}
std::vector<float> k_scores(const Problem& p, const std::vector<float>& scores) {
  REQUIRE(int64_t(scores.size()) == p.S);
  std::vector<float> k(size_t(p.B * p.Hkv * p.S * p.D), 0.0f);
  for (int64_t bh = 0; bh < p.B * p.Hkv; ++bh)
    for (int64_t j = 0; j < p.S; ++j) k[size_t((bh * p.S + j) * p.D)] = scores[size_t(j)];
  return k;
}

std::vector<float> random_tensor(size_t n, DType dtype, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = round_to(dtype, dist(gen));
  return x;
}

struct Inputs {
  std::vector<float> q, k, v;
};
Inputs random_inputs(const Problem& p, uint32_t seed) {
  const size_t nq = size_t(p.B * p.Hq * p.S * p.D), nk = size_t(p.B * p.Hkv * p.S * p.D);
  return {random_tensor(nq, p.dtype, seed), random_tensor(nk, p.dtype, seed + 1), random_tensor(nk, p.dtype, seed + 2)};
}

bool has_bit(const Problem& p, const std::vector<uint64_t>& mask, int64_t bh, int64_t i, int64_t j) {
  return (mask[size_t((bh * p.nq() + i) * p.words() + j / 64)] >> (j % 64)) & 1u;
}

std::vector<int64_t> selected(const Problem& p, const std::vector<uint64_t>& mask, int64_t bh, int64_t i) {
  std::vector<int64_t> out;
  for (int64_t j = 0; j < p.words() * 64; ++j)
    if (has_bit(p, mask, bh, i, j)) out.push_back(j);
  return out;
}

float margin_at(const Problem& p, const SelectResult& sel, int64_t bh, int64_t i, int64_t j) {
  return sel.margin[size_t((bh * p.nq() + i) * p.S + j)];
}

std::vector<uint64_t> mask_of(const Problem& p, uint64_t word) {
  return std::vector<uint64_t>(size_t(p.B * p.Hq * p.nq() * p.words()), word);
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b, size_t from = 0, size_t to = SIZE_MAX) {
  to = std::min(to, a.size());
  double m = 0;
  for (size_t n = from; n < to; ++n) m = std::max(m, std::abs(a[n] - b[n]));
  return m;
}

}  // namespace

TEST_CASE("pooled q is the block mean rounded to the dtype", "[reference]") {
  // S 6, pq 4: the partial block 1 (rows 4, 5) divides by its own two rows.
  Problem p = problem(6, 4, 4, 1, false, 1.0f);
  std::vector<float> q(size_t(p.S * p.D), 0.0f);
  for (int64_t r = 0; r < p.S; ++r) q[size_t(r * p.D)] = float(r + 1);  // means 2.5 and 5.5
  q[1] = 1.0f;                                                           // block 0: 1 + 2^-9 over 4
  q[size_t(p.D + 1)] = std::ldexp(1.0f, -9);
  const std::vector<float> qp = pooled_q(p, q);
  REQUIRE(qp.size() == size_t(2 * p.D));
  CHECK(qp[0] == 2.5f);
  CHECK(qp[size_t(p.D)] == 5.5f);
  CHECK(qp[1] == 0.25f);  // bf16 keeps 8 significant bits: 2^-9 is lost
  p.dtype = DType::fp16;
  CHECK(pooled_q(p, q)[1] == std::ldexp(1.0f + std::ldexp(1.0f, -9), -2));
}

TEST_CASE("MinP: order matters and groups are independent", "[reference]") {
  const DType dtype = GENERATE(DType::bf16, DType::fp16);
  // bk 2, gk 2: groups of 4 keys, tiles {0,1} {2,3} | {4,5} {6,7}.
  Problem p = problem(8, 8, 2, 2, false, kGapOne, dtype);
  const std::vector<float> q = q_unit(p);

  // The later, larger 5 cannot unselect keys 0 and 1, picked when the running max was 1;
  // group 1 keeps its own maximum although group 0 scores far higher.
  SelectResult sel = select(p, q, k_scores(p, {1, 0.5f, 5, 3.5f, -2, -3.5f, -1.5f, -10}));
  CHECK(selected(p, sel.mask, 0, 0) == std::vector<int64_t>{0, 1, 2, 4, 6});
  const float want[8] = {1, 0.5f, 1, -0.5f, 1, -0.5f, 1, -7.5f};
  for (int j = 0; j < 8; ++j) CHECK(margin_at(p, sel, 0, 0, j) == Approx(want[j]).margin(1e-6));

  // The same scores of group 0 in reverse: 5 comes first and now rules the whole group.
  sel = select(p, q, k_scores(p, {5, 3.5f, 1, 0.5f, -2, -3.5f, -1.5f, -10}));
  CHECK(selected(p, sel.mask, 0, 0) == std::vector<int64_t>{0, 4, 6});
}

TEST_CASE("MinP: threshold 1 keeps exactly the keys equal to the running max", "[reference]") {
  Problem p = problem(8, 8, 2, 2, false, 1.0f);
  const SelectResult sel = select(p, q_unit(p), k_scores(p, {2, 2, 1, 3, 3, 1, 3, 2}));
  CHECK(selected(p, sel.mask, 0, 0) == std::vector<int64_t>{0, 1, 3, 4, 6});
  const float want[8] = {0, 0, -2, 0, 0, -2, 0, -1};
  for (int j = 0; j < 8; ++j) CHECK(margin_at(p, sel, 0, 0, j) == want[j]);
}

TEST_CASE("MinP: every group keeps its maximum", "[reference]") {
  // 200 keys in groups of 16 (the last one half full), near-1 threshold so little else survives.
  Problem p = problem(200, 256, 4, 4, false, 0.999f);
  std::mt19937 gen(7);
  std::uniform_int_distribution<int> quarter(-32, 32);
  std::vector<float> scores(200);
  for (float& s : scores) s = quarter(gen) / 4.0f;
  const SelectResult sel = select(p, q_unit(p), k_scores(p, scores));
  int64_t kept = 0;
  for (int64_t g0 = 0; g0 < p.S; g0 += 16) {
    const auto first = scores.begin() + g0, last = scores.begin() + std::min<int64_t>(g0 + 16, p.S);
    const int64_t argmax = std::max_element(first, last) - scores.begin();  // first of any tie
    CHECK(has_bit(p, sel.mask, 0, 0, argmax));
    for (int64_t j = g0; j < std::min<int64_t>(g0 + 16, p.S); ++j) kept += has_bit(p, sel.mask, 0, 0, j);
  }
  CHECK(kept >= 13);
  CHECK(kept < 100);  // a broken walk that keeps everything must not pass
}

TEST_CASE("MinP: keys past S do not exist", "[reference]") {
  SECTION("last tile of one key") {
    // bk 4, gk 2: group 1 is keys 8..12, tiles {8..11} {12}. All its scores are negative: a
    // padded zero-score key 13 would become the max of tile 1 and unselect key 12.
    Problem p = problem(13, 16, 4, 2, false, kGapOne);
    const SelectResult sel = select(p, q_unit(p), k_scores(p, {0, 0, 0, 0, 0, 0, 0, 0, -5, -5.5f, -7, -9, -4}));
    CHECK(selected(p, sel.mask, 0, 0) == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12});
    CHECK(sel.margin.size() == 13u);
  }
  SECTION("S not a multiple of 64, pq or the group") {
    // pq 128 > S: one partial query block. Groups of 32: the last is keys 64..76.
    Problem p = problem(77, 128, 16, 2, false, kGapOne);
    std::vector<float> scores(77, -10.0f);
    scores[64] = -4;
    scores[65] = -2;
    scores[3] = 1;
    scores[40] = 2;
    const SelectResult sel = select(p, q_unit(p), k_scores(p, scores));
    CHECK(selected(p, sel.mask, 0, 0) == std::vector<int64_t>{3, 40, 65});
    REQUIRE(sel.mask.size() == 2u);
    CHECK((sel.mask[1] >> 13) == 0u);  // bits of keys 77..127
  }
}

TEST_CASE("causal candidates: sink and diagonal are attended, never selected", "[reference]") {
  // pq 4, bk 2, gk 4: groups of 8. Sink (keys 0..3) and diagonal scores of 100 would dominate
  // every max if they were candidates.
  Problem p = problem(16, 4, 2, 4, true, kGapOne);
  const std::vector<float> scores = {100, 100, 100, 100, 1, 0.5f, 5, 3.5f, -2, -3.5f, -1.5f, -10, 100, 100, 100, 100};
  const SelectResult sel = select(p, q_unit(p), k_scores(p, scores));
  CHECK(selected(p, sel.mask, 0, 0).empty());
  CHECK(selected(p, sel.mask, 0, 1).empty());
  // Block 2's candidates are 4..7: group 0 walked from key 4.
  CHECK(selected(p, sel.mask, 0, 2) == std::vector<int64_t>{4, 5, 6});
  CHECK(selected(p, sel.mask, 0, 3) == std::vector<int64_t>{4, 5, 6, 8, 10});
  for (int64_t j = 0; j < 16; ++j) {
    CHECK(std::isnan(margin_at(p, sel, 0, 1, j)));
    CHECK(std::isnan(margin_at(p, sel, 0, 3, j)) == (j < 4 || j >= 12));
  }

  CHECK(attended(p, sel.mask, 0, 0, 2) == std::vector<int64_t>{0, 1, 2});  // sink cut at r
  CHECK(attended(p, sel.mask, 0, 0, 5) == std::vector<int64_t>{0, 1, 2, 3, 4, 5});
  CHECK(attended(p, sel.mask, 0, 0, 9) == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 8, 9});
  CHECK(attended(p, sel.mask, 0, 0, 14) == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 13, 14});
}

TEST_CASE("causal random problems select only candidates", "[reference]") {
  Problem p = problem(18, 4, 2, 2, true, 0.5f);
  p.B = 2;
  p.Hq = 2;
  p.thresholds = {0.5f, 0.2f};
  const Inputs in = random_inputs(p, 11);
  const SelectResult sel = select(p, in.q, in.k);
  for (int64_t bh = 0; bh < p.B * p.Hq; ++bh)
    for (int64_t i = 0; i < p.nq(); ++i)
      for (int64_t j = 0; j < 64; ++j) {
        const bool candidate = j >= p.pq && j < i * p.pq;
        if (!candidate) CHECK_FALSE(has_bit(p, sel.mask, bh, i, j));
        if (j < p.S) CHECK(std::isnan(margin_at(p, sel, bh, i, j)) == !candidate);
      }
}

TEST_CASE("margin sign agrees with the mask bits", "[reference]") {
  const bool causal = GENERATE(false, true);
  const DType dtype = GENERATE(DType::bf16, DType::fp16);
  Problem p = problem(150, 16, 8, 2, causal, 0.3f, dtype);
  p.B = 2;
  p.Hq = 2;
  p.thresholds = {0.3f, 0.05f};
  const Inputs in = random_inputs(p, 23);
  const SelectResult sel = select(p, in.q, in.k);
  int64_t kept = 0, dropped = 0;
  for (int64_t bh = 0; bh < p.B * p.Hq; ++bh)
    for (int64_t i = 0; i < p.nq(); ++i) {
      for (int64_t j = 0; j < p.S; ++j) {
        const float m = margin_at(p, sel, bh, i, j);
        if (std::isnan(m)) {
          CHECK_FALSE(has_bit(p, sel.mask, bh, i, j));
          continue;
        }
        CHECK((m >= 0) == has_bit(p, sel.mask, bh, i, j));
        (m >= 0 ? kept : dropped)++;
      }
      for (int64_t j = p.S; j < p.words() * 64; ++j) CHECK_FALSE(has_bit(p, sel.mask, bh, i, j));
    }
  CHECK(kept > 0);
  CHECK(dropped > 0);
}

TEST_CASE("GQA: q head h reads kv head h / (Hq / Hkv) with its own threshold", "[reference]") {
  Problem p = problem(70, 16, 8, 2, true, 0.5f);
  p.B = 2;
  p.Hq = 4;
  p.Hkv = 2;
  p.thresholds = {0.3f, 0.6f, 0.9f, 1.0f};
  const Inputs in = random_inputs(p, 31);
  const SelectResult sel = select(p, in.q, in.k);
  const std::vector<double> out = attend(p, in.q, in.k, in.v, sel.mask);

  const size_t row = size_t(p.S * p.D), words = size_t(p.nq() * p.words()), margins = size_t(p.nq() * p.S);
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.Hq; ++h) {
      Problem one = problem(p.S, p.pq, p.bk, p.gk, p.causal, p.thresholds[size_t(h)]);
      const size_t qh = size_t(b * p.Hq + h), kvh = size_t(b * p.Hkv + h / 2);
      auto slice = [&](const std::vector<float>& x, size_t head) {
        return std::vector<float>(x.begin() + long(head * row), x.begin() + long((head + 1) * row));
      };
      const std::vector<float> q1 = slice(in.q, qh), k1 = slice(in.k, kvh), v1 = slice(in.v, kvh);
      const SelectResult s1 = select(one, q1, k1);
      CHECK(std::equal(s1.mask.begin(), s1.mask.end(), sel.mask.begin() + long(qh * words)));
      for (size_t n = 0; n < margins; ++n) {
        const float a = s1.margin[n], c = sel.margin[qh * margins + n];
        CHECK((a == c || (std::isnan(a) && std::isnan(c))));
      }
      const std::vector<double> o1 = attend(one, q1, k1, v1, s1.mask);
      CHECK(std::equal(o1.begin(), o1.end(), out.begin() + long(qh * row)));
    }
}

TEST_CASE("attend computes softmax(qk) v over exactly the attended set", "[reference]") {
  Problem p = problem(37, 8, 8, 1, true, 0.4f);
  p.Hq = 2;
  p.Hkv = 1;
  p.thresholds = {0.4f, 0.7f};
  const Inputs in = random_inputs(p, 41);
  const SelectResult sel = select(p, in.q, in.k);
  const std::vector<double> out = attend(p, in.q, in.k, in.v, sel.mask);
  const double scale = 0.125;
  for (int64_t h = 0; h < p.Hq; ++h)
    for (int64_t r = 0; r < p.S; ++r) {
      const std::vector<int64_t> set = attended(p, sel.mask, 0, h, r);
      const float* q = &in.q[size_t((h * p.S + r) * p.D)];
      std::vector<double> w;
      for (int64_t j : set) {
        double s = 0;
        for (int64_t d = 0; d < p.D; ++d) s += double(q[d]) * in.k[size_t(j * p.D + d)];
        w.push_back(std::exp(s * scale));
      }
      double sum = 0;
      for (double x : w) sum += x;
      for (int64_t d = 0; d < p.D; ++d) {
        double o = 0;
        for (size_t n = 0; n < set.size(); ++n) o += w[n] / sum * in.v[size_t(set[n] * p.D + d)];
        CHECK(out[size_t((h * p.S + r) * p.D + d)] == Approx(o).margin(1e-12));
      }
    }
}

TEST_CASE("dense_prefix rows equal dense attention", "[reference]") {
  const bool causal = GENERATE(true, false);
  Problem p = problem(50, 8, 8, 1, causal, 0.9f);
  p.B = 2;
  p.dense_prefix = 21;
  const Inputs in = random_inputs(p, 53);
  const SelectResult sel = select(p, in.q, in.k);
  const std::vector<double> out = attend(p, in.q, in.k, in.v, sel.mask), ref = dense(p, in.q, in.k, in.v);
  for (int64_t b = 0; b < p.B; ++b) {
    const size_t base = size_t(b * p.S * p.D);
    CHECK(max_abs_diff(out, ref, base, base + size_t(p.dense_prefix * p.D)) < 1e-12);
    CHECK(max_abs_diff(out, ref, base + size_t(p.dense_prefix * p.D), base + size_t(p.S * p.D)) > 1e-3);
  }
  for (int64_t r = 0; r < p.dense_prefix; ++r)
    CHECK(int64_t(attended(p, sel.mask, 1, 0, r).size()) == (causal ? r + 1 : p.S));
  CHECK(recall(p, in.q, in.k, sel.mask, 1, 0, 20) == Approx(1.0).margin(1e-12));
}

TEST_CASE("a full mask gives dense attention, density 1 and recall 1", "[reference]") {
  const bool causal = GENERATE(false, true);
  Problem p = problem(100, 16, 16, 1, causal, 1.0f);
  p.B = 2;
  p.Hq = 2;
  p.thresholds = {1.0f, 1.0f};
  const Inputs in = random_inputs(p, 67);
  // Bits past S are set too: they must be ignored.
  const std::vector<uint64_t> full = mask_of(p, ~uint64_t(0));
  CHECK(max_abs_diff(attend(p, in.q, in.k, in.v, full), dense(p, in.q, in.k, in.v)) < 1e-12);
  const Stats st = stats(p, full);
  CHECK(st.density_per_head == std::vector<double>{1.0, 1.0});
  CHECK(st.sparsity == 0.0);
  for (int64_t r : {0, 17, 99}) CHECK(recall(p, in.q, in.k, full, 1, 1, r) == Approx(1.0).margin(1e-12));
}

TEST_CASE("stats by hand", "[reference]") {
  SECTION("causal, nothing selected: sink and diagonal only") {
    Problem p = problem(12, 4, 4, 1, true, 1.0f);
    p.Hq = 2;
    p.thresholds = {1.0f, 1.0f};
    const Stats st = stats(p, mask_of(p, 0));
    // Rows 0..7 see everything; row r of block 2 attends 4 sink keys and r - 7 diagonal keys.
    const double want = (8 + 5.0 / 9 + 6.0 / 10 + 7.0 / 11 + 8.0 / 12) / 12;
    REQUIRE(st.density_per_head.size() == 2u);
    CHECK(st.density_per_head[0] == Approx(want).epsilon(1e-14));
    CHECK(st.density_per_head[1] == Approx(want).epsilon(1e-14));
    CHECK(st.sparsity == Approx(1 - want).epsilon(1e-14));
  }
  SECTION("non-causal: three keys of 70 per row, head 1 dense") {
    Problem p = problem(70, 64, 16, 1, false, 1.0f);
    p.Hq = 2;
    p.B = 2;
    p.thresholds = {1.0f, 1.0f};
    std::vector<uint64_t> mask = mask_of(p, 0);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t i = 0; i < 2; ++i) {
        mask[size_t(((b * 2 + 0) * 2 + i) * 2)] = 0b1011;
        mask[size_t(((b * 2 + 1) * 2 + i) * 2)] = ~uint64_t(0);
        mask[size_t(((b * 2 + 1) * 2 + i) * 2 + 1)] = ~uint64_t(0);
      }
    const Stats st = stats(p, mask);
    CHECK(st.density_per_head[0] == Approx(3.0 / 70).epsilon(1e-14));
    CHECK(st.density_per_head[1] == 1.0);
    CHECK(st.sparsity == Approx(1 - (3.0 / 70 + 1) / 2).epsilon(1e-14));
  }
}

TEST_CASE("recall by hand", "[reference]") {
  // q . k * sm_scale = k[j][0] (see q_unit); scores 0, 0, 1, 1 and the set {2}.
  Problem p = problem(4, 4, 4, 1, false, 1.0f);
  const std::vector<float> q = q_unit(p), k = k_scores(p, {0, 0, 1, 1});
  const std::vector<uint64_t> only2 = mask_of(p, 0b100);
  const double e = std::exp(1.0);
  CHECK(recall(p, q, k, only2, 0, 0, 3) == Approx(e / (2 + 2 * e)).epsilon(1e-14));
  CHECK(recall(p, q, k, mask_of(p, 0), 0, 0, 3) == 0.0);
  // An empty non-causal set outputs zeros rather than NaN.
  const std::vector<double> out = attend(p, q, k, k, mask_of(p, 0));
  CHECK(std::all_of(out.begin(), out.end(), [](double x) { return x == 0.0; }));
}

TEST_CASE("inconsistent problems are refused", "[reference]") {
  Problem p = problem(16, 8, 8, 1, true, 0.5f);
  const std::vector<float> q(size_t(16 * 64)), k = q;
  CHECK_NOTHROW(select(p, q, k));
  Problem bad = p;
  bad.thresholds = {0.0f};
  CHECK_THROWS_AS(select(bad, q, k), std::invalid_argument);
  bad = p;
  bad.bk = 16;  // pq 8 % bk 16 != 0 under causal
  CHECK_THROWS_AS(select(bad, q, k), std::invalid_argument);
  bad = p;
  bad.Hq = 3;
  bad.Hkv = 2;
  bad.thresholds = {0.5f, 0.5f, 0.5f};
  CHECK_THROWS_AS(select(bad, q, k), std::invalid_argument);
  CHECK_THROWS_AS(select(p, q, std::vector<float>(15 * 64)), std::invalid_argument);
}

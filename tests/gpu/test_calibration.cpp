// Calibration on the GPU: the recall kernel against the fp64 reference (docs/semantics.md §6),
// select's statistics against ref::stats, and vecattn-calibrate's measure + assignment on
// synthetic heads of known, different sparsity.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>

#include "gpu/device_buffer.h"
#include "reference/dtype.h"
#include "reference/vecattn_ref.h"
#include "runtime/runtime.h"
#include "tuner/calibration.h"
#include "tuner/threshold_assignment.h"

using namespace vecattn;

namespace {

struct RecallCase {
  int64_t B, Hq, Hkv, S;
  int D;
  DType dtype;
  int pq;
  bool causal;
  int64_t dense_prefix;
  std::string str() const {
    return fmt::format("B {} Hq {} Hkv {} S {} D {} {} pq {} {} prefix {}", B, Hq, Hkv, S, D, dtype_name(dtype), pq,
                       causal ? "causal" : "noncausal", dense_prefix);
  }
};

// Values rounded to the dtype: the host floats the reference reads and the device's bits.
struct Rounded {
  std::vector<float> values;
  std::vector<uint16_t> bits;
};

Rounded round_all(DType t, const std::vector<float>& v) {
  Rounded r;
  r.values.resize(v.size());
  r.bits.resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    r.bits[i] = ref::to_bits(t, v[i]);
    r.values[i] = ref::from_bits(t, r.bits[i]);
  }
  return r;
}

// Random q with a shared direction and keys of which some point along it: the softmax is neither
// flat nor one-hot, so recall lands between 0 and 1 and a wrong set shows.
void random_qk(std::mt19937& rng, int64_t D, std::vector<float>& q, std::vector<float>& k) {
  std::normal_distribution<float> n01(0.f, 1.f);
  std::vector<float> dir(static_cast<size_t>(D));
  for (auto& x : dir) x = n01(rng) / std::sqrt(float(D));
  std::bernoulli_distribution strong(0.05);
  for (size_t i = 0; i < q.size(); ++i) q[i] = n01(rng) + 2.f * dir[i % size_t(D)] * std::sqrt(float(D));
  for (size_t row = 0; row < k.size() / size_t(D); ++row) {
    const bool s = strong(rng);
    for (int64_t d = 0; d < D; ++d) k[row * size_t(D) + size_t(d)] = n01(rng) + (s ? 3.f * dir[size_t(d)] * std::sqrt(float(D)) : 0.f);
  }
}

}  // namespace

TEST_CASE("the recall kernel equals the fp64 reference on the GPU's own selection", "[gpu][calibration]") {
  test::TestContext ctx;
  Runtime rt(test::in_memory());
  std::mt19937 rng(std::random_device{}());
  const RecallCase cases[] = {
      {1, 2, 2, 1000, 128, DType::bf16, 64, true, 0},
      {1, 4, 2, 777, 64, DType::fp16, 64, false, 0},
      {2, 2, 1, 1300, 128, DType::fp16, 128, true, 0},
      {1, 2, 2, 640, 64, DType::bf16, 128, false, 0},
      {1, 2, 2, 900, 128, DType::bf16, 64, true, 300},
      {1, 2, 1, 4096, 128, DType::bf16, 64, true, 0},
  };
  double worst = 0;
  for (const RecallCase& c : cases) {
    INFO(c.str());
    std::vector<float> qv(size_t(c.B * c.Hq * c.S * c.D)), kv(size_t(c.B * c.Hkv * c.S * c.D));
    random_qk(rng, c.D, qv, kv);
    const Rounded q = round_all(c.dtype, qv), k = round_all(c.dtype, kv);
    std::vector<float> thresholds(size_t(c.Hq));
    for (size_t h = 0; h < thresholds.size(); ++h) thresholds[h] = h % 2 ? 0.5f : 0.9f;

    PrefillParams p;
    p.pq = c.pq;
    p.causal = c.causal;
    p.thresholds = thresholds.data();
    p.num_thresholds = c.Hq;
    p.dense_prefix = c.dense_prefix;
    test::DeviceBuffer qd(q.bits.size() * 2), kd(k.bits.size() * 2), mask(size_t(Selection::bytes(c.B, c.Hq, c.S, c.pq)));
    qd.upload(q.bits);
    kd.upload(k.bits);
    const Tensor tq = Tensor::bhsd(qd.get(), c.dtype, c.B, c.Hq, c.S, c.D);
    const Tensor tk = Tensor::bhsd(kd.get(), c.dtype, c.B, c.Hkv, c.S, c.D);
    PrefillStats stats;
    rt.select(tq, tk, p, Selection{mask.get()}, nullptr, {}, &stats);
    const auto gpu_mask = mask.download<uint64_t>();

    // Rows: the first and last, both sides of the dense prefix, block edges, and a random few;
    // plus one out of range, which must come back NaN.
    std::vector<int32_t> rows{0, 1, int32_t(c.S - 1), int32_t(c.pq - 1), int32_t(c.pq), int32_t(2 * c.pq + 5)};
    if (c.dense_prefix) rows.insert(rows.end(), {int32_t(c.dense_prefix - 1), int32_t(c.dense_prefix)});
    std::uniform_int_distribution<int32_t> any(0, int32_t(c.S - 1));
    for (int i = 0; i < 13; ++i) rows.push_back(any(rng));
    rows.push_back(int32_t(c.S));
    test::DeviceBuffer rows_d(rows.size() * 4), out(size_t(c.B * c.Hq) * rows.size() * 4);
    rows_d.upload(rows);
    out.poison();
    rt.recall(tq, tk, p, Selection{mask.get()}, static_cast<const int32_t*>(rows_d.get()), int64_t(rows.size()),
              static_cast<float*>(out.get()), nullptr);
    const auto got = out.download<float>();

    ref::Problem rp;
    rp.B = c.B, rp.Hq = c.Hq, rp.Hkv = c.Hkv, rp.S = c.S, rp.D = c.D, rp.dtype = c.dtype, rp.pq = c.pq;
    rp.causal = c.causal, rp.thresholds = thresholds, rp.dense_prefix = c.dense_prefix;
    bool some_partial = false;
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t h = 0; h < c.Hq; ++h)
        for (size_t n = 0; n < rows.size(); ++n) {
          const float g = got[size_t((b * c.Hq + h) * int64_t(rows.size())) + n];
          if (rows[n] >= c.S) {
            CHECK(std::isnan(g));
            continue;
          }
          const double want = ref::recall(rp, q.values, k.values, gpu_mask, b, h, rows[n]);
          INFO("b " << b << " h " << h << " row " << rows[n] << " want " << want << " got " << g);
          CHECK(std::abs(double(g) - want) < 2e-5);
          worst = std::max(worst, std::abs(double(g) - want));
          some_partial |= want < 0.99;
        }
    CHECK(some_partial);  // the sets drop real mass: a kernel ignoring the mask cannot pass

    const ref::Stats rs = ref::stats(rp, gpu_mask);
    CHECK(stats.sparsity == Approx(rs.sparsity).margin(1e-9));
    for (int64_t h = 0; h < c.Hq; ++h) CHECK(stats.density[size_t(h)] == Approx(rs.density_per_head[size_t(h)]).margin(1e-9));
    CHECK(stats.select_ms > 0);
  }
  WARN(fmt::format("recall kernel: worst difference from fp64 {:.2e}", worst));
}

TEST_CASE("recall rejects bad arguments before launching", "[gpu][calibration]") {
  test::TestContext ctx;
  Runtime rt(test::in_memory());
  test::DeviceBuffer qd(64 * 128 * 2), kd(64 * 128 * 2), mask(size_t(Selection::bytes(1, 1, 64, 64))), rows(4), out(4);
  const Tensor tq = Tensor::bhsd(qd.get(), DType::bf16, 1, 1, 64, 128);
  const Tensor tk = Tensor::bhsd(kd.get(), DType::bf16, 1, 1, 64, 128);
  PrefillParams p;
  const auto* r = static_cast<const int32_t*>(rows.get());
  auto* o = static_cast<float*>(out.get());
  CHECK_THROWS_WITH(rt.recall(tq, tk, p, Selection{nullptr}, r, 1, o), Catch::Contains("selection data pointer is null"));
  CHECK_THROWS_WITH(rt.recall(tq, tk, p, Selection{mask.get()}, nullptr, 1, o), Catch::Contains("rows must be"));
  CHECK_THROWS_WITH(rt.recall(tq, tk, p, Selection{mask.get()}, r, 0, o), Catch::Contains("n_rows 0"));
  CHECK_THROWS_WITH(rt.recall(tq, tk, p, Selection{mask.get()}, r, 1, nullptr), Catch::Contains("output must be"));
  p.pq = 96;
  CHECK_THROWS_AS(rt.recall(tq, tk, p, Selection{mask.get()}, r, 1, o), Error);
}

namespace {

// A layer of heads whose attention is known to differ in sharpness. Each head has a direction u
// every query row follows (q = noise + sqrt(D) u); key j carries c_j u with c_j ~ N(0, spread^2),
// so a row's logit of key j is about c_j plus unit noise: the larger the head's spread, the more
// of the softmax the few keys with the largest c_j hold, and the more keys the head can drop for
// the same recall. The pooled query sees c_j too, so the selection finds those keys.
void graded_layer(std::mt19937& rng, int64_t S, int64_t D, const std::vector<double>& spread, DType t,
                  std::vector<uint16_t>& q, std::vector<uint16_t>& k) {
  std::normal_distribution<float> n01(0.f, 1.f);
  const int64_t H = int64_t(spread.size());
  q.resize(size_t(H * S * D));
  k.resize(q.size());
  for (int64_t h = 0; h < H; ++h) {
    std::vector<float> u(static_cast<size_t>(D));
    float norm = 0;
    for (auto& x : u) x = n01(rng), norm += x * x;
    for (auto& x : u) x /= std::sqrt(norm);
    for (int64_t s = 0; s < S; ++s) {
      const float c = float(spread[size_t(h)]) * n01(rng);
      for (int64_t d = 0; d < D; ++d) {
        const size_t i = size_t((h * S + s) * D + d);
        q[i] = ref::to_bits(t, n01(rng) + std::sqrt(float(D)) * u[size_t(d)]);
        k[i] = ref::to_bits(t, n01(rng) + c * u[size_t(d)]);
      }
    }
  }
}

}  // namespace

TEST_CASE("calibration reaches the target sparsity and ranks heads by their sharpness", "[gpu][calibration]") {
  test::TestContext ctx;
  Runtime rt(test::in_memory());
  std::mt19937 rng(20261124);  // fixed: the assertions below are about this data's structure
  constexpr int64_t S = 4096, D = 64;
  const std::vector<double> spread{0.5, 1.0, 1.5, 2.0, 3.0, 4.0};  // flattest first
  const DType t = DType::bf16;
  for (bool causal : {false, true}) {
    INFO((causal ? "causal" : "non-causal"));
    tuner::CalibrationOptions o;
    o.causal = causal;
    o.rows = 128;
    std::vector<tuner::HeadCurve> heads;
    std::vector<std::unique_ptr<test::DeviceBuffer>> keep;
    std::vector<Tensor> qs, ks;
    for (int layer = 0; layer < 2; ++layer) {
      std::vector<uint16_t> q, k;
      graded_layer(rng, S, D, spread, t, q, k);
      keep.push_back(std::make_unique<test::DeviceBuffer>(q.size() * 2));
      keep.back()->upload(q);
      qs.push_back(Tensor::bhsd(keep.back()->get(), t, 1, int64_t(spread.size()), S, D));
      keep.push_back(std::make_unique<test::DeviceBuffer>(k.size() * 2));
      keep.back()->upload(k);
      ks.push_back(Tensor::bhsd(keep.back()->get(), t, 1, int64_t(spread.size()), S, D));
      tuner::LayerCalibrator cal(rt, qs.back(), ks.back(), o);
      const auto curves = cal.curves(layer);
      heads.insert(heads.end(), curves.begin(), curves.end());
      // The bisection found, per head, a threshold whose recall reaches its target.
      for (const auto& c : curves) {
        bool reached = false;
        for (const auto& pt : c.points) reached |= pt.recall >= o.bisect_recall;
        CHECK(reached);
      }
    }

    // Per spread (both layers), the mean of a per-head figure; it must grow with the spread.
    auto check_rises = [&](const char* what, const std::function<double(size_t)>& of_head) {
      std::vector<double> per_spread(spread.size(), 0.0);
      for (size_t i = 0; i < heads.size(); ++i) per_spread[i % spread.size()] += of_head(i) / 2;
      for (size_t h = 0; h + 1 < spread.size(); ++h) {
        INFO(what << ": spread " << spread[h] << " " << per_spread[h] << " vs spread " << spread[h + 1] << " "
                  << per_spread[h + 1]);
        CHECK(per_spread[h] <= per_spread[h + 1] + 0.05);  // neighbours may tie within sampling noise
      }
      INFO(what << ": flattest " << per_spread.front() << " sharpest " << per_spread.back());
      CHECK(per_spread.front() + 0.1 < per_spread.back());
    };
    // The heads' own ranking: the sparsity at which each keeps the bisection's recall.
    check_rises("sparsity at recall >= bisect target", [&](size_t i) {
      double best = 0;
      for (const auto& pt : heads[i].points)
        if (pt.recall >= o.bisect_recall) best = std::max(best, pt.sparsity);
      return best;
    });

    // Re-measures the chosen thresholds, each layer in one launch: the assignment's figures.
    auto remeasure = [&](const tuner::Assignment& a) {
      double sparsity = 0, recall = 0;
      for (int layer = 0; layer < 2; ++layer) {
        std::vector<float> th;
        for (size_t h = 0; h < spread.size(); ++h) {
          const size_t i = size_t(layer) * spread.size() + h;
          th.push_back(heads[i].points[size_t(a.choice[i])].threshold);
        }
        tuner::LayerCalibrator cal(rt, qs[size_t(layer)], ks[size_t(layer)], o);
        const tuner::LayerMeasure m = cal.measure(th);
        for (size_t h = 0; h < th.size(); ++h) sparsity += m.sparsity[h], recall += m.recall[h];
      }
      CHECK(sparsity / double(heads.size()) == Approx(a.sparsity).margin(1e-9));
      CHECK(recall / double(heads.size()) == Approx(a.recall).margin(1e-9));
    };
    auto chosen_sparsity = [&](const tuner::Assignment& a) {
      return [&heads, &a](size_t i) { return heads[i].points[size_t(a.choice[i])].sparsity; };
    };

    for (double target : {0.6, 0.8}) {
      INFO("target sparsity " << target);
      const tuner::Assignment a = tuner::best_recall_at_sparsity(heads, target);
      REQUIRE(a.feasible);
      CHECK(a.sparsity >= target);
      CHECK(a.sparsity <= target + 0.01);
      remeasure(a);
      // At a moderate target the sharp heads carry the sparsity; at a high one every head is on
      // the steep part of its curve and the optimum need not follow the spread.
      if (target == 0.6) check_rises("chosen sparsity", chosen_sparsity(a));
      WARN(fmt::format("{} target sparsity {}: sparsity {:.4f} recall {:.4f}", causal ? "causal" : "non-causal", target,
                       a.sparsity, a.recall));
    }
    {
      const double target = 0.9;
      INFO("target recall " << target);
      const tuner::Assignment a = tuner::best_sparsity_at_recall(heads, target);
      REQUIRE(a.feasible);
      CHECK(a.recall >= target);
      CHECK(a.recall <= target + 0.01);
      remeasure(a);
      check_rises("chosen sparsity", chosen_sparsity(a));
      WARN(fmt::format("{} target recall {}: sparsity {:.4f} recall {:.4f}", causal ? "causal" : "non-causal", target,
                       a.sparsity, a.recall));
    }
  }
}

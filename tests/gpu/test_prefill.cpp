// select, prefill and dense on the GPU against the fp64 reference (docs/semantics.md §8): fresh random
// inputs every run plus a vertical-vector pattern, poisoned outputs, odd lengths, GQA, BSHD.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "gpu/device_buffer.h"
#include "reference/dtype.h"
#include "reference/vecattn_ref.h"
#include "runtime/runtime.h"

using namespace vecattn;

namespace {

struct Case {
  int64_t S;
  int D = 128;
  DType dtype = DType::bf16;
  int pq = 64, bk = 16, gk = 16;
  bool causal = true;
  int64_t B = 1, Hq = 2, Hkv = 2;
  bool bshd = false;
  bool per_head = false;     // a different threshold per q head
  bool vertical = true;      // a vertical-vector pattern, else plain random
  float threshold = 0.9f;
  int64_t dense_prefix = 0;

  std::string str() const {
    return fmt::format("S {} D {} {} pq {} bk {} gk {} {} B {} Hq {} Hkv {} {} {} {} t {} prefix {}", S, D,
                       dtype_name(dtype), pq, bk, gk, causal ? "causal" : "noncausal", B, Hq, Hkv,
                       bshd ? "bshd" : "bhsd", per_head ? "per-head" : "one-threshold",
                       vertical ? "vertical" : "random", threshold, dense_prefix);
  }
};

// Host values (rounded to the dtype) in logical [B, H, S, D] order, and the device copy in the
// case's layout.
struct HostTensor {
  std::vector<float> logical;
  std::vector<uint16_t> bits;  // in memory layout
  Tensor view(void* data, const Case& c, int64_t heads) const {
    return c.bshd ? Tensor::bshd(data, c.dtype, c.B, c.S, heads, c.D) : Tensor::bhsd(data, c.dtype, c.B, heads, c.S, c.D);
  }
};

HostTensor make_tensor(const Case& c, int64_t heads, const std::vector<float>& values) {
  HostTensor t;
  t.logical.resize(values.size());
  t.bits.resize(values.size());
  const Tensor layout = t.view(nullptr, c, heads);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t s = 0; s < c.S; ++s)
        for (int64_t d = 0; d < c.D; ++d) {
          const size_t li = size_t(((b * heads + h) * c.S + s) * c.D + d);
          const uint16_t bits = ref::to_bits(c.dtype, values[li]);
          t.logical[li] = ref::from_bits(c.dtype, bits);
          t.bits[size_t(b * layout.stride[0] + h * layout.stride[1] + s * layout.stride[2] + d)] = bits;
        }
  return t;
}

struct Inputs {
  HostTensor q, k, v;
};

// Random q, k, v; with `vertical`, q shares a mean direction and ~4% of key columns point along
// it, so every query block sees the same few strong columns (the pattern VecAttention targets).
Inputs make_inputs(const Case& c, std::mt19937& rng) {
  std::normal_distribution<float> n01(0.f, 1.f);
  std::vector<float> dir(size_t(c.D));
  for (auto& x : dir) x = n01(rng) / std::sqrt(float(c.D));
  std::bernoulli_distribution strong(0.04);
  std::vector<float> q(size_t(c.B * c.Hq * c.S * c.D)), k(size_t(c.B * c.Hkv * c.S * c.D)), v(k.size());
  for (size_t i = 0; i < q.size(); ++i) q[i] = n01(rng) + (c.vertical ? 3.f * dir[i % size_t(c.D)] * std::sqrt(float(c.D)) : 0.f);
  for (size_t row = 0; row < k.size() / size_t(c.D); ++row) {
    const bool s = c.vertical && strong(rng);
    for (int64_t d = 0; d < c.D; ++d)
      k[row * size_t(c.D) + size_t(d)] = n01(rng) + (s ? 4.f * dir[size_t(d)] * std::sqrt(float(c.D)) : 0.f);
  }
  for (auto& x : v) x = n01(rng);
  return {make_tensor(c, c.Hq, q), make_tensor(c, c.Hkv, k), make_tensor(c, c.Hkv, v)};
}

ref::Problem problem(const Case& c, const std::vector<float>& thresholds) {
  ref::Problem p;
  p.B = c.B, p.Hq = c.Hq, p.Hkv = c.Hkv, p.S = c.S, p.D = c.D;
  p.dtype = c.dtype;
  p.pq = c.pq, p.bk = c.bk, p.gk = c.gk;
  p.causal = c.causal;
  p.thresholds = thresholds;
  p.dense_prefix = c.dense_prefix;
  return p;
}

std::vector<float> thresholds_for(const Case& c) {
  std::vector<float> t(size_t(c.Hq), c.threshold);
  if (c.per_head)
    for (int64_t h = 0; h < c.Hq; ++h) t[size_t(h)] = 0.5f + 0.45f * float(h) / float(std::max<int64_t>(1, c.Hq - 1));
  return t;
}

PrefillParams params_for(const Case& c, const std::vector<float>& thresholds) {
  PrefillParams p;
  p.pq = c.pq, p.bk = c.bk, p.gk = c.gk;
  p.causal = c.causal;
  p.threshold = c.threshold;
  if (c.per_head) {
    p.thresholds = thresholds.data();
    p.num_thresholds = c.Hq;
  }
  p.dense_prefix = c.dense_prefix;
  return p;
}

// Compares the GPU mask with the reference. A differing bit must lie within rounding of the
// threshold boundary (fp32 vs fp64 score sums); such flips are counted and bounded.
struct MaskDiff {
  int64_t flips = 0, wrong = 0, kept = 0, candidates = 0;
};
MaskDiff compare_masks(const Case& c, const std::vector<uint64_t>& gpu, const ref::SelectResult& r) {
  MaskDiff diff;
  const int64_t nq = (c.S + c.pq - 1) / c.pq, W = (c.S + 63) / 64;
  for (int64_t u = 0; u < c.B * c.Hq; ++u)
    for (int64_t i = 0; i < nq; ++i)
      for (int64_t w = 0; w < W; ++w) {
        const size_t wi = size_t((u * nq + i) * W + w);
        diff.kept += __builtin_popcountll(r.mask[wi]);
        uint64_t x = gpu[wi] ^ r.mask[wi];
        while (x) {
          const int64_t j = w * 64 + __builtin_ctzll(x);
          x &= x - 1;
          const float m = j < c.S ? r.margin[size_t((u * nq + i) * c.S + j)] : NAN;
          // Scores are O(10) here; fp32 sums of 128 products differ from fp64 by ~1e-5 relative.
          if (!std::isnan(m) && std::fabs(m) < 2e-3f) ++diff.flips;
          else if (diff.wrong++ < 5)
            FAIL_CHECK(fmt::format("unit {} block {} key {}: gpu {} reference {} (margin {})", u, i, j,
                                   (gpu[wi] >> (j % 64)) & 1, (r.mask[wi] >> (j % 64)) & 1, m));
        }
      }
  for (float m : r.margin) diff.candidates += !std::isnan(m);
  return diff;
}

// Relative error ||out - ref|| / ||ref|| over the rows checked (all, or a sample for long S).
double relative_error(const Case& c, const std::vector<uint16_t>& out_bits, const Tensor& out_view,
                      const ref::Problem& p, const Inputs& in, const std::vector<uint64_t>& mask, bool dense_ref,
                      std::mt19937& rng, int64_t* unwritten) {
  std::vector<int64_t> rows;
  const int64_t max_rows = 384;
  if (c.S <= max_rows * 4) {
    for (int64_t r = 0; r < c.S; ++r) rows.push_back(r);
  } else {
    std::uniform_int_distribution<int64_t> pick(0, c.S - 1);
    for (int64_t i = 0; i < max_rows; ++i) rows.push_back(pick(rng));
    rows.push_back(0);
    rows.push_back(c.S - 1);
  }
  const double scale = 1.0 / std::sqrt(double(c.D));
  double num = 0, den = 0;
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.Hq; ++h)
      for (int64_t r : rows) {
        std::vector<int64_t> keys;
        if (dense_ref) {
          for (int64_t j = 0; j < (c.causal ? r + 1 : c.S); ++j) keys.push_back(j);
        } else {
          keys = ref::attended(p, mask, b, h, r);
        }
        const int64_t kvh = p.kv_head(h);
        const float* qr = &in.q.logical[size_t(((b * c.Hq + h) * c.S + r) * c.D)];
        std::vector<double> logits(keys.size());
        double mx = -INFINITY;
        for (size_t t = 0; t < keys.size(); ++t) {
          const float* kr = &in.k.logical[size_t(((b * c.Hkv + kvh) * c.S + keys[t]) * c.D)];
          double dot = 0;
          for (int64_t d = 0; d < c.D; ++d) dot += double(qr[d]) * double(kr[d]);
          logits[t] = dot * scale;
          mx = std::max(mx, logits[t]);
        }
        std::vector<double> o(size_t(c.D), 0.0);
        double sum = 0;
        for (size_t t = 0; t < keys.size(); ++t) {
          const double w = std::exp(logits[t] - mx);
          sum += w;
          const float* vr = &in.v.logical[size_t(((b * c.Hkv + kvh) * c.S + keys[t]) * c.D)];
          for (int64_t d = 0; d < c.D; ++d) o[size_t(d)] += w * double(vr[d]);
        }
        for (int64_t d = 0; d < c.D; ++d) {
          const double want = sum > 0 ? o[size_t(d)] / sum : 0.0;
          const float got = ref::from_bits(
              c.dtype, out_bits[size_t(b * out_view.stride[0] + h * out_view.stride[1] + r * out_view.stride[2] + d)]);
          if (std::isnan(got)) ++*unwritten;
          num += (double(got) - want) * (double(got) - want);
          den += want * want;
        }
      }
  return std::sqrt(num / std::max(den, 1e-30));
}

double tolerance(DType t) { return t == DType::bf16 ? 1e-2 : 4e-3; }

struct Totals {
  int cases = 0;
  int64_t flips = 0, kept = 0, candidates = 0;
  double worst_error = 0;
};

void run_case(Runtime& rt, const Case& c, std::mt19937& rng, Totals& totals) {
  INFO(c.str());
  const Inputs in = make_inputs(c, rng);
  const std::vector<float> thresholds = thresholds_for(c);
  const ref::Problem p = problem(c, thresholds);
  const PrefillParams params = params_for(c, thresholds);
  const int64_t nq = (c.S + c.pq - 1) / c.pq;

  test::DeviceBuffer q(in.q.bits.size() * 2), k(in.k.bits.size() * 2), v(in.v.bits.size() * 2),
      out(in.q.bits.size() * 2), mask(size_t(Selection::bytes(c.B, c.Hq, c.S, c.pq)));
  q.upload(in.q.bits);
  k.upload(in.k.bits);
  v.upload(in.v.bits);
  out.poison();
  mask.poison();
  const Tensor tq = in.q.view(q.get(), c, c.Hq), tk = in.k.view(k.get(), c, c.Hkv), tv = in.v.view(v.get(), c, c.Hkv),
               to = in.q.view(out.get(), c, c.Hq);

  rt.select(tq, tk, params, Selection{mask.get()}, nullptr);
  const auto gpu_mask = mask.download<uint64_t>();
  const ref::SelectResult want = ref::select(p, in.q.logical, in.k.logical);
  const MaskDiff diff = compare_masks(c, gpu_mask, want);
  CHECK(diff.wrong == 0);
  CHECK(diff.flips <= std::max<int64_t>(4, diff.candidates / 20000));
  (void)nq;

  PrefillStats stats;
  rt.prefill(tq, tk, tv, to, params, nullptr, {}, &stats);
  int64_t unwritten = 0;
  const double err =
      relative_error(c, out.download<uint16_t>(), to, p, in, gpu_mask, false, rng, &unwritten);
  CHECK(unwritten == 0);
  CHECK(err < tolerance(c.dtype));
  const ref::Stats rs = ref::stats(p, gpu_mask);
  CHECK(stats.sparsity == Approx(rs.sparsity).margin(1e-9));
  for (int64_t h = 0; h < c.Hq; ++h) CHECK(stats.density[size_t(h)] == Approx(rs.density_per_head[size_t(h)]).margin(1e-9));

  totals.cases++;
  totals.flips += diff.flips;
  totals.kept += diff.kept;
  totals.candidates += diff.candidates;
  totals.worst_error = std::max(totals.worst_error, err);
}

constexpr int kBks[] = {16, 32, 64};
constexpr int kGks[] = {1, 4, 16, 128, 2, 64, 8, 32};

std::vector<Case> matrix() {
  std::vector<Case> cases;
  const int64_t lengths[] = {1, 63, 64, 65, 1000, 4113};
  int i = 0;
  for (int64_t S : lengths)
    for (bool causal : {true, false})
      for (DType t : {DType::bf16, DType::fp16}) {
        Case c{S};
        c.causal = causal;
        c.dtype = t;
        // Rotate the other dimensions so that each value meets each length and mode.
        c.D = (i % 3 == 2) ? 64 : 128;
        c.pq = (i % 4 == 3) ? 128 : 64;
        c.bk = kBks[i % 3];
        c.gk = kGks[i % 8];
        c.bshd = i % 2 == 1;
        c.per_head = i % 5 == 1;
        c.vertical = i % 3 != 1;
        if (i % 4 == 1) c.Hq = 4, c.Hkv = 1;   // GQA 4:1
        if (i % 6 == 5) c.B = 2;
        c.threshold = (i % 2) ? 0.8f : 0.9f;
        cases.push_back(c);
        ++i;
      }
  // Every Gk and Bk on a mid-length causal case; a dense prefix; long sequences.
  for (int gk : {1, 2, 4, 8, 16, 32, 64, 128}) {
    Case c{1500};
    c.gk = gk;
    c.bk = gk >= 32 ? 64 : 16;
    cases.push_back(c);
  }
  {
    Case c{777};
    c.dense_prefix = 200;
    cases.push_back(c);
    c.causal = false;
    c.dense_prefix = 65;
    cases.push_back(c);
  }
  {
    // Dense selections on long rows: the compacted list fills up and refills many times.
    Case c{20000};
    c.causal = false;
    c.threshold = 0.05f;
    c.vertical = false;
    cases.push_back(c);
    c.causal = true;
    c.S = 12000;
    c.pq = 128;
    c.threshold = 0.02f;
    cases.push_back(c);
  }
  {
    Case c{16384};
    c.Hq = 4, c.Hkv = 1, c.bshd = true;
    cases.push_back(c);
    c.causal = false;
    c.Hq = 2, c.Hkv = 2, c.pq = 128, c.bk = 32, c.gk = 64, c.per_head = true;
    cases.push_back(c);
  }
  return cases;
}

}  // namespace

TEST_CASE("select and prefill match the fp64 reference over the matrix", "[gpu][prefill]") {
  test::TestContext ctx;
  for (AttnPath path : test::attention_paths()) {
    INFO("attention path " << path_name(path));
    Runtime rt(test::in_memory(path));
    std::mt19937 rng(std::random_device{}());
    Totals t;
    for (const Case& c : matrix()) run_case(rt, c, rng, t);
    WARN(fmt::format("{} path, {} cases: {} of {} candidate keys kept, {} boundary flips; worst relative error {:.2e}",
                     path_name(path), t.cases, t.kept, t.candidates, t.flips, t.worst_error));
  }
}

namespace {

// Dense attention on one runtime (one attention path) against the fp64 reference.
void check_dense(Runtime& rt) {
  std::mt19937 rng(std::random_device{}());
  for (int64_t S : {1, 65, 1000, 4113})
    for (bool causal : {true, false})
      for (DType t : {DType::bf16, DType::fp16}) {
        Case c{S};
        c.causal = causal;
        c.dtype = t;
        c.D = S == 1000 ? 64 : 128;
        c.Hq = 4, c.Hkv = 2;
        c.bshd = S % 2 == 1;
        INFO(c.str());
        const Inputs in = make_inputs(c, rng);
        const ref::Problem p = problem(c, thresholds_for(c));
        test::DeviceBuffer q(in.q.bits.size() * 2), k(in.k.bits.size() * 2), v(in.v.bits.size() * 2),
            out(in.q.bits.size() * 2);
        q.upload(in.q.bits);
        k.upload(in.k.bits);
        v.upload(in.v.bits);
        out.poison();
        const Tensor to = in.q.view(out.get(), c, c.Hq);
        rt.dense(in.q.view(q.get(), c, c.Hq), in.k.view(k.get(), c, c.Hkv), in.v.view(v.get(), c, c.Hkv), to, causal);
        int64_t unwritten = 0;
        const double err = relative_error(c, out.download<uint16_t>(), to, p, in, {}, true, rng, &unwritten);
        CHECK(unwritten == 0);
        CHECK(err < tolerance(t));
      }
}

}  // namespace

TEST_CASE("dense attention matches the fp64 reference", "[gpu][dense]") {
  test::TestContext ctx;
  for (AttnPath path : test::attention_paths()) {
    INFO("attention path " << path_name(path));
    Runtime rt(test::in_memory(path));
    check_dense(rt);
  }
}

namespace {

// Results never depend on chunking, a caller's workspace means no allocation and no sync, and
// the whole prefill replays from a CUDA graph.
void check_chunking_and_graph(Runtime& rt) {
  const Driver& d = Driver::get();
  std::mt19937 rng(std::random_device{}());
  Case c{3000};
  c.B = 2, c.Hq = 4, c.Hkv = 2;
  const Inputs in = make_inputs(c, rng);
  const PrefillParams params = params_for(c, thresholds_for(c));
  test::DeviceBuffer q(in.q.bits.size() * 2), k(in.k.bits.size() * 2), v(in.v.bits.size() * 2),
      out(in.q.bits.size() * 2);
  q.upload(in.q.bits);
  k.upload(in.k.bits);
  v.upload(in.v.bits);
  const Tensor tq = in.q.view(q.get(), c, c.Hq), tk = in.k.view(k.get(), c, c.Hkv), tv = in.v.view(v.get(), c, c.Hkv),
               to = in.q.view(out.get(), c, c.Hq);

  const size_t full = rt.workspace_size(tq, tk, params), least = rt.workspace_min_bytes(tq, tk, params);
  REQUIRE(least < full);
  test::DeviceBuffer ws(full);
  out.poison();
  PrefillStats one_chunk, many_chunks;
  rt.prefill(tq, tk, tv, to, params, nullptr, Workspace{ws.get(), full}, &one_chunk);
  const auto reference = out.download<uint16_t>();
  out.poison();
  rt.prefill(tq, tk, tv, to, params, nullptr, Workspace{ws.get(), least}, &many_chunks);
  CHECK(out.download<uint16_t>() == reference);
  CHECK(one_chunk.chunks == 1);
  CHECK(many_chunks.chunks == int(c.B * c.Hq));
  CHECK(many_chunks.sparsity == one_chunk.sparsity);

  CUstream stream;
  d.check(d.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
  d.check(d.cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_GLOBAL), "cuStreamBeginCapture");
  rt.prefill(tq, tk, tv, to, params, reinterpret_cast<Stream>(stream), Workspace{ws.get(), least});
  CUgraph graph;
  d.check(d.cuStreamEndCapture(stream, &graph), "cuStreamEndCapture");
  CUgraphExec exec;
  d.check(d.cuGraphInstantiate(&exec, graph, 0), "cuGraphInstantiate");
  for (int replay = 0; replay < 2; ++replay) {
    out.poison();
    d.check(d.cuGraphLaunch(exec, stream), "cuGraphLaunch");
    d.check(d.cuStreamSynchronize(stream), "cuStreamSynchronize");
    CHECK(out.download<uint16_t>() == reference);
  }
  d.cuGraphExecDestroy(exec);
  d.cuGraphDestroy(graph);
  d.cuStreamDestroy(stream);
}

}  // namespace

TEST_CASE("prefill: chunking invariance and CUDA-graph capture", "[gpu][prefill][graph]") {
  test::TestContext ctx;
  for (AttnPath path : test::attention_paths()) {
    INFO("attention path " << path_name(path));
    Runtime rt(test::in_memory(path));
    check_chunking_and_graph(rt);
  }
}

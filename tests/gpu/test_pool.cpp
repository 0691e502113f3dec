// The pooling kernel against the CPU reference: fresh random inputs, poisoned outputs, odd
// lengths, BHSD / BSHD / fused-QKV strides, both dtypes, both head dims, both pool sizes.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <random>

#include "gpu/device_buffer.h"
#include "reference/dtype.h"
#include "reference/pool_ref.h"
#include "runtime/runtime.h"

using namespace vecattn;

namespace {

enum class Layout { bhsd, bshd, fused_qkv };
const char* layout_name(Layout l) { return l == Layout::bhsd ? "bhsd" : l == Layout::bshd ? "bshd" : "fused_qkv"; }

// Element offset of (b, h, s, d) and the total elements of a layout's allocation.
struct LayoutMap {
  int64_t strides[4];
  int64_t elements;
};
LayoutMap layout_map(Layout l, int64_t B, int64_t H, int64_t S, int64_t D) {
  switch (l) {
    case Layout::bhsd: return {{H * S * D, S * D, D, 1}, B * H * S * D};
    case Layout::bshd: return {{S * H * D, D, H * D, 1}, B * S * H * D};
    case Layout::fused_qkv: return {{S * 3 * H * D, D, 3 * H * D, 1}, B * S * 3 * H * D};  // q of [B,S,3,H,D]
  }
  return {};
}

struct Case {
  DType dtype;
  int D, pq;
  int64_t S;
  Layout layout;
  int64_t B = 2, H = 3;
};

// Returns the number of elements off by one step (rounding of a sum at a tie), fails on more.
int check_case(Runtime& rt, const Case& c, std::mt19937& rng) {
  INFO(fmt::format("dtype {} D {} Pq {} S {} layout {} B {} H {}", dtype_name(c.dtype), c.D, c.pq, c.S,
                   layout_name(c.layout), c.B, c.H));
  const int64_t nq = (c.S + c.pq - 1) / c.pq;
  const LayoutMap in = layout_map(c.layout, c.B, c.H, c.S, c.D);
  std::normal_distribution<float> normal(0.5f, 1.0f);  // a mean away from 0, like real activations

  std::vector<uint16_t> host(size_t(in.elements));
  for (auto& h : host) h = ref::to_bits(c.dtype, normal(rng));
  std::vector<float> logical(size_t(c.B * c.H * c.S * c.D));
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h)
      for (int64_t s = 0; s < c.S; ++s)
        for (int64_t d = 0; d < c.D; ++d)
          logical[size_t(((b * c.H + h) * c.S + s) * c.D + d)] = ref::from_bits(
              c.dtype, host[size_t(b * in.strides[0] + h * in.strides[1] + s * in.strides[2] + d)]);
  const std::vector<double> expected = ref::pool(logical, c.B, c.H, c.S, c.D, c.pq);

  test::DeviceBuffer q(host.size() * 2), out(size_t(c.B * c.H * nq * c.D) * 2);
  q.upload(host);
  out.poison();
  Tensor tq{q.get(), c.dtype, {c.B, c.H, c.S, c.D}, {in.strides[0], in.strides[1], in.strides[2], 1}};
  // The output in the transposed layout for BSHD inputs, so both output stride orders run.
  Tensor tout = c.layout == Layout::bshd ? Tensor::bshd(out.get(), c.dtype, c.B, nq, c.H, c.D)
                                         : Tensor::bhsd(out.get(), c.dtype, c.B, c.H, nq, c.D);
  rt.pool(tq, tout, c.pq, nullptr);
  const std::vector<uint16_t> got = out.download<uint16_t>();

  int one_step = 0, bad = 0;
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h)
      for (int64_t i = 0; i < nq; ++i)
        for (int64_t d = 0; d < c.D; ++d) {
          const uint16_t g = got[size_t(b * tout.stride[0] + h * tout.stride[1] + i * tout.stride[2] + d)];
          const uint16_t e = ref::to_bits(c.dtype, float(expected[size_t(((b * c.H + h) * nq + i) * c.D + d)]));
          const int dist = std::isnan(ref::from_bits(c.dtype, g)) ? 1 << 20 : ref::ulp_distance(g, e);
          if (dist == 1) ++one_step;
          if (dist > 1 && bad++ < 5)
            FAIL_CHECK(fmt::format("b {} h {} block {} d {}: got {} expected {}", b, h, i, d,
                                   ref::from_bits(c.dtype, g), ref::from_bits(c.dtype, e)));
        }
  CHECK(bad == 0);
  // fp32 summation order differs from the fp64 reference; a flip is possible only at a tie of
  // the final rounding, so it must stay rare.
  CHECK(one_step <= std::max<int64_t>(2, c.B * c.H * nq * c.D / 200));
  return one_step;
}

}  // namespace

TEST_CASE("pool matches the CPU reference over dtype x D x Pq x S x layout", "[gpu][pool]") {
  test::TestContext ctx;
  Runtime rt(test::in_memory());
  std::mt19937 rng(std::random_device{}());
  int cases = 0, flips = 0;
  for (DType t : {DType::bf16, DType::fp16})
    for (int D : {64, 128})
      for (int pq : {64, 128})
        for (int64_t S : {1, 63, 64, 65, 1000, 4113})
          for (Layout l : {Layout::bhsd, Layout::bshd, Layout::fused_qkv}) {
            flips += check_case(rt, Case{t, D, pq, S, l}, rng);
            ++cases;
          }
  flips += check_case(rt, Case{DType::bf16, 128, 64, 16384, Layout::bshd, 1, 8}, rng);
  flips += check_case(rt, Case{DType::fp16, 64, 128, 777, Layout::fused_qkv, 5, 1}, rng);
  WARN(fmt::format("{} pool cases, {} elements one rounding step from the fp64 reference", cases + 2, flips));
}

TEST_CASE("pool rejects bad arguments before launching", "[gpu][pool][validation]") {
  test::TestContext ctx;
  Runtime rt(test::in_memory());
  test::DeviceBuffer q(2 * 2 * 100 * 128 * 2), out(2 * 2 * 2 * 128 * 2);
  Tensor tq = Tensor::bhsd(q.get(), DType::bf16, 2, 2, 100, 128);
  Tensor tout = Tensor::bhsd(out.get(), DType::bf16, 2, 2, 2, 128);
  CHECK_NOTHROW(rt.pool(tq, tout, 64, nullptr));
  CHECK_THROWS_WITH(rt.pool(tq, tout, 32, nullptr), "Pq 32 is not supported: use 64, 128");
  CHECK_THROWS_WITH(rt.pool(tq, tout, 128, nullptr), Catch::Contains("expected [2, 2, 1, 128]"));
  Tensor q80 = Tensor::bhsd(q.get(), DType::bf16, 2, 2, 100, 80);
  Tensor out80 = Tensor::bhsd(out.get(), DType::bf16, 2, 2, 2, 80);
  CHECK_THROWS_WITH(rt.pool(q80, out80, 64, nullptr), Catch::Contains("head_dim 80 is not supported"));
  Tensor aliased = Tensor::bhsd(q.get(), DType::bf16, 2, 2, 2, 128);
  CHECK_THROWS_WITH(rt.pool(tq, aliased, 64, nullptr), Catch::Contains("out overlaps q"));
  Tensor half = Tensor::bhsd(out.get(), DType::fp16, 2, 2, 2, 128);
  CHECK_THROWS_WITH(rt.pool(tq, half, 64, nullptr), "q is bf16 but out is fp16: they must have the same dtype");
}

// A warm launch neither allocates nor synchronizes: it can be captured into a CUDA graph and
// replayed, and the replay computes the same result.
TEST_CASE("pool launches can be captured in a CUDA graph and replayed", "[gpu][pool][graph]") {
  test::TestContext ctx;
  const Driver& d = Driver::get();
  Runtime rt(test::in_memory());
  const int64_t B = 1, H = 4, S = 1000, D = 128, nq = (S + 63) / 64;
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<uint16_t> host(size_t(B * H * S * D));
  for (auto& h : host) h = ref::to_bits(DType::bf16, normal(rng));
  test::DeviceBuffer q(host.size() * 2), out(size_t(B * H * nq * D) * 2);
  q.upload(host);
  Tensor tq = Tensor::bhsd(q.get(), DType::bf16, B, H, S, D);
  Tensor tout = Tensor::bhsd(out.get(), DType::bf16, B, H, nq, D);
  rt.pool(tq, tout, 64, nullptr);  // warm: the module is loaded before capture
  const auto eager = out.download<uint16_t>();

  CUstream stream;
  d.check(d.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
  d.check(d.cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_GLOBAL), "cuStreamBeginCapture");
  rt.pool(tq, tout, 64, reinterpret_cast<Stream>(stream));
  CUgraph graph;
  d.check(d.cuStreamEndCapture(stream, &graph), "cuStreamEndCapture");
  CUgraphExec exec;
  d.check(d.cuGraphInstantiate(&exec, graph, 0), "cuGraphInstantiate");
  out.poison();
  d.check(d.cuGraphLaunch(exec, stream), "cuGraphLaunch");
  d.check(d.cuStreamSynchronize(stream), "cuStreamSynchronize");
  CHECK(out.download<uint16_t>() == eager);
  d.cuGraphExecDestroy(exec);
  d.cuGraphDestroy(graph);
  d.cuStreamDestroy(stream);
}

// A tile config never changes a result: the pooled rows feed the selection bit for bit.
TEST_CASE("every pool config yields the same bits", "[gpu][pool]") {
  test::TestContext ctx;
  Runtime rt(test::in_memory());
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> normal(0.3f, 1.f);
  for (DType t : {DType::bf16, DType::fp16})
    for (int pq : {64, 128}) {
      const int64_t B = 2, H = 3, S = 1000, D = 128, nq = (S + pq - 1) / pq;
      std::vector<uint16_t> host(size_t(B * H * S * D));
      for (auto& h : host) h = ref::to_bits(t, normal(rng));
      test::DeviceBuffer q(host.size() * 2), out(size_t(B * H * nq * D) * 2);
      q.upload(host);
      const Tensor tq = Tensor::bhsd(q.get(), t, B, H, S, D), tout = Tensor::bhsd(out.get(), t, B, H, nq, D);
      const KernelKey key = rt.key(KernelKind::pool, pq, 0, 0, int(D), t, false);
      std::vector<uint16_t> first;
      for (int warps : {1, 2, 3, 4, 8, 16}) {
        rt.set_config(key, TileConfig{0, warps, 0, AttnPath::mma});
        out.poison();
        rt.pool(tq, tout, pq, nullptr);
        const auto got = out.download<uint16_t>();
        if (first.empty()) first = got;
        INFO(dtype_name(t) << " pq " << pq << " warps " << warps);
        CHECK(got == first);
      }
      rt.clear_config();
    }
}

// One Runtime shared by host threads and streams: every output byte-identical to the same call
// run alone, through the C++ API and the C ABI; graph capture without a caller workspace.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "gpu/device_buffer.h"
#include "reference/dtype.h"
#include "runtime/vecattn.h"
#include "runtime/runtime.h"

using namespace vecattn;

namespace {

constexpr int kThreads = 4;
constexpr int kStreamsPerThread = 2;
constexpr int kCallsPerStream = 50;
constexpr int kCallsPerThread = kStreamsPerThread * kCallsPerStream;

enum class Op { prefill, select, dense };

// One call the stress test repeats: an op, a shape and its parameters.
struct Spec {
  Op op;
  int64_t B, Hq, Hkv, S;
  int D;
  DType dtype;
  bool bshd;
  PrefillParams params;
  std::vector<float> thresholds;  // per q head when non-empty

  std::string str() const {
    static const char* ops[] = {"prefill", "select", "dense"};
    return fmt::format("{} B {} Hq {} Hkv {} S {} D {} {} {} pq {} bk {} gk {} {}", ops[int(op)], B, Hq, Hkv, S, D,
                       dtype_name(dtype), bshd ? "bshd" : "bhsd", params.pq, params.bk, params.gk,
                       params.causal ? "causal" : "noncausal");
  }
  PrefillParams resolved() const {
    PrefillParams p = params;
    if (!thresholds.empty()) {
      p.thresholds = thresholds.data();
      p.num_thresholds = int64_t(thresholds.size());
    }
    return p;
  }
  Tensor view(void* data, int64_t heads) const {
    return bshd ? Tensor::bshd(data, dtype, B, S, heads, D) : Tensor::bhsd(data, dtype, B, heads, S, D);
  }
  size_t out_bytes() const {
    return op == Op::select ? size_t(Selection::bytes(B, Hq, S, params.pq)) : size_t(B * Hq * S * D * 2);
  }
};

PrefillParams make_params(int pq, int bk, int gk, bool causal, float threshold, int64_t prefix = 0) {
  PrefillParams p;
  p.pq = pq, p.bk = bk, p.gk = gk, p.causal = causal, p.threshold = threshold, p.dense_prefix = prefix;
  return p;
}

// Shapes that differ in every dimension the workspace size depends on, so calls in flight on
// different streams need scratch of different sizes (the old shared buffer grew under them).
std::vector<Spec> specs() {
  std::vector<Spec> s;
  s.push_back({Op::prefill, 1, 8, 2, 8192, 128, DType::bf16, false, make_params(64, 16, 16, true, 0.8f), {}});
  s.push_back({Op::prefill, 2, 4, 4, 5000, 64, DType::fp16, true, make_params(128, 32, 4, false, 0.9f), {}});
  s.push_back({Op::prefill, 1, 4, 4, 12000, 128, DType::bf16, false, make_params(64, 16, 16, true, 0.9f, 700),
               {0.6f, 0.75f, 0.85f, 0.95f}});
  s.push_back({Op::select, 1, 8, 2, 8192, 128, DType::bf16, false, make_params(64, 16, 16, true, 0.7f), {}});
  s.push_back({Op::select, 2, 4, 4, 6000, 64, DType::fp16, true, make_params(128, 64, 2, false, 0.9f), {}});
  s.push_back({Op::dense, 1, 8, 2, 4096, 128, DType::bf16, false, make_params(64, 16, 16, true, 0.9f), {}});
  return s;
}

// Fresh random device inputs for one spec.
struct SpecInputs {
  std::unique_ptr<test::DeviceBuffer> q, k, v;
};

SpecInputs make_inputs(const Spec& s, std::mt19937& rng) {
  std::normal_distribution<float> n01;
  auto fill = [&](int64_t heads) {
    std::vector<uint16_t> bits(size_t(s.B * heads * s.S * s.D));
    for (auto& x : bits) x = ref::to_bits(s.dtype, n01(rng));
    auto buf = std::make_unique<test::DeviceBuffer>(bits.size() * 2);
    buf->upload(bits);
    return buf;
  };
  SpecInputs in;
  in.q = fill(s.Hq);
  in.k = fill(s.Hkv);
  in.v = fill(s.Hkv);
  return in;
}

// Runs one spec into `out` on `stream`, with `ws` when it holds memory. The C++ API and the C
// ABI each provide one.
using Caller = std::function<void(const Spec&, const SpecInputs&, void* out, CUstream, Workspace)>;

Caller cpp_caller(Runtime& rt) {
  return [&rt](const Spec& s, const SpecInputs& in, void* out, CUstream stream, Workspace ws) {
    const Tensor q = s.view(in.q->get(), s.Hq), k = s.view(in.k->get(), s.Hkv), v = s.view(in.v->get(), s.Hkv);
    const Stream st = reinterpret_cast<Stream>(stream);
    switch (s.op) {
      case Op::prefill: rt.prefill(q, k, v, s.view(out, s.Hq), s.resolved(), st, ws); break;
      case Op::select: rt.select(q, k, s.resolved(), Selection{out}, st, ws); break;
      case Op::dense: rt.dense(q, k, v, s.view(out, s.Hq), s.params.causal, st); break;
    }
  };
}

vecattn_tensor to_c(const Tensor& t) {
  vecattn_tensor c;
  c.data = t.data;
  c.dtype = t.dtype == DType::fp16 ? VECATTN_FP16 : VECATTN_BF16;
  for (int i = 0; i < 4; ++i) c.shape[i] = t.shape[i], c.stride[i] = t.stride[i];
  return c;
}

Caller c_caller(vecattn_runtime* rt) {
  return [rt](const Spec& s, const SpecInputs& in, void* out, CUstream stream, Workspace ws) {
    const vecattn_tensor q = to_c(s.view(in.q->get(), s.Hq)), k = to_c(s.view(in.k->get(), s.Hkv)),
                         v = to_c(s.view(in.v->get(), s.Hkv)), o = to_c(s.view(out, s.Hq));
    const PrefillParams r = s.resolved();
    vecattn_prefill_params p = vecattn_default_params();
    p.pq = r.pq, p.bk = r.bk, p.gk = r.gk, p.causal = r.causal, p.threshold = r.threshold;
    p.thresholds = r.thresholds, p.num_thresholds = r.num_thresholds, p.dense_prefix = r.dense_prefix;
    vecattn_status st = VECATTN_OK;
    switch (s.op) {
      case Op::prefill: st = vecattn_prefill(rt, &q, &k, &v, &o, &p, stream, ws.data, ws.bytes, nullptr); break;
      case Op::select: st = vecattn_select(rt, &q, &k, &p, out, stream, ws.data, ws.bytes); break;
      case Op::dense: st = vecattn_dense(rt, &q, &k, &v, &o, s.params.causal, stream); break;
    }
    if (st != VECATTN_OK) throw std::runtime_error(vecattn_last_error());
  };
}

struct StressResult {
  int calls = 0, differing = 0;
  double seconds = 0;
};

// kThreads threads x kStreamsPerThread streams x kCallsPerStream calls of random specs, nothing
// synchronized until all are enqueued; every output compared byte for byte with `alone`.
// Odd threads give their second stream a workspace of its own; every other call has none.
StressResult stress(const Caller& call, const std::vector<Spec>& all, const std::vector<SpecInputs>& inputs,
                    const std::vector<std::vector<uint8_t>>& alone, uint32_t seed) {
  const Driver& d = Driver::get();
  struct Slot {
    size_t spec;
    int stream;
    std::unique_ptr<test::DeviceBuffer> out;
  };
  std::vector<std::vector<Slot>> slots(kThreads);
  std::mt19937 rng(seed);
  for (auto& thread_slots : slots)
    for (int c = 0; c < kCallsPerThread; ++c) {
      const size_t spec = rng() % all.size();
      auto out = std::make_unique<test::DeviceBuffer>(all[spec].out_bytes());
      out->poison();
      thread_slots.push_back({spec, c % kStreamsPerThread, std::move(out)});
    }
  // The workspace an odd thread's second stream gets: enough for every spec at once.
  Runtime sizer(test::in_memory());
  size_t ws_bytes = 0;
  for (size_t i = 0; i < all.size(); ++i)
    if (all[i].op != Op::dense)
      ws_bytes = std::max(ws_bytes, sizer.workspace_size(all[i].view(inputs[i].q->get(), all[i].Hq),
                                                         all[i].view(inputs[i].k->get(), all[i].Hkv), all[i].resolved()));
  std::vector<std::unique_ptr<test::DeviceBuffer>> thread_ws;
  for (int t = 0; t < kThreads; ++t) thread_ws.push_back(std::make_unique<test::DeviceBuffer>(ws_bytes));

  CUcontext ctx = nullptr;
  d.check(d.cuCtxGetCurrent(&ctx), "cuCtxGetCurrent");
  std::atomic<int> failures{0};
  std::string first_failure;
  std::mutex failure_mutex;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      try {
        d.check(d.cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
        CUstream streams[kStreamsPerThread];
        for (auto& s : streams) d.check(d.cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
        for (const Slot& slot : slots[size_t(t)]) {
          const bool own_ws = t % 2 == 1 && slot.stream == 1;
          const Workspace ws = own_ws ? Workspace{thread_ws[size_t(t)]->get(), ws_bytes} : Workspace{};
          call(all[slot.spec], inputs[slot.spec], slot.out->get(), streams[slot.stream], ws);
        }
        for (auto& s : streams) {
          d.check(d.cuStreamSynchronize(s), "cuStreamSynchronize");
          d.cuStreamDestroy(s);
        }
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (failures++ == 0) first_failure = e.what();
      }
    });
  for (auto& th : threads) th.join();
  REQUIRE(first_failure == "");
  StressResult r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& thread_slots : slots)
    for (const Slot& slot : thread_slots) {
      ++r.calls;
      if (slot.out->download<uint8_t>() != alone[slot.spec]) {
        ++r.differing;
        UNSCOPED_INFO("differs from the call alone: " << all[slot.spec].str());
      }
    }
  return r;
}

// Each spec run alone (one call, then a synchronization) by a separate runtime.
std::vector<std::vector<uint8_t>> run_alone(const std::vector<Spec>& all, const std::vector<SpecInputs>& inputs) {
  Runtime rt(test::in_memory());
  const Caller call = cpp_caller(rt);
  std::vector<std::vector<uint8_t>> out;
  for (size_t i = 0; i < all.size(); ++i) {
    test::DeviceBuffer buf(all[i].out_bytes());
    buf.poison();
    call(all[i], inputs[i], buf.get(), nullptr, {});
    out.push_back(buf.download<uint8_t>());
    // Sanity: an output nothing wrote would still compare equal to itself.
    if (all[i].op != Op::select) {
      const auto half = buf.download<uint16_t>();
      CHECK(std::none_of(half.begin(), half.end(), [](uint16_t x) { return x == 0xffff; }));
    }
  }
  return out;
}

}  // namespace

TEST_CASE("one Runtime, 4 threads x 2 streams: every output equals the call alone", "[gpu][concurrency][stress]") {
  test::TestContext ctx;
  std::mt19937 rng(std::random_device{}());
  const std::vector<Spec> all = specs();
  std::vector<SpecInputs> inputs;
  for (const Spec& s : all) inputs.push_back(make_inputs(s, rng));
  const auto alone = run_alone(all, inputs);

  SECTION("C++ API, a fresh runtime (threads race to compile too)") {
    Runtime rt(test::in_memory());
    const StressResult r = stress(cpp_caller(rt), all, inputs, alone, rng());
    WARN(fmt::format("C++ API: {} calls in {:.2f} s, {} differ from the call alone", r.calls, r.seconds, r.differing));
    CHECK(r.differing == 0);
  }
  SECTION("C ABI") {
    vecattn_runtime* rt = nullptr;
    REQUIRE(vecattn_create(0, nullptr, &rt) == VECATTN_OK);
    const StressResult r = stress(c_caller(rt), all, inputs, alone, rng());
    vecattn_destroy(rt);
    WARN(fmt::format("C ABI: {} calls in {:.2f} s, {} differ from the call alone", r.calls, r.seconds, r.differing));
    CHECK(r.differing == 0);
  }
}

// A prefill captured without a caller workspace: its scratch becomes graph allocation nodes, and
// every replay equals the call made directly. Stats on a capturing stream fail clearly.
TEST_CASE("prefill captured in a CUDA graph without a caller workspace", "[gpu][concurrency][graph]") {
  test::TestContext ctx;
  const Driver& d = Driver::get();
  std::mt19937 rng(std::random_device{}());
  const Spec s = specs()[0];
  const SpecInputs in = make_inputs(s, rng);
  Runtime rt(test::in_memory());
  const Caller call = cpp_caller(rt);
  test::DeviceBuffer out(s.out_bytes()), other(s.out_bytes());
  out.poison();
  call(s, in, out.get(), nullptr, {});
  const auto direct = out.download<uint8_t>();

  CUstream stream;
  d.check(d.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
  d.check(d.cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_GLOBAL), "cuStreamBeginCapture");
  call(s, in, out.get(), stream, {});
  // Stats need a synchronization: refused before anything is enqueued, the capture intact.
  PrefillStats stats;
  try {
    rt.prefill(s.view(in.q->get(), s.Hq), s.view(in.k->get(), s.Hkv), s.view(in.v->get(), s.Hkv),
               s.view(other.get(), s.Hq), s.resolved(), reinterpret_cast<Stream>(stream), {}, &stats);
    FAIL("prefill with stats on a capturing stream did not throw");
  } catch (const Error& e) {
    CHECK(e.status() == Status::invalid_argument);
    CHECK(std::string(e.what()).find("captured") != std::string::npos);
  }
  CUgraph graph;
  d.check(d.cuStreamEndCapture(stream, &graph), "cuStreamEndCapture");
  CUgraphExec exec;
  d.check(d.cuGraphInstantiate(&exec, graph, 0), "cuGraphInstantiate");
  for (int replay = 0; replay < 3; ++replay) {
    out.poison();
    d.check(d.cuGraphLaunch(exec, stream), "cuGraphLaunch");
    d.check(d.cuStreamSynchronize(stream), "cuStreamSynchronize");
    CHECK(out.download<uint8_t>() == direct);
  }
  d.cuGraphExecDestroy(exec);
  d.cuGraphDestroy(graph);
  d.cuStreamDestroy(stream);
  rt.release_workspace_memory();
}

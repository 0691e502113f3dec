// vecattn-bench: times dense attention and VecAttention prefill (pool / select / attend) on
// synthetic inputs with a vertical-vector pattern, and reports sparsity, workspace and TFLOP/s.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "codegen/error.h"
#include "runtime/driver.h"
#include "runtime/vecattn.hpp"
#include "tuner/synthetic.h"

namespace {

using namespace vecattn;

struct Args {
  std::vector<int64_t> seq_lens{8192, 32768};
  int64_t batch = 1, heads = 32, kv_heads = 32, head_dim = 128;
  std::string dtype = "bf16";
  bool causal = true;
  std::vector<float> thresholds{0.8f, 0.9f};
  int pq = 64, bk = 16, gk = 16;
  int reps = 10;
  double strong_fraction = 0.02;  // key columns aligned with the mean query direction
  bool skip_dense = false;
  int device = 0;
};

class Events {
 public:
  Events() {
    const Driver& d = Driver::get();
    d.check(d.cuEventCreate(&a_, CU_EVENT_DEFAULT), "cuEventCreate");
    d.check(d.cuEventCreate(&b_, CU_EVENT_DEFAULT), "cuEventCreate");
  }
  ~Events() {
    Driver::get().cuEventDestroy(a_);
    Driver::get().cuEventDestroy(b_);
  }
  template <typename F> double median_ms(int reps, F&& f) {
    const Driver& d = Driver::get();
    f();  // warm-up: module loads and the owned workspace stay out of the numbers
    d.check(d.cuCtxSynchronize(), "cuCtxSynchronize");
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
      d.check(d.cuEventRecord(a_, nullptr), "cuEventRecord");
      f();
      d.check(d.cuEventRecord(b_, nullptr), "cuEventRecord");
      d.check(d.cuEventSynchronize(b_), "cuEventSynchronize");
      float ms = 0;
      d.check(d.cuEventElapsedTime(&ms, a_, b_), "cuEventElapsedTime");
      t.push_back(ms);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  }

 private:
  CUevent a_, b_;
};

int run(const Args& a) {
  const DType t = parse_dtype(a.dtype);
  RuntimeOptions o;
  o.device = a.device;
  Runtime rt(o);
  const Driver& d = Driver::get();
  CUdevice dev;
  CUcontext ctx;
  d.check(d.cuDeviceGet(&dev, a.device), "cuDeviceGet");
  d.check(d.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
  ScopedContext scope(ctx);
  std::mt19937_64 rng(std::random_device{}());
  std::printf("# %s, B=%lld Hq=%lld Hkv=%lld D=%lld %s %s, Pq=%d Bk=%d Gk=%d, median of %d\n", rt.device().name.c_str(),
              (long long)a.batch, (long long)a.heads, (long long)a.kv_heads, (long long)a.head_dim, a.dtype.c_str(),
              a.causal ? "causal" : "noncausal", a.pq, a.bk, a.gk, a.reps);
  std::printf("%8s %6s %10s %10s %9s %9s %9s %9s %9s %8s %10s %7s\n", "S", "thr", "dense_ms", "dense_TF", "sparse_ms",
              "pool_ms", "select_ms", "attend_ms", "sparsity", "speedup", "ws_MiB", "chunks");
  for (int64_t S : a.seq_lens) {
    tuner::AttentionInputs in(a.batch, a.heads, a.kv_heads, S, a.head_dim, t, a.strong_fraction, rng);
    const tuner::DeviceTensor &q = in.q, &k = in.k, &v = in.v, &out = in.out;
    Events ev;
    const double pairs = double(a.batch * a.heads) * (a.causal ? double(S) * double(S + 1) / 2 : double(S) * double(S));
    const double dense_flops = 4.0 * pairs * double(a.head_dim);
    double dense_ms = NAN;
    if (!a.skip_dense)
      dense_ms = ev.median_ms(a.reps, [&] { rt.dense(q.view(), k.view(), v.view(), out.view(), a.causal, nullptr); });
    for (float thr : a.thresholds) {
      PrefillParams p;
      p.pq = a.pq, p.bk = a.bk, p.gk = a.gk, p.causal = a.causal, p.threshold = thr;
      const size_t ws = rt.workspace_size(q.view(), k.view(), p);
      const double ms = ev.median_ms(a.reps, [&] { rt.prefill(q.view(), k.view(), v.view(), out.view(), p, nullptr); });
      PrefillStats st;
      rt.prefill(q.view(), k.view(), v.view(), out.view(), p, nullptr, {}, &st);
      std::printf("%8lld %6.2f %10.2f %10.1f %9.2f %9.2f %9.2f %9.2f %9.4f %8.2f %10.0f %7d\n", (long long)S, thr, dense_ms,
                  dense_flops / dense_ms / 1e9, ms, st.pool_ms, st.select_ms, st.attend_ms, st.sparsity,
                  dense_ms / ms, double(ws) / (1 << 20), st.chunks);
      std::fflush(stdout);
    }
  }
  // What a launch pays for choosing its config once the first lookup is done.
  const KernelKey key = rt.key(KernelKind::select, a.pq, a.bk, a.gk, int(a.head_dim), t, a.causal);
  const auto t0 = std::chrono::steady_clock::now();
  const ConfigChoice first = rt.config_for(key);
  const auto t1 = std::chrono::steady_clock::now();
  constexpr int kLookups = 200000;
  size_t sink = 0;
  for (int i = 0; i < kLookups; ++i) sink += size_t(rt.config_for(key).config.rows);
  const auto t2 = std::chrono::steady_clock::now();
  std::printf("# config lookup for %s: first %.1f us (%s), then %.0f ns per call%s\n", key.str().c_str(),
              std::chrono::duration<double, std::micro>(t1 - t0).count(), source_name(first.source),
              std::chrono::duration<double, std::nano>(t2 - t1).count() / kLookups, sink ? "" : " ");
  d.cuDevicePrimaryCtxRelease(dev);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vecattn-bench: dense attention and VecAttention prefill, side by side"};
  Args a;
  app.add_option("--seq-len", a.seq_lens, "sequence lengths")->delimiter(',');
  app.add_option("--batch", a.batch)->check(CLI::PositiveNumber);
  app.add_option("--heads", a.heads, "q heads")->check(CLI::PositiveNumber);
  app.add_option("--kv-heads", a.kv_heads)->check(CLI::PositiveNumber);
  app.add_option("--head-dim", a.head_dim);
  app.add_option("--dtype", a.dtype, "bf16 or fp16");
  app.add_option("--causal", a.causal, "1 or 0");
  app.add_option("--thresholds", a.thresholds)->delimiter(',');
  app.add_option("--pq", a.pq);
  app.add_option("--bk", a.bk);
  app.add_option("--gk", a.gk);
  app.add_option("--reps", a.reps)->check(CLI::PositiveNumber);
  app.add_option("--strong-fraction", a.strong_fraction, "fraction of key columns on the vertical direction");
  app.add_flag("--skip-dense", a.skip_dense, "time only the prefill");
  app.add_option("--device", a.device);
  CLI11_PARSE(app, argc, argv);
  try {
    return run(a);
  } catch (const Error& e) {
    std::fprintf(stderr, "vecattn-bench: %s\n%s\n", e.what(), e.detail().c_str());
    return e.status() == Status::no_driver || e.status() == Status::no_device ? 2 : 1;
  }
}

// vecattn-bench: times dense attention and VecAttention prefill (pool / select / attend) on
// synthetic inputs with a vertical-vector pattern, and reports sparsity, workspace and TFLOP/s.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "codegen/error.h"
#include "runtime/driver.h"
#include "runtime/vecattn.hpp"

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

// Device memory filled on the host: normal-ish noise (sum of random bits), plus for q a shared
// direction and for k a direction on `strong_fraction` of the rows (the vertical pattern).
class DeviceTensor {
 public:
  DeviceTensor(int64_t b, int64_t h, int64_t s, int64_t d, DType t) : t_(t) {
    view_ = Tensor::bhsd(nullptr, t, b, h, s, d);
    bytes_ = size_t(b * h * s * d) * 2;
    const Driver& drv = Driver::get();
    drv.check(drv.cuMemAlloc(&ptr_, bytes_), "cuMemAlloc");
    view_.data = reinterpret_cast<void*>(ptr_);
  }
  ~DeviceTensor() { Driver::get().cuMemFree(ptr_); }
  const Tensor& view() const { return view_; }

  // Fills with rows of noise + weight * dir on a fraction of the rows; the host makes one pool
  // of rows and copies it around with a rotating offset (filling 30 GiB row by row would take
  // minutes).
  void fill(std::mt19937_64& rng, const std::vector<float>& dir, double fraction, float weight) {
    const int64_t d = view_.head_dim();
    const int64_t pool_rows = 1 << 16;
    std::vector<uint16_t> pool(size_t(pool_rows * d));
    std::bernoulli_distribution strong(fraction);
    for (int64_t r = 0; r < pool_rows; ++r) {
      const bool s = strong(rng);
      for (int64_t j = 0; j < d; j += 4) {
        const uint64_t bits = rng();
        for (int64_t e = 0; e < 4; ++e) {
          const float noise = (float(__builtin_popcount(uint32_t(bits >> (16 * e)) & 0xffffu)) - 8.f) / 2.f;
          const float x = noise + (s ? weight * dir[size_t(j + e)] : 0.f);
          uint32_t u;
          std::memcpy(&u, &x, 4);
          pool[size_t(r * d + j + e)] = t_ == DType::bf16 ? uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16)
                                                          : half_bits(x);
        }
      }
    }
    const Driver& drv = Driver::get();
    const size_t pool_bytes = pool.size() * 2;
    size_t offset = 0, rotate = 0;
    while (offset < bytes_) {
      const size_t start = (rotate * 7919 % pool_rows) * size_t(d) * 2;
      const size_t n = std::min(bytes_ - offset, pool_bytes - start);
      drv.check(drv.cuMemcpyHtoD(ptr_ + offset, reinterpret_cast<const char*>(pool.data()) + start, n), "cuMemcpyHtoD");
      offset += n;
      ++rotate;
    }
  }

 private:
  static uint16_t half_bits(float f) {  // |f| < 65504 here; round to nearest, ties away (a benchmark input)
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const int e = int((x >> 23) & 0xff) - 127 + 15;
    if (e <= 0) return uint16_t(sign);
    return uint16_t(sign | (uint32_t(e) << 10) | ((x & 0x7fffffu) + 0x1000u) >> 13);
  }
  CUdeviceptr ptr_ = 0;
  size_t bytes_ = 0;
  DType t_;
  Tensor view_;
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
  std::vector<float> dir(size_t(a.head_dim));
  std::normal_distribution<float> n01;
  for (auto& x : dir) x = n01(rng);
  std::printf("# %s, B=%lld Hq=%lld Hkv=%lld D=%lld %s %s, Pq=%d Bk=%d Gk=%d, median of %d\n", rt.device().name.c_str(),
              (long long)a.batch, (long long)a.heads, (long long)a.kv_heads, (long long)a.head_dim, a.dtype.c_str(),
              a.causal ? "causal" : "noncausal", a.pq, a.bk, a.gk, a.reps);
  std::printf("%8s %6s %10s %10s %9s %9s %9s %9s %9s %8s %10s %7s\n", "S", "thr", "dense_ms", "dense_TF", "sparse_ms",
              "pool_ms", "select_ms", "attend_ms", "sparsity", "speedup", "ws_MiB", "chunks");
  for (int64_t S : a.seq_lens) {
    DeviceTensor q(a.batch, a.heads, S, a.head_dim, t), k(a.batch, a.kv_heads, S, a.head_dim, t),
        v(a.batch, a.kv_heads, S, a.head_dim, t), out(a.batch, a.heads, S, a.head_dim, t);
    q.fill(rng, dir, 1.0, 1.0f);
    k.fill(rng, dir, a.strong_fraction, 2.5f);
    v.fill(rng, dir, 0.0, 0.f);
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

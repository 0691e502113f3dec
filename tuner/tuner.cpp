#include "tuner/tuner.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include "codegen/compiler.h"
#include "codegen/error.h"
#include "codegen/nvrtc.h"
#include "codegen/host_dtype.h"
#include "codegen/log.h"
#include "runtime/driver.h"
#include "tuner/search_space.h"

namespace vecattn::tuner {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Two input sets of >= 128 MiB each: alternating between them keeps every timed run out of L2
// (50 MB on an H100, 60 MB on an H200).
constexpr int kInputSets = 2;

double relative_difference(DType t, const std::vector<uint16_t>& a, const std::vector<uint16_t>& b) {
  if (a.size() != b.size()) return kInf;
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = from_bits(t, a[i]), y = from_bits(t, b[i]);
    if (std::isnan(x) != std::isnan(y)) return kInf;
    num += (x - y) * (x - y);
    den += y * y;
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

cache::TunedRow tuned_row(const Result& r, const DeviceInfo& device) {
  cache::TunedRow row;
  row.kernel_key = r.key.str();
  row.config = r.best.str(r.key.kernel);
  row.device_name = device.name;
  row.arch = device.arch;
  row.median_ms = r.best_ms;
  row.default_ms = r.default_ms;
  row.density = r.density;
  row.seq_len = r.seq_len;
  row.driver_version = device.driver_version;
  try {
    row.nvrtc_version = Nvrtc::get().version();
  } catch (const Error&) {
    row.nvrtc_version = "none";  // kernels came from the cache
  }
  row.library_version = library_version();
  return row;
}

// Pooled rows must be bit-identical. Selections may differ only where a score sits on the MinP
// boundary and the MMA's fp32 summation order tips it (mma.sync and wgmma add the products in
// different orders): a share of the mask's bits, of the order of the boundary flips against the
// fp64 rule (docs/semantics.md §8). Attention outputs: within rounding.
double output_tolerance(const KernelKey& key) {
  switch (key.kernel) {
    case KernelKind::pool: return 0.0;
    case KernelKind::select: return 1e-6;
    default: return key.dtype == DType::bf16 ? 5e-3 : 2e-3;
  }
}

// The share of mask bits that differ (the mask travels as 16-bit words).
double mask_difference(const std::vector<uint16_t>& a, const std::vector<uint16_t>& b) {
  if (a.size() != b.size() || a.empty()) return a.size() == b.size() ? 0.0 : kInf;
  size_t differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ += size_t(__builtin_popcount(unsigned(a[i] ^ b[i])));
  return double(differ) / (16.0 * double(a.size()));
}

struct Tuner::Inputs {
  std::vector<std::unique_ptr<AttentionInputs>> sets;
  std::unique_ptr<DeviceTensor> pooled;   // pool output, [1, H, ceil(S / 64), D]
  CUdeviceptr mask = 0;                   // select output for Pq = 64 (the larger of the two)
  size_t mask_bytes = 0;
  ~Inputs() {
    if (mask) Driver::get().cuMemFree(mask);
  }
};

Tuner::Tuner(Runtime& rt, const Options& options) : rt_(rt), o_(options), rng_(std::random_device{}()) {
  const Driver& d = Driver::get();
  CUdevice dev;
  d.check(d.cuDeviceGet(&dev, rt.device().ordinal), "cuDeviceGet");
  d.check(d.cuDevicePrimaryCtxRetain(&context_, dev), "cuDevicePrimaryCtxRetain");
}

Tuner::~Tuner() {
  {
    ScopedContext scope(context_);  // the inputs are freed in their context
    inputs_.clear();
  }
  CUdevice dev;
  const Driver& d = Driver::get();
  if (d.cuDeviceGet(&dev, rt_.device().ordinal) == CUDA_SUCCESS) d.cuDevicePrimaryCtxRelease(dev);
}

Tuner::Inputs& Tuner::inputs_for(const KernelKey& key) {
  auto& slot = inputs_[{key.head_dim, key.dtype}];
  if (slot) return *slot;
  slot = std::make_unique<Inputs>();
  for (int i = 0; i < kInputSets; ++i)
    slot->sets.push_back(std::make_unique<AttentionInputs>(1, o_.heads, o_.heads, o_.seq_len, key.head_dim, key.dtype,
                                                           o_.strong_fraction, rng_, o_.vertical));
  slot->pooled = std::make_unique<DeviceTensor>(1, o_.heads, (o_.seq_len + 63) / 64, key.head_dim, key.dtype);
  slot->mask_bytes = size_t(Selection::bytes(1, o_.heads, o_.seq_len, 64));
  const Driver& d = Driver::get();
  d.check(d.cuMemAlloc(&slot->mask, slot->mask_bytes), "cuMemAlloc");
  return *slot;
}

double Tuner::time_config(const KernelKey& key, const TileConfig& config, Inputs& in, std::vector<uint16_t>* output,
                          double* density) {
  const Driver& d = Driver::get();
  rt_.set_config(key, config);
  PrefillParams p;
  p.pq = key.pq ? key.pq : 64;
  p.bk = key.bk ? key.bk : 16;
  p.gk = key.gk ? key.gk : 16;
  p.causal = key.causal;
  p.threshold = o_.threshold;

  CUevent start, stop;
  d.check(d.cuEventCreate(&start, CU_EVENT_DEFAULT), "cuEventCreate");
  d.check(d.cuEventCreate(&stop, CU_EVENT_DEFAULT), "cuEventCreate");
  std::vector<double> times;
  // One run on input set `i`; returns its kernel's milliseconds.
  auto run = [&](int i) -> double {
    const AttentionInputs& s = *in.sets[size_t(i % kInputSets)];
    if (key.kernel == KernelKind::sparse_attn) {
      PrefillStats st;  // its events bracket each phase; only the attention phase is this key's
      rt_.prefill(s.q.view(), s.k.view(), s.v.view(), s.out.view(), p, nullptr, {}, &st);
      *density = 1.0 - st.sparsity;
      return st.attend_ms;
    }
    d.check(d.cuEventRecord(start, nullptr), "cuEventRecord");
    switch (key.kernel) {
      case KernelKind::pool: {
        Tensor out = in.pooled->view();
        out.shape[2] = (o_.seq_len + key.pq - 1) / key.pq;
        out.stride[0] = out.shape[1] * out.shape[2] * out.shape[3];
        out.stride[1] = out.shape[2] * out.shape[3];
        rt_.pool(s.q.view(), out, key.pq, nullptr);
        break;
      }
      case KernelKind::select:
        rt_.select(s.q.view(), s.k.view(), p, Selection{reinterpret_cast<void*>(in.mask)}, nullptr);
        break;
      case KernelKind::dense_attn: rt_.dense(s.q.view(), s.k.view(), s.v.view(), s.out.view(), key.causal, nullptr); break;
      default: break;
    }
    d.check(d.cuEventRecord(stop, nullptr), "cuEventRecord");
    d.check(d.cuEventSynchronize(stop), "cuEventSynchronize");
    float ms = 0;
    d.check(d.cuEventElapsedTime(&ms, start, stop), "cuEventElapsedTime");
    return ms;
  };
  try {
    for (int i = 0; i < o_.warmup; ++i) run(i);
    for (int i = 0; i < o_.reps; ++i) times.push_back(run(i));
    // The output of set 0, from a run with the output poisoned first.
    const AttentionInputs& s0 = *in.sets[0];
    if (key.kernel == KernelKind::select) {
      d.check(d.cuMemsetD8(in.mask, 0xff, in.mask_bytes), "cuMemsetD8");
      run(0);
      const size_t used = size_t(Selection::bytes(1, o_.heads, o_.seq_len, key.pq));
      output->resize(used / 2);
      d.check(d.cuMemcpyDtoH(output->data(), in.mask, used), "cuMemcpyDtoH");
    } else if (key.kernel == KernelKind::pool) {
      d.check(d.cuMemsetD8(reinterpret_cast<CUdeviceptr>(in.pooled->view().data), 0xff, in.pooled->bytes()), "cuMemsetD8");
      run(0);
      *output = in.pooled->download();
      // Only [1, H, ceil(S / pq), D] was written; the rest stays poisoned in every run.
      output->resize(size_t(o_.heads * ((o_.seq_len + key.pq - 1) / key.pq) * key.head_dim));
    } else {
      d.check(d.cuMemsetD8(reinterpret_cast<CUdeviceptr>(s0.out.view().data), 0xff, s0.out.bytes()), "cuMemsetD8");
      run(0);
      d.check(d.cuCtxSynchronize(), "cuCtxSynchronize");
      *output = s0.out.download();
    }
  } catch (...) {
    d.cuEventDestroy(start);
    d.cuEventDestroy(stop);
    throw;
  }
  d.cuEventDestroy(start);
  d.cuEventDestroy(stop);
  return median(times);
}

double Tuner::selection_density(const KernelKey& key, Inputs& in) {
  PrefillParams p;
  p.pq = key.pq, p.bk = key.bk, p.gk = key.gk, p.causal = key.causal, p.threshold = o_.threshold;
  const AttentionInputs& s = *in.sets[0];
  PrefillStats st;
  rt_.prefill(s.q.view(), s.k.view(), s.v.view(), s.out.view(), p, nullptr, {}, &st);
  return 1.0 - st.sparsity;
}

Result Tuner::tune(const KernelKey& key, const Progress& progress) {
  if (key.kernel == KernelKind::recall)
    throw Error(Status::invalid_argument, "the recall kernel is not tuned: it runs its default config", {}, key.str());
  ScopedContext scope(context_);
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  Result r;
  r.key = key;
  r.seq_len = o_.seq_len;
  Inputs& in = inputs_for(key);
  const std::vector<TileConfig> cands = candidates(key);  // the default first
  std::vector<uint16_t> reference, output;
  double density = 1;

  for (size_t i = 0; i < cands.size(); ++i) {
    if (i > 0 && elapsed() > o_.budget_s) {
      r.skipped = int(cands.size() - i);
      break;
    }
    if (progress) progress(int(i), int(cands.size()));
    CandidateTime c{cands[i], kInf, {}};
    try {
      c.ms = time_config(key, cands[i], in, i == 0 ? &reference : &output, &density);
      if (i > 0) {
        const double diff = key.kernel == KernelKind::pool     ? (output == reference ? 0.0 : kInf)
                            : key.kernel == KernelKind::select ? mask_difference(output, reference)
                                                               : relative_difference(key.dtype, output, reference);
        if (!(diff <= output_tolerance(key))) {
          c.note = fmt::format("output differs from the default's by {:.3g}", diff);
          log::warn("rejected {}: {}", Variant{key, cands[i]}.str(), c.note);
          c.ms = kInf;
        }
      }
    } catch (const Error& e) {
      c.note = e.what();
      log::warn("{} failed: {}", Variant{key, cands[i]}.str(), e.what());
      if (i == 0) {
        rt_.clear_config();
        throw;  // without the reference nothing can be validated
      }
    }
    if (i == 0 && key.kernel == KernelKind::select) density = selection_density(key, in);
    if (i == 0) r.density = key.kernel == KernelKind::select || key.kernel == KernelKind::sparse_attn ? density : 1.0;
    r.candidates.push_back(c);
  }
  rt_.clear_config();

  r.default_ms = r.candidates.front().ms;
  const auto best = std::min_element(r.candidates.begin(), r.candidates.end(),
                                     [](const CandidateTime& a, const CandidateTime& b) { return a.ms < b.ms; });
  r.best = best->config;
  r.best_ms = best->ms;
  r.seconds = elapsed();
  return r;
}

}  // namespace vecattn::tuner

// vecattn-bench: dense attention and VecAttention prefill side by side (pool / select / attend
// split, sparsity, recall on sampled rows, error against dense, TFLOP/s on kept pairs), with
// peers merged from bench/peer_sdpa.py; a table on stdout, and CSV, JSON and an SVG plot.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>
#include <tuple>
#include <vector>

#include "cache/thresholds.h"
#include "codegen/error.h"
#include "codegen/host_dtype.h"
#include "runtime/driver.h"
#include "runtime/runtime.h"
#include "templates/params.h"
#include "tools/bench_report.h"
#include "tools/cli.h"
#include "tools/npy.h"
#include "tuner/synthetic.h"

namespace {

using namespace vecattn;
using bench::BenchRow;
using tools::kExitError;
using tools::kExitNoGpu;

struct Args {
  std::vector<int64_t> seq_lens{8192, 16384, 32768, 65536, 131072};
  int64_t batch = 1, heads = 32, kv_heads = 32, head_dim = 128;
  std::string dtype = "bf16";
  bool causal = true;
  std::vector<float> thresholds{0.8f, 0.9f};
  int pq = 64, bk = 16, gk = 16;
  int reps = 10;
  std::string input = "synthetic";
  double strong_fraction = 0.02;
  std::string q_npy, k_npy, v_npy;
  int recall_rows = 64;
  bool skip_dense = false;
  bool workspace_overhead = false;
  std::string attn_config;
  std::string dense_config;
  std::string select_config;
  std::string thresholds_file, model;
  int layer = 0;
  bool select_only = false;
  std::string csv, json, svg, peers;
  int device = 0;
};

// What main reads from the files named on the command line before the GPU is touched: a bad
// file is then an error before any measurement, not after the whole run.
struct Inputs {
  std::vector<uint16_t> q, k, v;  // --input npy, as bits of --dtype, [B, H, S, D]
  std::vector<float> per_head;    // --thresholds-file: one threshold per q head
  std::vector<BenchRow> peers;    // --peers
};

[[noreturn]] void bad(const std::string& m) { throw Error(Status::invalid_argument, m); }

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

double relative_error(DType t, const std::vector<uint16_t>& out, const std::vector<uint16_t>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    const double x = from_bits(t, out[i]), y = from_bits(t, ref[i]);
    num += (x - y) * (x - y);
    den += y * y;
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// Full-attention probability mass kept (docs/semantics.md §6): the mean over `rows` rows sampled
// in batch 0, over every q head with its own threshold, by Runtime::recall. One head at a time,
// so the selection buffer stays one head's even at 1M.
double sampled_recall(Runtime& rt, const Tensor& q, const Tensor& k, const PrefillParams& p, int rows, std::mt19937_64& rng) {
  const int64_t S = q.seq_len(), Hq = q.heads(), group = q.heads() / k.heads();
  std::vector<int32_t> picked(static_cast<size_t>(rows));
  std::uniform_int_distribution<int32_t> pick(0, int32_t(S - 1));
  for (auto& r : picked) r = pick(rng);
  const Driver& d = Driver::get();
  CUdeviceptr mask = 0, rows_d = 0, out = 0;
  d.check(d.cuMemAlloc(&mask, size_t(Selection::bytes(1, 1, S, p.pq))), "cuMemAlloc");
  d.check(d.cuMemAlloc(&rows_d, picked.size() * 4), "cuMemAlloc");
  d.check(d.cuMemAlloc(&out, picked.size() * 4), "cuMemAlloc");
  d.check(d.cuMemcpyHtoD(rows_d, picked.data(), picked.size() * 4), "cuMemcpyHtoD");
  double total = 0;
  std::vector<float> recall(picked.size());
  for (int64_t h = 0; h < Hq; ++h) {
    Tensor qh = q, kh = k;
    qh.shape[0] = qh.shape[1] = kh.shape[0] = kh.shape[1] = 1;
    qh.data = static_cast<char*>(q.data) + h * q.stride[1] * 2;
    kh.data = static_cast<char*>(k.data) + (h / group) * k.stride[1] * 2;
    PrefillParams one = p;
    one.thresholds = p.thresholds ? p.thresholds + h : nullptr;
    one.num_thresholds = p.thresholds ? 1 : 0;
    rt.select(qh, kh, one, Selection{reinterpret_cast<void*>(mask)}, nullptr);
    rt.recall(qh, kh, one, Selection{reinterpret_cast<void*>(mask)}, reinterpret_cast<const int32_t*>(rows_d),
              int64_t(picked.size()), reinterpret_cast<float*>(out), nullptr);
    d.check(d.cuMemcpyDtoH(recall.data(), out, recall.size() * 4), "cuMemcpyDtoH");
    for (float r : recall) total += r;
  }
  for (CUdeviceptr ptr : {mask, rows_d, out}) d.cuMemFree(ptr);
  return total / double(picked.size() * size_t(Hq));
}

// What a call without a caller workspace pays for its stream-ordered scratch: host time of the
// call (enqueue only; the device is drained between calls) and device time, median of many,
// against the same call given a workspace.
void print_workspace_overhead(Runtime& rt, Events& ev, int reps, const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& out, const PrefillParams& p) {
  const Driver& d = Driver::get();
  const size_t bytes = rt.workspace_size(q, k, p);
  CUdeviceptr ws;
  d.check(d.cuMemAlloc(&ws, bytes), "cuMemAlloc");
  const Workspace caller{reinterpret_cast<void*>(ws), bytes};
  auto host_us = [&](Workspace w) {
    std::vector<double> t;
    for (int i = 0; i < std::max(reps, 20); ++i) {
      d.check(d.cuCtxSynchronize(), "cuCtxSynchronize");
      const auto t0 = std::chrono::steady_clock::now();
      rt.prefill(q, k, v, out, p, nullptr, w);
      t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    d.check(d.cuCtxSynchronize(), "cuCtxSynchronize");
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  };
  const double host_pool = host_us({}), host_caller = host_us(caller);
  const double dev_pool = ev.median_ms(reps, [&] { rt.prefill(q, k, v, out, p, nullptr); });
  const double dev_caller = ev.median_ms(reps, [&] { rt.prefill(q, k, v, out, p, nullptr, caller); });
  d.cuMemFree(ws);
  std::printf("# workspace at S=%lld (%.0f MiB): host per call %.1f us stream-ordered vs %.1f us caller's (%+.1f us); "
              "device %.3f vs %.3f ms (%+.3f ms)\n",
              (long long)q.seq_len(), double(bytes) / (1 << 20), host_pool, host_caller, host_pool - host_caller, dev_pool,
              dev_caller, dev_pool - dev_caller);
}

// The selection phase alone (what Runtime::select costs, no statistics): pool, pool + select, and
// the select's rate on its candidate scores (2 * D FLOP per pooled row and candidate key).
void print_select_time(Runtime& rt, Events& ev, int reps, const Tensor& q, const Tensor& k, const PrefillParams& p) {
  const Driver& d = Driver::get();
  const int64_t S = q.seq_len(), nq = (S + p.pq - 1) / p.pq, D = q.head_dim(), units = q.batch() * q.heads();
  CUdeviceptr mask, pooled;
  d.check(d.cuMemAlloc(&mask, size_t(Selection::bytes(q.batch(), q.heads(), S, p.pq))), "cuMemAlloc");
  d.check(d.cuMemAlloc(&pooled, size_t(units * nq * D * 2)), "cuMemAlloc");
  Tensor qp = Tensor::bhsd(reinterpret_cast<void*>(pooled), q.dtype, q.batch(), q.heads(), nq, D);
  const double pool_ms = ev.median_ms(reps, [&] { rt.pool(q, qp, p.pq, nullptr); });
  const double select_ms = ev.median_ms(reps, [&] { rt.select(q, k, p, Selection{reinterpret_cast<void*>(mask)}, nullptr); });
  d.cuMemFree(mask);
  d.cuMemFree(pooled);
  double candidates = 0;  // per unit: causal pooled row i sees keys [Pq, i * Pq)
  for (int64_t i = 0; i < nq; ++i) candidates += p.causal ? double(std::max<int64_t>(0, std::min(i * p.pq, S) - p.pq)) : double(S);
  const double flop = 2.0 * double(D) * candidates * double(units);
  double thr = p.threshold;  // per-head thresholds show their mean, as the prefill rows do
  if (p.thresholds) {
    thr = 0;
    for (int64_t h = 0; h < p.num_thresholds; ++h) thr += p.thresholds[h];
    thr /= double(p.num_thresholds);
  }
  std::printf("# select S=%lld thr=%.2f: pool %.3f ms (%.0f GB/s of q), pool+select %.3f ms, select %.3f ms "
              "(%.1f TFLOP/s on %.3g candidate scores), mask %.0f MiB\n",
              (long long)S, thr, pool_ms, double(units * S * D) * 2 / pool_ms / 1e6, select_ms, select_ms - pool_ms,
              flop / (select_ms - pool_ms) / 1e9, candidates * double(units),
              double(Selection::bytes(q.batch(), q.heads(), S, p.pq)) / (1 << 20));
  std::fflush(stdout);
}

// Lines "S,method,ms" written by bench/peer_sdpa.py --csv (a header line "seq_len,..." and lines
// starting with '#' skipped); their TFLOP/s on the run's shape.
std::vector<BenchRow> read_peers(const std::string& path, const Args& a) {
  tools::check_readable("--peers", path);
  std::ifstream f(path);
  std::vector<BenchRow> rows;
  std::string line;
  for (int n = 1; std::getline(f, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#' || line.rfind("seq_len", 0) == 0) continue;
    auto fail = [&](const std::string& why) {
      bad(fmt::format("--peers {} line {}: {} (expected seq_len,method,ms as bench/peer_sdpa.py --csv writes)", path, n,
                      why));
    };
    std::vector<std::string> fields;
    std::stringstream ss(line);
    for (std::string field; std::getline(ss, field, ',');) fields.push_back(field);
    if (fields.size() != 3) fail(fmt::format("{} fields", fields.size()));
    BenchRow r;
    // Whole fields only, as the tools' flag validators read numbers (tools/cli.cpp).
    if (!CLI::detail::lexical_cast(fields[0], r.seq_len) || r.seq_len <= 0)
      fail(fmt::format("seq_len '{}' is not a positive integer", fields[0]));
    r.method = fields[1];
    if (r.method.empty()) fail("the method is empty");
    if (!CLI::detail::lexical_cast(fields[2], r.ms) || !(r.ms > 0) || !std::isfinite(r.ms))
      fail(fmt::format("ms '{}' is not a positive number", fields[2]));
    const double S = double(r.seq_len);
    const double pairs = double(a.batch * a.heads) * (a.causal ? S * (S + 1) / 2 : S * S);
    r.tflops = 4 * pairs * double(a.head_dim) / r.ms / 1e9;
    rows.push_back(r);
  }
  return rows;
}

// The npy arrays, uploaded once; the host copies go, since they can run to gigabytes.
std::unique_ptr<tuner::AttentionInputs> npy_inputs(const Args& a, DType t, std::mt19937_64& rng, Inputs& files) {
  auto in = std::make_unique<tuner::AttentionInputs>(a.batch, a.heads, a.kv_heads, a.seq_lens.front(), a.head_dim, t, 0.0,
                                                     rng, false);
  in->q.upload(files.q);
  in->k.upload(files.k);
  in->v.upload(files.v);
  for (auto* host : {&files.q, &files.k, &files.v}) std::vector<uint16_t>().swap(*host);
  return in;
}

int run(const Args& a, Inputs& files) {
  const DType t = parse_dtype(a.dtype);
  RuntimeOptions o;
  o.device = a.device;
  Runtime rt(o);
  const Driver& d = Driver::get();
  CUdevice dev;
  CUcontext ctx;
  d.check(d.cuDeviceGet(&dev, a.device), "cuDeviceGet");
  d.check(d.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
  // --select-only times no attention; dense would only cost time and fill no row.
  const bool skip_dense = a.skip_dense || a.select_only;
  std::vector<BenchRow> rows;
  {
    ScopedContext scope(ctx);
    std::mt19937_64 rng(std::random_device{}());
    // Pinned tile configs (a tuning experiment), one flag per kernel: a config that fits the sparse
    // kernel need not fit the dense one (6 stages at Pq 64 leave the dense tile no room).
    auto pin = [&](const char* flag, const std::string& config, const KernelKey& key) {
      if (config.empty()) return;
      try {
        rt.set_config(key, TileConfig::parse(key.kernel, config));
      } catch (const Error& e) {  // legal only on a device: shared memory, arch
        throw Error(e.status(), fmt::format("{} {} for {}: {}", flag, config, key.str(), e.what()));
      }
    };
    pin("--attn-config", a.attn_config, rt.key(KernelKind::sparse_attn, a.pq, a.bk, a.gk, int(a.head_dim), t, a.causal));
    pin("--dense-config", a.dense_config, rt.key(KernelKind::dense_attn, 0, 0, 0, int(a.head_dim), t, a.causal));
    if (!a.select_config.empty()) {
      const KernelKey key = rt.key(KernelKind::select, a.pq, a.bk, a.gk, int(a.head_dim), t, a.causal);
      rt.set_config(key, TileConfig::parse(key.kernel, a.select_config));
    }
    // A model's calibrated thresholds (one per q head) replace --thresholds.
    const std::vector<float>& per_head = files.per_head;
    if (!per_head.empty())
      std::printf("# thresholds of %s layer %d from %s (%zu heads)\n", a.model.c_str(), a.layer,
                  a.thresholds_file.c_str(), per_head.size());
    const bool from_npy = a.input == "npy";
    if (!a.select_only)
      std::printf("%8s %-9s %5s %9s %8s %8s %8s %9s %8s %9s %9s %8s %8s\n", "S", "method", "thr", "ms", "pool", "select",
                  "attend", "sparsity", "recall", "rel_err", "TFLOP/s", "speedup", "ws_MiB");
    for (int64_t S0 : a.seq_lens) {  // with --input npy, the arrays' one length
      auto in = from_npy ? npy_inputs(a, t, rng, files)
                         : std::make_unique<tuner::AttentionInputs>(a.batch, a.heads, a.kv_heads, S0, a.head_dim, t,
                                                                    a.strong_fraction, rng, a.input == "synthetic");
      const Tensor &q = in->q.view(), &k = in->k.view(), &v = in->v.view(), &out = in->out.view();
      const int64_t S = q.seq_len();
      Events ev;
      const double pairs = double(q.batch() * q.heads()) * (a.causal ? double(S) * double(S + 1) / 2 : double(S) * double(S));
      BenchRow dense_row;
      std::vector<uint16_t> dense_out;
      if (!skip_dense) {
        dense_row.seq_len = S;
        dense_row.method = "dense";
        dense_row.ms = ev.median_ms(a.reps, [&] { rt.dense(q, k, v, out, a.causal, nullptr); });
        dense_row.tflops = 4 * pairs * double(q.head_dim()) / dense_row.ms / 1e9;
        dense_out = in->out.download();
        rows.push_back(dense_row);
        const auto& r = rows.back();
        std::printf("%8lld %-9s %5s %9.3f %8s %8s %8s %9s %8s %9s %9.1f %8s %8s\n", (long long)S, "dense", "-", r.ms, "-",
                    "-", "-", "-", "-", "-", r.tflops, "-", "-");
      }
      // With a model's per-head thresholds there is one run (its rows show their mean).
      const std::vector<float> runs = per_head.empty() ? a.thresholds : std::vector<float>{a.thresholds.front()};
      for (float thr : runs) {
        PrefillParams p;
        p.pq = a.pq, p.bk = a.bk, p.gk = a.gk, p.causal = a.causal, p.threshold = thr;
        if (!per_head.empty()) p.thresholds = per_head.data(), p.num_thresholds = int64_t(per_head.size());
        if (a.select_only) {
          print_select_time(rt, ev, a.reps, q, k, p);
          continue;
        }
        BenchRow r;
        r.seq_len = S;
        r.method = "vecattn";
        r.threshold = thr;
        if (!per_head.empty()) {  // the row shows the mean of the model's per-head thresholds
          double sum = 0;
          for (float x : per_head) sum += x;
          r.threshold = float(sum / double(per_head.size()));
        }
        r.workspace_mib = double(rt.workspace_size(q, k, p)) / (1 << 20);
        r.ms = ev.median_ms(a.reps, [&] { rt.prefill(q, k, v, out, p, nullptr); });
        PrefillStats st;
        rt.prefill(q, k, v, out, p, nullptr, {}, &st);
        r.pool_ms = st.pool_ms, r.select_ms = st.select_ms, r.attend_ms = st.attend_ms;
        r.sparsity = st.sparsity;
        r.tflops = 4 * st.kept_pairs * double(q.head_dim()) / r.ms / 1e9;
        if (!dense_out.empty()) {
          r.rel_error = relative_error(t, in->out.download(), dense_out);
          r.speedup = dense_row.ms / r.ms;
        }
        if (a.recall_rows > 0) r.recall = sampled_recall(rt, q, k, p, a.recall_rows, rng);
        rows.push_back(r);
        if (a.workspace_overhead) print_workspace_overhead(rt, ev, a.reps, q, k, v, out, p);
        std::printf("%8lld %-9s %5.2f %9.3f %8.3f %8.3f %8.3f %9.4f %8.4f %9.2e %9.1f %8.2f %8.0f\n", (long long)S, "vecattn",
                    r.threshold, r.ms, r.pool_ms, r.select_ms, r.attend_ms, r.sparsity, r.recall, r.rel_error, r.tflops, r.speedup,
                    r.workspace_mib);
        std::fflush(stdout);
      }
    }
    for (const auto& r : files.peers) {
      rows.push_back(r);
      std::printf("%8lld %-9s %5s %9.3f %8s %8s %8s %9s %8s %9s %9.1f %8s %8s\n", (long long)r.seq_len, r.method.c_str(),
                  "-", r.ms, "-", "-", "-", "-", "-", "-", r.tflops, "-", "-");
    }
  }
  d.cuDevicePrimaryCtxRelease(dev);

  bench::BenchMeta meta;
  meta.device = rt.device().name;
  meta.dtype = a.dtype;
  const std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%d", std::gmtime(&now));
  meta.date = date;
  meta.batch = a.batch, meta.q_heads = a.heads, meta.kv_heads = a.kv_heads, meta.head_dim = a.head_dim;
  meta.causal = a.causal;
  meta.pq = a.pq, meta.bk = a.bk, meta.gk = a.gk;
  meta.input = a.input == "synthetic" ? fmt::format("synthetic vertical pattern, {:.0f}% strong keys", a.strong_fraction * 100)
                                      : a.input;
  if (!a.csv.empty()) bench::write_file(a.csv, bench::to_csv(meta, rows));
  if (!a.json.empty()) bench::write_file(a.json, bench::to_json(meta, rows));
  if (!a.svg.empty()) bench::write_file(a.svg, bench::to_svg(meta, rows));

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
  // Which variant each measured kernel ran, and where its config came from, so figures can be
  // traced to a config (pinned, tuned here, the shipped file, or the built-in default).
  for (KernelKind kind : {KernelKind::select, KernelKind::sparse_attn, KernelKind::dense_attn}) {
    if ((kind == KernelKind::sparse_attn && a.select_only) || (kind == KernelKind::dense_attn && skip_dense)) continue;
    const KernelKey k = rt.key(kind, a.pq, a.bk, a.gk, int(a.head_dim), t, a.causal);
    const ConfigChoice c = rt.config_for(k);
    std::printf("# config %s (%s%s%s)\n", Variant{k, c.config}.str().c_str(), source_name(c.source),
                c.detail.empty() ? "" : ": ", c.detail.c_str());
  }
  return 0;
}

// Every flag and file checked before the driver is opened (a bad one is an error naming it, not a
// lost run); with --input npy the arrays are read here and their shape becomes the run's.
Inputs check_args(const CLI::App& app, Args& a) {
  auto given = [&](const char* flag) { return app.count(flag) > 0; };
  auto reject = [&](std::initializer_list<const char*> flags, const std::string& why) {
    for (const char* flag : flags)
      if (given(flag)) bad(fmt::format("{} {}", flag, why));
  };
  if (a.input != "npy") reject({"--q", "--k", "--v"}, "is read only with --input npy");
  if (a.input != "synthetic") reject({"--strong-fraction"}, "sets the synthetic inputs: it needs --input synthetic");
  if (a.input == "npy") {
    if (a.q_npy.empty() || a.k_npy.empty() || a.v_npy.empty()) bad("--input npy needs --q, --k and --v");
    reject({"--seq-len", "--batch", "--heads", "--kv-heads", "--head-dim"},
           "cannot be given with --input npy: the arrays' shapes set it");
  }
  if (a.thresholds_file.empty()) reject({"--model", "--layer"}, "is read only with --thresholds-file");
  else {
    if (a.model.empty()) bad("--thresholds-file needs --model (and --layer, default 0)");
    reject({"--thresholds"}, "cannot be given with --thresholds-file: the file gives one threshold per q head");
  }
  if (a.select_only) {
    reject({"--recall-rows", "--workspace-overhead", "--attn-config", "--dense-config"},
           "has no effect with --select-only (no attention runs)");
    // The files hold prefill and dense rows; the selection's timings have no row there.
    reject({"--csv", "--json", "--svg"}, "cannot be given with --select-only: its timings are printed, not written");
    reject({"--peers"}, "cannot be given with --select-only: the peers' rows go to --csv/--json/--svg, which it does "
                        "not write");
  }
  if (a.seq_lens.empty()) bad("--seq-len: give at least one length");
  if (a.thresholds.empty()) bad("--thresholds: give at least one threshold");
  if (a.skip_dense) reject({"--dense-config"}, "has no effect with --skip-dense (dense attention does not run)");
  for (auto [flag, text, kind] : {std::tuple{"--attn-config", &a.attn_config, KernelKind::sparse_attn},
                                  {"--dense-config", &a.dense_config, KernelKind::dense_attn},
                                  {"--select-config", &a.select_config, KernelKind::select}}) {
    if (text->empty()) continue;
    try {
      (void)TileConfig::parse(kind, *text);
    } catch (const Error& e) {
      bad(fmt::format("{}: {}", flag, e.what()));
    }
  }
  tools::check_kernel_flags(a.pq, a.bk, a.gk, a.causal);
  if (a.input != "npy") tools::check_head_dim(a.head_dim, fmt::format("--head-dim {}", a.head_dim));
  for (auto [flag, path] : {std::pair{"--csv", &a.csv}, {"--json", &a.json}, {"--svg", &a.svg}})
    if (!path->empty()) tools::check_writable(flag, *path);

  Inputs in;
  const DType t = parse_dtype(a.dtype);
  if (a.input == "npy") {
    auto read = [](const char* flag, const std::string& path) {
      tools::check_readable(flag, path);
      try {
        return tools::read_npy(path);
      } catch (const std::exception& e) {
        bad(fmt::format("{} {}", flag, e.what()));
      }
    };
    const auto q = read("--q", a.q_npy), k = read("--k", a.k_npy), v = read("--v", a.v_npy);
    if (q.shape.size() != 4 || k.shape.size() != 4 || v.shape != k.shape)
      bad("--q/--k/--v: expected arrays of shape (batch, heads, seq_len, head_dim), v like k");
    if (k.shape[0] != q.shape[0] || k.shape[2] != q.shape[2] || k.shape[3] != q.shape[3])
      bad(fmt::format("--k {}: shape ({}, {}, {}, {}) does not match --q's ({}, {}, {}, {}): batch, seq_len and head_dim "
                      "must agree",
                      a.k_npy, k.shape[0], k.shape[1], k.shape[2], k.shape[3], q.shape[0], q.shape[1], q.shape[2],
                      q.shape[3]));
    a.batch = q.shape[0], a.heads = q.shape[1], a.kv_heads = k.shape[1], a.head_dim = q.shape[3];
    a.seq_lens = {q.shape[2]};
    tools::check_head_dim(a.head_dim, "--q " + a.q_npy);
    for (auto [flag, path, array, bits] : {std::tuple{"--q", &a.q_npy, &q, &in.q}, {"--k", &a.k_npy, &k, &in.k},
                                           {"--v", &a.v_npy, &v, &in.v}})
      try {
        *bits = tools::to_dtype_bits(*array, t);
      } catch (const std::exception& e) {
        bad(fmt::format("{} {}: {}", flag, *path, e.what()));
      }
  }
  // With --input npy the shapes come from the arrays, so the errors name the files.
  const bool npy = a.input == "npy";
  if (a.heads % a.kv_heads != 0)
    bad(npy ? fmt::format("--k {}: {} heads do not divide --q's {} (GQA)", a.k_npy, a.kv_heads, a.heads)
            : fmt::format("--kv-heads {} does not divide --heads {} (GQA)", a.kv_heads, a.heads));
  if (a.heads > kMaxQHeads)
    bad(fmt::format("{}: {} q heads, at most {} are supported", npy ? "--q " + a.q_npy : "--heads", a.heads, kMaxQHeads));
  if (a.batch * a.heads > 65535)  // the pool kernel's grid
    bad(npy ? fmt::format("--q {}: batch {} x heads {} must be at most 65535", a.q_npy, a.batch, a.heads)
            : fmt::format("--batch {} x --heads {} must be at most 65535", a.batch, a.heads));

  if (!a.thresholds_file.empty()) {
    tools::check_readable("--thresholds-file", a.thresholds_file);
    try {
      in.per_head = cache::layer_thresholds(cache::read_thresholds_file(a.thresholds_file), a.model, a.layer);
    } catch (const Error& e) {
      bad(fmt::format("--thresholds-file {}: {}", a.thresholds_file, e.what()));
    }
    if (int64_t(in.per_head.size()) != a.heads)
      bad(fmt::format("--thresholds-file {}: model '{}' layer {} has {} heads but the inputs have {} q heads",
                      a.thresholds_file, a.model, a.layer, in.per_head.size(), a.heads));
  }
  if (!a.peers.empty()) in.peers = read_peers(a.peers, a);
  return in;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vecattn-bench: dense attention and VecAttention prefill, side by side"};
  Args a;
  app.add_option("--seq-len", a.seq_lens, "sequence lengths")->delimiter(',')->check(tools::int_range(1));
  app.add_option("--batch", a.batch, "batch size")->check(tools::int_range(1, 65535));
  app.add_option("--heads", a.heads, "q heads")->check(tools::int_range(1, kMaxQHeads));
  app.add_option("--kv-heads", a.kv_heads, "k and v heads (divides --heads)")->check(tools::int_range(1, kMaxQHeads));
  app.add_option("--head-dim", a.head_dim, "head dim (64 or 128)")->check(tools::int_range(1));
  app.add_option("--dtype", a.dtype, "bf16 or fp16")->check(CLI::IsMember({"bf16", "fp16"}));
  app.add_option("--causal", a.causal, "1 or 0")->check(tools::zero_or_one());
  // In (0, 1], as the runtime takes them (prefill_plan.cpp).
  app.add_option("--thresholds", a.thresholds, "selection thresholds, one run each")
      ->delimiter(',')
      ->check(tools::real_range(0, 1, true));
  app.add_option("--pq", a.pq, "query pooling size (64, 128)");
  app.add_option("--bk", a.bk, "key tile of selection (16, 32, 64)");
  app.add_option("--gk", a.gk, "tiles per selection group (power of two, 1..128)");
  app.add_option("--reps", a.reps, "timed runs per measurement (the median counts)")->check(tools::int_range(1));
  app.add_option("--input", a.input, "synthetic (vertical pattern), random, or npy (--q --k --v)")
      ->check(CLI::IsMember({"synthetic", "random", "npy"}));
  app.add_option("--strong-fraction", a.strong_fraction, "synthetic: fraction of key columns on the vertical direction")
      ->check(tools::real_range(0, 1));
  app.add_option("--q", a.q_npy, "npy input: q of shape (batch, heads, seq_len, head_dim)");
  app.add_option("--k", a.k_npy, "npy input: k");
  app.add_option("--v", a.v_npy, "npy input: v");
  // The recall kernel's limit on rows (op_recall.cpp).
  app.add_option("--recall-rows", a.recall_rows, "rows sampled for recall (0: skip)")
      ->check(tools::int_range(0, 1 << 24));
  app.add_flag("--skip-dense", a.skip_dense, "time only the prefill (no error or speedup against dense)");
  app.add_option("--attn-config", a.attn_config, "pin this tile config (e.g. bn64-w16-s6-wgmma) for the sparse attention key");
  app.add_option("--dense-config", a.dense_config, "pin this tile config (e.g. bn64-w16-s4-wgmma) for the dense attention key");
  app.add_flag("--workspace-overhead", a.workspace_overhead,
               "also time each prefill with a caller workspace against the stream-ordered one");
  app.add_option("--thresholds-file", a.thresholds_file,
                 "per-head thresholds from a vecattn-calibrate JSON file (with --model and --layer)");
  app.add_option("--model", a.model, "model name in the thresholds file");
  app.add_option("--layer", a.layer, "layer in the thresholds file")->check(tools::int_range(0));
  app.add_option("--select-config", a.select_config, "pin this tile config (e.g. bq128-w8-s4-wgmma) for the select key");
  app.add_flag("--select-only", a.select_only,
               "time only the selection phase (pool, select) at each threshold; printed, no dense, no output files");
  app.add_option("--peers", a.peers, "CSV from bench/peer_sdpa.py --csv, merged into the outputs");
  app.add_option("--csv", a.csv, "write the rows as CSV");
  app.add_option("--json", a.json, "write the rows as JSON");
  app.add_option("--svg", a.svg, "draw latency against S and the time split");
  app.add_option("--device", a.device, "GPU ordinal")->check(tools::int_range(0));
  if (auto rc = tools::parse_command_line(app, "vecattn-bench", argc, argv)) return *rc;
  try {
    Inputs files = check_args(app, a);
    return run(a, files);
  } catch (const Error& e) {
    std::fprintf(stderr, "vecattn-bench: %s\n", e.what());
    if (!e.detail().empty()) std::fprintf(stderr, "%s\n", e.detail().c_str());
    return e.status() == Status::no_driver || e.status() == Status::no_device ? kExitNoGpu : kExitError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vecattn-bench: %s\n", e.what());
    return kExitError;
  }
}

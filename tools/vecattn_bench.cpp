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
#include <vector>

#include "cache/thresholds.h"
#include "codegen/error.h"
#include "codegen/host_dtype.h"
#include "runtime/driver.h"
#include "runtime/runtime.h"
#include "tools/bench_report.h"
#include "tools/npy.h"
#include "tuner/synthetic.h"

namespace {

using namespace vecattn;
using bench::BenchRow;

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
  std::string select_config;
  std::string thresholds_file, model;
  int layer = 0;
  bool select_only = false;
  std::string csv, json, svg, peers;
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
  std::printf("# select S=%lld thr=%.2f: pool %.3f ms (%.0f GB/s of q), pool+select %.3f ms, select %.3f ms "
              "(%.1f TFLOP/s on %.3g candidate scores), mask %.0f MiB\n",
              (long long)S, p.threshold, pool_ms, double(units * S * D) * 2 / pool_ms / 1e6, select_ms, select_ms - pool_ms,
              flop / (select_ms - pool_ms) / 1e9, candidates * double(units),
              double(Selection::bytes(q.batch(), q.heads(), S, p.pq)) / (1 << 20));
  std::fflush(stdout);
}

// Lines "S,method,ms" written by bench/peer_sdpa.py --csv.
std::vector<BenchRow> read_peers(const std::string& path, const Args& a) {
  std::ifstream f(path);
  if (!f) throw Error(Status::invalid_argument, fmt::format("--peers: cannot read {}", path));
  std::vector<BenchRow> rows;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#' || line.rfind("seq_len", 0) == 0) continue;
    std::stringstream ss(line);
    std::string s, method, ms;
    std::getline(ss, s, ',');
    std::getline(ss, method, ',');
    std::getline(ss, ms, ',');
    BenchRow r;
    r.seq_len = std::stoll(s);
    r.method = method;
    r.ms = std::stod(ms);
    const double S = double(r.seq_len);
    const double pairs = double(a.batch * a.heads) * (a.causal ? S * (S + 1) / 2 : S * S);
    r.tflops = 4 * pairs * double(a.head_dim) / r.ms / 1e9;
    rows.push_back(r);
  }
  return rows;
}

std::unique_ptr<tuner::AttentionInputs> npy_inputs(const Args& a, DType t, std::mt19937_64& rng) {
  const auto q = tools::read_npy(a.q_npy), k = tools::read_npy(a.k_npy), v = tools::read_npy(a.v_npy);
  if (q.shape.size() != 4 || k.shape.size() != 4 || v.shape != k.shape)
    throw Error(Status::invalid_argument, "--q/--k/--v: expected arrays of shape (batch, heads, seq_len, head_dim), v like k");
  auto in = std::make_unique<tuner::AttentionInputs>(q.shape[0], q.shape[1], k.shape[1], q.shape[2], q.shape[3], t, 0.0,
                                                     rng, false);
  in->q.upload(tools::to_dtype_bits(q, t));
  in->k.upload(tools::to_dtype_bits(k, t));
  in->v.upload(tools::to_dtype_bits(v, t));
  return in;
}

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
  std::vector<BenchRow> rows;
  {
    ScopedContext scope(ctx);
    std::mt19937_64 rng(std::random_device{}());
    if (!a.attn_config.empty()) {
      // Pins one tile config for the attention keys this run launches (a tuning experiment).
      const int d = int(a.head_dim);
      for (bool sparse : {true, false}) {
        if (!sparse && a.skip_dense) continue;
        const KernelKey key = sparse ? rt.key(KernelKind::sparse_attn, a.pq, a.bk, a.gk, d, t, a.causal)
                                     : rt.key(KernelKind::dense_attn, 0, 0, 0, d, t, a.causal);
        rt.set_config(key, TileConfig::parse(key.kernel, a.attn_config));
      }
    }
    if (!a.select_config.empty()) {
      const KernelKey key = rt.key(KernelKind::select, a.pq, a.bk, a.gk, int(a.head_dim), t, a.causal);
      rt.set_config(key, TileConfig::parse(key.kernel, a.select_config));
    }
    // A model's calibrated thresholds (one per q head) replace --thresholds.
    std::vector<float> per_head;
    if (!a.thresholds_file.empty()) {
      per_head = cache::layer_thresholds(cache::read_thresholds_file(a.thresholds_file), a.model, a.layer);
      std::printf("# thresholds of %s layer %d from %s (%zu heads)\n", a.model.c_str(), a.layer,
                  a.thresholds_file.c_str(), per_head.size());
    }
    const bool from_npy = a.input == "npy";
    const std::vector<int64_t> lengths = from_npy ? std::vector<int64_t>{0} : a.seq_lens;
    std::printf("%8s %-9s %5s %9s %8s %8s %8s %9s %8s %9s %9s %8s %8s\n", "S", "method", "thr", "ms", "pool", "select",
                "attend", "sparsity", "recall", "rel_err", "TFLOP/s", "speedup", "ws_MiB");
    for (int64_t S0 : lengths) {
      auto in = from_npy ? npy_inputs(a, t, rng)
                         : std::make_unique<tuner::AttentionInputs>(a.batch, a.heads, a.kv_heads, S0, a.head_dim, t,
                                                                    a.strong_fraction, rng, a.input == "synthetic");
      const Tensor &q = in->q.view(), &k = in->k.view(), &v = in->v.view(), &out = in->out.view();
      const int64_t S = q.seq_len();
      Events ev;
      const double pairs = double(q.batch() * q.heads()) * (a.causal ? double(S) * double(S + 1) / 2 : double(S) * double(S));
      BenchRow dense_row;
      std::vector<uint16_t> dense_out;
      if (!a.skip_dense) {
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
    if (!a.peers.empty())
      for (const auto& r : read_peers(a.peers, a)) {
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
    const KernelKey k = rt.key(kind, a.pq, a.bk, a.gk, int(a.head_dim), t, a.causal);
    const ConfigChoice c = rt.config_for(k);
    std::printf("# config %s (%s%s%s)\n", Variant{k, c.config}.str().c_str(), source_name(c.source),
                c.detail.empty() ? "" : ": ", c.detail.c_str());
  }
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
  app.add_option("--dtype", a.dtype, "bf16 or fp16")->check(CLI::IsMember({"bf16", "fp16"}));
  app.add_option("--causal", a.causal, "1 or 0");
  app.add_option("--thresholds", a.thresholds)->delimiter(',');
  app.add_option("--pq", a.pq);
  app.add_option("--bk", a.bk);
  app.add_option("--gk", a.gk);
  app.add_option("--reps", a.reps)->check(CLI::PositiveNumber);
  app.add_option("--input", a.input, "synthetic (vertical pattern), random, or npy (--q --k --v)")
      ->check(CLI::IsMember({"synthetic", "random", "npy"}));
  app.add_option("--strong-fraction", a.strong_fraction, "synthetic: fraction of key columns on the vertical direction");
  app.add_option("--q", a.q_npy, "npy input: q of shape (batch, heads, seq_len, head_dim)");
  app.add_option("--k", a.k_npy, "npy input: k");
  app.add_option("--v", a.v_npy, "npy input: v");
  app.add_option("--recall-rows", a.recall_rows, "rows sampled for recall (0: skip)")->check(CLI::NonNegativeNumber);
  app.add_flag("--skip-dense", a.skip_dense, "time only the prefill (no error or speedup against dense)");
  app.add_option("--attn-config", a.attn_config,
                 "pin this tile config (e.g. bn64-w12-s4-wgmma) for the sparse and dense attention keys");
  app.add_flag("--workspace-overhead", a.workspace_overhead,
               "also time each prefill with a caller workspace against the stream-ordered one");
  app.add_option("--thresholds-file", a.thresholds_file,
                 "per-head thresholds from a vecattn-calibrate JSON file (with --model and --layer)");
  app.add_option("--model", a.model, "model name in the thresholds file");
  app.add_option("--layer", a.layer, "layer in the thresholds file")->check(CLI::NonNegativeNumber);
  app.add_option("--select-config", a.select_config, "pin this tile config (e.g. bq128-w8-s4-wgmma) for the select key");
  app.add_flag("--select-only", a.select_only, "time only the selection phase (pool, select) at each threshold");
  app.add_option("--peers", a.peers, "CSV from bench/peer_sdpa.py --csv, merged into the outputs");
  app.add_option("--csv", a.csv, "write the rows as CSV");
  app.add_option("--json", a.json, "write the rows as JSON");
  app.add_option("--svg", a.svg, "draw latency against S and the time split");
  app.add_option("--device", a.device);
  CLI11_PARSE(app, argc, argv);
  if (!a.thresholds_file.empty() && a.model.empty()) {
    std::fprintf(stderr, "vecattn-bench: --thresholds-file needs --model (and --layer, default 0)\n");
    return 1;
  }
  if (a.input == "npy" && (a.q_npy.empty() || a.k_npy.empty() || a.v_npy.empty())) {
    std::fprintf(stderr, "vecattn-bench: --input npy needs --q, --k and --v\n");
    return 1;
  }
  try {
    return run(a);
  } catch (const Error& e) {
    std::fprintf(stderr, "vecattn-bench: %s\n%s\n", e.what(), e.detail().c_str());
    return e.status() == Status::no_driver || e.status() == Status::no_device ? 2 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vecattn-bench: %s\n", e.what());
    return 1;
  }
}

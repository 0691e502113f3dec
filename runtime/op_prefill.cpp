// Runtime::prefill, select, dense and the workspace: docs/semantics.md §2-§5 as pool -> select -> attend,
// chunked over (batch, head) units so that any workspace of at least one unit works and the
// result never depends on the chunking.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <optional>

#include "codegen/kernels.h"
#include "codegen/log.h"
#include "runtime/driver.h"
#include "runtime/launch.h"
#include "runtime/prefill_plan.h"
#include "runtime/runtime_impl.h"
#include "runtime/stream_workspace.h"
#include "runtime/tma.h"
#include "templates/params.h"

namespace vecattn {
namespace {

constexpr double kLog2e = 1.4426950408889634;
// Keys a select CTA walks: whole groups, and at least this many (at Pq 64; half at Pq 128, whose
// pooled rows are half as many) so a CTA's setup (its pooled rows, the pipeline's fill) is spread
// over enough steps. H100, 128K causal: 4096 keys ran the select in 2.72 ms where 2048 took 2.81;
// at Pq 128, 2048 keys 1.57 ms where 4096 took 1.61.
constexpr int kSelectKeysPerCtaAtPq64 = 4096;
// gridDim.y and gridDim.z stop at 65535: a launch never covers more units.
constexpr int64_t kMaxUnitsPerLaunch = 65535;

unsigned ceil_div(int64_t a, int64_t b) { return unsigned((a + b - 1) / b); }

float sm_scale(int64_t head_dim) { return float(1.0 / std::sqrt(double(head_dim))); }

// Units per chunk that fit `bytes` (0 when not even one does).
int64_t units_fitting(const PrefillPlan& plan, size_t bytes) {
  int64_t lo = 0, hi = std::min(plan.units(), kMaxUnitsPerLaunch);
  while (lo < hi) {  // chunk_bytes is monotone in the unit count
    const int64_t mid = (lo + hi + 1) / 2;
    if (plan.chunk_bytes(mid) <= int64_t(bytes)) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// A caller's workspace: aligned, and large enough for one (batch, head).
void check_workspace(const Workspace& ws, size_t least) {
  if (reinterpret_cast<uintptr_t>(ws.data) % 256)
    throw Error(Status::invalid_argument, fmt::format("workspace: pointer {} is not 256-byte aligned", ws.data));
  if (ws.bytes < least)
    throw Error(Status::invalid_argument,
                fmt::format("workspace: {} bytes is less than the {} bytes one (batch, head) needs", ws.bytes, least));
}

// Calls that must synchronize the host refuse a stream under capture with a reason, rather than
// invalidating the caller's capture with an opaque driver error.
void require_not_capturing(CUstream s, const char* what) {
  const Driver& d = Driver::get();
  CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
  d.check(d.cuStreamIsCapturing(s, &status), "cuStreamIsCapturing");
  if (status != CU_STREAM_CAPTURE_STATUS_NONE)
    throw Error(Status::invalid_argument,
                fmt::format("{}, which a stream being captured into a CUDA graph cannot do: capture without stats",
                            what));
}

struct ChunkBuffers {
  char* pooled;
  unsigned long long* mask;
  int* counts;
};

ChunkBuffers carve(const PrefillPlan& plan, void* base, int64_t units) {
  auto align = [](int64_t x) { return (x + 255) / 256 * 256; };
  char* p = static_cast<char*>(base);
  ChunkBuffers b;
  b.pooled = p;
  b.mask = reinterpret_cast<unsigned long long*>(p + align(units * plan.pooled_bytes_per_unit()));
  b.counts = reinterpret_cast<int*>(p + align(units * plan.pooled_bytes_per_unit()) +
                                    align(units * plan.mask_bytes_per_unit()));
  return b;
}

AttnParams attn_params(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, int64_t kv_group) {
  AttnParams a{};
  a.q = q.data;
  a.k = k.data;
  a.v = v.data;
  a.out = out.data;
  a.q_stride_b = q.stride[0], a.q_stride_h = q.stride[1], a.q_stride_s = q.stride[2];
  a.k_stride_b = k.stride[0], a.k_stride_h = k.stride[1], a.k_stride_s = k.stride[2];
  a.v_stride_b = v.stride[0], a.v_stride_h = v.stride[1], a.v_stride_s = v.stride[2];
  a.o_stride_b = out.stride[0], a.o_stride_h = out.stride[1], a.o_stride_s = out.stride[2];
  a.q_heads = int(q.heads());
  a.kv_group = int(kv_group);
  a.seq_len = int(q.seq_len());
  a.words = int((q.seq_len() + 63) / 64);
  a.sm_scale_log2 = float(sm_scale(q.head_dim()) * kLog2e);
  return a;
}

// Launches one attention kernel over query rows [ap.row_begin, ap.row_end) of a call's chunks,
// in CTAs of the kernel's rows (sparse: one query block each). Set up once per call: the sm_90a
// kernel gets the copy engine's descriptors of q, k and v, encoded here for every chunk; where
// the driver cannot describe a tensor (a zero stride, say), the mma.sync kernel of the same key
// runs instead, which reads any strides.
class AttentionLauncher {
 public:
  AttentionLauncher(ModuleCache& modules, const LoadedKernel& kern, const Tensor& q, const Tensor& k, const Tensor& v)
      : use_(&kern) {
    if (kern.variant.config.path != AttnPath::wgmma) return;
    std::string why;
    if (encode_attention_maps(q, k, v, attn_launch(kern.variant).rows_per_cta, kern.variant.config.rows, sm90_, &why))
      return;
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true)) log::warn("{}; running the mma.sync attention kernel for such calls", why);
    use_ = &modules.get(Variant{kern.variant.key, default_config(kern.variant.key, AttnPath::mma)});
  }

  void launch(const AttnParams& ap, unsigned units, CUstream s) {
    const AttnLaunch shape = attn_launch(use_->variant);
    const Dim3 grid{ceil_div(ap.row_end - ap.row_begin, shape.rows_per_cta), units};
    const Dim3 block{unsigned(shape.threads)};
    if (use_->variant.config.path == AttnPath::wgmma) {
      sm90_.a = ap;
      vecattn::launch(*use_, grid, block, unsigned(use_->dynamic_smem), s, sm90_);
    } else {
      vecattn::launch(*use_, grid, block, unsigned(use_->dynamic_smem), s, ap);
    }
  }

 private:
  const LoadedKernel* use_;
  AttnSm90Params sm90_{};
};

// Events around the phases of one chunk, read after the final synchronization.
struct PhaseTimer {
  const Driver& d;
  bool on;
  std::vector<CUevent> events;
  explicit PhaseTimer(bool enabled) : d(Driver::get()), on(enabled) {}
  ~PhaseTimer() {
    for (CUevent e : events) d.cuEventDestroy(e);
  }
  void mark(CUstream s) {
    if (!on) return;
    CUevent e;
    d.check(d.cuEventCreate(&e, CU_EVENT_DEFAULT), "cuEventCreate");
    events.push_back(e);
    d.check(d.cuEventRecord(e, s), "cuEventRecord");
  }
  float between(size_t i, size_t j) const {
    float ms = 0;
    d.check(d.cuEventElapsedTime(&ms, events[i], events[j]), "cuEventElapsedTime");
    return ms;
  }
};


// Pools units [u0, u0 + n) into `pooled` and selects into `mask` (unit u at u - mask_origin);
// the first two phases of prefill and all of select. Set up once per call: the sm_90a select gets
// the copy engine's descriptor of k; where the driver cannot describe k, the mma.sync select of
// the same key runs instead.
class SelectStage {
 public:
  SelectStage(const PrefillPlan& plan, ModuleCache& modules, const LoadedKernel& pool, const LoadedKernel& sel,
              const Tensor& q, const Tensor& k)
      : plan(plan), pool(pool), sel(&sel), q(q), k(k) {
    if (sel.variant.config.path != AttnPath::wgmma) return;
    std::string why;
    if (encode_select_map(k, sm90_, &why)) return;
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true)) log::warn("{}; running the mma.sync select kernel for such calls", why);
    this->sel = &modules.get(Variant{sel.variant.key, default_config(sel.variant.key, AttnPath::mma)});
  }

  void pool_units(int64_t u0, int64_t n, void* pooled, CUstream s) const {
    const int64_t d = plan.head_dim;
    PoolParams pp{};
    pp.q = q.data;
    pp.out = pooled;
    pp.q_stride_b = q.stride[0], pp.q_stride_h = q.stride[1], pp.q_stride_s = q.stride[2];
    pp.out_stride_b = plan.q_heads * plan.pooled * d, pp.out_stride_h = plan.pooled * d, pp.out_stride_s = d;
    pp.out_origin = u0 * plan.pooled * d;
    pp.unit_begin = int(u0);
    pp.heads = int(plan.q_heads);
    pp.seq_len = int(plan.seq_len);
    pp.num_pooled = int(plan.pooled);
    launch(pool, Dim3{unsigned(plan.pooled), unsigned(n)}, Dim3{unsigned(pool.variant.config.warps * 32)}, 0, s, pp);
  }

  // exact: every word of the mask is written (Runtime::select); otherwise words no row can
  // select stay unwritten (the attention kernel never reads them).
  void select_units(int64_t u0, int64_t n, const void* pooled, unsigned long long* mask, int64_t mask_origin,
                    int* counts, bool exact, CUstream s) {
    const int key_chunk = std::max(plan.gk * plan.bk, kSelectKeysPerCtaAtPq64 * 64 / plan.pq);
    SelectParams sp{};
    sp.qp = pooled;
    sp.k = k.data;
    sp.mask = mask;
    sp.counts = counts;
    sp.k_stride_b = k.stride[0], sp.k_stride_h = k.stride[1], sp.k_stride_s = k.stride[2];
    sp.qp_unit_origin = u0;
    sp.mask_unit_origin = mask_origin;
    sp.unit_begin = int(u0);
    sp.q_heads = int(plan.q_heads);
    sp.kv_group = int(plan.q_heads / plan.kv_heads);
    sp.seq_len = int(plan.seq_len);
    sp.num_pooled = int(plan.pooled);
    sp.words = int(plan.words);
    sp.key_chunk = key_chunk;
    sp.exact_mask = exact ? 1 : 0;
    sp.sm_scale = sm_scale(plan.head_dim);
    for (int64_t h = 0; h < plan.q_heads; ++h) sp.gap[h] = plan.gaps[size_t(h)];
    const Dim3 grid{ceil_div(plan.seq_len, key_chunk), ceil_div(plan.pooled, sel->variant.config.rows), unsigned(n)};
    const Dim3 block{unsigned(select_threads(sel->variant))};
    if (sel->variant.config.path == AttnPath::wgmma) {
      sm90_.s = sp;
      launch(*sel, grid, block, unsigned(sel->dynamic_smem), s, sm90_);
    } else {
      launch(*sel, grid, block, unsigned(sel->dynamic_smem), s, sp);
    }
  }

 private:
  const PrefillPlan& plan;
  const LoadedKernel& pool;
  const LoadedKernel* sel;
  const Tensor& q;
  const Tensor& k;
  SelectSm90Params sm90_{};
};

// Select's kept counts of a chunk of n units (n * nq ints), for statistics: zeroed before select
// adds to them, then copied to the host; the copy is waited for, since the next chunk reuses the
// workspace.
void clear_counts(int* counts, int64_t words, CUstream s) {
  const Driver& d = Driver::get();
  d.check(d.cuMemsetD8Async(reinterpret_cast<CUdeviceptr>(counts), 0, size_t(words) * 4, s), "cuMemsetD8Async");
}
void fetch_counts(const int* counts, int* host, int64_t words, CUstream s) {
  const Driver& d = Driver::get();
  d.check(d.cuMemcpyDtoHAsync(host, reinterpret_cast<CUdeviceptr>(counts), size_t(words) * 4, s), "cuMemcpyDtoHAsync");
  d.check(d.cuStreamSynchronize(s), "cuStreamSynchronize");
}

// Density per row from the kept counts [units][nq] (docs/semantics.md §6); sink and diagonal are
// implied. Fills density, sparsity and kept_pairs.
void add_density(const PrefillPlan& plan, const std::vector<int>& counts_host, PrefillStats* stats) {
  stats->density.assign(size_t(plan.q_heads), 0.0);
  stats->kept_pairs = 0;
  double total = 0;
  const int64_t S = plan.seq_len, P = plan.pq;
  for (int64_t u = 0; u < plan.units(); ++u) {
    double head_sum = 0;
    for (int64_t r = 0; r < S; ++r) {
      const int64_t i = r / P;
      const double kept = counts_host[size_t(u * plan.pooled + i)];
      const double visible = plan.causal ? double(r + 1) : double(S);
      double attended;
      if (r < plan.dense_prefix) attended = visible;
      else if (plan.causal) attended = double(i > 0 ? std::min(P, S) : 0) + double(r - i * P + 1) + kept;
      else attended = kept;
      stats->kept_pairs += attended;
      head_sum += attended / visible;
    }
    stats->density[size_t(u % plan.q_heads)] += head_sum / double(S * plan.batch);
    total += head_sum;
  }
  stats->sparsity = 1.0 - total / double(S * plan.units());
}

}  // namespace

size_t Runtime::workspace_size(const Tensor& q, const Tensor& k, const PrefillParams& params) const {
  const PrefillPlan plan = plan_prefill(q, k, nullptr, nullptr, params);
  const int64_t all = std::min(plan.units(), kMaxUnitsPerLaunch);
  const int64_t fit = std::max<int64_t>(1, units_fitting(plan, workspace_budget_bytes()));
  return size_t(plan.chunk_bytes(std::min(all, fit)));
}

size_t Runtime::workspace_min_bytes(const Tensor& q, const Tensor& k, const PrefillParams& params) const {
  return size_t(plan_prefill(q, k, nullptr, nullptr, params).chunk_bytes(1));
}

void Runtime::prefill(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                      const PrefillParams& params, Stream stream, Workspace ws, PrefillStats* stats) {
  const PrefillPlan plan = plan_prefill(q, k, &v, &out, params);
  if (ws.data) check_workspace(ws, size_t(plan.chunk_bytes(1)));

  const DType t = plan.dtype;
  const int d = int(plan.head_dim);
  const LoadedKernel& pool = impl_->kernel(key(KernelKind::pool, plan.pq, 0, 0, d, t, false));
  const LoadedKernel& sel = impl_->kernel(key(KernelKind::select, plan.pq, plan.bk, plan.gk, d, t, plan.causal));
  const LoadedKernel& att = impl_->kernel(key(KernelKind::sparse_attn, plan.pq, plan.bk, plan.gk, d, t, plan.causal));
  const LoadedKernel* dense = plan.dense_prefix > 0 ? &impl_->kernel(key(KernelKind::dense_attn, 0, 0, 0, d, t, plan.causal))
                                                    : nullptr;

  const Driver& drv = Driver::get();
  ScopedContext scope(impl_->context);
  const CUstream s = reinterpret_cast<CUstream>(stream);
  if (stats) require_not_capturing(s, "prefill statistics need a host synchronization");
  // Declared before any launch, so its free is enqueued after the last of them.
  StreamWorkspacePool::Lease lease;
  if (!ws.data) {
    lease = impl_->workspaces->acquire(workspace_size(q, k, params), size_t(plan.chunk_bytes(1)), s);
    ws = Workspace{lease.data(), lease.bytes()};
  }
  const int64_t chunk = units_fitting(plan, ws.bytes);
  const int64_t kv_group = plan.q_heads / plan.kv_heads;
  const int64_t first_sparse_block = plan.dense_prefix / plan.pq;
  SelectStage stage(plan, *impl_->modules, pool, sel, q, k);
  AttentionLauncher attend(*impl_->modules, att, q, k, v);
  std::optional<AttentionLauncher> attend_prefix;
  if (dense) attend_prefix.emplace(*impl_->modules, *dense, q, k, v);
  PhaseTimer timer(stats != nullptr);
  std::vector<int> counts_host;
  if (stats) counts_host.resize(size_t(plan.units() * plan.pooled));

  for (int64_t u0 = 0; u0 < plan.units(); u0 += chunk) {
    const int64_t n = std::min(chunk, plan.units() - u0);
    const ChunkBuffers buf = carve(plan, ws.data, n);
    timer.mark(s);

    stage.pool_units(u0, n, buf.pooled, s);
    timer.mark(s);
    if (stats) clear_counts(buf.counts, n * plan.pooled, s);
    stage.select_units(u0, n, buf.pooled, buf.mask, u0, stats ? buf.counts : nullptr, false, s);
    timer.mark(s);

    AttnParams ap = attn_params(q, k, v, out, kv_group);
    ap.mask = buf.mask;
    ap.mask_unit_origin = u0;
    ap.unit_begin = int(u0);
    if (first_sparse_block < plan.pooled) {
      ap.row_begin = int(first_sparse_block * plan.pq);
      ap.row_end = int(plan.seq_len);
      attend.launch(ap, unsigned(n), s);
    }
    if (dense) {
      // After the sparse launch on the same stream: rows of a block the prefix cuts are rewritten.
      ap.row_begin = 0;
      ap.row_end = int(plan.dense_prefix);
      attend_prefix->launch(ap, unsigned(n), s);
    }
    timer.mark(s);
    if (stats) fetch_counts(buf.counts, counts_host.data() + u0 * plan.pooled, n * plan.pooled, s);
  }
  if (!stats) return;

  drv.check(drv.cuStreamSynchronize(s), "cuStreamSynchronize");
  *stats = PrefillStats{};
  stats->chunks = int((plan.units() + chunk - 1) / chunk);
  for (size_t c = 0; c + 3 < timer.events.size(); c += 4) {
    stats->pool_ms += timer.between(c, c + 1);
    stats->select_ms += timer.between(c + 1, c + 2);
    stats->attend_ms += timer.between(c + 2, c + 3);
  }
  add_density(plan, counts_host, stats);
}

void Runtime::select(const Tensor& q, const Tensor& k, const PrefillParams& params, Selection out, Stream stream,
                     Workspace ws, PrefillStats* stats) {
  const PrefillPlan plan = plan_prefill(q, k, nullptr, nullptr, params);
  if (!out.data) throw Error(Status::invalid_argument, "selection: data pointer is null");
  if (reinterpret_cast<uintptr_t>(out.data) % 8)
    throw Error(Status::invalid_argument, "selection: data pointer is not 8-byte aligned");
  auto align = [](int64_t x) { return (x + 255) / 256 * 256; };
  // A chunk of n units: [pooled q | kept counts (stats only)], each part 256-byte aligned.
  const int64_t per_unit = align(plan.pooled_bytes_per_unit()) + (stats ? align(plan.count_bytes_per_unit()) : 0);
  if (ws.data) check_workspace(ws, size_t(per_unit));
  const int d = int(plan.head_dim);
  const LoadedKernel& pool = impl_->kernel(key(KernelKind::pool, plan.pq, 0, 0, d, plan.dtype, false));
  const LoadedKernel& sel = impl_->kernel(key(KernelKind::select, plan.pq, plan.bk, plan.gk, d, plan.dtype, plan.causal));
  ScopedContext scope(impl_->context);
  const CUstream s = reinterpret_cast<CUstream>(stream);
  if (stats) require_not_capturing(s, "selection statistics need a host synchronization");
  StreamWorkspacePool::Lease lease;  // before any launch: its free follows the last one
  if (!ws.data) {
    const size_t want = size_t(per_unit * std::min(plan.units(), kMaxUnitsPerLaunch));
    lease = impl_->workspaces->acquire(std::min(want, std::max(workspace_budget_bytes(), size_t(per_unit))),
                                       size_t(per_unit), s);
    ws = Workspace{lease.data(), lease.bytes()};
  }
  const int64_t chunk = std::min<int64_t>(int64_t(ws.bytes) / per_unit, kMaxUnitsPerLaunch);
  SelectStage stage(plan, *impl_->modules, pool, sel, q, k);
  PhaseTimer timer(stats != nullptr);
  std::vector<int> counts_host;
  if (stats) counts_host.resize(size_t(plan.units() * plan.pooled));
  for (int64_t u0 = 0; u0 < plan.units(); u0 += chunk) {
    const int64_t n = std::min(chunk, plan.units() - u0);
    int* counts = stats ? reinterpret_cast<int*>(static_cast<char*>(ws.data) + align(n * plan.pooled_bytes_per_unit()))
                        : nullptr;
    timer.mark(s);
    stage.pool_units(u0, n, ws.data, s);
    timer.mark(s);
    if (counts) clear_counts(counts, n * plan.pooled, s);
    stage.select_units(u0, n, ws.data, static_cast<unsigned long long*>(out.data), 0, counts, true, s);
    timer.mark(s);
    if (counts) fetch_counts(counts, counts_host.data() + u0 * plan.pooled, n * plan.pooled, s);
  }
  if (!stats) return;
  *stats = PrefillStats{};
  stats->chunks = int((plan.units() + chunk - 1) / chunk);
  for (size_t c = 0; c + 2 < timer.events.size(); c += 3) {
    stats->pool_ms += timer.between(c, c + 1);
    stats->select_ms += timer.between(c + 1, c + 2);
  }
  add_density(plan, counts_host, stats);
}

void Runtime::dense(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, bool causal, Stream stream) {
  check_dense(q, k, v, out);
  const LoadedKernel& kern =
      impl_->kernel(key(KernelKind::dense_attn, 0, 0, 0, int(q.head_dim()), q.dtype, causal));
  ScopedContext scope(impl_->context);
  AttnParams ap = attn_params(q, k, v, out, q.heads() / k.heads());
  ap.row_begin = 0;
  ap.row_end = int(q.seq_len());
  AttentionLauncher attend(*impl_->modules, kern, q, k, v);
  const int64_t units = q.batch() * q.heads();
  for (int64_t u0 = 0; u0 < units; u0 += kMaxUnitsPerLaunch) {
    ap.unit_begin = int(u0);
    attend.launch(ap, unsigned(std::min(kMaxUnitsPerLaunch, units - u0)), reinterpret_cast<CUstream>(stream));
  }
}

}  // namespace vecattn

#pragma once
// The in-tree C++ runtime behind the C ABI: what c_api.cpp, the tuner, the tools and the tests
// use (key lookups, pinned configs, path forcing). Applications use runtime/vecattn.hpp, the
// installed header-only C++ API over the C ABI, which mirrors this one's calls.
//
//   vecattn::Runtime rt;                                   // device 0, user kernel cache
//   auto q  = vecattn::Tensor::bhsd(q_ptr, vecattn::DType::bf16, B, H, S, 128);
//   auto qp = vecattn::Tensor::bhsd(qp_ptr, vecattn::DType::bf16, B, H, (S + 63) / 64, 128);
//   rt.pool(q, qp, /*pq=*/64, stream);                     // async on `stream`, no host sync
//
// Errors are vecattn::Error (a std::runtime_error) with a Status and, for compile failures,
// the NVRTC log in detail().
//
// Concurrency. One Runtime may be shared by any number of host threads, each enqueuing on any
// streams (of the Runtime's device): every method is thread-safe, and a call's result never
// depends on what else runs. Kernels compile once per variant however many threads ask at once;
// the first call of a variant may block for its compile (precompile/preload avoid that).
//  - Without a caller Workspace, a call takes its scratch from a memory pool of the Runtime in
//    the order of its own stream (cuMemAllocFromPoolAsync, freed by cuMemFreeAsync after its last
//    kernel): no host synchronization, and two calls in flight never share scratch. Memory the
//    pool reserved stays reserved for the next calls (as much as the most concurrent calls
//    needed at once) until release_workspace_memory() or the Runtime's destruction.
//  - With a caller Workspace, the call uses exactly that memory and allocates nothing: the caller
//    must not hand the same workspace to two calls that may run at the same time (on different
//    streams without an event between them).
//  - CUDA graphs: prefill, select, dense and pool can be captured. Without a caller workspace the
//    capture records an allocation and a free node (memory from CUDA's graph pool); replays work.
//    Stats cannot be captured (they synchronize): such a call throws before enqueuing anything.
//  - Destroying a Runtime while another thread uses it is undefined; work already enqueued
//    completes (its scratch is freed when it has).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "codegen/error.h"
#include "codegen/key.h"
#include "runtime/cubin_cache.h"
#include "runtime/device.h"
#include "runtime/tensor.h"

struct CUstream_st;

namespace vecattn {

// A CUDA stream: CUstream and cudaStream_t are both this type. nullptr is the legacy stream.
using Stream = CUstream_st*;

// VecAttention parameters (docs/semantics.md §1.2), named as in the original VecAttention_prefill.
struct PrefillParams {
  int pq = 64;              // q_pooling_size: query rows pooled into one vector (64, 128)
  int bk = 16;              // k_local_size: key tile of selection (16, 32, 64)
  int gk = 16;              // group_k_block: tiles per selection group (power of two, 1..128)
  bool causal = true;
  float threshold = 0.9f;   // MinP threshold in (0, 1], used when `thresholds` is null
  const float* thresholds = nullptr;  // host array, one per q head (Hq values), or null
  int64_t num_thresholds = 0;
  // Query rows [0, dense_prefix) attend densely (text tokens before a vision span).
  int64_t dense_prefix = 0;
};

// What a prefill did, when asked for (asking costs a host synchronization at the end).
struct PrefillStats {
  std::vector<double> density;   // per q head: mean over rows of |attended| / |visible|
  double sparsity = 0;           // 1 - mean density over every row of every head and batch
  double kept_pairs = 0;         // (query, key) pairs attended, over all heads and batches
  float pool_ms = 0, select_ms = 0, attend_ms = 0;
  int chunks = 0;                // (batch, head) chunks the workspace budget led to
};

// The selection of docs/semantics.md §4 as a bitmask (§7): bit (j % 64) of word [b, h, i, j / 64] is set
// iff key j is selected for query block i of head h. Bits outside the candidates are 0.
struct Selection {
  void* data = nullptr;          // device memory of bytes(B, Hq, S, pq) bytes
  static int64_t words_per_row(int64_t seq_len) { return (seq_len + 63) / 64; }
  static int64_t bytes(int64_t batch, int64_t heads, int64_t seq_len, int pq) {
    return batch * heads * ((seq_len + pq - 1) / pq) * words_per_row(seq_len) * 8;
  }
};

// Device scratch the caller owns. Any size of at least workspace_min_bytes works: a smaller
// one only means more (batch, head) chunks; results never depend on chunking.
struct Workspace {
  void* data = nullptr;
  size_t bytes = 0;
};

// Where the tile config of a kernel came from, first match wins, in this order.
enum class ConfigSource {
  override_config,   // set_config() (the tuner, or the caller)
  user_database,     // tuned on this machine: exact device name, else the same arch
  pretuned,          // the file shipped for the arch (cache/pretuned/<arch>.json)
  builtin_default,   // codegen's default table
};
const char* source_name(ConfigSource s);

struct ConfigChoice {
  TileConfig config;
  ConfigSource source = ConfigSource::builtin_default;
  std::string detail;  // e.g. the device a tuned row was measured on
};

struct RuntimeOptions {
  int device = 0;
  // The SQLite file holding compiled kernels (and tuned configs). Empty: the user cache,
  // $VECATTN_CACHE_DIR or $XDG_CACHE_HOME/vecattn/vecattn.sqlite.
  std::string cache_path;
  // false: compiled kernels stay in this process's memory only.
  bool persist = true;
  // Forces the tensor-core path of select and attention (tests, A/B comparisons): mma.sync (any
  // GPU) or wgmma (sm_90a only); tuned configs of the other path are then set aside for the path's
  // default. Unset: $VECATTN_ATTENTION_PATH (mma or wgmma) if set, else the tuned or default config.
  std::optional<AttnPath> attention_path;
};

class Runtime {
 public:
  // Retains the device's primary context (the one the CUDA runtime and torch use). Throws
  // Error(no_driver / no_device / invalid_argument) when there is no such device.
  explicit Runtime(const RuntimeOptions& options = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  const DeviceInfo& device() const;

  // docs/semantics.md §2. q: [B, H, S, D]; out: [B, H, ceil(S / pq), D], same dtype. pq 64 or 128,
  // D 64 or 128. Enqueued on `stream`; returns without waiting.
  void pool(const Tensor& q, const Tensor& out, int pq, Stream stream = nullptr);

  // VecAttention prefill (docs/semantics.md): pool, select, sparse attention. q: [B, Hq, S, D];
  // k, v: [B, Hkv, S, D] with Hq % Hkv == 0; out like q. Any strides with a unit innermost one.
  // With a workspace given, the call allocates nothing; without one, its scratch comes from the
  // runtime's pool in the order of `stream` (see Concurrency above). Either way nothing
  // synchronizes unless `stats` is asked for, and the call can be captured in a CUDA graph.
  void prefill(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const PrefillParams& params,
               Stream stream = nullptr, Workspace workspace = {}, PrefillStats* stats = nullptr);

  // Workspace for prefill: the size that processes every (batch, head) at once, capped by the
  // budget (default 2.5 GiB, or $VECATTN_WORKSPACE_MB), and the least that works at all.
  size_t workspace_size(const Tensor& q, const Tensor& k, const PrefillParams& params) const;
  size_t workspace_min_bytes(const Tensor& q, const Tensor& k, const PrefillParams& params) const;

  // The selection alone (pool + select), into a caller's bitmask (see Selection). With `stats`,
  // also what a prefill with this selection would attend (density, sparsity, kept_pairs; the pool
  // and select times; attend_ms 0), at the cost of a host synchronization, as for prefill.
  void select(const Tensor& q, const Tensor& k, const PrefillParams& params, Selection out, Stream stream = nullptr,
              Workspace workspace = {}, PrefillStats* stats = nullptr);

  // Calibration (docs/semantics.md §6): for every (b, h) and each query row listed in `rows`
  // (device int32, n_rows entries in [0, S), any order), the share of the row's full softmax over
  // its visible keys that falls on its attended set (§5.1) under `selection`, a bitmask select
  // wrote for the same q, k and params (params.dense_prefix counts). Written as fp32 to `recall`
  // (device, [B, Hq, n_rows]; NaN for a row outside [0, S)). Enqueued on `stream`, no host sync.
  void recall(const Tensor& q, const Tensor& k, const PrefillParams& params, Selection selection, const int32_t* rows,
              int64_t n_rows, float* recall, Stream stream = nullptr);

  // Dense attention (causal or not): the baseline and the path for a dense prefix.
  void dense(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, bool causal,
             Stream stream = nullptr);

  // Gives the workspace memory the runtime's pool holds but no call in flight uses back to the
  // device (calls in flight keep theirs). The next call without a workspace reserves again.
  void release_workspace_memory();

  // Loads a variant (from memory, the cache database, or NVRTC) so that its first launch
  // pays nothing; returns where it came from.
  CubinOrigin preload(const Variant& v);

  // The tile config a kernel launches with on this device, and where it came from. The first
  // call per key reads the databases; later calls are a map lookup.
  ConfigChoice config_for(const KernelKey& key);
  // Pins a config for a key (the memory layer of the lookup); clear_config() forgets all pins
  // and every looked-up choice, so the next launch reads the databases again.
  void set_config(const KernelKey& key, const TileConfig& config);
  void clear_config();

  // How many first lookups each source served.
  struct LookupStats {
    long overrides = 0, user_database = 0, pretuned = 0, defaults = 0;
  };
  LookupStats lookup_stats() const;

  // Compiles (or finds in the cache) many variants with up to `threads` NVRTC at once, into the
  // same cache the launches use, so a later preload or launch finds them.
  std::vector<CubinCache::Outcome> precompile(const std::vector<Variant>& variants, int threads = 0);

  // The key of a kernel on this device (arch filled in).
  KernelKey key(KernelKind kind, int pq, int bk, int gk, int head_dim, DType dtype, bool causal) const;

  // Counters of the compiled-kernel cache behind this runtime.
  const CubinCache::Stats& cache_stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vecattn

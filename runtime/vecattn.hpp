#pragma once
// vecattn: VecAttention (vector-wise sparse attention) on NVIDIA GPUs, C++ API.
//
// Header-only, over the C ABI of libvecattn.so (vecattn.h): it needs nothing but that header and
// the standard library, so an installed copy is self-contained (find_package(vecattn), target
// vecattn::vecattn), and the library keeps its own C++ runtime private.
//
//   vecattn::Runtime rt;                                         // device 0, user kernel cache
//   auto q = vecattn::Tensor::bshd(q_ptr, vecattn::DType::bf16, B, S, Hq, 128);  // k, v, out alike
//   vecattn::PrefillParams p;                                    // pq 64, bk 16, gk 16, causal, 0.9
//   rt.prefill(q, k, v, out, p, stream);                         // enqueued: no copy, no host sync
//
// Errors throw vecattn::Error (a std::runtime_error) carrying the C ABI's status and text (for a
// kernel compile failure the NVRTC log follows the first line). Threads, streams and CUDA graphs:
// as vecattn.h says: one Runtime may be used by any number of threads on any streams.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "vecattn.h"

namespace vecattn {

enum class DType { fp16 = VECATTN_FP16, bf16 = VECATTN_BF16 };

// The C ABI's statuses (vecattn_status), in the same order.
enum class Status {
  ok = VECATTN_OK,
  invalid_argument = VECATTN_INVALID_ARGUMENT,
  unsupported = VECATTN_UNSUPPORTED,
  no_driver = VECATTN_NO_DRIVER,
  no_device = VECATTN_NO_DEVICE,
  cuda_error = VECATTN_CUDA_ERROR,
  nvrtc_unavailable = VECATTN_NVRTC_UNAVAILABLE,
  compile_error = VECATTN_COMPILE_ERROR,
  cache_error = VECATTN_CACHE_ERROR,
  internal = VECATTN_INTERNAL,
};

class Error : public std::runtime_error {
 public:
  Error(Status status, const std::string& text)
      : std::runtime_error(std::string(vecattn_status_name(static_cast<vecattn_status>(status))) + ": " + text),
        status_(status) {}
  Status status() const { return status_; }

 private:
  Status status_;
};

namespace detail {
inline void check(vecattn_status s) {
  if (s != VECATTN_OK) throw Error(static_cast<Status>(s), vecattn_last_error());
}
}  // namespace detail

// A CUDA stream: a CUstream or cudaStream_t (nullptr: the legacy default stream).
using Stream = void*;

// A view of device memory with logical shape [B, H, S, D]; strides in elements, the innermost 1.
struct Tensor {
  vecattn_tensor t{};

  static Tensor bhsd(void* data, DType dtype, int64_t b, int64_t h, int64_t s, int64_t d) {
    return {vecattn_tensor_bhsd(data, static_cast<vecattn_dtype>(dtype), b, h, s, d)};
  }
  // Note the argument order follows the memory layout: b, s, h, d.
  static Tensor bshd(void* data, DType dtype, int64_t b, int64_t s, int64_t h, int64_t d) {
    return {vecattn_tensor_bshd(data, static_cast<vecattn_dtype>(dtype), b, s, h, d)};
  }
  int64_t batch() const { return t.shape[0]; }
  int64_t heads() const { return t.shape[1]; }
  int64_t seq_len() const { return t.shape[2]; }
  int64_t head_dim() const { return t.shape[3]; }
};

// VecAttention parameters, named as in the original VecAttention_prefill.
struct PrefillParams {
  int pq = 64;              // q_pooling_size: query rows pooled into one vector (64, 128)
  int bk = 16;              // k_local_size: key tile of selection (16, 32, 64)
  int gk = 16;              // group_k_block: tiles per selection group (power of two, 1..128)
  bool causal = true;
  float threshold = 0.9f;   // MinP threshold in (0, 1], used when `thresholds` is empty
  std::vector<float> thresholds;  // one per q head, or empty
  int64_t dense_prefix = 0; // query rows [0, dense_prefix) attend densely

  vecattn_prefill_params c() const {
    vecattn_prefill_params p = vecattn_default_params();
    p.pq = pq, p.bk = bk, p.gk = gk, p.causal = causal ? 1 : 0, p.threshold = threshold;
    p.thresholds = thresholds.empty() ? nullptr : thresholds.data();
    p.num_thresholds = int64_t(thresholds.size());
    p.dense_prefix = dense_prefix;
    return p;
  }
};

// What a prefill did, when asked for (asking costs a host synchronization).
struct PrefillStats {
  std::vector<double> density;  // per q head: mean over rows of |attended| / |visible|
  double sparsity = 0;
  float pool_ms = 0, select_ms = 0, attend_ms = 0;
  int chunks = 0;
};

// Device scratch the caller owns (see workspace_size); empty: the runtime's stream-ordered pool.
struct Workspace {
  void* data = nullptr;
  size_t bytes = 0;
};

// The selection as a device bitmask: bit (j % 64) of word [b, h, i, j / 64] is set iff key j is
// selected for query block i.
struct Selection {
  void* data = nullptr;  // device memory of bytes(B, Hq, S, pq) bytes, 8-byte aligned
  static int64_t words_per_row(int64_t seq_len) { return (seq_len + 63) / 64; }
  static int64_t bytes(int64_t batch, int64_t heads, int64_t seq_len, int pq) {
    return batch * heads * ((seq_len + pq - 1) / pq) * words_per_row(seq_len) * 8;
  }
};

class Runtime {
 public:
  // Opens a device (its primary context); cache_path empty: the user kernel cache. Throws Error
  // (no_driver, no_device, ...) when there is no such device.
  explicit Runtime(int device = 0, const std::string& cache_path = {}) {
    detail::check(vecattn_create(device, cache_path.empty() ? nullptr : cache_path.c_str(), &rt_));
  }
  ~Runtime() { vecattn_destroy(rt_); }
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  Runtime(Runtime&& o) noexcept : rt_(o.rt_) { o.rt_ = nullptr; }
  Runtime& operator=(Runtime&& o) noexcept {
    if (this != &o) {
      vecattn_destroy(rt_);
      rt_ = o.rt_;
      o.rt_ = nullptr;
    }
    return *this;
  }

  // Pool, select, sparse attention; enqueued on `stream`, nothing synchronizes unless `stats`.
  void prefill(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const PrefillParams& params,
               Stream stream = nullptr, Workspace workspace = {}, PrefillStats* stats = nullptr) {
    const vecattn_prefill_params p = params.c();
    if (!stats) {
      detail::check(vecattn_prefill(rt_, &q.t, &k.t, &v.t, &out.t, &p, stream, workspace.data, workspace.bytes, nullptr));
      return;
    }
    std::vector<double> density(size_t(q.heads() > 0 ? q.heads() : 0));
    vecattn_prefill_stats s{};
    s.density = density.data();
    s.density_len = int64_t(density.size());
    detail::check(vecattn_prefill(rt_, &q.t, &k.t, &v.t, &out.t, &p, stream, workspace.data, workspace.bytes, &s));
    density.resize(size_t(s.density_count < s.density_len ? s.density_count : s.density_len));
    stats->density = std::move(density);
    stats->sparsity = s.sparsity;
    stats->pool_ms = s.pool_ms, stats->select_ms = s.select_ms, stats->attend_ms = s.attend_ms;
    stats->chunks = s.chunks;
  }

  size_t workspace_size(const Tensor& q, const Tensor& k, const PrefillParams& params) const {
    const vecattn_prefill_params p = params.c();
    size_t bytes = 0;
    detail::check(vecattn_workspace_size(rt_, &q.t, &k.t, &p, &bytes));
    return bytes;
  }
  size_t workspace_min_bytes(const Tensor& q, const Tensor& k, const PrefillParams& params) const {
    const vecattn_prefill_params p = params.c();
    size_t bytes = 0;
    detail::check(vecattn_workspace_min_bytes(rt_, &q.t, &k.t, &p, &bytes));
    return bytes;
  }

  // The selection alone (pool + select), into a caller's bitmask.
  void select(const Tensor& q, const Tensor& k, const PrefillParams& params, Selection out, Stream stream = nullptr,
              Workspace workspace = {}) {
    const vecattn_prefill_params p = params.c();
    detail::check(vecattn_select(rt_, &q.t, &k.t, &p, out.data, stream, workspace.data, workspace.bytes));
  }

  void dense(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, bool causal, Stream stream = nullptr) {
    detail::check(vecattn_dense(rt_, &q.t, &k.t, &v.t, &out.t, causal ? 1 : 0, stream));
  }

  // Mean pooling of q [B, H, S, D] by pq rows into out [B, H, ceil(S / pq), D].
  void pool(const Tensor& q, const Tensor& out, int pq, Stream stream = nullptr) {
    detail::check(vecattn_pool(rt_, &q.t, &out.t, pq, stream));
  }

  void release_workspace_memory() { detail::check(vecattn_release_workspace_memory(rt_)); }

  vecattn_runtime* handle() const { return rt_; }

 private:
  vecattn_runtime* rt_ = nullptr;
};

// Every check prefill makes before touching a GPU, without a runtime or a GPU (v, out optional).
inline void check_prefill(const Tensor& q, const Tensor& k, const Tensor* v, const Tensor* out,
                          const PrefillParams& params) {
  const vecattn_prefill_params p = params.c();
  detail::check(vecattn_check_prefill(&q.t, &k.t, v ? &v->t : nullptr, out ? &out->t : nullptr, &p));
}

// One layer's calibrated thresholds from vecattn-calibrate's JSON file, for PrefillParams::thresholds.
inline std::vector<float> layer_thresholds(const std::string& path, const std::string& model, int layer) {
  int64_t count = 0;
  detail::check(vecattn_layer_thresholds(path.c_str(), model.c_str(), layer, nullptr, 0, &count));
  std::vector<float> out(static_cast<size_t>(count));
  detail::check(vecattn_layer_thresholds(path.c_str(), model.c_str(), layer, out.data(), count, &count));
  return out;
}

inline std::string version() { return vecattn_version(); }

}  // namespace vecattn

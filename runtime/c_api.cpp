// The C ABI of runtime/vecattn.h over the C++ API. No exception crosses it: every entry point runs
// its body through guarded(), which turns exceptions into a status and the thread's error text.
#include "runtime/vecattn.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>

#include "cache/thresholds.h"
#include "codegen/error.h"
#include "runtime/prefill_plan.h"
#include "runtime/runtime.h"

// A C caller switches on these values, and the C++ side converts by value: they must not drift.
static_assert(VECATTN_OK == int(vecattn::Status::ok));
static_assert(VECATTN_INVALID_ARGUMENT == int(vecattn::Status::invalid_argument));
static_assert(VECATTN_UNSUPPORTED == int(vecattn::Status::unsupported));
static_assert(VECATTN_NO_DRIVER == int(vecattn::Status::no_driver));
static_assert(VECATTN_NO_DEVICE == int(vecattn::Status::no_device));
static_assert(VECATTN_CUDA_ERROR == int(vecattn::Status::cuda_error));
static_assert(VECATTN_NVRTC_UNAVAILABLE == int(vecattn::Status::nvrtc_unavailable));
static_assert(VECATTN_COMPILE_ERROR == int(vecattn::Status::compile_error));
static_assert(VECATTN_CACHE_ERROR == int(vecattn::Status::cache_error));
static_assert(VECATTN_INTERNAL == int(vecattn::Status::internal));
static_assert(VECATTN_FP16 == int(vecattn::DType::fp16) && VECATTN_BF16 == int(vecattn::DType::bf16));
// The dtype field is read back as an int (see to_tensor), which needs the enum to be one.
static_assert(sizeof(vecattn_dtype) == sizeof(int));

struct vecattn_runtime {
  explicit vecattn_runtime(const vecattn::RuntimeOptions& options) : rt(options) {}
  vecattn::Runtime rt;
};

namespace {

using vecattn::Error;
using vecattn::Status;

// The string owns the text; the pointer is what vecattn_last_error returns, so that a failure to
// allocate the text can still leave something true behind instead of a stale message.
thread_local std::string t_error;
thread_local const char* t_error_text = "";

void clear_error() noexcept {
  t_error.clear();
  t_error_text = "";
}

template <class Compose>
void set_error(Compose&& compose) noexcept {
  try {
    t_error = compose();
    t_error_text = t_error.c_str();
  } catch (...) {
    t_error_text = "vecattn: out of host memory while recording an error";
  }
}

// A C caller has no other way to reach an Error's detail (an NVRTC log) or kernel key.
std::string error_text(const Error& e) {
  std::string s = e.what();
  if (!e.key().empty() && s.find(e.key()) == std::string::npos) s += fmt::format(" (kernel {})", e.key());
  if (!e.detail().empty()) s += "\n" + e.detail();
  return s;
}

vecattn_status to_c(Status s) {
  // An Error that claims ok still means the call failed: never let it read as success.
  if (s == Status::ok) return VECATTN_INTERNAL;
  return static_cast<vecattn_status>(int(s));
}

template <class Body>
vecattn_status guarded(Body&& body) noexcept {
  try {
    body();
    clear_error();
    return VECATTN_OK;
  } catch (const Error& e) {
    set_error([&] { return error_text(e); });
    return to_c(e.status());
  } catch (const std::bad_alloc&) {
    set_error([] { return std::string("vecattn: out of host memory"); });
    return VECATTN_INTERNAL;
  } catch (const std::exception& e) {
    set_error([&] { return fmt::format("vecattn: internal error: {}", e.what()); });
    return VECATTN_INTERNAL;
  } catch (...) {
    set_error([] { return std::string("vecattn: internal error: an unknown exception"); });
    return VECATTN_INTERNAL;
  }
}

[[noreturn]] void bad(const std::string& message) { throw Error(Status::invalid_argument, message); }

vecattn::Runtime& runtime(vecattn_runtime* rt) {
  if (!rt) bad("rt is NULL: create a runtime with vecattn_create");
  return rt->rt;
}

vecattn::Tensor to_tensor(const vecattn_tensor* t, const char* name) {
  if (!t) bad(fmt::format("{} is NULL", name));
  // A C caller can store any int in the enum field; reading it through the C++ enum type would
  // be undefined for values outside it, so the bits are read as an int.
  int dtype = 0;
  std::memcpy(&dtype, &t->dtype, sizeof dtype);
  if (dtype != VECATTN_FP16 && dtype != VECATTN_BF16)
    bad(fmt::format("{}: dtype {} is not a vecattn_dtype: use VECATTN_FP16 (0) or VECATTN_BF16 (1)", name, dtype));
  vecattn::Tensor r;
  r.data = t->data;
  r.dtype = dtype == VECATTN_FP16 ? vecattn::DType::fp16 : vecattn::DType::bf16;
  for (int i = 0; i < 4; ++i) {
    r.shape[i] = t->shape[i];
    r.stride[i] = t->stride[i];
  }
  return r;
}

vecattn::PrefillParams to_params(const vecattn_prefill_params* p) {
  if (!p) bad("params is NULL: start from vecattn_default_params()");
  vecattn::PrefillParams r;
  r.pq = p->pq;
  r.bk = p->bk;
  r.gk = p->gk;
  r.causal = p->causal != 0;
  r.threshold = p->threshold;
  r.thresholds = p->thresholds;
  r.num_thresholds = p->num_thresholds;
  r.dense_prefix = p->dense_prefix;
  return r;
}

vecattn::Workspace to_workspace(void* data, size_t bytes) {
  // A size without memory is a caller bug; silently using the runtime's own workspace instead
  // would hide it (and allocate, which breaks graph capture).
  if (!data && bytes != 0) bad(fmt::format("workspace is NULL but workspace_bytes is {}", bytes));
  return vecattn::Workspace{data, bytes};
}

vecattn::Stream to_stream(void* stream) { return static_cast<vecattn::Stream>(stream); }

}  // namespace

extern "C" {

vecattn_prefill_params vecattn_default_params(void) {
  // From the C++ defaults, so that the two APIs cannot disagree.
  const vecattn::PrefillParams d;
  vecattn_prefill_params p;
  p.pq = d.pq;
  p.bk = d.bk;
  p.gk = d.gk;
  p.causal = d.causal ? 1 : 0;
  p.threshold = d.threshold;
  p.thresholds = d.thresholds;
  p.num_thresholds = d.num_thresholds;
  p.dense_prefix = d.dense_prefix;
  return p;
}

vecattn_status vecattn_create(int device, const char* cache_path, vecattn_runtime** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    if (!out) bad("out is NULL: pass the address of a vecattn_runtime*");
    vecattn::RuntimeOptions options;
    options.device = device;
    if (cache_path) options.cache_path = cache_path;
    *out = std::make_unique<vecattn_runtime>(options).release();
  });
}

void vecattn_destroy(vecattn_runtime* rt) { delete rt; }

vecattn_status vecattn_prefill(vecattn_runtime* rt, const vecattn_tensor* q, const vecattn_tensor* k,
                               const vecattn_tensor* v, const vecattn_tensor* out,
                               const vecattn_prefill_params* params, void* stream, void* workspace,
                               size_t workspace_bytes, vecattn_prefill_stats* stats) {
  return guarded([&] {
    vecattn::Runtime& r = runtime(rt);
    const vecattn::Tensor tq = to_tensor(q, "q"), tk = to_tensor(k, "k"), tv = to_tensor(v, "v"),
                          to = to_tensor(out, "out");
    const vecattn::PrefillParams p = to_params(params);
    const vecattn::Workspace ws = to_workspace(workspace, workspace_bytes);
    // Checked before the launch: failing after it would leave the caller unsure what ran.
    if (stats && stats->density_len < 0) bad(fmt::format("stats->density_len {} is negative", stats->density_len));
    if (stats && !stats->density && stats->density_len != 0)
      bad(fmt::format("stats->density is NULL but stats->density_len is {}", stats->density_len));
    vecattn::PrefillStats s;
    r.prefill(tq, tk, tv, to, p, to_stream(stream), ws, stats ? &s : nullptr);
    if (stats) {
      stats->pool_ms = s.pool_ms;
      stats->select_ms = s.select_ms;
      stats->attend_ms = s.attend_ms;
      stats->sparsity = s.sparsity;
      stats->chunks = s.chunks;
      stats->density_count = int64_t(s.density.size());
      const int64_t n = std::min(stats->density_len, stats->density_count);
      if (n > 0) std::copy_n(s.density.begin(), n, stats->density);
    }
  });
}

namespace {

// Both workspace queries: the same checks, one Runtime member apart.
vecattn_status workspace_query(vecattn_runtime* rt, const vecattn_tensor* q, const vecattn_tensor* k,
                               const vecattn_prefill_params* params, size_t* bytes,
                               size_t (vecattn::Runtime::*query)(const vecattn::Tensor&, const vecattn::Tensor&,
                                                                  const vecattn::PrefillParams&) const) {
  if (bytes) *bytes = 0;
  return guarded([&] {
    const vecattn::Runtime& r = runtime(rt);
    const vecattn::Tensor tq = to_tensor(q, "q"), tk = to_tensor(k, "k");
    const vecattn::PrefillParams p = to_params(params);
    if (!bytes) bad("bytes is NULL");
    *bytes = (r.*query)(tq, tk, p);
  });
}

}  // namespace

vecattn_status vecattn_workspace_size(vecattn_runtime* rt, const vecattn_tensor* q, const vecattn_tensor* k,
                                      const vecattn_prefill_params* params, size_t* bytes) {
  return workspace_query(rt, q, k, params, bytes, &vecattn::Runtime::workspace_size);
}

vecattn_status vecattn_workspace_min_bytes(vecattn_runtime* rt, const vecattn_tensor* q, const vecattn_tensor* k,
                                           const vecattn_prefill_params* params, size_t* bytes) {
  return workspace_query(rt, q, k, params, bytes, &vecattn::Runtime::workspace_min_bytes);
}

vecattn_status vecattn_select(vecattn_runtime* rt, const vecattn_tensor* q, const vecattn_tensor* k,
                              const vecattn_prefill_params* params, void* mask, void* stream, void* workspace,
                              size_t workspace_bytes) {
  return guarded([&] {
    vecattn::Runtime& r = runtime(rt);
    const vecattn::Tensor tq = to_tensor(q, "q"), tk = to_tensor(k, "k");
    const vecattn::PrefillParams p = to_params(params);
    if (!mask) bad("mask is NULL: pass device memory for the selection bitmask");
    vecattn::Selection sel;
    sel.data = mask;
    r.select(tq, tk, p, sel, to_stream(stream), to_workspace(workspace, workspace_bytes));
  });
}

vecattn_status vecattn_dense(vecattn_runtime* rt, const vecattn_tensor* q, const vecattn_tensor* k,
                             const vecattn_tensor* v, const vecattn_tensor* out, int causal, void* stream) {
  return guarded([&] {
    vecattn::Runtime& r = runtime(rt);
    // Converted one statement at a time: argument order is unspecified, and with two bad
    // arguments the message should name the first.
    const vecattn::Tensor tq = to_tensor(q, "q"), tk = to_tensor(k, "k"), tv = to_tensor(v, "v"),
                          to = to_tensor(out, "out");
    r.dense(tq, tk, tv, to, causal != 0, to_stream(stream));
  });
}

vecattn_status vecattn_pool(vecattn_runtime* rt, const vecattn_tensor* q, const vecattn_tensor* out, int pq,
                            void* stream) {
  return guarded([&] {
    vecattn::Runtime& r = runtime(rt);
    const vecattn::Tensor tq = to_tensor(q, "q"), to = to_tensor(out, "out");
    r.pool(tq, to, pq, to_stream(stream));
  });
}

vecattn_status vecattn_release_workspace_memory(vecattn_runtime* rt) {
  return guarded([&] { runtime(rt).release_workspace_memory(); });
}

vecattn_status vecattn_check_prefill(const vecattn_tensor* q, const vecattn_tensor* k, const vecattn_tensor* v,
                                     const vecattn_tensor* out, const vecattn_prefill_params* params) {
  return guarded([&] {
    const vecattn::Tensor tq = to_tensor(q, "q"), tk = to_tensor(k, "k");
    vecattn::Tensor tv, to;
    if (v) tv = to_tensor(v, "v");
    if (out) to = to_tensor(out, "out");
    vecattn::plan_prefill(tq, tk, v ? &tv : nullptr, out ? &to : nullptr, to_params(params));
  });
}

vecattn_status vecattn_layer_thresholds(const char* path, const char* model, int layer, float* out, int64_t capacity,
                                        int64_t* count) {
  return guarded([&] {
    if (!path || !model) throw Error(Status::invalid_argument, "vecattn_layer_thresholds: path and model must not be NULL");
    if (!count) throw Error(Status::invalid_argument, "vecattn_layer_thresholds: count must not be NULL");
    if (capacity < 0 || (capacity > 0 && !out))
      throw Error(Status::invalid_argument, "vecattn_layer_thresholds: out must hold capacity floats");
    const std::vector<float> t = vecattn::cache::layer_thresholds(vecattn::cache::read_thresholds_file(path), model, layer);
    *count = int64_t(t.size());
    for (int64_t i = 0; i < std::min<int64_t>(capacity, *count); ++i) out[i] = t[size_t(i)];
  });
}

const char* vecattn_last_error(void) { return t_error_text; }

const char* vecattn_status_name(vecattn_status status) {
  const int s = int(status);
  if (s < VECATTN_OK || s > VECATTN_INTERNAL) return "unknown";
  return vecattn::status_name(static_cast<Status>(s));
}

}  // extern "C"

/*
 * vecattn: VecAttention (vector-wise sparse attention) on NVIDIA GPUs, plain C ABI.
 * Compiles as C99 and as C++; depends on nothing but <stddef.h> and <stdint.h>.
 *
 *   vecattn_runtime* rt = NULL;
 *   if (vecattn_create(0, NULL, &rt) != VECATTN_OK) { fprintf(stderr, "%s\n", vecattn_last_error()); ... }
 *   vecattn_tensor q = vecattn_tensor_bhsd(q_ptr, VECATTN_BF16, B, H, S, 128);
 *   ... k, v, out likewise ...
 *   vecattn_prefill_params p = vecattn_default_params();
 *   vecattn_prefill(rt, &q, &k, &v, &out, &p, stream, NULL, 0, NULL);   async on `stream`
 *   vecattn_destroy(rt);
 *
 * Conventions, for every function returning vecattn_status:
 *  - It never throws or aborts: every failure is a status, and vecattn_last_error() then holds
 *    its text (for a kernel compile failure, the NVRTC log follows the first line).
 *  - The error text is per thread; a successful call resets it to "". The pointer returned by
 *    vecattn_last_error() stays valid until the next call returning vecattn_status on the same
 *    thread.
 *  - A NULL handle, tensor pointer or params is VECATTN_INVALID_ARGUMENT naming the argument.
 *  - Device pointers (tensor data, mask, workspace) are never read on the host; streams are
 *    CUstream / cudaStream_t passed as void* (NULL: the legacy default stream).
 *
 * Threads and streams:
 *  - One vecattn_runtime may be used by any number of threads at once, each on any streams of
 *    its device; every function is thread-safe, and a call's result never depends on what else
 *    runs. Only vecattn_destroy must not overlap another call on the same runtime.
 *  - A call given no workspace takes its scratch from the runtime's memory pool in the order of
 *    its stream (allocated before its first kernel, freed after its last, no host sync), so
 *    concurrent calls never share scratch. The pool keeps what it reserved for later calls until
 *    vecattn_release_workspace_memory or vecattn_destroy.
 *  - A call given a workspace uses that memory only: do not give one workspace to two calls that
 *    may run at the same time.
 *  - CUDA graph capture works for prefill, select, dense and pool, with or without a workspace
 *    (without one the graph gets an allocation and a free node). Stats synchronize: a prefill
 *    asking for them on a capturing stream fails with VECATTN_INVALID_ARGUMENT before enqueuing.
 */
#ifndef VECATTN_H_
#define VECATTN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vecattn_runtime vecattn_runtime;

/* The same values, in the same order, as vecattn::Status of the C++ API. */
typedef enum vecattn_status {
  VECATTN_OK = 0,
  VECATTN_INVALID_ARGUMENT,   /* a bad input: the error text names it and what is allowed */
  VECATTN_UNSUPPORTED,        /* valid in principle but not built, e.g. head_dim 80 */
  VECATTN_NO_DRIVER,          /* libcuda could not be opened */
  VECATTN_NO_DEVICE,          /* a driver, but no usable GPU */
  VECATTN_CUDA_ERROR,         /* a CUDA Driver API call failed */
  VECATTN_NVRTC_UNAVAILABLE,  /* libnvrtc could not be opened */
  VECATTN_COMPILE_ERROR,      /* NVRTC rejected a kernel */
  VECATTN_CACHE_ERROR,        /* the SQLite kernel cache failed */
  VECATTN_INTERNAL            /* a bug, or the host ran out of memory */
} vecattn_status;

typedef enum vecattn_dtype {
  VECATTN_FP16 = 0,
  VECATTN_BF16 = 1
} vecattn_dtype;

/* A view of device memory: logical shape [B, H, S, D], strides in elements (not bytes).
 * Any strides work as long as the innermost (D) one is 1, the others are multiples of 8 and
 * data is 16-byte aligned. */
typedef struct vecattn_tensor {
  void* data;
  vecattn_dtype dtype;
  int64_t shape[4];   /* B, H, S, D */
  int64_t stride[4];
} vecattn_tensor;

/* Contiguous memory laid out [B, H, S, D]. */
static inline vecattn_tensor vecattn_tensor_bhsd(void* data, vecattn_dtype dtype, int64_t b, int64_t h, int64_t s,
                                                 int64_t d) {
  vecattn_tensor t;
  t.data = data;
  t.dtype = dtype;
  t.shape[0] = b;
  t.shape[1] = h;
  t.shape[2] = s;
  t.shape[3] = d;
  t.stride[0] = h * s * d;
  t.stride[1] = s * d;
  t.stride[2] = d;
  t.stride[3] = 1;
  return t;
}

/* Contiguous memory laid out [B, S, H, D] (what a fused QKV projection usually yields).
 * Note the argument order follows the memory layout: b, s, h, d. */
static inline vecattn_tensor vecattn_tensor_bshd(void* data, vecattn_dtype dtype, int64_t b, int64_t s, int64_t h,
                                                 int64_t d) {
  vecattn_tensor t;
  t.data = data;
  t.dtype = dtype;
  t.shape[0] = b;
  t.shape[1] = h;
  t.shape[2] = s;
  t.shape[3] = d;
  t.stride[0] = s * h * d;
  t.stride[1] = d;
  t.stride[2] = h * d;
  t.stride[3] = 1;
  return t;
}

/* VecAttention parameters. Start from vecattn_default_params() so that fields added later
 * keep their defaults. */
typedef struct vecattn_prefill_params {
  int pq;                    /* query rows pooled into one vector: 64 or 128 */
  int bk;                    /* key tile of selection: 16, 32 or 64 */
  int gk;                    /* tiles per selection group: a power of two, 1..128 */
  int causal;                /* nonzero: causal */
  float threshold;           /* MinP threshold in (0, 1], used when thresholds is NULL */
  const float* thresholds;   /* host array of one threshold per q head, or NULL */
  int64_t num_thresholds;    /* its length: the number of q heads (0 when thresholds is NULL) */
  int64_t dense_prefix;      /* query rows [0, dense_prefix) attend densely */
} vecattn_prefill_params;

/* pq 64, bk 16, gk 16, causal, threshold 0.9, no per-head thresholds, no dense prefix. */
vecattn_prefill_params vecattn_default_params(void);

/* What a prefill did. Asking for it (a non-NULL stats) costs a host synchronization.
 * Zero-initialize it, then optionally point `density` at a host array: */
typedef struct vecattn_prefill_stats {
  float pool_ms, select_ms, attend_ms;  /* out: GPU time of each phase */
  double sparsity;          /* out: 1 - mean density over every row of every head and batch */
  int chunks;               /* out: (batch, head) chunks the workspace size led to */
  double* density;          /* in: host array of density_len doubles, or NULL for none */
  int64_t density_len;      /* in: its capacity */
  int64_t density_count;    /* out: the number of q heads; min(density_len, density_count)
                               values were written, per q head: mean |attended| / |visible| */
} vecattn_prefill_stats;

/* Opens device `device` (retaining its primary context, the one the CUDA runtime uses).
 * cache_path: the SQLite file of compiled kernels; NULL or "" for the user cache
 * ($VECATTN_CACHE_DIR or $XDG_CACHE_HOME/vecattn/vecattn.sqlite). *out is NULL on failure. */
vecattn_status vecattn_create(int device, const char* cache_path, vecattn_runtime** out);
/* NULL is a no-op. Work already enqueued on streams is not waited for. */
void vecattn_destroy(vecattn_runtime* rt);

/* Prefill: pool, select, sparse attention. q, out: [B, Hq, S, D]; k, v: [B, Hkv, S, D] with
 * Hq % Hkv == 0, D 64 or 128, one dtype. Enqueued on `stream`; returns without waiting unless
 * stats is non-NULL. workspace: device scratch of workspace_bytes (at least
 * vecattn_workspace_min_bytes), or NULL/0 to let the runtime own one; with one given the call
 * allocates nothing; without, the scratch is stream-ordered (see Threads and streams). */
vecattn_status vecattn_prefill(vecattn_runtime* rt, const vecattn_tensor* q, const vecattn_tensor* k,
                               const vecattn_tensor* v, const vecattn_tensor* out,
                               const vecattn_prefill_params* params, void* stream, void* workspace,
                               size_t workspace_bytes, vecattn_prefill_stats* stats);

/* The workspace that processes every (batch, head) at once, capped by the budget (2.5 GiB by
 * default, or $VECATTN_WORKSPACE_MB), and the least that works at all. */
vecattn_status vecattn_workspace_size(vecattn_runtime* rt, const vecattn_tensor* q, const vecattn_tensor* k,
                                      const vecattn_prefill_params* params, size_t* bytes);
vecattn_status vecattn_workspace_min_bytes(vecattn_runtime* rt, const vecattn_tensor* q, const vecattn_tensor* k,
                                           const vecattn_prefill_params* params, size_t* bytes);

/* The selection alone, into a device bitmask of B * Hq * ceil(S / pq) * ceil(S / 64) 64-bit
 * words: bit (j % 64) of word [b, h, i, j / 64] is set iff key j is selected for query block i. */
vecattn_status vecattn_select(vecattn_runtime* rt, const vecattn_tensor* q, const vecattn_tensor* k,
                              const vecattn_prefill_params* params, void* mask, void* stream, void* workspace,
                              size_t workspace_bytes);

/* Dense attention (causal when causal is nonzero); shapes as for vecattn_prefill. */
vecattn_status vecattn_dense(vecattn_runtime* rt, const vecattn_tensor* q, const vecattn_tensor* k,
                             const vecattn_tensor* v, const vecattn_tensor* out, int causal, void* stream);

/* Mean pooling of q [B, H, S, D] by pq rows into out [B, H, ceil(S / pq), D]. */
vecattn_status vecattn_pool(vecattn_runtime* rt, const vecattn_tensor* q, const vecattn_tensor* out, int pq,
                            void* stream);

/* Returns the workspace memory the runtime's pool reserved and no call in flight holds to the
 * device. Later calls without a workspace reserve again. */
vecattn_status vecattn_release_workspace_memory(vecattn_runtime* rt);

/* Every check vecattn_prefill makes before touching a GPU, without a runtime or a GPU.
 * v and out may be NULL (as for vecattn_select). */
vecattn_status vecattn_check_prefill(const vecattn_tensor* q, const vecattn_tensor* k, const vecattn_tensor* v,
                                     const vecattn_tensor* out, const vecattn_prefill_params* params);

/* One layer's calibrated thresholds (vecattn-calibrate's JSON file), in the form prefill takes
 * (params.thresholds, indexed by q head): *count receives the head count; min(capacity, *count)
 * values are written to out. An absent model or layer, or a missing head, is
 * VECATTN_INVALID_ARGUMENT naming it; a malformed file names the line. */
vecattn_status vecattn_layer_thresholds(const char* path, const char* model, int layer, float* out, int64_t capacity,
                                        int64_t* count);

/* The library version, e.g. "0.1.0" (defined in libvecattn.so). */
const char* vecattn_version(void);

/* The text of the last failing call on this thread, or "" when the last call succeeded. */
const char* vecattn_last_error(void);
/* "ok", "invalid_argument", ...; "unknown" for a value outside the enum. */
const char* vecattn_status_name(vecattn_status status);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* VECATTN_H_ */

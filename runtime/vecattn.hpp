#pragma once
// vecattn: VecAttention (vector-wise sparse attention) on NVIDIA GPUs, C++ API.
//
//   vecattn::Runtime rt;                                   // device 0, user kernel cache
//   auto q  = vecattn::Tensor::bhsd(q_ptr, vecattn::DType::bf16, B, H, S, 128);
//   auto qp = vecattn::Tensor::bhsd(qp_ptr, vecattn::DType::bf16, B, H, (S + 63) / 64, 128);
//   rt.pool(q, qp, /*pq=*/64, stream);                     // async on `stream`, no host sync
//
// Errors are vecattn::Error (a std::runtime_error) with a Status and, for compile failures,
// the NVRTC log in detail().
#include <memory>
#include <string>

#include "codegen/error.h"
#include "codegen/key.h"
#include "runtime/cubin_cache.h"
#include "runtime/device.h"
#include "runtime/tensor.h"

struct CUstream_st;

namespace vecattn {

// A CUDA stream: CUstream and cudaStream_t are both this type. nullptr is the legacy stream.
using Stream = CUstream_st*;

struct RuntimeOptions {
  int device = 0;
  // The SQLite file holding compiled kernels (and tuned configs). Empty: the user cache,
  // $VECATTN_CACHE_DIR or $XDG_CACHE_HOME/vecattn/vecattn.sqlite.
  std::string cache_path;
  // false: compiled kernels stay in this process's memory only.
  bool persist = true;
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

  // DESIGN §2.1. q: [B, H, S, D]; out: [B, H, ceil(S / pq), D], same dtype. pq 64 or 128,
  // D 64 or 128. Enqueued on `stream`; returns without waiting.
  void pool(const Tensor& q, const Tensor& out, int pq, Stream stream = nullptr);

  // Loads a variant (from memory, the cache database, or NVRTC) so that its first launch
  // pays nothing; returns where it came from.
  CubinOrigin preload(const Variant& v);

  // The key of a kernel on this device (arch filled in).
  KernelKey key(KernelKind kind, int pq, int bk, int gk, int head_dim, DType dtype, bool causal) const;

  // Counters of the compiled-kernel cache behind this runtime.
  const CubinCache::Stats& cache_stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vecattn

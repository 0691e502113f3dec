#pragma once
// Scratch for calls that pass no workspace: memory from a pool of the runtime's own, allocated
// and freed in the order of the caller's stream (cuMemAllocFromPoolAsync / cuMemFreeAsync).
//
// Why stream-ordered: one buffer shared by every call races as soon as two streams overlap (the
// selection of one call overwritten by another's), and a buffer per stream would have to be
// freed when it grows while another stream may still read it. Stream-ordered memory is the
// driver's answer to both: a call's scratch is reserved from its first kernel to its last on its
// own stream, nothing is ever freed under a running kernel, no host synchronization is added,
// and under stream capture the pair becomes allocation and free nodes of the graph.
#include <cuda.h>

#include <cstddef>
#include <string>

namespace vecattn {

class StreamWorkspacePool {
 public:
  // Creates the pool on `device` (nothing is reserved yet). A device without memory-pool support
  // is remembered, and acquire() then says to pass a workspace instead.
  StreamWorkspacePool(CUdevice device, CUcontext context);
  ~StreamWorkspacePool();
  StreamWorkspacePool(const StreamWorkspacePool&) = delete;
  StreamWorkspacePool& operator=(const StreamWorkspacePool&) = delete;

  // Memory of `bytes` held from now to the end of the lease in the order of `stream`.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& o) noexcept { *this = std::move(o); }
    Lease& operator=(Lease&& o) noexcept;
    ~Lease();  // enqueues the free on the stream: work enqueued before it still sees the memory
    void* data() const { return reinterpret_cast<void*>(ptr_); }
    size_t bytes() const { return bytes_; }

   private:
    friend class StreamWorkspacePool;
    void release() noexcept;
    CUdeviceptr ptr_ = 0;
    size_t bytes_ = 0;
    CUstream stream_ = nullptr;
    CUcontext context_ = nullptr;
  };

  // `want` bytes, or, when the device is short of memory, the largest size halving down to
  // `least`. Throws Error(cuda_error) naming the sizes when not even `least` can be had, and
  // Error(unsupported) when the device has no memory pools. The current context must be ours.
  Lease acquire(size_t want, size_t least, CUstream stream);

  // Returns the pool's reserved memory not held by a lease to the device (cuMemPoolTrimTo 0).
  void trim();

 private:
  CUcontext context_ = nullptr;
  CUmemoryPool pool_ = nullptr;
  std::string unsupported_;  // why there is no pool, when there is none
};

}  // namespace vecattn

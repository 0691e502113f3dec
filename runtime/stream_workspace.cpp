#include "runtime/stream_workspace.h"

#include <fmt/format.h>

#include <cstdint>
#include <utility>

#include "codegen/error.h"
#include "codegen/log.h"
#include "runtime/driver.h"

namespace vecattn {

StreamWorkspacePool::StreamWorkspacePool(CUdevice device, CUcontext context) : context_(context) {
  const Driver& d = Driver::get();
  int supported = 0;
  d.check(d.cuDeviceGetAttribute(&supported, CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED, device), "cuDeviceGetAttribute");
  if (!supported) {
    unsupported_ = "this device (or its driver) has no stream-ordered memory pools";
    return;
  }
  CUmemPoolProps props{};
  props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  props.location.id = device;
  d.check(d.cuMemPoolCreate(&pool_, &props), "cuMemPoolCreate");
  // Keep what was reserved between calls (the default threshold 0 hands it back at every
  // synchronization, and the next call pays to map it again): the pool then costs what the
  // largest set of concurrent calls needed, like the single owned workspace it replaces.
  cuuint64_t keep = UINT64_MAX;
  d.check(d.cuMemPoolSetAttribute(pool_, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep), "cuMemPoolSetAttribute");
  // Never let the driver make one stream wait for another to reuse a block: independent
  // streams stay independent, and the pool grows instead. Reuse that follows the caller's own
  // event dependencies, or of frees already finished on the device, stays on.
  int no = 0;
  d.check(d.cuMemPoolSetAttribute(pool_, CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES, &no),
          "cuMemPoolSetAttribute");
}

StreamWorkspacePool::~StreamWorkspacePool() {
  // Frees still pending on streams are completed by the driver before the memory goes back.
  if (pool_) Driver::get().cuMemPoolDestroy(pool_);
}

StreamWorkspacePool::Lease StreamWorkspacePool::acquire(size_t want, size_t least, CUstream stream) {
  if (!pool_)
    throw Error(Status::unsupported,
                fmt::format("{}: pass a Workspace (see workspace_size) to calls on this device", unsupported_));
  const Driver& d = Driver::get();
  Lease lease;
  CUresult r = CUDA_ERROR_OUT_OF_MEMORY;
  size_t bytes = want;
  for (;;) {
    r = d.cuMemAllocFromPoolAsync(&lease.ptr_, bytes, pool_, stream);
    if (r != CUDA_ERROR_OUT_OF_MEMORY || bytes <= least) break;
    bytes = std::max(least, bytes / 2);
  }
  if (r == CUDA_ERROR_OUT_OF_MEMORY)
    throw Error(Status::cuda_error,
                fmt::format("workspace: the device has not even {} bytes free for one (batch, head) of this call "
                            "({} wanted); free memory or pass a Workspace",
                            least, want));
  d.check(r, "cuMemAllocFromPoolAsync (workspace)");
  if (bytes < want) log::debug("workspace: {} of {} bytes available; the call runs in more chunks", bytes, want);
  lease.bytes_ = bytes;
  lease.stream_ = stream;
  lease.context_ = context_;
  return lease;
}

void StreamWorkspacePool::trim() {
  if (!pool_) return;
  const Driver& d = Driver::get();
  d.check(d.cuMemPoolTrimTo(pool_, 0), "cuMemPoolTrimTo");
}

StreamWorkspacePool::Lease& StreamWorkspacePool::Lease::operator=(Lease&& o) noexcept {
  if (this != &o) {
    release();
    ptr_ = std::exchange(o.ptr_, 0);
    bytes_ = std::exchange(o.bytes_, 0);
    stream_ = o.stream_;
    context_ = o.context_;
  }
  return *this;
}

StreamWorkspacePool::Lease::~Lease() { release(); }

void StreamWorkspacePool::Lease::release() noexcept {
  if (!ptr_) return;
  const Driver& d = Driver::get();
  d.cuCtxPushCurrent(context_);
  if (CUresult r = d.cuMemFreeAsync(ptr_, stream_); r != CUDA_SUCCESS)
    log::error("cuMemFreeAsync of a workspace failed: {}", d.error_text(r));
  CUcontext popped = nullptr;
  d.cuCtxPopCurrent(&popped);
  ptr_ = 0;
}

}  // namespace vecattn

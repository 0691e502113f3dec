#include <fmt/format.h>

#include "codegen/kernels.h"
#include "codegen/log.h"
#include "runtime/driver.h"
#include "runtime/runtime_impl.h"

namespace vecattn {

Runtime::Runtime(const RuntimeOptions& options) : impl_(std::make_unique<Impl>()) {
  const Driver& d = Driver::get();
  impl_->device = query_device(options.device);
  if (impl_->device.cc_major < 8)
    throw Error(Status::unsupported, fmt::format("{} is {}: vecattn needs compute capability 8.0 or newer",
                                                 impl_->device.name, impl_->device.arch));
  d.check(d.cuDeviceGet(&impl_->cu_device, options.device), "cuDeviceGet");
  d.check(d.cuDevicePrimaryCtxRetain(&impl_->context, impl_->cu_device), "cuDevicePrimaryCtxRetain");

  if (!options.persist) {
    impl_->own_cubins = std::make_unique<CubinCache>(nullptr);
  } else if (!options.cache_path.empty()) {
    std::shared_ptr<cache::Database> db;
    try {
      db = cache::Database::open(options.cache_path);
    } catch (const Error& e) {
      log::warn("{}; compiled kernels will not persist", e.what());
    }
    impl_->own_cubins = std::make_unique<CubinCache>(std::move(db));
  }
  impl_->cubins = impl_->own_cubins ? impl_->own_cubins.get() : &CubinCache::shared();
  impl_->modules = std::make_unique<ModuleCache>(impl_->context, *impl_->cubins);
}

Runtime::~Runtime() {
  impl_->modules.reset();
  if (impl_->own_workspace) {
    ScopedContext scope(impl_->context);
    Driver::get().cuMemFree(impl_->own_workspace);
  }
  if (impl_->context) Driver::get().cuDevicePrimaryCtxRelease(impl_->cu_device);
}

const DeviceInfo& Runtime::device() const { return impl_->device; }
const CubinCache::Stats& Runtime::cache_stats() const { return impl_->cubins->stats(); }

KernelKey Runtime::key(KernelKind kind, int pq, int bk, int gk, int head_dim, DType dtype, bool causal) const {
  return KernelKey{kind, pq, bk, gk, head_dim, dtype, impl_->device.arch, causal}.canonical();
}

CubinOrigin Runtime::preload(const Variant& v) {
  if (v.key.arch != impl_->device.arch)
    throw Error(Status::invalid_argument,
                fmt::format("variant {} is for {}, but device {} is {}", v.str(), v.key.arch, impl_->device.ordinal,
                            impl_->device.arch));
  return impl_->modules->get(v).origin;
}

Workspace Runtime::Impl::owned_workspace(size_t bytes) {
  if (own_workspace_bytes < bytes) {
    const Driver& d = Driver::get();
    ScopedContext scope(context);
    if (own_workspace) d.check(d.cuMemFree(own_workspace), "cuMemFree");
    own_workspace = 0;
    own_workspace_bytes = 0;
    d.check(d.cuMemAlloc(&own_workspace, bytes), "cuMemAlloc (workspace)");
    own_workspace_bytes = bytes;
  }
  return Workspace{reinterpret_cast<void*>(own_workspace), own_workspace_bytes};
}

const LoadedKernel& Runtime::Impl::kernel(const KernelKey& key) {
  // Tuned configs are looked up here once the tuner stores them; until then the default.
  return modules->get(Variant{key, default_config(key)});
}

}  // namespace vecattn

#include "runtime/module_cache.h"

#include <fmt/format.h>

#include "codegen/kernels.h"
#include "codegen/log.h"
#include "runtime/driver.h"

namespace vecattn {

ModuleCache::~ModuleCache() {
  if (modules_.empty()) return;
  const Driver& d = Driver::get();
  ScopedContext scope(ctx_);
  for (CUmodule m : modules_) d.cuModuleUnload(m);
}

const LoadedKernel& ModuleCache::get(const Variant& v) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = kernels_.find(v); it != kernels_.end()) return it->second;
  }
  // Compile (or read) outside the lock, so threads wanting other variants are not held up by an
  // NVRTC run; the cubin cache makes concurrent askers of one variant share a single compile.
  CubinResult cubin = cubins_.get(v);
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = kernels_.find(v); it != kernels_.end()) return it->second;

  const Driver& d = Driver::get();
  ScopedContext scope(ctx_);
  CUmodule module = nullptr;
  CUresult r = d.cuModuleLoadData(&module, cubin.kernel->cubin.data());
  if (r != CUDA_SUCCESS && cubin.origin != CubinOrigin::compiled) {
    // A stored cubin that passed its checksum yet does not load: rebuild it rather than fail.
    log::warn("the driver refused the cached cubin of {} ({}); recompiling", v.str(), d.error_text(r));
    cubins_.invalidate(v);
    cubin = cubins_.get(v);
    r = d.cuModuleLoadData(&module, cubin.kernel->cubin.data());
  }
  d.check(r, "cuModuleLoadData");
  modules_.push_back(module);

  LoadedKernel k;
  k.variant = v;
  k.origin = cubin.origin;
  d.check(d.cuModuleGetFunction(&k.function, module, cubin.kernel->lowered_name.c_str()), "cuModuleGetFunction");
  d.check(d.cuFuncGetAttribute(&k.static_smem, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, k.function), "cuFuncGetAttribute");
  d.check(d.cuFuncGetAttribute(&k.max_threads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, k.function), "cuFuncGetAttribute");
  k.dynamic_smem = dynamic_smem_bytes(v);
  if (k.dynamic_smem > 48 * 1024) {
    int optin = 0;
    CUdevice dev;
    d.check(d.cuCtxGetDevice(&dev), "cuCtxGetDevice");
    d.check(d.cuDeviceGetAttribute(&optin, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, dev),
            "cuDeviceGetAttribute");
    if (k.static_smem + k.dynamic_smem > optin)
      throw Error(Status::unsupported,
                  fmt::format("{} needs {} bytes of shared memory; this device allows {} per block: choose a smaller "
                              "tile config", v.str(), k.static_smem + k.dynamic_smem, optin),
                  {}, v.str());
    d.check(d.cuFuncSetAttribute(k.function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, k.dynamic_smem),
            "cuFuncSetAttribute");
  }
  log::debug("loaded {} (cubin from {})", v.str(), origin_name(cubin.origin));
  return kernels_.emplace(v, k).first->second;
}

}  // namespace vecattn

#pragma once
// Loaded kernels of one context, by variant: a warm launch costs a map lookup. Modules load
// lazily from the cubin cache; a cubin the driver refuses is recompiled once and replaced.
#include <cuda.h>

#include <map>
#include <memory>
#include <mutex>

#include "runtime/cubin_cache.h"

namespace vecattn {

struct LoadedKernel {
  CUfunction function = nullptr;
  Variant variant;
  CubinOrigin origin = CubinOrigin::compiled;   // where the cubin came from on first load
  int static_smem = 0;
  int dynamic_smem = 0;   // launched with this much; the attribute is raised past 48 KiB
  int max_threads = 0;
};

class ModuleCache {
 public:
  ModuleCache(CUcontext ctx, CubinCache& cubins) : ctx_(ctx), cubins_(cubins) {}
  ~ModuleCache();
  ModuleCache(const ModuleCache&) = delete;
  ModuleCache& operator=(const ModuleCache&) = delete;

  // Thread-safe. Throws the compile or driver error that prevented loading.
  const LoadedKernel& get(const Variant& v);

 private:
  CUcontext ctx_;
  CubinCache& cubins_;
  std::mutex mutex_;
  std::map<Variant, LoadedKernel> kernels_;
  std::vector<CUmodule> modules_;
};

}  // namespace vecattn

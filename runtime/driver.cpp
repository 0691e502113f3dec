#include "runtime/driver.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <cstdlib>
#include <memory>

#include "codegen/error.h"

namespace vecattn {
namespace {

struct LoadResult {
  std::unique_ptr<Driver> driver;
  Status status = Status::ok;
  std::string why;
};

LoadResult load() {
  LoadResult res;
  const char* env = std::getenv("VECATTN_LIBCUDA");
  const std::string name = env && *env ? env : "libcuda.so.1";
  void* handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    res.status = Status::no_driver;
    res.why = fmt::format("no CUDA driver: {} could not be opened ({}). Install the NVIDIA driver, or run "
                          "where a GPU is present.", name, dlerror());
    return res;
  }
  // Needs CUDA 12+: the same test the driver's own loaders use.
  if (!dlsym(handle, "cuGetProcAddress_v2")) {
    res.status = Status::no_driver;
    res.why = fmt::format("the CUDA driver at {} is too old: it lacks cuGetProcAddress_v2 (CUDA 12 or newer needed)", name);
    return res;
  }
  auto d = std::make_unique<Driver>();
  d->path = name;
  std::string missing;
  // Each entry point is looked up under its name after cuda.h's macros (cuMemAlloc ->
  // cuMemAlloc_v2, cuGraphInstantiate -> cuGraphInstantiateWithFlags): exactly the symbol whose
  // prototype our pointer type has. cuGetProcAddress by base name would hand back the newest ABI
  // instead (cuCtxSynchronize -> cuCtxSynchronize_v2(CUcontext) in 13.0), not the declared one.
  auto bind = [&](auto& fn, const char* expanded) {
    void* p = dlsym(handle, expanded);
    if (!p) missing += fmt::format(" {}", expanded);
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
  };
#define VECATTN_STRINGIZE(x) #x
#define VECATTN_EXPANDED_NAME(x) VECATTN_STRINGIZE(x)
#define VECATTN_BIND(name) bind(d->name, VECATTN_EXPANDED_NAME(name))
  VECATTN_BIND(cuGetErrorName);
  VECATTN_BIND(cuGetErrorString);
  VECATTN_BIND(cuInit);
  VECATTN_BIND(cuDriverGetVersion);
  VECATTN_BIND(cuDeviceGetCount);
  VECATTN_BIND(cuDeviceGet);
  VECATTN_BIND(cuDeviceGetName);
  VECATTN_BIND(cuDeviceGetAttribute);
  VECATTN_BIND(cuDeviceTotalMem);
  VECATTN_BIND(cuDevicePrimaryCtxRetain);
  VECATTN_BIND(cuDevicePrimaryCtxRelease);
  VECATTN_BIND(cuCtxPushCurrent);
  VECATTN_BIND(cuCtxPopCurrent);
  VECATTN_BIND(cuCtxSynchronize);
  VECATTN_BIND(cuCtxGetDevice);
  VECATTN_BIND(cuCtxGetCurrent);
  VECATTN_BIND(cuCtxSetCurrent);
  VECATTN_BIND(cuModuleLoadData);
  VECATTN_BIND(cuModuleUnload);
  VECATTN_BIND(cuModuleGetFunction);
  VECATTN_BIND(cuFuncGetAttribute);
  VECATTN_BIND(cuFuncSetAttribute);
  VECATTN_BIND(cuLaunchKernel);
  VECATTN_BIND(cuMemAlloc);
  VECATTN_BIND(cuMemFree);
  VECATTN_BIND(cuMemGetInfo);
  VECATTN_BIND(cuMemcpyHtoD);
  VECATTN_BIND(cuMemcpyDtoH);
  VECATTN_BIND(cuMemcpyDtoHAsync);
  VECATTN_BIND(cuMemsetD8);
  VECATTN_BIND(cuMemsetD8Async);
  VECATTN_BIND(cuMemPoolCreate);
  VECATTN_BIND(cuMemPoolDestroy);
  VECATTN_BIND(cuMemPoolSetAttribute);
  VECATTN_BIND(cuMemPoolTrimTo);
  VECATTN_BIND(cuMemAllocFromPoolAsync);
  VECATTN_BIND(cuMemFreeAsync);
  VECATTN_BIND(cuStreamCreate);
  VECATTN_BIND(cuStreamDestroy);
  VECATTN_BIND(cuStreamSynchronize);
  VECATTN_BIND(cuStreamBeginCapture);
  VECATTN_BIND(cuStreamEndCapture);
  VECATTN_BIND(cuStreamIsCapturing);
  VECATTN_BIND(cuGraphInstantiate);
  VECATTN_BIND(cuGraphLaunch);
  VECATTN_BIND(cuGraphDestroy);
  VECATTN_BIND(cuGraphExecDestroy);
  VECATTN_BIND(cuEventCreate);
  VECATTN_BIND(cuEventDestroy);
  VECATTN_BIND(cuEventRecord);
  VECATTN_BIND(cuEventSynchronize);
  VECATTN_BIND(cuEventElapsedTime);
  VECATTN_BIND(cuTensorMapEncodeTiled);
#undef VECATTN_BIND
#undef VECATTN_EXPANDED_NAME
#undef VECATTN_STRINGIZE
  if (!missing.empty()) {
    res.status = Status::no_driver;
    res.why = fmt::format("the CUDA driver at {} lacks entry points:{}", name, missing);
    return res;
  }
  CUresult r = d->cuInit(0);
  if (r != CUDA_SUCCESS) {
    res.status = Status::no_device;
    res.why = fmt::format("no usable CUDA device: cuInit failed with {}", d->error_text(r));
    return res;
  }
  int count = 0;
  r = d->cuDeviceGetCount(&count);
  if (r != CUDA_SUCCESS || count == 0) {
    res.status = Status::no_device;
    res.why = r != CUDA_SUCCESS ? fmt::format("no usable CUDA device: cuDeviceGetCount failed with {}", d->error_text(r))
                                : std::string("no CUDA device: the driver is installed but sees no GPU");
    return res;
  }
  d->cuDriverGetVersion(&d->version);
  res.driver = std::move(d);
  return res;
}

const LoadResult& instance() {
  static LoadResult r = load();
  return r;
}

}  // namespace

const Driver& Driver::get() {
  const LoadResult& r = instance();
  if (!r.driver) throw Error(r.status, r.why);
  return *r.driver;
}

bool Driver::available(std::string* why) {
  const LoadResult& r = instance();
  if (!r.driver && why) *why = r.why;
  return r.driver != nullptr;
}

std::string Driver::error_text(CUresult r) const {
  const char* name = nullptr;
  const char* text = nullptr;
  if (cuGetErrorName) cuGetErrorName(r, &name);
  if (cuGetErrorString) cuGetErrorString(r, &text);
  return fmt::format("{} ({})", name ? name : fmt::format("CUresult {}", int(r)), text ? text : "no description");
}

void Driver::check(CUresult r, const char* call) const {
  if (r != CUDA_SUCCESS) throw Error(Status::cuda_error, fmt::format("{} failed: {}", call, error_text(r)));
}

ScopedContext::ScopedContext(CUcontext ctx) {
  const Driver& d = Driver::get();
  d.check(d.cuCtxPushCurrent(ctx), "cuCtxPushCurrent");
}

ScopedContext::~ScopedContext() {
  CUcontext popped = nullptr;
  Driver::get().cuCtxPopCurrent(&popped);
}

}  // namespace vecattn

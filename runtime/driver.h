#pragma once
// The CUDA Driver API, opened at run time (libcuda.so.1, or $VECATTN_LIBCUDA), so every binary
// starts on a machine without a GPU and says what is missing. Entry points are resolved through
// cuGetProcAddress at the ABI of the cuda.h we were built against.
#include <cuda.h>

#include <string>

namespace vecattn {

class Driver {
 public:
  // The process-wide instance, initialized (cuInit). Throws Error(no_driver) when libcuda cannot
  // be opened, Error(no_device) when cuInit finds no usable GPU.
  static const Driver& get();
  // Whether get() would succeed; never throws. `why` receives the reason when it would not.
  static bool available(std::string* why = nullptr);

  // Throws Error(cuda_error) naming the call, the error name and its text.
  void check(CUresult r, const char* call) const;
  std::string error_text(CUresult r) const;

  int version = 0;    // cuDriverGetVersion, e.g. 13000
  std::string path;   // the library that was opened

#define VECATTN_CU_FN(name) decltype(&::name) name = nullptr
  VECATTN_CU_FN(cuGetErrorName);
  VECATTN_CU_FN(cuGetErrorString);
  VECATTN_CU_FN(cuInit);
  VECATTN_CU_FN(cuDriverGetVersion);
  VECATTN_CU_FN(cuDeviceGetCount);
  VECATTN_CU_FN(cuDeviceGet);
  VECATTN_CU_FN(cuDeviceGetName);
  VECATTN_CU_FN(cuDeviceGetAttribute);
  VECATTN_CU_FN(cuDeviceTotalMem);
  VECATTN_CU_FN(cuDevicePrimaryCtxRetain);
  VECATTN_CU_FN(cuDevicePrimaryCtxRelease);
  VECATTN_CU_FN(cuCtxPushCurrent);
  VECATTN_CU_FN(cuCtxPopCurrent);
  VECATTN_CU_FN(cuCtxSynchronize);
  VECATTN_CU_FN(cuCtxGetDevice);
  VECATTN_CU_FN(cuCtxGetCurrent);
  VECATTN_CU_FN(cuCtxSetCurrent);
  VECATTN_CU_FN(cuModuleLoadData);
  VECATTN_CU_FN(cuModuleUnload);
  VECATTN_CU_FN(cuModuleGetFunction);
  VECATTN_CU_FN(cuFuncGetAttribute);
  VECATTN_CU_FN(cuFuncSetAttribute);
  VECATTN_CU_FN(cuLaunchKernel);
  VECATTN_CU_FN(cuMemAlloc);
  VECATTN_CU_FN(cuMemFree);
  VECATTN_CU_FN(cuMemGetInfo);
  VECATTN_CU_FN(cuMemcpyHtoD);
  VECATTN_CU_FN(cuMemcpyDtoH);
  VECATTN_CU_FN(cuMemcpyDtoHAsync);
  VECATTN_CU_FN(cuMemsetD8);
  VECATTN_CU_FN(cuMemsetD8Async);
  VECATTN_CU_FN(cuMemPoolCreate);
  VECATTN_CU_FN(cuMemPoolDestroy);
  VECATTN_CU_FN(cuMemPoolSetAttribute);
  VECATTN_CU_FN(cuMemPoolTrimTo);
  VECATTN_CU_FN(cuMemAllocFromPoolAsync);
  VECATTN_CU_FN(cuMemFreeAsync);
  VECATTN_CU_FN(cuStreamCreate);
  VECATTN_CU_FN(cuStreamDestroy);
  VECATTN_CU_FN(cuStreamSynchronize);
  VECATTN_CU_FN(cuStreamBeginCapture);
  VECATTN_CU_FN(cuStreamEndCapture);
  VECATTN_CU_FN(cuStreamIsCapturing);
  VECATTN_CU_FN(cuGraphInstantiate);
  VECATTN_CU_FN(cuGraphLaunch);
  VECATTN_CU_FN(cuGraphDestroy);
  VECATTN_CU_FN(cuGraphExecDestroy);
  VECATTN_CU_FN(cuEventCreate);
  VECATTN_CU_FN(cuEventDestroy);
  VECATTN_CU_FN(cuEventRecord);
  VECATTN_CU_FN(cuEventSynchronize);
  VECATTN_CU_FN(cuEventElapsedTime);
  VECATTN_CU_FN(cuTensorMapEncodeTiled);
#undef VECATTN_CU_FN
};

// Makes a context current for a scope and restores the previous one.
class ScopedContext {
 public:
  explicit ScopedContext(CUcontext ctx);
  ~ScopedContext();
  ScopedContext(const ScopedContext&) = delete;
  ScopedContext& operator=(const ScopedContext&) = delete;
};

}  // namespace vecattn

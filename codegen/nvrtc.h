#pragma once
// NVRTC, opened at run time. Search order: $VECATTN_NVRTC, libnvrtc.so.13, .12, libnvrtc.so,
// then $CUDA_HOME/lib64 and /usr/local/cuda/lib64. NVRTC needs no GPU.
#include <nvrtc.h>

#include <string>

namespace vecattn {

class Nvrtc {
 public:
  // The process-wide instance; throws Error(nvrtc_unavailable) naming every path tried.
  static const Nvrtc& get();

  // Throws Error(compile_error) with the call name and NVRTC's error string.
  void check(nvrtcResult r, const char* call) const;

  int major = 0, minor = 0;
  std::string path;             // the library that was opened
  std::string version() const;  // "13.0"

#define VECATTN_NVRTC_FN(name) decltype(&::name) name = nullptr
  VECATTN_NVRTC_FN(nvrtcVersion);
  VECATTN_NVRTC_FN(nvrtcGetErrorString);
  VECATTN_NVRTC_FN(nvrtcCreateProgram);
  VECATTN_NVRTC_FN(nvrtcDestroyProgram);
  VECATTN_NVRTC_FN(nvrtcCompileProgram);
  VECATTN_NVRTC_FN(nvrtcGetProgramLogSize);
  VECATTN_NVRTC_FN(nvrtcGetProgramLog);
  VECATTN_NVRTC_FN(nvrtcGetCUBINSize);
  VECATTN_NVRTC_FN(nvrtcGetCUBIN);
  VECATTN_NVRTC_FN(nvrtcAddNameExpression);
  VECATTN_NVRTC_FN(nvrtcGetLoweredName);
#undef VECATTN_NVRTC_FN
};

}  // namespace vecattn

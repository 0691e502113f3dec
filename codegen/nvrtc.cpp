#include "codegen/nvrtc.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <cstdlib>
#include <memory>
#include <vector>

#include "codegen/error.h"

namespace vecattn {
namespace {

std::vector<std::string> candidates() {
  std::vector<std::string> c;
  if (const char* p = std::getenv("VECATTN_NVRTC"); p && *p) return {p};
  for (const char* name : {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"}) c.push_back(name);
  std::vector<std::string> roots;
  if (const char* h = std::getenv("CUDA_HOME"); h && *h) roots.push_back(h);
  if (const char* h = std::getenv("CUDA_PATH"); h && *h) roots.push_back(h);
  roots.push_back("/usr/local/cuda");
  for (const auto& r : roots)
    for (const char* name : {"libnvrtc.so.13", "libnvrtc.so.12"}) c.push_back(r + "/lib64/" + name);
  return c;
}

std::unique_ptr<Nvrtc> load(std::string& why) {
  void* handle = nullptr;
  std::string path, tried;
  for (const auto& c : candidates()) {
    handle = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle) { path = c; break; }
    tried += fmt::format("\n  {}: {}", c, dlerror());
  }
  if (!handle) {
    why = fmt::format("NVRTC (libnvrtc.so.13) could not be opened; install the CUDA toolkit's NVRTC or set "
                      "VECATTN_NVRTC to its path. Tried:{}", tried);
    return nullptr;
  }
  auto n = std::make_unique<Nvrtc>();
  n->path = path;
  bool missing = false;
  auto bind = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(handle, name));
    if (!fn) { why += fmt::format(" {}", name); missing = true; }
  };
#define VECATTN_BIND(name) bind(n->name, #name)
  VECATTN_BIND(nvrtcVersion);
  VECATTN_BIND(nvrtcGetErrorString);
  VECATTN_BIND(nvrtcCreateProgram);
  VECATTN_BIND(nvrtcDestroyProgram);
  VECATTN_BIND(nvrtcCompileProgram);
  VECATTN_BIND(nvrtcGetProgramLogSize);
  VECATTN_BIND(nvrtcGetProgramLog);
  VECATTN_BIND(nvrtcGetCUBINSize);
  VECATTN_BIND(nvrtcGetCUBIN);
  VECATTN_BIND(nvrtcAddNameExpression);
  VECATTN_BIND(nvrtcGetLoweredName);
#undef VECATTN_BIND
  if (missing) {
    why = fmt::format("{} lacks symbols:{} (NVRTC 12 or newer is needed)", path, why);
    return nullptr;
  }
  n->nvrtcVersion(&n->major, &n->minor);
  return n;
}

}  // namespace

const Nvrtc& Nvrtc::get() {
  static std::string why;
  static std::unique_ptr<Nvrtc> instance = load(why);
  if (!instance) throw Error(Status::nvrtc_unavailable, why);
  return *instance;
}

void Nvrtc::check(nvrtcResult r, const char* call) const {
  if (r != NVRTC_SUCCESS)
    throw Error(Status::compile_error, fmt::format("{} failed: {}", call, nvrtcGetErrorString(r)));
}

std::string Nvrtc::version() const { return fmt::format("{}.{}", major, minor); }

}  // namespace vecattn

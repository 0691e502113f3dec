#include "codegen/compiler.h"

#include <fmt/format.h>

#include <chrono>
#include <memory>

#include "codegen/error.h"
#include "codegen/hash.h"
#include "codegen/kernels.h"
#include "codegen/nvrtc.h"
#include "templates/registry.h"

#ifndef VECATTN_VERSION_STRING
#define VECATTN_VERSION_STRING "0.0.0"
#endif

namespace vecattn {
namespace {

// Bump when the way sources become cubins changes in a way the texts below do not show.
constexpr const char* kCompileFormat = "vecattn-compile-1";

const std::string& all_templates_hash() {
  static const std::string h = [] {
    Fnv1a f;
    for (const auto& t : templates::all_files()) f.add(t.name).add(t.source);
    return f.hex();
  }();
  return h;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

}  // namespace

const char* library_version() { return VECATTN_VERSION_STRING; }

CompilePlan plan_compile(const Variant& v) {
  require_valid(v);
  CompilePlan p;
  p.variant = v;
  p.source = fmt::format("// {}\n#include \"{}\"\n", v.str(), template_file(v));
  p.name_expression = instantiation(v);
  p.options = {
      fmt::format("--gpu-architecture={}", v.key.arch),
      "--std=c++17",
      "--fmad=true",
      "--extra-device-vectorization",
  };
  p.fingerprint = Fnv1a()
                      .add(kCompileFormat)
                      .add(all_templates_hash())
                      .add(p.source)
                      .add(p.name_expression)
                      .add(join(p.options))
                      .hex();
  return p;
}

CompiledKernel compile(const CompilePlan& plan) {
  const Nvrtc& nv = Nvrtc::get();
  const std::string variant = plan.variant.str();
  const auto start = std::chrono::steady_clock::now();

  // Every template is offered as a header; the embedded texts are NUL-terminated literals.
  std::vector<const char*> header_names, header_sources;
  for (const auto& t : templates::all_files()) {
    header_names.push_back(t.name.data());
    header_sources.push_back(t.source.data());
  }

  nvrtcProgram prog = nullptr;
  nv.check(nv.nvrtcCreateProgram(&prog, plan.source.c_str(), (plan.variant.key.str() + ".cu").c_str(),
                                 int(header_names.size()), header_sources.data(), header_names.data()),
           "nvrtcCreateProgram");
  std::unique_ptr<nvrtcProgram, void (*)(nvrtcProgram*)> guard(&prog, [](nvrtcProgram* p) {
    Nvrtc::get().nvrtcDestroyProgram(p);
  });
  nv.check(nv.nvrtcAddNameExpression(prog, plan.name_expression.c_str()), "nvrtcAddNameExpression");

  std::vector<const char*> opts;
  for (const auto& o : plan.options) opts.push_back(o.c_str());
  const nvrtcResult r = nv.nvrtcCompileProgram(prog, int(opts.size()), opts.data());

  CompiledKernel out;
  size_t log_size = 0;
  nv.nvrtcGetProgramLogSize(prog, &log_size);
  out.log.resize(log_size);
  if (log_size) nv.nvrtcGetProgramLog(prog, out.log.data());
  while (!out.log.empty() && (out.log.back() == '\0' || out.log.back() == '\n')) out.log.pop_back();

  if (r != NVRTC_SUCCESS) {
    throw Error(Status::compile_error,
                fmt::format("NVRTC could not compile {}: {}", variant, nv.nvrtcGetErrorString(r)),
                fmt::format("instantiation: {}\noptions: {}\nNVRTC {} log:\n{}", plan.name_expression,
                            join(plan.options), nv.version(), out.log),
                variant);
  }

  const char* lowered = nullptr;
  nv.check(nv.nvrtcGetLoweredName(prog, plan.name_expression.c_str(), &lowered), "nvrtcGetLoweredName");
  size_t cubin_size = 0;
  nv.check(nv.nvrtcGetCUBINSize(prog, &cubin_size), "nvrtcGetCUBINSize");
  out.cubin.resize(cubin_size);
  nv.check(nv.nvrtcGetCUBIN(prog, out.cubin.data()), "nvrtcGetCUBIN");

  out.variant = plan.variant;
  out.fingerprint = plan.fingerprint;
  out.nvrtc_version = nv.version();
  out.lowered_name = lowered;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace vecattn

#pragma once
// Variant -> specialized source -> NVRTC -> cubin.
#include <string>
#include <vector>

#include "codegen/key.h"

namespace vecattn {

// The library's version, recorded with every stored cubin and tuned row.
const char* library_version();

struct CompilePlan {
  Variant variant;
  std::string source;             // the translation unit: includes the template
  std::string name_expression;    // the instantiation NVRTC must emit
  std::vector<std::string> options;
  // Covers everything that changes the cubin but the NVRTC version (stored beside it): every
  // template's text, the unit, the instantiation, the options, the arch.
  std::string fingerprint;
};

// Validates the variant (throws Error(unsupported)) and builds the plan. Needs no NVRTC.
CompilePlan plan_compile(const Variant& v);

struct CompiledKernel {
  Variant variant;
  std::string fingerprint;
  std::string nvrtc_version;
  std::string lowered_name;       // the mangled entry point in the cubin
  std::string cubin;
  std::string log;                // NVRTC's log (warnings), may be empty
  double seconds = 0;             // wall time of the NVRTC compile
};

// Runs NVRTC. Throws Error(nvrtc_unavailable) without NVRTC, Error(compile_error) holding the
// variant, the options and the whole log when the compile fails.
CompiledKernel compile(const CompilePlan& plan);

}  // namespace vecattn

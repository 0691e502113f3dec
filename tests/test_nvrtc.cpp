#include <catch2/catch.hpp>

#include "codegen/compiler.h"
#include "codegen/error.h"
#include "codegen/nvrtc.h"
#include "runtime/cubin_cache.h"
#include "tuner/search_space.h"

using namespace vecattn;

// Every registered template, with every template-parameter value and every search-space config
// value, compiles for both archs CI cares about. This is what catches a template that only builds on a developer's GPU.
TEST_CASE("every registered variant compiles for sm_80 and sm_90a", "[nvrtc]") {
  for (const char* arch : {"sm_80", "sm_90a"}) {
    const auto variants = tuner::coverage_variants(arch);
    REQUIRE(!variants.empty());
    CubinCache cache(nullptr);
    const auto outcomes = cache.get_many(variants, 2);
    for (size_t i = 0; i < variants.size(); ++i) {
      const auto& err = outcomes[i].error;
      INFO(variants[i].str() << (err ? std::string(": ") + err->what() + "\n" + err->detail() : ""));
      CHECK(!err);
      CHECK(outcomes[i].result.origin == CubinOrigin::compiled);
    }
    CHECK(cache.stats().compiles == long(variants.size()));
  }
}

TEST_CASE("a compiled kernel carries its cubin and entry point", "[nvrtc]") {
  const Variant v = Variant::parse("pool/pq64-d128-bf16-sm_90a+w4");
  const CompiledKernel k = compile(plan_compile(v));
  CHECK(k.cubin.size() > 1000);
  CHECK(k.cubin.compare(0, 4, "\x7f" "ELF") == 0);
  CHECK_THAT(k.lowered_name, Catch::StartsWith("_ZN7vecattn11pool_kernel"));
  CHECK(k.nvrtc_version == Nvrtc::get().version());
  // The fingerprint moves with anything that changes the cubin.
  CHECK(plan_compile(v).fingerprint == plan_compile(v).fingerprint);
  CHECK(plan_compile(v).fingerprint != plan_compile(Variant::parse("pool/pq64-d128-bf16-sm_80+w4")).fingerprint);
  CHECK(plan_compile(v).fingerprint != plan_compile(Variant::parse("pool/pq64-d128-bf16-sm_90a+w8")).fingerprint);
}

TEST_CASE("a failed compile raises an error holding the key, options and the whole log", "[nvrtc]") {
  CompilePlan plan = plan_compile(Variant::parse("pool/pq64-d128-bf16-sm_90a+w4"));
  plan.name_expression = "vecattn::pool_kernel<1, 128, vecattn::bf16, 4>";  // trips a static_assert
  try {
    compile(plan);
    FAIL("compiled an instantiation its static_assert forbids");
  } catch (const Error& e) {
    CHECK(e.status() == Status::compile_error);
    CHECK(e.key() == "pool/pq64-d128-bf16-sm_90a+w4");
    CHECK_THAT(e.what(), Catch::Contains("NVRTC could not compile pool/pq64-d128-bf16-sm_90a+w4"));
    CHECK_THAT(e.detail(), Catch::Contains("--gpu-architecture=sm_90a"));
    CHECK_THAT(e.detail(), Catch::Contains("more row groups than rows in a block"));
  }
}

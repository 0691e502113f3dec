// The runtime's layers on a device: a second runtime over the same database loads without
// compiling; a stored cubin the driver refuses is rebuilt, not fatal.
#include <catch2/catch.hpp>

#include "cache/database.h"
#include "codegen/compiler.h"
#include "codegen/nvrtc.h"
#include "runtime/runtime.h"
#include "temp_dir.h"

using namespace vecattn;

TEST_CASE("a second runtime loads kernels from the database without compiling", "[gpu][cache]") {
  test::TempDir dir;
  RuntimeOptions o;
  o.cache_path = dir.file("c.sqlite");
  Variant v;
  {
    Runtime first(o);
    v = Variant{first.key(KernelKind::pool, 64, 0, 0, 128, DType::bf16, false), {0, 4, 0, AttnPath::mma}};
    CHECK(first.preload(v) == CubinOrigin::compiled);
    CHECK(first.preload(v) == CubinOrigin::compiled);  // the loaded module is reused as is
    CHECK(first.cache_stats().compiles == 1);
  }
  Runtime second(o);
  CHECK(second.preload(v) == CubinOrigin::database);
  CHECK(second.cache_stats().compiles == 0);
}

TEST_CASE("a stored cubin the driver refuses is recompiled and replaced", "[gpu][cache]") {
  test::TempDir dir;
  RuntimeOptions o;
  o.cache_path = dir.file("c.sqlite");
  Runtime probe(o);
  const Variant v{probe.key(KernelKind::pool, 128, 0, 0, 64, DType::fp16, false), {0, 2, 0, AttnPath::mma}};
  const CompilePlan plan = plan_compile(v);
  {
    // Garbage with a valid checksum: only the driver can tell.
    auto db = cache::Database::open(o.cache_path);
    db->put_cubin(cache::CubinRow{v.str(), plan.fingerprint, Nvrtc::get().version(), v.key.arch, library_version(),
                                  "_Z4nope", std::string(4096, '\x5a'), 0.0});
  }
  Runtime rt(o);
  CHECK(rt.preload(v) == CubinOrigin::compiled);
  CHECK(rt.cache_stats().database_hits == 1);
  CHECK(rt.cache_stats().compiles == 1);
  Runtime after(o);
  CHECK(after.preload(v) == CubinOrigin::database);
}

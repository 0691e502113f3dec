// The kernel bundle (ahead-of-time cubins, read-only): found before the user cache, used without
// NVRTC, and never when its row is stale, foreign or corrupt.
#include <catch2/catch.hpp>
#include <sqlite3.h>

#include "cache/database.h"
#include "runtime/cubin_cache.h"
#include "temp_dir.h"

using namespace vecattn;

namespace {

const Variant kBundled = Variant::parse("pool/pq64-d128-bf16-sm_90a+w4");
const Variant kMissing = Variant::parse("pool/pq128-d64-fp16-sm_80+w2");

void sql(const std::string& path, const char* statement) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, statement, nullptr, nullptr, &err);
  INFO((err ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

// A bundle holding kBundled, compiled by NVRTC (no GPU needed).
std::string make_bundle(test::TempDir& dir, std::string* cubin) {
  const std::string path = dir.file("vecattn-kernels.sqlite");
  CubinCache build(cache::Database::open(path));
  *cubin = build.get(kBundled).kernel->cubin;
  return path;
}

CubinCache from_bundle(const std::string& path) {
  return CubinCache(nullptr, cache::Database::open(path, cache::Database::Access::read_only), /*compile=*/false);
}

}  // namespace

TEST_CASE("kernel bundle: a bundled variant loads without NVRTC; another says what is missing", "[cache][nvrtc]") {
  test::TempDir dir;
  std::string cubin;
  const std::string path = make_bundle(dir, &cubin);
  CubinCache cache = from_bundle(path);
  const CubinResult r = cache.get(kBundled);
  CHECK(r.origin == CubinOrigin::bundle);
  CHECK(r.kernel->cubin == cubin);
  CHECK(cache.stats().bundle_hits == 1);
  CHECK(cache.get(kBundled).origin == CubinOrigin::memory);
  try {
    cache.get(kMissing);
    FAIL("a variant outside the bundle loaded without NVRTC");
  } catch (const Error& e) {
    CHECK(e.status() == Status::nvrtc_unavailable);
    CHECK_THAT(e.what(), Catch::Contains(kMissing.str()) && Catch::Contains(path));
    CHECK(e.key() == kMissing.str());
  }
}

TEST_CASE("kernel bundle: stale, foreign and corrupt rows are never used", "[cache][nvrtc]") {
  test::TempDir dir;
  std::string cubin;
  const std::string path = make_bundle(dir, &cubin);
  SECTION("another source or options (fingerprint)") {
    sql(path, "UPDATE cubins SET fingerprint = 'f00d'");
  }
  SECTION("another library version") {
    sql(path, "UPDATE cubins SET library_version = '0.0.1'");
  }
  SECTION("another arch's build under this name") {
    sql(path, "UPDATE cubins SET variant = 'pool/pq64-d128-bf16-sm_80+w4'");
  }
  SECTION("bytes that fail the checksum") {
    sql(path, "UPDATE cubins SET data = zeroblob(size)");
  }
  CubinCache cache = from_bundle(path);
  CHECK_THROWS_AS(cache.get(kBundled), Error);
  CHECK(cache.stats().bundle_hits == 0);
}

TEST_CASE("kernel bundle: the bundle comes before the user cache, which NVRTC still fills", "[cache][nvrtc]") {
  test::TempDir dir;
  std::string cubin;
  const std::string bundle = make_bundle(dir, &cubin);
  CubinCache cache(cache::Database::open(dir.file("user.sqlite")),
                   cache::Database::open(bundle, cache::Database::Access::read_only));
  CHECK(cache.get(kBundled).origin == CubinOrigin::bundle);
  CHECK(cache.get(kMissing).origin == CubinOrigin::compiled);
  CHECK(cache.bundle()->read_only());
}

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <thread>

#include "cache/database.h"
#include "codegen/compiler.h"
#include "runtime/cubin_cache.h"
#include "temp_dir.h"

using namespace vecattn;

namespace {

const Variant kPool = Variant::parse("pool/pq64-d128-bf16-sm_90a+w4");

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

}  // namespace

TEST_CASE("cubin cache: miss compiles and stores, a second process's cache hits", "[cache][nvrtc]") {
  test::TempDir dir;
  const std::string path = dir.file("k.sqlite");
  std::string stored;
  {
    CubinCache cache(cache::Database::open(path));
    CubinResult r = cache.get(kPool);
    stored = r.kernel->cubin;
    CHECK(r.origin == CubinOrigin::compiled);
    CHECK(cache.get(kPool).origin == CubinOrigin::memory);
    CHECK(cache.stats().compiles == 1);
    CHECK(cache.database()->count_cubins() == 1);
  }
  // A new cache over the same file stands for a second process: nothing is compiled.
  CubinCache again(cache::Database::open(path));
  CubinResult r = again.get(kPool);
  CHECK(r.origin == CubinOrigin::database);
  CHECK(again.stats().compiles == 0);
  CHECK(r.kernel->lowered_name == compile(plan_compile(kPool)).lowered_name);
  // The bytes stored, not a recompile: NVRTC does not promise identical bytes across compiles.
  CHECK(r.kernel->cubin == stored);
}

TEST_CASE("cubin cache: a truncated or altered cubin is detected, recompiled and replaced", "[cache][nvrtc]") {
  test::TempDir dir;
  const std::string path = dir.file("k.sqlite");
  CubinCache(cache::Database::open(path)).get(kPool);

  SECTION("truncated") { sql(path, "UPDATE cubins SET data = substr(data, 1, 100)"); }
  SECTION("same size, bytes changed") { sql(path, "UPDATE cubins SET data = zeroblob(size)"); }
  SECTION("checksum lost") { sql(path, "UPDATE cubins SET checksum = 'deadbeef'"); }

  CubinCache cache(cache::Database::open(path));
  CubinResult r = cache.get(kPool);
  CHECK(r.origin == CubinOrigin::compiled);
  CHECK(cache.stats().corrupt_rows == 1);
  CHECK(r.kernel->cubin.compare(0, 4, "\x7f" "ELF") == 0);
  CHECK(r.kernel->cubin.size() > 1000);
  // The row was replaced: the next process loads it.
  CubinCache next(cache::Database::open(path));
  CHECK(next.get(kPool).origin == CubinOrigin::database);
  CHECK(next.database()->count_cubins() == 1);
}

TEST_CASE("cubin cache: invalidate forces a recompile that replaces the row", "[cache][nvrtc]") {
  test::TempDir dir;
  CubinCache cache(cache::Database::open(dir.file("k.sqlite")));
  cache.get(kPool);
  cache.invalidate(kPool);
  CHECK(cache.get(kPool).origin == CubinOrigin::compiled);
  CHECK(cache.stats().compiles == 2);
  CHECK(cache.database()->count_cubins() == 1);
}

TEST_CASE("cubin cache: threads asking for one variant compile it once", "[cache][nvrtc]") {
  test::TempDir dir;
  CubinCache cache(cache::Database::open(dir.file("k.sqlite")));
  std::vector<std::thread> threads;
  std::vector<std::string> cubins(8);
  for (int t = 0; t < 8; ++t) threads.emplace_back([&, t] { cubins[size_t(t)] = cache.get(kPool).kernel->cubin; });
  for (auto& t : threads) t.join();
  CHECK(cache.stats().compiles == 1);
  CHECK(cache.stats().memory_hits == 7);
  for (const auto& c : cubins) CHECK(c == cubins[0]);
}

TEST_CASE("cubin cache: a stale fingerprint or another NVRTC is a miss", "[cache]") {
  test::TempDir dir;
  auto db = cache::Database::open(dir.file("k.sqlite"));
  cache::CubinRow row{"pool/pq64-d128-bf16-sm_90a+w4", "fp1", "13.0", "sm_90a", "0.1.0", "_Z3foo", "\x7f" "ELF...", 0.5};
  db->put_cubin(row);
  cache::CubinRow got;
  CHECK(db->get_cubin(row.variant, "fp1", "13.0", &got) == cache::Found::hit);
  CHECK(got.cubin == row.cubin);
  CHECK(got.lowered_name == "_Z3foo");
  CHECK(db->get_cubin(row.variant, "fp1", "", &got) == cache::Found::hit);  // without NVRTC: any build
  CHECK(db->get_cubin(row.variant, "fp2", "13.0", &got) == cache::Found::miss);
  CHECK(db->get_cubin(row.variant, "fp1", "12.8", &got) == cache::Found::miss);
  CHECK(db->get_cubin("pool/pq128-d128-bf16-sm_90a+w4", "fp1", "13.0", &got) == cache::Found::miss);
}

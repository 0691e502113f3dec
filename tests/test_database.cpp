#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <fstream>
#include <sstream>

#include "cache/database.h"
#include "codegen/error.h"
#include "temp_dir.h"

using namespace vecattn;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("database: created with the current schema, WAL, in a new folder", "[cache]") {
  test::TempDir dir;
  const std::string path = dir.file("a/b/c.sqlite");
  auto db = cache::Database::open(path);
  CHECK(db->schema_version() == cache::kSchemaVersion);
  CHECK(db->count_cubins() == 0);
  CHECK(!db->read_only());
}

TEST_CASE("database: a file that is not a database is refused and left untouched", "[cache]") {
  test::TempDir dir;
  const std::string path = dir.file("notes.sqlite");
  std::ofstream(path) << "these are my notes, not a database; vecattn must not overwrite them\n"
                      << std::string(5000, 'x');
  const std::string before = read_file(path);
  try {
    cache::Database::open(path);
    FAIL("opened a text file as a database");
  } catch (const Error& e) {
    CHECK(e.status() == Status::cache_error);
    CHECK_THAT(e.what(), Catch::Contains("not a vecattn cache"));
  }
  CHECK(read_file(path) == before);
}

TEST_CASE("database: a newer schema is refused and left untouched", "[cache]") {
  test::TempDir dir;
  const std::string path = dir.file("new.sqlite");
  { cache::Database::open(path); }
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &raw) == SQLITE_OK);
  REQUIRE(sqlite3_exec(raw, "PRAGMA user_version = 99", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(raw);
  try {
    cache::Database::open(path);
    FAIL("opened a newer schema");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("newer vecattn (schema 99"));
  }
  raw = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &raw) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &st, nullptr);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(sqlite3_column_int(st, 0) == 99);
  sqlite3_finalize(st);
  sqlite3_close(raw);
}

TEST_CASE("database: read-only access reads rows and refuses writes", "[cache]") {
  test::TempDir dir;
  const std::string path = dir.file("ro.sqlite");
  cache::CubinRow row{"pool/pq64-d64-fp16-sm_80+w4", "f", "13.0", "sm_80", "0.1.0", "_Z1k", "bytes", 0.1};
  { cache::Database::open(path)->put_cubin(row); }
  auto db = cache::Database::open(path, cache::Database::Access::read_only);
  CHECK(db->read_only());
  cache::CubinRow got;
  CHECK(db->get_cubin(row.variant, "f", "13.0", &got) == cache::Found::hit);
  CHECK_THROWS_AS(db->put_cubin(row), Error);
  CHECK_THROWS_AS(cache::Database::open(dir.file("missing.sqlite"), cache::Database::Access::read_only), Error);
}

TEST_CASE("database: the default path follows VECATTN_CACHE_DIR, then XDG_CACHE_HOME", "[cache]") {
  const char* old_dir = std::getenv("VECATTN_CACHE_DIR");
  const char* old_xdg = std::getenv("XDG_CACHE_HOME");
  const std::string saved_dir = old_dir ? old_dir : "", saved_xdg = old_xdg ? old_xdg : "";
  setenv("VECATTN_CACHE_DIR", "/tmp/va", 1);
  setenv("XDG_CACHE_HOME", "/tmp/xdg", 1);
  CHECK(cache::default_database_path() == "/tmp/va/vecattn.sqlite");
  unsetenv("VECATTN_CACHE_DIR");
  CHECK(cache::default_database_path() == "/tmp/xdg/vecattn/vecattn.sqlite");
  if (old_dir) setenv("VECATTN_CACHE_DIR", saved_dir.c_str(), 1);
  if (old_xdg) setenv("XDG_CACHE_HOME", saved_xdg.c_str(), 1); else unsetenv("XDG_CACHE_HOME");
}

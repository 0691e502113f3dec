// The tuned-config store: schema migration, rows, locking, damaged files, several processes,
// and the pretuned text files.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "cache/database.h"
#include "cache/pretuned_file.h"
#include "cache/tuned.h"
#include "codegen/error.h"
#include "codegen/hash.h"
#include "temp_dir.h"

using namespace vecattn;
using cache::TunedRow;

namespace {

// The v1 schema exactly as database.cpp's kSchemaV1 creates it: what a file of an older vecattn holds.
constexpr const char* kV1Cubins = R"sql(
CREATE TABLE IF NOT EXISTS cubins (
  variant          TEXT NOT NULL,
  fingerprint      TEXT NOT NULL,
  nvrtc_version    TEXT NOT NULL,
  arch             TEXT NOT NULL,
  library_version  TEXT NOT NULL,
  lowered_name     TEXT NOT NULL,
  size             INTEGER NOT NULL,
  checksum         TEXT NOT NULL,
  data             BLOB NOT NULL,
  compile_seconds  REAL NOT NULL,
  created          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  PRIMARY KEY (variant, fingerprint, nvrtc_version)
);
)sql";

constexpr const char* kPoolVariant = "pool/pq64-d64-fp16-sm_80+w4";

void sql(const std::string& path, const std::string& statement) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, statement.c_str(), nullptr, nullptr, &err);
  INFO((err ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

// The first column of the first row, as text; empty when there is no row.
std::string query(const std::string& path, const std::string& statement) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, statement.c_str(), -1, &st, nullptr) == SQLITE_OK);
  std::string out;
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
    out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// A version-1 file with one cubin, as an older vecattn left it.
void make_v1_database(const std::string& path) {
  sql(path, kV1Cubins);
  sql(path, fmt::format("INSERT INTO cubins (variant, fingerprint, nvrtc_version, arch, library_version, lowered_name, "
                        "size, checksum, data, compile_seconds) VALUES ('{}', 'f', '13.0', 'sm_80', '0.1.0', '_Z1k', 5, "
                        "'{}', CAST('bytes' AS BLOB), 0.5)",
                        kPoolVariant, hash_hex("bytes")));
  sql(path, "PRAGMA user_version = 1");
}

TunedRow row(const std::string& key, const std::string& config, const std::string& device, const std::string& arch) {
  TunedRow r;
  r.kernel_key = key;
  r.config = config;
  r.device_name = device;
  r.arch = arch;
  r.median_ms = 0.125;
  r.default_ms = 0.2;
  r.density = 0.25;
  r.seq_len = 8192;
  r.driver_version = 13000;
  r.nvrtc_version = "13.0";
  r.library_version = "0.1.0";
  r.created = "2025-01-31T12:00:00Z";
  return r;
}

const std::string kSelect = "select/pq64-bk16-gk16-d128-bf16-sm_90a-causal";
const std::string kPool = "pool/pq64-d128-bf16-sm_90a";
const std::string kPool80 = "pool/pq64-d128-bf16-sm_80";
const std::string kH100 = "NVIDIA H100 80GB HBM3";
const std::string kH200 = "NVIDIA H200";

template <class F>
void check_cache_error(F&& f, const std::string& contains) {
  try {
    f();
    FAIL("no error thrown; expected one containing: " << contains);
  } catch (const Error& e) {
    CHECK(e.status() == Status::cache_error);
    CHECK_THAT(e.what(), Catch::Contains(contains));
  }
}

}  // namespace

// ---- schema ----

TEST_CASE("tuned store: a new database is at schema 3 with every table and the arch index", "[cache]") {
  test::TempDir dir;
  const std::string path = dir.file("new.sqlite");
  { CHECK(cache::Database::open(path)->schema_version() == 3); }
  CHECK(cache::kSchemaVersion == 3);
  CHECK(query(path, "PRAGMA user_version") == "3");
  CHECK(query(path, "SELECT name FROM sqlite_master WHERE type='table' AND name='thresholds'") == "thresholds");
  CHECK(query(path, "SELECT name FROM sqlite_master WHERE type='table' AND name='cubins'") == "cubins");
  CHECK(query(path, "SELECT name FROM sqlite_master WHERE type='table' AND name='tuned_configs'") == "tuned_configs");
  CHECK(query(path, "SELECT group_concat(name) FROM pragma_index_info("
                    "(SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='tuned_configs' AND sql IS NOT NULL))") ==
        "kernel_key,arch");
}

TEST_CASE("tuned store: a version-1 database migrates to 3 and keeps its cubins", "[cache]") {
  test::TempDir dir;
  const std::string path = dir.file("v1.sqlite");
  make_v1_database(path);
  auto db = cache::Database::open(path);
  CHECK(db->schema_version() == 3);
  CHECK(db->count_cubins() == 1);
  cache::CubinRow got;
  REQUIRE(db->get_cubin(kPoolVariant, "f", "13.0", &got) == cache::Found::hit);
  CHECK(got.cubin == "bytes");
  CHECK(got.compile_seconds == 0.5);
  CHECK(db->count_tuned() == 0);
  db->put_tuned(row(kPool, "w4", kH100, "sm_90a"));
  CHECK(db->count_tuned() == 1);
}

TEST_CASE("tuned store: a failed migration leaves the file at its version", "[cache]") {
  test::TempDir dir;
  const std::string path = dir.file("v1.sqlite");
  make_v1_database(path);
  // A stray table of that name makes the v2 step fail halfway (its index has no columns to use).
  sql(path, "CREATE TABLE tuned_configs (x INTEGER)");
  check_cache_error([&] { cache::Database::open(path); }, "SQLite");
  CHECK(query(path, "PRAGMA user_version") == "1");
  CHECK(query(path, "SELECT COUNT(*) FROM cubins") == "1");
  CHECK(query(path, "SELECT COUNT(*) FROM sqlite_master WHERE type='index' AND tbl_name='tuned_configs'") == "0");
}

TEST_CASE("tuned store: a newer schema is refused and its file left byte for byte", "[cache]") {
  test::TempDir dir;
  const std::string path = dir.file("v99.sqlite");
  { cache::Database::open(path)->put_tuned(row(kPool, "w4", kH100, "sm_90a")); }
  sql(path, "PRAGMA user_version = 99");
  const std::string before = read_bytes(path);
  for (auto access : {cache::Database::Access::read_write, cache::Database::Access::read_only})
    check_cache_error([&] { cache::Database::open(path, access); }, "newer vecattn (schema 99");
  CHECK(read_bytes(path) == before);
  CHECK(query(path, "PRAGMA user_version") == "99");
}

// ---- rows ----

TEST_CASE("tuned store: put, get and replace a row", "[cache]") {
  test::TempDir dir;
  auto db = cache::Database::open(dir.file("t.sqlite"));
  TunedRow r = row(kSelect, "bq64-w4-s2", kH100, "sm_90a");
  db->put_tuned(r);
  auto got = db->get_tuned(kSelect, kH100);
  REQUIRE(got);
  CHECK(*got == r);
  CHECK(!db->get_tuned(kSelect, kH200));
  CHECK(!db->get_tuned(kPool, kH100));

  r.config = "bq128-w8-s3";
  r.median_ms = 0.0625;
  db->put_tuned(r);
  CHECK(db->count_tuned() == 1);
  CHECK(db->get_tuned(kSelect, kH100)->config == "bq128-w8-s3");
  CHECK(db->get_tuned(kSelect, kH100)->median_ms == 0.0625);

  SECTION("an empty created is filled with the time of the write") {
    r.created.clear();
    db->put_tuned(r);
    const std::string created = db->get_tuned(kSelect, kH100)->created;
    CHECK(created.size() == 20);
    CHECK(created.substr(0, 2) == "20");
    CHECK(created.back() == 'Z');
    CHECK(cache::check_tuned_row(*db->get_tuned(kSelect, kH100)).empty());
  }
}

TEST_CASE("tuned store: rows the store cannot serve are refused", "[cache]") {
  test::TempDir dir;
  auto db = cache::Database::open(dir.file("t.sqlite"));
  TunedRow r = row(kSelect, "bq64-w4-s2", kH100, "sm_90a");
  SECTION("kernel key not canonical") { r.kernel_key = "select/pq64-bk16-gk16-d128-bf16-sm_90a"; }
  SECTION("config of another kernel") { r.config = "w4"; }
  SECTION("arch other than the key's") { r.arch = "sm_80"; }
  SECTION("no device") { r.device_name.clear(); }
  SECTION("time not finite") { r.median_ms = std::numeric_limits<double>::infinity(); }
  SECTION("density out of range") { r.density = 0; }
  SECTION("created in another form") { r.created = "2025-01-31 12:00:00"; }
  SECTION("newline in a text field") { r.device_name = "NVIDIA\nH100"; }
  CHECK(!cache::check_tuned_row(r).empty());
  check_cache_error([&] { db->put_tuned(r); }, "cannot store the tuned config");
  CHECK(db->count_tuned() == 0);
}

TEST_CASE("tuned store: exact device first, else the newest row of the arch", "[cache]") {
  test::TempDir dir;
  auto db = cache::Database::open(dir.file("t.sqlite"));
  TunedRow old_row = row(kSelect, "bq64-w4-s2", kH100, "sm_90a");
  old_row.created = "2025-01-01T00:00:00Z";
  TunedRow new_row = row(kSelect, "bq128-w8-s3", kH200, "sm_90a");
  new_row.created = "2025-06-01T00:00:00Z";
  db->put_tuned(new_row);
  db->put_tuned(old_row);

  CHECK(db->get_tuned(kSelect, kH100)->config == "bq64-w4-s2");
  CHECK(!db->get_tuned(kSelect, "NVIDIA GH200 480GB"));
  auto sibling = db->get_tuned_for_arch(kSelect, "sm_90a");
  REQUIRE(sibling);
  CHECK(sibling->device_name == kH200);
  CHECK(!db->get_tuned_for_arch(kSelect, "sm_80"));
  CHECK(!db->get_tuned_for_arch(kPool, "sm_90a"));
}

TEST_CASE("tuned store: all_tuned is ordered by key then device, and filters by arch", "[cache]") {
  test::TempDir dir;
  auto db = cache::Database::open(dir.file("t.sqlite"));
  db->put_tuned(row(kSelect, "bq64-w4-s2", kH200, "sm_90a"));
  db->put_tuned(row(kPool80, "w8", "NVIDIA A100-SXM4-80GB", "sm_80"));
  db->put_tuned(row(kSelect, "bq64-w4-s2", kH100, "sm_90a"));
  db->put_tuned(row(kPool, "w4", kH100, "sm_90a"));
  CHECK(db->count_tuned() == 4);

  std::vector<std::string> names;
  for (const auto& r : db->all_tuned()) names.push_back(r.kernel_key + " @ " + r.device_name);
  CHECK(names == std::vector<std::string>{kPool80 + " @ NVIDIA A100-SXM4-80GB", kPool + " @ " + kH100,
                                          kSelect + " @ " + kH100, kSelect + " @ " + kH200});
  names.clear();
  for (const auto& r : db->all_tuned("sm_90a")) names.push_back(r.kernel_key + " @ " + r.device_name);
  CHECK(names == std::vector<std::string>{kPool + " @ " + kH100, kSelect + " @ " + kH100, kSelect + " @ " + kH200});
  CHECK(db->all_tuned("sm_100a").empty());
}

// ---- pretuned files ----

namespace {

std::vector<TunedRow> sample_rows() {
  TunedRow a = row(kSelect, "bq64-w4-s2", kH200, "sm_90a");
  a.median_ms = 1.0 / 3;
  a.default_ms = 0.1;
  TunedRow b = row(kSelect, "bq128-w8-s3", kH100, "sm_90a");
  b.median_ms = 1e-7;
  b.default_ms = 12345.678901234567;
  b.density = 1;
  b.seq_len = 1 << 20;
  TunedRow c = row(kPool, "w4", R"(lab "rig" \ 2)", "sm_90a");
  c.created.clear();
  return {a, b, c};  // not in file order: export sorts
}

std::vector<TunedRow> sorted(std::vector<TunedRow> rows) {
  std::sort(rows.begin(), rows.end(), [](const TunedRow& x, const TunedRow& y) {
    return std::tie(x.kernel_key, x.device_name) < std::tie(y.kernel_key, y.device_name);
  });
  return rows;
}

// The text with the first `from` on the given line (1-based) replaced by `to`.
std::string edit_line(const std::string& text, int line, const std::string& from, const std::string& to) {
  size_t start = 0;
  for (int i = 1; i < line; ++i) start = text.find('\n', start) + 1;
  const size_t at = text.find(from, start);
  REQUIRE(at != std::string::npos);
  REQUIRE(at < text.find('\n', start));
  return text.substr(0, at) + to + text.substr(at + from.size());
}

}  // namespace

TEST_CASE("pretuned file: export and import round-trip, byte for byte", "[cache]") {
  const std::string text = cache::export_tuned(sample_rows());
  INFO(text);
  CHECK(text.rfind("{\n  \"format\": \"vecattn-pretuned\",\n  \"version\": 1,\n  \"configs\": [\n", 0) == 0);
  CHECK_THAT(text, Catch::Contains(
                       "\n    {\"kernel_key\": \"pool/pq64-d128-bf16-sm_90a\", \"config\": \"w4\", "
                       "\"device_name\": \"lab \\\"rig\\\" \\\\ 2\", \"arch\": \"sm_90a\", \"median_ms\": 0.125, "
                       "\"default_ms\": 0.2, \"density\": 0.25, \"seq_len\": 8192, \"driver_version\": 13000, "
                       "\"nvrtc_version\": \"13.0\", \"library_version\": \"0.1.0\", \"created\": \"\"},\n"));
  CHECK(std::count(text.begin(), text.end(), '\n') == 4 + 3 + 2);  // header, a line per row, closing

  const auto rows = cache::import_tuned(text, "mem.json");
  CHECK(rows == sorted(sample_rows()));
  CHECK(cache::export_tuned(rows) == text);
  CHECK(cache::import_tuned(cache::export_tuned({}), "empty.json").empty());
  // Whitespace is free: a reformatted file reads the same.
  std::string spread = text;
  for (size_t at = 0; (at = spread.find(", \"", at)) != std::string::npos; at += 4) spread.replace(at, 2, ",\n\t ");
  CHECK(cache::import_tuned(spread, "spread.json") == rows);
}

TEST_CASE("pretuned file: written atomically and read back", "[cache]") {
  test::TempDir dir;
  const std::string path = dir.file("pretuned/sm_90a.json");
  cache::write_pretuned_file(path, sample_rows());
  CHECK(cache::read_pretuned_file(path) == sorted(sample_rows()));
  CHECK(read_bytes(path) == cache::export_tuned(sample_rows()));
  // A rejected row leaves the old file as it was, and no temporary file behind.
  auto bad = sample_rows();
  bad[0].kernel_key = "select/oops";
  CHECK_THROWS_AS(cache::write_pretuned_file(path, bad), Error);
  CHECK(read_bytes(path) == cache::export_tuned(sample_rows()));
  cache::write_pretuned_file(path, {sample_rows()[0]});
  CHECK(cache::read_pretuned_file(path).size() == 1);
  CHECK(std::distance(std::filesystem::directory_iterator(dir.file("pretuned")), {}) == 1);
  check_cache_error([&] { cache::read_pretuned_file(dir.file("none.json")); }, "none.json");
}

TEST_CASE("pretuned file: a malformed file names its origin, line and fault", "[cache]") {
  const std::string good = cache::export_tuned(sample_rows());
  // Lines: 1 '{', 2 format, 3 version, 4 configs, 5..7 rows (pool, select@H100, select@H200).
  std::string text, expect;
  SECTION("truncated") {
    text = good.substr(0, good.size() / 2);
    expect = "truncated";
  }
  SECTION("cut after a row") {
    text = good.substr(0, good.find('\n', good.find("\"kernel_key\"")) + 1);
    expect = "mem.json:6: the file ends early (truncated?)";
  }
  SECTION("not JSON") {
    text = edit_line(good, 6, "\"config\":", "\"config\"=");
    expect = "mem.json:6: unexpected '='";
  }
  SECTION("a missing comma") {
    text = edit_line(good, 7, ", \"arch\"", " \"arch\"");
    expect = "mem.json:7: unexpected '\"'";
  }
  SECTION("unknown key") {
    text = edit_line(good, 6, "\"seq_len\"", "\"seqlen\"");
    expect = "mem.json:6: unknown key 'seqlen'";
  }
  SECTION("missing key") {
    text = edit_line(good, 7, ", \"nvrtc_version\": \"13.0\"", "");
    expect = "mem.json:7: the row misses key 'nvrtc_version'";
  }
  SECTION("bad kernel key") {
    text = edit_line(good, 6, "d128", "d12x");
    expect = "mem.json:6: ";
  }
  SECTION("bad config") {
    text = edit_line(good, 7, "bq64-w4-s2", "bq64-w4");
    expect = "mem.json:7: ";
  }
  SECTION("a string where a number belongs") {
    text = edit_line(good, 5, "\"seq_len\": 8192", "\"seq_len\": \"8192\"");
    expect = "mem.json:5: 'seq_len' must be a whole number";
  }
  SECTION("a fraction where a whole number belongs") {
    text = edit_line(good, 5, "\"driver_version\": 13000", "\"driver_version\": 1.5");
    expect = "mem.json:5: 'driver_version' must be a whole number";
  }
  SECTION("a JSON literal") {
    text = edit_line(good, 5, "\"density\": 0.25", "\"density\": true");
    expect = "mem.json:5: unexpected 't'";
  }
  SECTION("an escape the writer never makes") {
    text = edit_line(good, 5, "\\\"rig", "\\nrig");
    expect = "mem.json:5: unsupported escape";
  }
  SECTION("wrong format") {
    text = edit_line(good, 2, "vecattn-pretuned", "vecattn-cubins");
    expect = "mem.json:2: \"format\" is 'vecattn-cubins'";
  }
  SECTION("newer version") {
    text = edit_line(good, 3, "1", "2");
    expect = "mem.json:3: version 2";
  }
  SECTION("unknown top-level key") {
    text = edit_line(good, 3, "\"version\"", "\"revision\"");
    expect = "mem.json:3: unknown key 'revision'";
  }
  SECTION("the same row twice") {
    text = edit_line(good, 7, kH200, kH100);
    expect = "mem.json:7: a second row for " + kSelect + " on '" + kH100 + "' (the first is at line 6)";
  }
  SECTION("text after the end") {
    text = good + "{}\n";
    expect = "mem.json:10: text after the closing";
  }
  SECTION("empty") {
    text = "";
    expect = "mem.json:1: the file ends early";
  }
  check_cache_error([&] { cache::import_tuned(text, "mem.json"); }, expect);
}

// ---- damaged, locked, protected and shared files ----

TEST_CASE("tuned store: a locked database fails after the busy timeout instead of hanging", "[cache]") {
  test::TempDir dir;
  const std::string path = dir.file("locked.sqlite");
  auto db = cache::Database::open(path, cache::Database::Access::read_write, 200);
  db->put_tuned(row(kPool, "w4", kH100, "sm_90a"));

  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &other) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
  const auto t0 = std::chrono::steady_clock::now();
  check_cache_error([&] { db->put_tuned(row(kSelect, "bq64-w4-s2", kH100, "sm_90a")); }, "locked");
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(waited >= 0.15);
  CHECK(waited < 5);
  // WAL: readers go on while another connection writes.
  CHECK(db->get_tuned(kPool, kH100));
  REQUIRE(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(other);

  db->put_tuned(row(kSelect, "bq64-w4-s2", kH100, "sm_90a"));
  CHECK(db->count_tuned() == 2);
}

TEST_CASE("tuned store: a read-only file reads and refuses writes", "[cache]") {
  test::TempDir dir;
  const std::string path = dir.file("ro.sqlite");
  { cache::Database::open(path)->put_tuned(row(kPool, "w4", kH100, "sm_90a")); }
  REQUIRE(chmod(path.c_str(), 0444) == 0);
  if (access(path.c_str(), W_OK) == 0) {
    WARN("the file stays writable after chmod 0444 (running as root?); skipping the read-only checks");
    return;
  }
  auto db = cache::Database::open(path);
  CHECK(db->read_only());
  CHECK(db->get_tuned(kPool, kH100));
  CHECK(db->count_tuned() == 1);
  check_cache_error([&] { db->put_tuned(row(kSelect, "bq64-w4-s2", kH100, "sm_90a")); }, "read-only");
  CHECK(db->count_tuned() == 1);
}

TEST_CASE("tuned store: a read-only file at an older schema reads what it has", "[cache]") {
  test::TempDir dir;
  const std::string path = dir.file("v1.sqlite");
  make_v1_database(path);
  const std::string before = read_bytes(path);
  {
    auto db = cache::Database::open(path, cache::Database::Access::read_only);
    CHECK(db->schema_version() == 1);
    CHECK(db->get_cubin(kPoolVariant, "f", "13.0", nullptr) == cache::Found::hit);
    CHECK(!db->get_tuned(kPool, kH100));
    CHECK(!db->get_tuned_for_arch(kPool, "sm_90a"));
    CHECK(db->all_tuned().empty());
    CHECK(db->count_tuned() == 0);
    check_cache_error([&] { db->put_tuned(row(kPool, "w4", kH100, "sm_90a")); }, "read-only");
  }
  CHECK(read_bytes(path) == before);

  // Schema 0 has nothing to read, and read-only it cannot get tables.
  const std::string empty = dir.file("empty.sqlite");
  write_bytes(empty, "");
  check_cache_error([&] { cache::Database::open(empty, cache::Database::Access::read_only); }, "schema 0");
}

TEST_CASE("tuned store: a corrupt file is refused and left as it was", "[cache]") {
  test::TempDir dir;
  const std::string path = dir.file("bad.sqlite");
  std::mt19937 rng(7);
  std::string garbage(16384, '\0');
  for (char& c : garbage) c = char(rng());

  SECTION("random bytes") { write_bytes(path, garbage); }
  SECTION("a SQLite header, then random bytes") {
    write_bytes(path, std::string("SQLite format 3\0", 16) + garbage.substr(16));
  }
  SECTION("a real database cut in the middle") {
    {
      auto db = cache::Database::open(path);
      for (int i = 0; i < 40; ++i) {
        db->put_cubin({fmt::format("pool/pq{}-d64-fp16-sm_80+w4", i + 1), "f", "13.0", "sm_80", "0.1.0", "_Z1k",
                       garbage.substr(0, 4096), 0.1});
        db->put_tuned(row(fmt::format("pool/pq{}-d128-bf16-sm_90a", i + 1), "w4", kH100, "sm_90a"));
      }
    }
    const std::string whole = read_bytes(path);
    REQUIRE(whole.size() > 100000);
    write_bytes(path, whole.substr(0, whole.size() / 2));
  }
  const std::string before = read_bytes(path);
  check_cache_error(
      [&] {
        auto db = cache::Database::open(path);
        db->count_cubins();
        db->all_tuned();
      },
      "");
  CHECK(read_bytes(path) == before);
}

TEST_CASE("tuned store: four writer processes lose no row", "[cache]") {
  test::TempDir dir;
  const std::string path = dir.file("shared.sqlite");
  constexpr int kWriters = 4, kRows = 100, kCubinEvery = 25;
  // Each child opens the (not yet existing) file itself, all at once (they wait for the pipe to
  // close): creation, the switch to WAL and migration race too.
  int start[2];
  REQUIRE(pipe(start) == 0);
  std::vector<pid_t> children;
  for (int w = 0; w < kWriters; ++w) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      close(start[1]);
      char byte;
      while (read(start[0], &byte, 1) < 0 && errno == EINTR) {
      }
      int status = 0;
      try {
        auto db = cache::Database::open(path);
        const std::string device = fmt::format("GPU {}", w);
        for (int i = 0; i < kRows; ++i) {
          db->put_tuned(row(fmt::format("pool/pq{}-d128-bf16-sm_90a", i + 1), "w4", device, "sm_90a"));
          if (i % kCubinEvery == 0)
            db->put_cubin({fmt::format("pool/pq{}-d64-fp16-sm_80+w4", i + 1), device, "13.0", "sm_80", "0.1.0",
                           "_Z1k", "bytes", 0.1});
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "writer %d: %s\n", w, e.what());
        status = 1;
      }
      _exit(status);  // no Catch2 teardown or atexit handlers in the child
    }
    children.push_back(pid);
  }
  close(start[0]);
  close(start[1]);
  for (pid_t pid : children) {
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  auto db = cache::Database::open(path);
  CHECK(db->count_tuned() == kWriters * kRows);
  CHECK(db->count_cubins() == kWriters * kRows / kCubinEvery);
  std::set<std::pair<std::string, std::string>> keys;
  for (const auto& r : db->all_tuned("sm_90a")) keys.emplace(r.kernel_key, r.device_name);
  CHECK(keys.size() == size_t(kWriters * kRows));
}

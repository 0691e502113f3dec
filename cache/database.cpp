#include "cache/database.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <thread>

#include "cache/sqlite.h"
#include "codegen/error.h"
#include "codegen/hash.h"

namespace vecattn::cache {
namespace {

constexpr const char* kSchemaV1 = R"sql(
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

// The arch index serves get_tuned_for_arch: a GPU with no row of its own takes a sibling's.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE IF NOT EXISTS tuned_configs (
  kernel_key       TEXT NOT NULL,
  config           TEXT NOT NULL,
  device_name      TEXT NOT NULL,
  arch             TEXT NOT NULL,
  median_ms        REAL NOT NULL,
  default_ms       REAL NOT NULL,
  density          REAL NOT NULL,
  seq_len          INTEGER NOT NULL,
  driver_version   INTEGER NOT NULL,
  nvrtc_version    TEXT NOT NULL,
  library_version  TEXT NOT NULL,
  created          TEXT NOT NULL,
  PRIMARY KEY (kernel_key, device_name)
);
CREATE INDEX IF NOT EXISTS tuned_configs_arch ON tuned_configs (kernel_key, arch);
)sql";

// Calibrated per-head thresholds of models (vecattn-calibrate): one row per (model, layer, head).
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE IF NOT EXISTS thresholds (
  model            TEXT NOT NULL,
  layer            INTEGER NOT NULL,
  head             INTEGER NOT NULL,
  threshold        REAL NOT NULL,
  recall           REAL NOT NULL,
  sparsity         REAL NOT NULL,
  options          TEXT NOT NULL,
  created          TEXT NOT NULL,
  PRIMARY KEY (model, layer, head)
);
)sql";

// One step per schema version, applied in order from the file's version: a file at version 0
// gets every step, a file at 1 only the later ones. A new version is one more entry.
struct Migration {
  int to_version;
  const char* sql;
};
constexpr Migration kMigrations[] = {
    {1, kSchemaV1},
    {2, kSchemaV2},
    {3, kSchemaV3},
};
static_assert(std::size(kMigrations) == kSchemaVersion && kMigrations[kSchemaVersion - 1].to_version == kSchemaVersion,
              "every schema version needs its migration step");

[[noreturn]] void fail_at(const std::string& path, const std::string& why) {
  throw Error(Status::cache_error, fmt::format("cache database {}: {}", path, why));
}

int read_user_version(sqlite3* db, const std::string& path) {
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  int v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
  sqlite3_finalize(st);
  if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
    fail_at(path, "is not a vecattn cache (not a SQLite database, or corrupt); it was left untouched");
  if (rc != SQLITE_ROW) fail_at(path, fmt::format("cannot be read: {}", sqlite3_errmsg(db)));
  return v;
}

// Switching to WAL needs the file to itself for a moment, and SQLite does not call the busy
// handler for that: processes opening a fresh cache together would fail here, so this waits
// itself, as long as the busy timeout.
void enable_wal(sqlite3* db, int busy_timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(busy_timeout_ms, 0));
  for (int sleep_ms = 1;; sleep_ms = std::min(2 * sleep_ms, 50)) {
    const int rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
    const bool busy = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
    if (!busy || std::chrono::steady_clock::now() >= deadline) return check(db, rc, "PRAGMA journal_mode=WAL");
    std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
  }
}

std::string newer_schema(int version) {
  return fmt::format("was written by a newer vecattn (schema {}, this build knows {}); it was left untouched", version,
                     kSchemaVersion);
}

}  // namespace

std::unique_ptr<Database> Database::open(const std::string& path, Access access, int busy_timeout_ms) {
  if (path.empty()) fail_at(path, "no path given");
  if (access == Access::read_write) {
    std::error_code ec;
    auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  } else if (!std::filesystem::exists(path)) {
    fail_at(path, "does not exist");
  }

  sqlite3* db = nullptr;
  const int flags = access == Access::read_write ? (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) : SQLITE_OPEN_READONLY;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    fail_at(path, fmt::format("cannot be opened: {}", msg));
  }
  sqlite3_busy_timeout(db, busy_timeout_ms);
  // A file the OS protects opens read-only even when asked for read-write.
  if (access == Access::read_write && sqlite3_db_readonly(db, "main") == 1) access = Access::read_only;
  std::unique_ptr<Database> self(new Database(db, path, access));

  const int version = read_user_version(db, path);
  if (version > kSchemaVersion) fail_at(path, newer_schema(version));
  if (self->access_ == Access::read_write) {
    enable_wal(db, busy_timeout_ms);
    // In WAL mode NORMAL cannot corrupt the file; a power cut may lose the last commits, which a
    // cache rebuilds, and each commit saves an fsync.
    exec(db, "PRAGMA synchronous=NORMAL");
    self->migrate();
  } else if (version < 1) {
    fail_at(path, "has no vecattn tables (schema 0) and is read-only, so they cannot be created");
  } else {
    self->schema_ = version;
  }
  return self;
}

Database::~Database() { sqlite3_close(db_); }

// Creates or upgrades the schema in one write transaction; a concurrent opener waits, then
// sees the work done. Any failure rolls the file back to the version it had.
void Database::migrate() {
  std::lock_guard<std::mutex> lock(mutex_);
  exec(db_, "BEGIN IMMEDIATE");
  try {
    const int found = read_user_version(db_, path_);
    // Another process may have upgraded the file since open looked.
    if (found > kSchemaVersion) fail(newer_schema(found));
    int version = found;
    for (const Migration& m : kMigrations) {
      if (version >= m.to_version) continue;
      exec(db_, m.sql);
      version = m.to_version;
    }
    if (version != found) exec(db_, fmt::format("PRAGMA user_version = {}", version));
    exec(db_, "COMMIT");
    schema_ = version;
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void Database::fail(const std::string& why) const { fail_at(path_, why); }

int Database::schema_version() {
  std::lock_guard<std::mutex> lock(mutex_);
  return read_user_version(db_, path_);
}

Found Database::get_cubin(const std::string& variant, const std::string& fingerprint,
                          const std::string& nvrtc_version, CubinRow* out) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement st(db_,
               "SELECT nvrtc_version, arch, library_version, lowered_name, size, checksum, data, compile_seconds "
               "FROM cubins WHERE variant = ?1 AND fingerprint = ?2 AND (?3 = '' OR nvrtc_version = ?3) "
               "ORDER BY created DESC LIMIT 1");
  st.bind(1, variant).bind(2, fingerprint).bind(3, nvrtc_version);
  if (!st.step()) return Found::miss;
  CubinRow row;
  row.variant = variant;
  row.fingerprint = fingerprint;
  row.nvrtc_version = st.text(0);
  row.arch = st.text(1);
  row.library_version = st.text(2);
  row.lowered_name = st.text(3);
  const int64_t size = st.integer(4);
  const std::string checksum = st.text(5);
  row.cubin = st.blob(6);
  row.compile_seconds = st.real(7);
  if (int64_t(row.cubin.size()) != size || hash_hex(row.cubin) != checksum || row.lowered_name.empty())
    return Found::corrupt;
  if (out) *out = std::move(row);
  return Found::hit;
}

void Database::put_cubin(const CubinRow& row) {
  if (access_ == Access::read_only) fail("is read-only");
  std::lock_guard<std::mutex> lock(mutex_);
  Statement st(db_,
               "INSERT OR REPLACE INTO cubins (variant, fingerprint, nvrtc_version, arch, library_version, "
               "lowered_name, size, checksum, data, compile_seconds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
  st.bind(1, row.variant)
      .bind(2, row.fingerprint)
      .bind(3, row.nvrtc_version)
      .bind(4, row.arch)
      .bind(5, row.library_version)
      .bind(6, row.lowered_name)
      .bind(7, int64_t(row.cubin.size()))
      .bind(8, hash_hex(row.cubin))
      .bind_blob(9, row.cubin)
      .bind(10, row.compile_seconds);
  st.run();
}

long long Database::count_cubins() {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement st(db_, "SELECT COUNT(*) FROM cubins");
  st.step();
  return st.integer(0);
}

std::string default_database_path() {
  namespace fs = std::filesystem;
  if (const char* d = std::getenv("VECATTN_CACHE_DIR"); d && *d) return (fs::path(d) / "vecattn.sqlite").string();
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return (fs::path(x) / "vecattn" / "vecattn.sqlite").string();
  if (const char* h = std::getenv("HOME"); h && *h) return (fs::path(h) / ".cache" / "vecattn" / "vecattn.sqlite").string();
  return {};
}

}  // namespace vecattn::cache

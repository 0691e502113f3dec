#pragma once
// The SQLite store: compiled cubins today, tuned configs beside them (schema versioned).
// One connection per Database, guarded by a mutex; several processes may share one file
// (WAL, busy timeout). Failures throw Error(cache_error); callers decide to warn and go on.
#include <memory>
#include <mutex>
#include <optional>
#include <string>

struct sqlite3;

namespace vecattn::cache {

constexpr int kSchemaVersion = 1;

struct CubinRow {
  std::string variant;         // Variant::str(): the readable name of the kernel variant
  std::string fingerprint;     // CompilePlan::fingerprint
  std::string nvrtc_version;   // "13.0"
  std::string arch;            // "sm_90a"
  std::string library_version;
  std::string lowered_name;
  std::string cubin;
  double compile_seconds = 0;
};

enum class Found { hit, miss, corrupt };

class Database {
 public:
  enum class Access { read_write, read_only };

  // Opens (and for read_write creates, with parent folders) the file at path. Throws
  // Error(cache_error) when the file is not a database, was written by a newer schema, or
  // cannot be opened; the file is never rewritten in those cases.
  static std::unique_ptr<Database> open(const std::string& path, Access access = Access::read_write);
  ~Database();

  const std::string& path() const { return path_; }
  bool read_only() const { return access_ == Access::read_only; }
  int schema_version();

  // Looks up the row of (variant, fingerprint); with nvrtc_version non-empty, only a cubin of
  // that NVRTC counts. A row whose size or checksum does not match its bytes is `corrupt`.
  Found get_cubin(const std::string& variant, const std::string& fingerprint, const std::string& nvrtc_version,
                  CubinRow* out);
  // Inserts or replaces the row of (variant, fingerprint, nvrtc_version).
  void put_cubin(const CubinRow& row);
  long long count_cubins();

 private:
  Database(sqlite3* db, std::string path, Access access) : db_(db), path_(std::move(path)), access_(access) {}
  void migrate();

  sqlite3* db_;
  std::string path_;
  Access access_;
  std::mutex mutex_;
};

// $VECATTN_CACHE_DIR/vecattn.sqlite, else $XDG_CACHE_HOME/vecattn/vecattn.sqlite, else
// ~/.cache/vecattn/vecattn.sqlite; empty when none of those can be formed.
std::string default_database_path();

}  // namespace vecattn::cache

#pragma once
// The SQLite store: compiled cubins and tuned configs (schema versioned, migrated on open).
// One connection per Database, guarded by a mutex; several processes may share one file
// (WAL, busy timeout). Failures throw Error(cache_error); callers decide to warn and go on.
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cache/thresholds.h"
#include "cache/tuned.h"

struct sqlite3;

namespace vecattn::cache {

// 1: cubins. 2: tuned_configs. 3: thresholds. Each version is one step of the migration list in
// database.cpp.
constexpr int kSchemaVersion = 3;

// How long a statement waits for another connection's write lock before it fails.
constexpr int kDefaultBusyTimeoutMs = 10000;

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

  // Opens (and for read_write creates, with parent folders) the file at path, and brings an
  // older schema to kSchemaVersion. Throws Error(cache_error) when the file is not a database,
  // was written by a newer schema, or cannot be opened; the file is never rewritten in those
  // cases. A file opened read-only (asked for, or protected by the OS) cannot migrate: at
  // schema 1 it still opens, its cubins read as usual and it has no tuned rows (get_tuned finds
  // nothing, put_tuned throws as on any read-only file); at schema 0 it has nothing to read and
  // open throws.
  static std::unique_ptr<Database> open(const std::string& path, Access access = Access::read_write,
                                        int busy_timeout_ms = kDefaultBusyTimeoutMs);
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

  // Tuned configs (cache/tuned.cpp). put_tuned inserts or replaces the row of (kernel_key,
  // device_name), filling `created` when empty; it throws when check_tuned_row finds fault.
  void put_tuned(const TunedRow& row);
  // The row tuned on exactly this device.
  std::optional<TunedRow> get_tuned(const std::string& kernel_key, const std::string& device_name);
  // The newest row of any device of the arch: a sibling GPU's winner beats the built-in default.
  std::optional<TunedRow> get_tuned_for_arch(const std::string& kernel_key, const std::string& arch);
  // Every row, or the arch's when arch is non-empty; ordered by kernel_key, then device_name.
  std::vector<TunedRow> all_tuned(const std::string& arch = "");
  long long count_tuned();

  // Calibrated thresholds (cache/thresholds.cpp). put_thresholds replaces every row of the rows'
  // (model, layer, head) in one transaction; it throws when check_threshold_row finds fault.
  void put_thresholds(const std::vector<ThresholdRow>& rows);
  // A model's rows, ordered by layer then head; layer < 0: every layer.
  std::vector<ThresholdRow> get_thresholds(const std::string& model, int layer = -1);
  std::vector<std::string> threshold_models();

 private:
  Database(sqlite3* db, std::string path, Access access) : db_(db), path_(std::move(path)), access_(access) {}
  void migrate();
  [[noreturn]] void fail(const std::string& why) const;
  // False only for a read-only file left at schema 1.
  bool has_tuned_table() const { return schema_ >= 2; }
  bool has_thresholds_table() const { return schema_ >= 3; }

  sqlite3* db_;
  std::string path_;
  Access access_;
  int schema_ = 0;  // as opened (after migrating, when writable)
  std::mutex mutex_;
};

// $VECATTN_CACHE_DIR/vecattn.sqlite, else $XDG_CACHE_HOME/vecattn/vecattn.sqlite, else
// ~/.cache/vecattn/vecattn.sqlite; empty when none of those can be formed.
std::string default_database_path();

}  // namespace vecattn::cache

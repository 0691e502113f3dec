#pragma once
// Compiled kernels, layered: memory -> SQLite (cache/) -> NVRTC (codegen/). Needs no GPU.
// Thread-safe: concurrent callers for one variant share a single compile.
#include <atomic>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cache/database.h"
#include "codegen/compiler.h"
#include "codegen/error.h"

namespace vecattn {

enum class CubinOrigin { memory, database, compiled };
const char* origin_name(CubinOrigin o);

struct CubinResult {
  std::shared_ptr<const CompiledKernel> kernel;
  CubinOrigin origin;
};

class CubinCache {
 public:
  // db may be null: then nothing persists beyond this object.
  explicit CubinCache(std::shared_ptr<cache::Database> db);

  // The process-wide cache over the user database (cache::default_database_path()). A database
  // that cannot be opened is reported once as a warning; compiles then stay in memory.
  static CubinCache& shared();

  CubinResult get(const Variant& v);

  // Called when the driver refused a cubin: the next get() skips memory and the database,
  // recompiles and replaces the stored row.
  void invalidate(const Variant& v);

  // Compiles (or finds) many variants with up to `threads` NVRTC instances at once (each takes a
  // few hundred MB). threads <= 0: $VECATTN_COMPILE_THREADS, else min(cores, 8). Returns, per
  // variant, where it came from or the error that stopped it.
  struct Outcome {
    std::optional<Error> error;
    CubinResult result;
  };
  std::vector<Outcome> get_many(const std::vector<Variant>& variants, int threads = 0);

  cache::Database* database() const { return db_.get(); }

  struct Stats {
    std::atomic<long> memory_hits{0}, database_hits{0}, compiles{0}, corrupt_rows{0}, database_errors{0};
  };
  const Stats& stats() const { return stats_; }

 private:
  using Entry = std::shared_future<std::shared_ptr<const CompiledKernel>>;
  std::shared_ptr<const CompiledKernel> produce(const Variant& v, bool skip_database, CubinOrigin* origin);

  std::shared_ptr<cache::Database> db_;
  std::mutex mutex_;
  std::map<std::string, Entry> entries_;        // by Variant::str()
  std::map<std::string, bool> skip_database_;   // variants the driver refused
  Stats stats_;
};

}  // namespace vecattn

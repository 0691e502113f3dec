#pragma once
// Compiled kernels, layered: memory -> the kernel bundle (ahead-of-time cubins installed beside
// the library, read-only) -> the user's SQLite cache (cache/) -> NVRTC (codegen/). Needs no GPU.
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

enum class CubinOrigin { memory, bundle, database, compiled };
const char* origin_name(CubinOrigin o);

// The kernel bundle's file name (installed in the library directory).
constexpr const char* kKernelBundleFile = "vecattn-kernels.sqlite";

struct CubinResult {
  std::shared_ptr<const CompiledKernel> kernel;
  CubinOrigin origin;
};

class CubinCache {
 public:
  // db may be null: then nothing persists beyond this object. bundle (opened read-only) may be
  // null: no ahead-of-time kernels. compile false: never run NVRTC (a variant found nowhere is an
  // error naming it and the bundle), as when libnvrtc is absent.
  explicit CubinCache(std::shared_ptr<cache::Database> db, std::shared_ptr<cache::Database> bundle = nullptr,
                      bool compile = true);

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
  cache::Database* bundle() const { return bundle_.get(); }

  // Where the process-wide cache looks for its bundle: $VECATTN_KERNEL_BUNDLE if set (empty: no
  // bundle), else kKernelBundleFile beside the loaded library (or executable), or in ../lib.
  static std::string bundle_path();
  // That bundle opened read-only; null (with a warning when it exists but cannot be read) if none.
  static std::shared_ptr<cache::Database> open_bundle();

  struct Stats {
    std::atomic<long> memory_hits{0}, bundle_hits{0}, database_hits{0}, compiles{0}, corrupt_rows{0},
        database_errors{0};
  };
  const Stats& stats() const { return stats_; }

 private:
  using Entry = std::shared_future<std::shared_ptr<const CompiledKernel>>;
  std::shared_ptr<const CompiledKernel> produce(const Variant& v, bool skip_database, CubinOrigin* origin);

  std::shared_ptr<cache::Database> db_;
  std::shared_ptr<cache::Database> bundle_;
  bool compile_;
  std::mutex mutex_;
  std::map<std::string, Entry> entries_;        // by Variant::str()
  std::map<std::string, bool> skip_database_;   // variants the driver refused
  Stats stats_;
};

}  // namespace vecattn

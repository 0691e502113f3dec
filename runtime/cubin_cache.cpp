#include "runtime/cubin_cache.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include <fmt/format.h>

#include "codegen/log.h"
#include "codegen/nvrtc.h"
#include "runtime/location.h"

namespace vecattn {

const char* origin_name(CubinOrigin o) {
  switch (o) {
    case CubinOrigin::memory: return "memory";
    case CubinOrigin::bundle: return "bundle";
    case CubinOrigin::database: return "database";
    case CubinOrigin::compiled: return "compiled";
  }
  return "?";
}

CubinCache::CubinCache(std::shared_ptr<cache::Database> db, std::shared_ptr<cache::Database> bundle, bool compile)
    : db_(std::move(db)), bundle_(std::move(bundle)), compile_(compile) {}

namespace {

bool is_file(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

std::string CubinCache::bundle_path() {
  if (const char* env = std::getenv("VECATTN_KERNEL_BUNDLE")) return env;
  const std::string dir = loaded_object_directory();
  if (dir.empty()) return {};
  for (const std::string& candidate : {dir + "/" + kKernelBundleFile, dir + "/../lib/" + kKernelBundleFile})
    if (is_file(candidate)) return candidate;
  return {};
}

CubinCache& CubinCache::shared() {
  static CubinCache instance(
      []() -> std::shared_ptr<cache::Database> {
        const std::string path = cache::default_database_path();
        try {
          return cache::Database::open(path);
        } catch (const Error& e) {
          log::warn("{}; compiled kernels will not persist across processes", e.what());
          return nullptr;
        }
      }(),
      open_bundle());
  return instance;
}

std::shared_ptr<cache::Database> CubinCache::open_bundle() {
  const std::string path = bundle_path();
  if (path.empty()) return nullptr;
  try {
    auto bundle = cache::Database::open(path, cache::Database::Access::read_only);
    log::info("kernel bundle {}", path);
    return bundle;
  } catch (const Error& e) {
    log::warn("{}; not using the kernel bundle", e.what());
    return nullptr;
  }
}

std::shared_ptr<const CompiledKernel> CubinCache::produce(const Variant& v, bool skip_database, CubinOrigin* origin) {
  const CompilePlan plan = plan_compile(v);
  const std::string name = v.str();
  // Only a cubin from this NVRTC counts; without NVRTC any stored build of the same source does.
  std::string nvrtc_version;
  try {
    nvrtc_version = Nvrtc::get().version();
  } catch (const Error&) {
  }

  // The bundle: any NVRTC's build of this very source, options and arch (the fingerprint), from
  // this library version; a row that fails its checksum or comes from another version is skipped.
  if (bundle_ && !skip_database) {
    try {
      cache::CubinRow row;
      const cache::Found found = bundle_->get_cubin(name, plan.fingerprint, "", &row);
      if (found == cache::Found::hit && row.library_version == library_version()) {
        ++stats_.bundle_hits;
        *origin = CubinOrigin::bundle;
        auto k = std::make_shared<CompiledKernel>();
        k->variant = v;
        k->fingerprint = row.fingerprint;
        k->nvrtc_version = row.nvrtc_version;
        k->lowered_name = row.lowered_name;
        k->cubin = std::move(row.cubin);
        k->seconds = row.compile_seconds;
        return k;
      }
      if (found == cache::Found::hit)
        log::warn("the kernel bundle {} holds {} from library {}, not {}; not using it", bundle_->path(), name,
                  row.library_version, library_version());
      if (found == cache::Found::corrupt) {
        ++stats_.corrupt_rows;
        log::warn("the kernel bundle's cubin of {} in {} is corrupt (size or checksum mismatch); not using it", name,
                  bundle_->path());
      }
    } catch (const Error& e) {
      ++stats_.database_errors;
      log::warn("{}; looking further for {}", e.what(), name);
    }
  }

  if (db_ && !skip_database) {
    try {
      cache::CubinRow row;
      switch (db_->get_cubin(name, plan.fingerprint, nvrtc_version, &row)) {
        case cache::Found::hit: {
          ++stats_.database_hits;
          *origin = CubinOrigin::database;
          auto k = std::make_shared<CompiledKernel>();
          k->variant = v;
          k->fingerprint = row.fingerprint;
          k->nvrtc_version = row.nvrtc_version;
          k->lowered_name = row.lowered_name;
          k->cubin = std::move(row.cubin);
          k->seconds = row.compile_seconds;
          return k;
        }
        case cache::Found::corrupt:
          ++stats_.corrupt_rows;
          log::warn("stored cubin of {} in {} is corrupt (size or checksum mismatch); recompiling", name, db_->path());
          break;
        case cache::Found::miss: break;
      }
    } catch (const Error& e) {
      ++stats_.database_errors;
      log::warn("{}; compiling {} instead", e.what(), name);
    }
  }

  const std::string bundle_note =
      bundle_ ? fmt::format("is not in the kernel bundle {}", bundle_->path())
              : fmt::format("has no kernel bundle to come from (none found; build with -DVECATTN_AOT_ARCHS or set "
                            "VECATTN_KERNEL_BUNDLE)");
  if (!compile_) throw Error(Status::nvrtc_unavailable, fmt::format("{} {} and compiling is off", name, bundle_note), {}, name);
  log::info("compiling {} with NVRTC", name);
  std::shared_ptr<CompiledKernel> k;
  try {
    k = std::make_shared<CompiledKernel>(compile(plan));
  } catch (const Error& e) {
    if (e.status() != Status::nvrtc_unavailable) throw;
    throw Error(Status::nvrtc_unavailable, fmt::format("{}: {} {}", e.what(), name, bundle_note), e.detail(), name);
  }
  ++stats_.compiles;
  *origin = CubinOrigin::compiled;
  log::debug("compiled {} in {:.2f} s ({} bytes)", name, k->seconds, k->cubin.size());
  if (db_ && !db_->read_only()) {
    try {
      db_->put_cubin(cache::CubinRow{name, k->fingerprint, k->nvrtc_version, v.key.arch, library_version(),
                                     k->lowered_name, k->cubin, k->seconds});
    } catch (const Error& e) {
      ++stats_.database_errors;
      log::warn("{}; {} stays in memory only", e.what(), name);
    }
  }
  return k;
}

CubinResult CubinCache::get(const Variant& v) {
  const std::string name = v.str();
  std::promise<std::shared_ptr<const CompiledKernel>> promise;
  std::optional<Entry> existing;
  bool skip_database = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = entries_.find(name); it != entries_.end()) {
      existing = it->second;
    } else {
      entries_.emplace(name, promise.get_future().share());
      if (auto s = skip_database_.find(name); s != skip_database_.end()) {
        skip_database = true;
        skip_database_.erase(s);
      }
    }
  }
  if (existing) {
    auto k = existing->get();  // waits for a compile in flight; rethrows its error
    ++stats_.memory_hits;
    return {k, CubinOrigin::memory};
  }
  CubinOrigin origin = CubinOrigin::compiled;
  try {
    auto k = produce(v, skip_database, &origin);
    promise.set_value(k);
    return {k, origin};
  } catch (...) {
    promise.set_exception(std::current_exception());
    // A failure is not cached: the next caller tries again (NVRTC may appear, a lock may clear).
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.erase(name);
    throw;
  }
}

void CubinCache::invalidate(const Variant& v) {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.erase(v.str());
  skip_database_[v.str()] = true;
}

std::vector<CubinCache::Outcome> CubinCache::get_many(const std::vector<Variant>& variants, int threads) {
  if (threads <= 0) {
    const char* env = std::getenv("VECATTN_COMPILE_THREADS");
    threads = env ? std::atoi(env) : 0;
    if (threads <= 0) threads = std::min(8, std::max(1, int(std::thread::hardware_concurrency())));
  }
  threads = std::max(1, std::min<int>(threads, int(variants.size())));
  std::vector<Outcome> out(variants.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < variants.size();) {
      try {
        out[i].result = get(variants[i]);
      } catch (const Error& e) {
        out[i].error = e;
      } catch (const std::exception& e) {
        out[i].error = Error(Status::internal, e.what(), {}, variants[i].str());
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  return out;
}

}  // namespace vecattn

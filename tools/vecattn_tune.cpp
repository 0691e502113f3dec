// vecattn-tune: the per-GPU job. Today it builds every kernel variant of the search space into
// the cache (for a GPU's arch, or offline for --arch) and loads them on the device.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "cache/database.h"
#include "codegen/error.h"
#include "codegen/log.h"
#include "codegen/nvrtc.h"
#include "runtime/cubin_cache.h"
#include "runtime/device.h"
#include "runtime/driver.h"
#include "runtime/vecattn.hpp"
#include "tuner/search_space.h"

namespace {

constexpr int kExitError = 1;
constexpr int kExitNoGpu = 2;

struct Args {
  std::string arch;
  std::string db;
  int device = 0;
  int threads = 0;
  bool list = false;
};

int run(const Args& a) {
  using namespace vecattn;
  std::string arch = a.arch;
  std::optional<DeviceInfo> dev;
  if (arch.empty()) {
    std::string why;
    if (!Driver::available(&why)) {
      std::fprintf(stderr,
                   "vecattn-tune: %s\n"
                   "Tuning needs a GPU. Without one, `vecattn-tune --arch sm_90a` compiles every kernel for that "
                   "arch into the cache.\n",
                   why.c_str());
      return kExitNoGpu;
    }
    dev = query_device(a.device);
    arch = dev->arch;
  } else {
    arch = parse_arch(arch);
  }

  const std::vector<Variant> variants = tuner::all_variants(arch);
  if (a.list) {
    for (const auto& v : variants) std::printf("%s\n", v.str().c_str());
    return 0;
  }

  const std::string db_path = a.db.empty() ? cache::default_database_path() : a.db;
  auto db = std::shared_ptr<cache::Database>(cache::Database::open(db_path));
  if (db->read_only()) throw Error(Status::cache_error, fmt::format("cache database {} is read-only", db_path));
  const Nvrtc& nv = Nvrtc::get();
  std::fprintf(stderr, "vecattn-tune: %zu variants for %s%s, NVRTC %s, cache %s\n", variants.size(), arch.c_str(),
               dev ? fmt::format(" ({} #{})", dev->name, dev->ordinal).c_str() : " (offline)", nv.version().c_str(),
               db_path.c_str());

  CubinCache cubins(db);
  const auto t0 = std::chrono::steady_clock::now();
  const auto outcomes = cubins.get_many(variants, a.threads);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // On a GPU each module is then loaded through a runtime over the same database: what a
  // second process pays for a kernel it finds in the cache.
  std::unique_ptr<Runtime> rt;
  if (dev) {
    RuntimeOptions o;
    o.device = a.device;
    o.cache_path = db_path;
    rt = std::make_unique<Runtime>(o);
  }
  int failed = 0;
  std::printf("%-44s %-9s %10s %10s\n", "variant", "cubin", "nvrtc s", dev ? "load ms" : "");
  for (size_t i = 0; i < variants.size(); ++i) {
    const auto& o = outcomes[i];
    std::string load;
    if (o.error) {
      ++failed;
      std::fprintf(stderr, "%s: %s\n%s\n", variants[i].str().c_str(), o.error->what(), o.error->detail().c_str());
    } else if (rt) {
      try {
        const auto l0 = std::chrono::steady_clock::now();
        rt->preload(variants[i]);
        load = fmt::format("{:.2f}", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - l0).count());
      } catch (const Error& e) {
        ++failed;
        load = "FAILED";
        std::fprintf(stderr, "%s: %s\n", variants[i].str().c_str(), e.what());
      }
    }
    const std::string origin = o.error ? "FAILED" : origin_name(o.result.origin);
    const std::string nvrtc_s =
        !o.error && o.result.origin == CubinOrigin::compiled ? fmt::format("{:.3f}", o.result.kernel->seconds) : "-";
    std::printf("%-44s %-9s %10s %10s\n", variants[i].str().c_str(), origin.c_str(), nvrtc_s.c_str(), load.c_str());
  }
  const auto& s = cubins.stats();
  std::printf("\n%zu variants in %.1f s: %ld compiled, %ld from the cache, %d failed\n", variants.size(), seconds,
              s.compiles.load(), s.database_hits.load(), failed);
  return failed ? kExitError : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vecattn-tune: build and tune vecattn's kernels for a GPU, storing them in the cache"};
  Args a;
  app.add_option("--arch", a.arch, "compile for this arch without a GPU (e.g. sm_80, sm_90a)");
  app.add_option("--db", a.db, "cache database (default: $VECATTN_CACHE_DIR or $XDG_CACHE_HOME/vecattn/vecattn.sqlite)");
  app.add_option("--device", a.device, "CUDA device ordinal")->check(CLI::NonNegativeNumber);
  app.add_option("--threads", a.threads, "parallel NVRTC compiles (default: min(cores, 8))")->check(CLI::NonNegativeNumber);
  app.add_flag("--list", a.list, "list the kernel variants and exit");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(a);
  } catch (const vecattn::Error& e) {
    std::fprintf(stderr, "vecattn-tune: %s\n", e.what());
    if (!e.detail().empty()) std::fprintf(stderr, "%s\n", e.detail().c_str());
    return e.status() == vecattn::Status::no_driver || e.status() == vecattn::Status::no_device ? kExitNoGpu
                                                                                                  : kExitError;
  }
}

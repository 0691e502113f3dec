// vecattn-tune: the per-GPU job. Finds the fastest tile config of every kernel key users need,
// stores the winners (and the compiled kernels) in the cache database, and moves winners to and
// from the reviewable per-arch files that ship with the library.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <sqlite3.h>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <thread>

#include <unistd.h>

#include "cache/database.h"
#include "cache/pretuned_file.h"
#include "codegen/error.h"
#include "codegen/kernels.h"
#include "codegen/log.h"
#include "codegen/nvrtc.h"
#include "runtime/cubin_cache.h"
#include "runtime/device.h"
#include "runtime/driver.h"
#include "runtime/runtime.h"
#include "tuner/presets.h"
#include "tuner/search_space.h"
#include "tuner/tuner.h"
#include "tools/cli.h"

namespace {

using namespace vecattn;

using tools::kExitError;
using tools::kExitNoGpu;

struct Args {
  std::vector<std::string> presets;
  std::vector<int> pq, bk, gk, head_dim;
  std::vector<std::string> dtype;
  std::vector<int> causal;
  std::vector<std::string> kernels;
  std::string devices = "0";
  std::string arch;
  std::string cubin_dir;
  std::string db;
  std::string export_path, import_path;
  std::string aot_bundle;
  std::vector<std::string> aot_archs;
  int64_t seq_len = 32768;
  int64_t heads = 16;
  double strong_fraction = 0.02;
  std::string input = "synthetic";
  float threshold = 0.9f;
  double budget = 60;
  int reps = 15;
  int threads = 0;
  bool list = false;
  bool json = false;
  std::vector<std::string> given;  // the flags on the command line, for checking which go together
  bool has(const std::string& flag) const { return std::find(given.begin(), given.end(), flag) != given.end(); }
};

using Flags = std::initializer_list<const char*>;
// Flags that choose kernel keys, and flags that only a tune on a GPU uses.
constexpr Flags kKeyFlags = {"--preset", "--pq", "--bk", "--gk", "--head-dim", "--dtype", "--causal", "--kernel"};
constexpr Flags kTuneFlags = {"--device", "--seq-len", "--heads", "--input", "--threshold", "--strong-fraction",
                              "--budget", "--reps", "--json"};

// A mode that would drop a flag it does not use refuses it instead, naming both.
void refuse(const Args& a, Flags flags, const std::string& mode, const std::string& why) {
  for (const char* f : flags)
    if (a.has(f)) throw Error(Status::invalid_argument, fmt::format("{} does not go with {}: {}", f, mode, why));
}

// grid_keys leaves illegal combinations out, so a value no kernel takes would vanish unnoticed:
// each is checked on its own, the error naming its flag.
void check_grid(const tuner::KeyGrid& g) {
  for (int pq : g.pq) tools::check_kernel_flags(pq, 16, 1, false);
  for (int bk : g.bk) tools::check_kernel_flags(64, bk, 1, false);
  for (int gk : g.gk) tools::check_kernel_flags(64, 16, gk, false);
  for (int d : g.head_dim) tools::check_head_dim(d, fmt::format("--head-dim {}", d));
}

tuner::KeyGrid grid_from(const Args& a) {
  tuner::KeyGrid g = tuner::preset(a.presets.empty() ? "vlm" : a.presets.front());
  for (size_t i = 1; i < a.presets.size(); ++i) {
    const auto more = tuner::preset(a.presets[i]);
    for (bool c : more.causal)
      if (std::find(g.causal.begin(), g.causal.end(), c) == g.causal.end()) g.causal.push_back(c);
  }
  if (!a.pq.empty()) g.pq = a.pq;
  if (!a.bk.empty()) g.bk = a.bk;
  if (!a.gk.empty()) g.gk = a.gk;
  if (!a.head_dim.empty()) g.head_dim = a.head_dim;
  if (!a.dtype.empty()) {
    g.dtype.clear();
    for (const auto& t : a.dtype) g.dtype.push_back(parse_dtype(t));
  }
  if (!a.kernels.empty()) {
    g.kernels.clear();
    for (const auto& k : a.kernels) {
      g.kernels.push_back(parse_kernel(k));
      if (g.kernels.back() == KernelKind::recall)
        throw Error(Status::invalid_argument, "--kernel recall: the calibration's recall kernel is not tuned (it runs its "
                                              "default config); use pool, select, sparse_attn or dense_attn");
    }
  }
  if (!a.causal.empty()) {
    g.causal.clear();
    for (int c : a.causal) g.causal.push_back(c != 0);
  }
  return g;
}

std::vector<int> parse_devices(const std::string& spec) {
  std::vector<int> out;
  if (spec == "all") {
    for (int i = 0; i < device_count(); ++i) out.push_back(i);
    return out;
  }
  size_t start = 0;
  while (start <= spec.size()) {
    const size_t comma = spec.find(',', start);
    const std::string tok = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    char* end = nullptr;
    const long v = std::strtol(tok.c_str(), &end, 10);
    if (tok.empty() || *end || v < 0)
      throw Error(Status::invalid_argument, fmt::format("--device '{}': use a list of ordinals (0,1) or all", spec));
    if (std::find(out.begin(), out.end(), int(v)) != out.end())
      throw Error(Status::invalid_argument,
                  fmt::format("--device '{}': GPU {} is named twice (two workers timing on one GPU would disturb "
                              "each other's timings)",
                              spec, v));
    out.push_back(int(v));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string clock(double s) {
  const long t = long(s);
  return fmt::format("{:02}:{:02}:{:02}", t / 3600, (t / 60) % 60, t % 60);
}

// One line on stderr, rewritten in place: key i/n, candidate j/m, elapsed and ETA.
class ProgressBar {
 public:
  explicit ProgressBar(size_t keys)
      : keys_(keys), tty_(isatty(fileno(stderr))), start_(std::chrono::steady_clock::now()) {}
  // On a terminal the line is redrawn for every candidate; in a log, one line per key.
  void update(int device, size_t key_index, const std::string& key, int cand, int cands) {
    std::lock_guard<std::mutex> lock(m_);
    if (!tty_ && cand > 0) return;
    const double el = elapsed();
    const double eta = done_ ? el / double(done_) * double(keys_ - done_) : 0;
    std::fprintf(stderr, "%s[gpu %d] key %zu/%zu %s  candidate %d/%d  elapsed %s  ETA %s%s", tty_ ? "\r\033[K" : "",
                 device, key_index + 1, keys_, key.c_str(), cand + 1, cands, clock(el).c_str(),
                 done_ ? clock(eta).c_str() : "--:--:--", tty_ ? "" : "\n");
    std::fflush(stderr);
  }
  void key_done() {
    std::lock_guard<std::mutex> lock(m_);
    ++done_;
  }
  void finish() {
    if (tty_) std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
  double elapsed() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  std::mutex m_;
  size_t keys_, done_ = 0;
  bool tty_;
  std::chrono::steady_clock::time_point start_;
};

std::string db_path_of(const Args& a) {
  const std::string p = a.db.empty() ? cache::default_database_path() : a.db;
  if (p.empty()) throw Error(Status::cache_error, "no cache database path: set --db, VECATTN_CACHE_DIR or HOME");
  return p;
}

int do_import(const Args& a) {
  const auto rows = cache::read_pretuned_file(a.import_path);
  auto db = cache::Database::open(db_path_of(a));
  for (const auto& r : rows) db->put_tuned(r);
  std::printf("imported %zu tuned configs from %s into %s\n", rows.size(), a.import_path.c_str(), db->path().c_str());
  return 0;
}

int do_export(const Args& a, const std::string& arch) {
  const std::string path = db_path_of(a);
  if (!std::filesystem::exists(path))
    throw Error(Status::invalid_argument,
                fmt::format("nothing to export: the cache database {} does not exist (tune first, or name "
                            "another with --db)",
                            path));
  auto db = cache::Database::open(path, cache::Database::Access::read_only);
  const auto rows = db->all_tuned(arch);
  if (rows.empty())
    throw Error(Status::invalid_argument, fmt::format("nothing to export: {} holds no tuned configs{}; {} was not written",
                                                      path, arch.empty() ? "" : " for " + arch, a.export_path));
  cache::write_pretuned_file(a.export_path, rows);
  std::printf("exported %zu tuned configs%s to %s\n", rows.size(), arch.empty() ? "" : (" for " + arch).c_str(),
              a.export_path.c_str());
  return 0;
}

// Offline: every candidate variant of the keys, compiled into the cache for `arch`.
// The kernel bundle: every shipped variant of each arch compiled offline into one read-only
// SQLite file (the cubin cache's schema: variant, fingerprint, NVRTC and library version,
// checksum). Written beside, then renamed over the target, so a failed build leaves no bundle.
int do_bundle(const Args& a) {
  if (a.aot_archs.empty()) throw Error(Status::invalid_argument, "--aot-bundle needs --aot-archs (e.g. sm_90a,sm_80)");
  std::vector<std::string> archs;  // all checked before minutes of compiling start
  for (const auto& arch_text : a.aot_archs) archs.push_back(parse_arch(arch_text));
  // The partial file and SQLite's companions go on every way out but the rename below.
  struct Partial {
    std::string path;
    bool renamed = false;
    void remove() const {
      std::error_code ec;
      for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix, ec);
    }
    ~Partial() {
      if (!renamed) remove();
    }
  } partial{a.aot_bundle + ".partial"};
  const std::string& tmp = partial.path;
  partial.remove();
  int failed = 0;
  {
    auto db = std::shared_ptr<cache::Database>(cache::Database::open(tmp));
    CubinCache cubins(db);
    for (const std::string& arch : archs) {
      // --dtype / --head-dim narrow the bundle (a deployment that needs one of each).
      std::vector<Variant> variants;
      for (const Variant& v : tuner::shipped_variants(arch)) {
        const bool dtype_ok = a.dtype.empty() || std::find(a.dtype.begin(), a.dtype.end(), dtype_name(v.key.dtype)) != a.dtype.end();
        const bool dim_ok = a.head_dim.empty() || std::find(a.head_dim.begin(), a.head_dim.end(), v.key.head_dim) != a.head_dim.end();
        if (dtype_ok && dim_ok) variants.push_back(v);
      }
      if (variants.empty())
        throw Error(Status::invalid_argument,
                    fmt::format("--dtype / --head-dim leave no shipped variant of {}: no bundle written", arch));
      const auto t0 = std::chrono::steady_clock::now();
      const auto outcomes = cubins.get_many(variants, a.threads);
      size_t bytes = 0;
      for (size_t i = 0; i < variants.size(); ++i) {
        if (outcomes[i].error) {
          ++failed;
          std::fprintf(stderr, "%s: %s\n", variants[i].str().c_str(), outcomes[i].error->what());
        } else {
          bytes += outcomes[i].result.kernel->cubin.size();
        }
      }
      std::printf("kernel bundle %s: %zu variants in %.1f s, %.1f MiB of cubins (NVRTC %s)\n", arch.c_str(),
                  variants.size(), std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                  double(bytes) / (1 << 20), Nvrtc::get().version().c_str());
    }
  }
  if (failed) {
    std::fprintf(stderr, "vecattn-tune: %d variants failed; no bundle written\n", failed);
    return kExitError;
  }
  {
    // A plain rollback-journal file, compacted: readable where it is installed read-only (a WAL
    // database would need a writable directory for its shared-memory file).
    sqlite3* db = nullptr;
    char* err = nullptr;
    const bool ok = sqlite3_open(tmp.c_str(), &db) == SQLITE_OK &&
                    sqlite3_exec(db, "PRAGMA journal_mode=DELETE; VACUUM;", nullptr, nullptr, &err) == SQLITE_OK;
    const std::string why = err ? err : (db ? sqlite3_errmsg(db) : "cannot open");
    sqlite3_free(err);
    sqlite3_close(db);
    if (!ok) throw Error(Status::cache_error, fmt::format("{}: {}", tmp, why));
  }
  std::filesystem::rename(tmp, a.aot_bundle);
  partial.renamed = true;
  std::printf("wrote %s (%.1f MiB)\n", a.aot_bundle.c_str(), double(std::filesystem::file_size(a.aot_bundle)) / (1 << 20));
  return 0;
}

int do_precompile(const Args& a, const std::vector<KernelKey>& keys, const std::string& arch) {
  if (!a.cubin_dir.empty()) {  // before the compiles, so a bad folder costs nothing
    std::error_code ec;
    std::filesystem::create_directories(a.cubin_dir, ec);
    if (ec || !std::filesystem::is_directory(a.cubin_dir))
      throw Error(Status::invalid_argument,
                  fmt::format("--cubin-dir {}: cannot create the folder{}", a.cubin_dir, ec ? ": " + ec.message() : ""));
  }
  std::vector<Variant> variants;
  for (const auto& k : keys)
    for (const auto& c : tuner::candidates(k)) variants.push_back(Variant{k, c});
  auto db = std::shared_ptr<cache::Database>(cache::Database::open(db_path_of(a)));
  std::fprintf(stderr, "vecattn-tune: compiling %zu variants of %zu keys for %s (offline), NVRTC %s, cache %s\n",
               variants.size(), keys.size(), arch.c_str(), Nvrtc::get().version().c_str(), db->path().c_str());
  CubinCache cubins(db);
  const auto t0 = std::chrono::steady_clock::now();
  const auto outcomes = cubins.get_many(variants, a.threads);
  int failed = 0;
  for (size_t i = 0; i < variants.size(); ++i)
    if (outcomes[i].error) {
      ++failed;
      std::fprintf(stderr, "%s: %s\n%s\n", variants[i].str().c_str(), outcomes[i].error->what(),
                   outcomes[i].error->detail().c_str());
    }
  if (!a.cubin_dir.empty()) {
    // For reading the machine code offline (cuobjdump -sass): one file per variant, named by it.
    for (size_t i = 0; i < variants.size(); ++i) {
      if (outcomes[i].error) continue;
      std::string name = variants[i].str();
      std::replace(name.begin(), name.end(), '/', '.');
      const auto& cubin = outcomes[i].result.kernel->cubin;
      const auto path = std::filesystem::path(a.cubin_dir) / (name + ".cubin");
      std::ofstream out(path, std::ios::binary);
      out.write(cubin.data(), std::streamsize(cubin.size()));
      if (!out.flush()) throw Error(Status::invalid_argument, fmt::format("--cubin-dir: cannot write {}", path.string()));
    }
  }
  const auto& s = cubins.stats();
  std::printf("%zu variants in %.1f s: %ld compiled, %ld from the cache, %d failed\n", variants.size(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), s.compiles.load(),
              s.database_hits.load(), failed);
  return failed ? kExitError : 0;
}

struct Tuned {
  tuner::Result result;
  std::string device;
  int ordinal;
};

int do_tune(const Args& a, const std::vector<int>& devices) {
  const std::string db_path = db_path_of(a);
  { cache::Database::open(db_path); }  // fail early (and create it) before any worker starts
  const DeviceInfo first = query_device(devices.front());
  const std::vector<KernelKey> keys = tuner::grid_keys(grid_from(a), first.arch);
  for (int d : devices)
    if (query_device(d).arch != first.arch)
      throw Error(Status::invalid_argument, "--device: every GPU of one run must have the same arch");
  std::fprintf(stderr, "vecattn-tune: %zu keys on %zu GPU%s (%s), S=%lld, %lld heads, budget %.0f s per key, cache %s\n",
               keys.size(), devices.size(), devices.size() == 1 ? "" : "s", first.name.c_str(), (long long)a.seq_len,
               (long long)a.heads, a.budget, db_path.c_str());

  tuner::Options o;
  o.seq_len = a.seq_len;
  o.heads = a.heads;
  o.budget_s = a.budget;
  o.reps = a.reps;
  o.strong_fraction = a.strong_fraction;
  o.vertical = a.input == "synthetic";
  o.threshold = a.threshold;

  std::vector<Variant> variants;
  for (const auto& k : keys)
    for (const auto& c : tuner::candidates(k)) variants.push_back(Variant{k, c});

  ProgressBar bar(keys.size());
  std::atomic<size_t> next{0};
  std::mutex results_mutex;
  std::vector<Tuned> results;
  std::vector<std::string> errors;
  auto worker = [&](int device) {
    try {
      RuntimeOptions ro;
      ro.device = device;
      ro.cache_path = db_path;
      Runtime rt(ro);
      auto db = cache::Database::open(db_path);
      // The compiles run beside the timing; a candidate not yet compiled waits for its own.
      struct Joined {
        std::thread t;
        ~Joined() {
          if (t.joinable()) t.join();
        }
      } compiler;
      if (device == devices.front())
        compiler.t = std::thread([&rt, &variants, threads = a.threads] { rt.precompile(variants, threads); });
      tuner::Tuner tuner(rt, o);
      for (size_t i; (i = next.fetch_add(1)) < keys.size();) {
        const KernelKey& k = keys[i];
        const std::string name = k.str();
        tuner::Result r = tuner.tune(k, [&](int c, int n) { bar.update(device, i, name, c, n); });
        bar.key_done();
        if (std::isfinite(r.best_ms)) db->put_tuned(tuner::tuned_row(r, rt.device()));
        std::lock_guard<std::mutex> lock(results_mutex);
        results.push_back({std::move(r), rt.device().name, device});
      }
    } catch (const Error& e) {
      std::lock_guard<std::mutex> lock(results_mutex);
      errors.push_back(fmt::format("gpu {}: {}{}{}", device, e.what(), e.detail().empty() ? "" : "\n", e.detail()));
      next = keys.size();  // stop the other workers too
    }
  };
  std::vector<std::thread> workers;
  for (int d : devices) workers.emplace_back(worker, d);
  for (auto& w : workers) w.join();
  bar.finish();
  for (const auto& e : errors) std::fprintf(stderr, "vecattn-tune: %s\n", e.c_str());

  std::sort(results.begin(), results.end(), [](const Tuned& x, const Tuned& y) { return x.result.key < y.result.key; });
  if (a.json) {
    std::printf("[\n");
    for (size_t i = 0; i < results.size(); ++i) {
      const auto& r = results[i].result;
      std::printf("  {\"key\": \"%s\", \"config\": \"%s\", \"default_config\": \"%s\", \"default_ms\": %.6g, "
                  "\"tuned_ms\": %.6g, \"speedup\": %.4g, \"density\": %.4g, \"seq_len\": %lld, \"device\": \"%s\", "
                  "\"seconds\": %.2f}%s\n",
                  r.key.str().c_str(), r.best.str(r.key.kernel).c_str(),
                  r.candidates.front().config.str(r.key.kernel).c_str(), r.default_ms, r.best_ms,
                  r.default_ms / r.best_ms, r.density, (long long)r.seq_len, results[i].device.c_str(), r.seconds,
                  i + 1 < results.size() ? "," : "");
    }
    std::printf("]\n");
  } else {
    std::printf("%-52s %-18s %11s %11s %8s %8s %7s\n", "key", "winner", "default_ms", "tuned_ms", "speedup", "density",
                "tune_s");
    for (const auto& t : results) {
      const auto& r = t.result;
      std::printf("%-52s %-18s %11.4f %11.4f %7.2fx %8.4f %7.1f\n", r.key.str().c_str(), r.best.str(r.key.kernel).c_str(),
                  r.default_ms, r.best_ms, r.default_ms / r.best_ms, r.density, r.seconds);
    }
  }
  std::string per_gpu;
  for (int d : devices)
    per_gpu += fmt::format("{}gpu {}: {}", per_gpu.empty() ? "" : ", ", d,
                           std::count_if(results.begin(), results.end(), [d](const Tuned& t) { return t.ordinal == d; }));
  std::fprintf(stderr, "vecattn-tune: %zu of %zu keys tuned in %s (%s); winners stored in %s\n", results.size(),
               keys.size(), clock(bar.elapsed()).c_str(), per_gpu.c_str(), db_path.c_str());
  return errors.empty() && results.size() == keys.size() ? 0 : kExitError;
}

int run(const Args& a) {
  const std::string db_modes = "it only moves rows between a pretuned file and the database";
  if (!a.import_path.empty()) {
    refuse(a, kKeyFlags, "--import", db_modes);
    refuse(a, kTuneFlags, "--import", db_modes);
    refuse(a, {"--list", "--aot-bundle", "--aot-archs", "--cubin-dir", "--threads"}, "--import", db_modes);
    if (a.has("--arch") && a.export_path.empty())
      throw Error(Status::invalid_argument, "--arch does not go with --import alone: it only chooses what --export writes");
    const int rc = do_import(a);
    if (rc != 0 || a.export_path.empty()) return rc;
    return do_export(a, a.arch.empty() ? "" : parse_arch(a.arch));
  }
  if (!a.aot_bundle.empty()) {
    const std::string why = "a kernel bundle holds every shipped variant of --aot-archs (--dtype and --head-dim narrow it)";
    refuse(a, {"--preset", "--pq", "--bk", "--gk", "--causal", "--kernel"}, "--aot-bundle", why);
    refuse(a, kTuneFlags, "--aot-bundle", why);
    refuse(a, {"--list", "--export", "--arch", "--db", "--cubin-dir"}, "--aot-bundle", why);
    check_grid(grid_from(a));
    return do_bundle(a);
  }
  if (a.has("--aot-archs")) throw Error(Status::invalid_argument, "--aot-archs names the archs of --aot-bundle: give both");
  if (!a.arch.empty())
    refuse(a, kTuneFlags, "--arch", "with --arch nothing is timed (it compiles offline, lists or exports for that arch)");
  if (a.has("--cubin-dir") && a.arch.empty())
    throw Error(Status::invalid_argument, "--cubin-dir goes with --arch (the offline compile writes the cubins)");

  // A list of ordinals is checked with or without a GPU; "all" needs one to count.
  std::vector<int> devices = a.devices == "all" ? std::vector<int>{} : parse_devices(a.devices);
  std::string arch = a.arch.empty() ? "" : parse_arch(a.arch);
  std::string why;
  const bool have_gpu = Driver::available(&why);
  if (have_gpu && a.devices == "all") devices = parse_devices(a.devices);
  if (arch.empty() && have_gpu) arch = query_device(devices.front()).arch;

  // --export alone writes what the database holds; beside flags that choose keys or tuning inputs
  // it runs after the tune (or the offline compile, or the list) that those flags ask for.
  bool asks_for_work = a.has("--list") || a.has("--cubin-dir");
  for (const char* f : kKeyFlags) asks_for_work |= a.has(f);
  for (const char* f : kTuneFlags) asks_for_work |= a.has(f) && std::string(f) != "--device";
  const bool export_after = !a.export_path.empty() && asks_for_work;
  if (!a.export_path.empty() && !export_after) return do_export(a, arch);
  if (arch.empty()) {
    std::fprintf(stderr,
                 "vecattn-tune: %s\n"
                 "Tuning needs a GPU%s. Without one, `vecattn-tune --arch sm_90a` compiles every kernel for that arch "
                 "into the cache, and --list (with --arch), --export alone and --import work.\n",
                 why.c_str(), export_after ? " (--export with tuning flags writes after the tune)" : "");
    return kExitNoGpu;
  }
  const tuner::KeyGrid grid = grid_from(a);
  check_grid(grid);
  const std::vector<KernelKey> keys = tuner::grid_keys(grid, arch);
  if (keys.empty())
    throw Error(Status::invalid_argument,
                fmt::format("no kernel key of {} matches these flags (--kernel, --pq, --bk, --gk, --head-dim, "
                            "--dtype, --causal): nothing to do",
                            arch));
  if (a.list) {
    for (const auto& k : keys) std::printf("%s  (%zu candidates)\n", k.str().c_str(), tuner::candidates(k).size());
    return export_after ? do_export(a, arch) : 0;
  }
  const int rc = a.arch.empty() ? do_tune(a, devices) : do_precompile(a, keys, arch);
  if (rc != 0 || !export_after) return rc;
  return do_export(a, arch);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vecattn-tune: find the fastest kernel configs for this GPU and store them in the cache"};
  Args a;
  app.add_option("--preset", a.presets, "vlm (causal) and/or dit (non-causal); default vlm")
      ->check(CLI::IsMember({"vlm", "dit"}))
      ->delimiter(',');
  app.add_option("--pq", a.pq, "query pooling sizes (64,128)")->delimiter(',');
  app.add_option("--bk", a.bk, "key tiles of selection (16,32,64)")->delimiter(',');
  app.add_option("--gk", a.gk, "tiles per selection group (powers of two 1..128)")->delimiter(',');
  app.add_option("--head-dim", a.head_dim, "head dims (64,128)")->delimiter(',');
  app.add_option("--dtype", a.dtype, "bf16,fp16")->check(CLI::IsMember({"bf16", "fp16"}))->delimiter(',');
  app.add_option("--causal", a.causal, "1, 0 or 1,0")->check(CLI::Range(0, 1))->delimiter(',');
  app.add_option("--kernel", a.kernels, "kernels to tune (pool,select,sparse_attn,dense_attn; default all)")
      ->check(CLI::IsMember({"pool", "select", "sparse_attn", "dense_attn"}))
      ->delimiter(',');
  app.add_option("--device", a.devices, "GPU ordinals (0,1) or all: one worker per GPU, one shared database");
  app.add_option("--arch", a.arch,
                 "offline, no GPU needed: compile every candidate for this arch (sm_80, sm_90a) into the cache; "
                 "with --list or --export, list or export for it");
  app.add_option("--db", a.db, "cache database (default: $VECATTN_CACHE_DIR or $XDG_CACHE_HOME/vecattn/vecattn.sqlite)");
  app.add_option("--seq-len", a.seq_len, "sequence length of the tuning inputs")->check(CLI::Range(int64_t(64), int64_t(1) << 22));
  app.add_option("--heads", a.heads, "heads of the tuning inputs")->check(CLI::Range(1, 256));
  app.add_option("--input", a.input,
                 "tuning inputs: synthetic (vertical pattern) or random (Gaussian: threshold 0.8 keeps ~27%, 0.9 ~7.5%)")
      ->check(CLI::IsMember({"synthetic", "random"}));
  app.add_option("--threshold", a.threshold, "selection threshold of the tuning inputs, in (0, 1]")
      ->check(tools::real_range(0, 1, /*open_low=*/true));
  app.add_option("--strong-fraction", a.strong_fraction,
                 "fraction of key columns on the vertical direction in the tuning inputs (sets the selection density)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--budget", a.budget, "seconds per key at most, in (0, 86400]")
      ->check(tools::real_range(0, 86400, /*open_low=*/true));
  app.add_option("--reps", a.reps, "timed runs per candidate (the median counts)")->check(CLI::Range(1, 1000));
  app.add_option("--threads", a.threads, "parallel NVRTC compiles (0 or unset: min(cores, 8))")->check(CLI::Range(0, 256));
  app.add_flag("--list", a.list, "list the keys that would be tuned, with their candidate counts, and exit");
  app.add_option("--cubin-dir", a.cubin_dir, "with --arch: also write each compiled cubin to this folder");
  app.add_option("--export", a.export_path,
                 "write the tuned configs of --arch (default: this GPU's arch; every arch without a GPU) to this "
                 "pretuned file; with tuning flags, after the tune");
  app.add_option("--import", a.import_path, "read a pretuned file into the database (then --export, if given)");
  app.add_option("--aot-bundle", a.aot_bundle,
                 "without a GPU: compile every shipped kernel variant of --aot-archs into this kernel bundle file");
  app.add_option("--aot-archs", a.aot_archs, "archs of the kernel bundle (sm_90a,sm_80)")->delimiter(',');
  app.add_flag("--json", a.json, "print the results as JSON instead of a table");
  if (const auto rc = tools::parse_command_line(app, "vecattn-tune", argc, argv)) return *rc;
  for (const CLI::Option* o : app.get_options())
    if (o->count() > 0) a.given.push_back(o->get_name());
  try {
    return run(a);
  } catch (const Error& e) {
    std::fprintf(stderr, "vecattn-tune: %s\n", e.what());
    if (!e.detail().empty()) std::fprintf(stderr, "%s\n", e.detail().c_str());
    return e.status() == Status::no_driver || e.status() == Status::no_device ? kExitNoGpu : kExitError;
  } catch (const std::exception& e) {  // the filesystem's and the standard library's own errors
    std::fprintf(stderr, "vecattn-tune: %s\n", e.what());
    return kExitError;
  }
}

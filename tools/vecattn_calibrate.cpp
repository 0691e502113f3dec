// vecattn-calibrate: one MinP threshold per (layer, head) of a model, from a few dumped Q/K
// activations. Per layer, every head's (threshold, recall, sparsity) curve is measured on the GPU
// (tuner/calibration.h); then one point per head is chosen over all layers (the best mean recall
// at a target sparsity, or the best sparsity at a target recall; tuner/threshold_assignment.h).
// The choice is stored in the cache database and optionally exported as a JSON file that
// vecattn::layer_thresholds (C, C++, Python) and vecattn-bench read.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/database.h"
#include "cache/thresholds.h"
#include "cache/tuned.h"
#include "codegen/error.h"
#include "runtime/driver.h"
#include "runtime/runtime.h"
#include "tools/cli.h"
#include "tools/npy.h"
#include "tools/safetensors.h"
#include "tuner/calibration.h"
#include "tuner/synthetic.h"
#include "tuner/threshold_assignment.h"

namespace {

using namespace vecattn;
using tools::kExitError;
using tools::kExitNoGpu;

struct Args {
  std::string model;
  std::vector<std::string> inputs;   // one per layer: "layer.safetensors" or "q.npy,k.npy"
  std::string q_name = "q", k_name = "k";
  bool q_name_given = false, k_name_given = false;  // then a file's only tensor must bear the name too
  int first_layer = 0;
  std::string dtype;                 // empty: the inputs' (F32 runs as bf16)
  tuner::CalibrationOptions calib;  // with --pq, --bk, --gk and --causal
  std::optional<double> target_sparsity, target_recall;
  std::string out_json;
  std::string cache_path;
  bool print_heads = false;
  int device = 0;
};

// One layer's q or k as read from its file.
struct LoadedTensor {
  std::string path;
  tools::NpyArray array;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

[[noreturn]] void bad_input(const std::string& path, const std::string& what) {
  throw Error(Status::invalid_argument, fmt::format("{}: {}", path, what));
}

std::map<std::string, tools::NpyArray> read_tensors(const std::string& path) {
  if (ends_with(path, ".safetensors")) return tools::read_safetensors(path);
  if (ends_with(path, ".npy")) return {{"", tools::read_npy(path)}};
  bad_input(path, "unknown file type: use .npy or .safetensors");
}

// The tensor `name` of a file: a .npy file's array, or a safetensors file's tensor of that name
// (a file holding a single tensor gives it whatever its name, when `exact` is false).
tools::NpyArray take(std::map<std::string, tools::NpyArray>& tensors, const std::string& path, const std::string& name,
                     bool exact) {
  if (tensors.count(""))  // .npy
    return std::move(tensors.at(""));
  if (!exact && tensors.size() == 1) return std::move(tensors.begin()->second);
  auto it = tensors.find(name);
  if (it == tensors.end()) {
    std::string names;
    for (const auto& [n, t] : tensors) names += (names.empty() ? "" : ", ") + n;
    bad_input(path, fmt::format("no tensor named '{}' (it holds: {}); name them with --q-name/--k-name", name, names));
  }
  return std::move(it->second);
}

// [B, H, S, D] or [H, S, D] (B = 1), as B, H, S, D.
std::array<int64_t, 4> bhsd(const LoadedTensor& t, const char* what) {
  const auto& s = t.array.shape;
  if (s.size() == 4) return {s[0], s[1], s[2], s[3]};
  if (s.size() == 3) return {1, s[0], s[1], s[2]};
  std::string dims;
  for (auto v : s) dims += (dims.empty() ? "" : ", ") + std::to_string(v);
  bad_input(t.path, fmt::format("{} has shape ({}): expected [B, H, S, D] or [H, S, D]", what, dims));
}

// An --input: one .safetensors file holding q and k, or two files (Q,K), each .npy or
// .safetensors; checked (and each file opened) before any GPU work.
std::vector<std::string> input_files(const std::string& spec) {
  std::vector<std::string> files;
  for (size_t start = 0;;) {
    const size_t comma = spec.find(',', start);
    files.push_back(spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (files.size() > 2)
    throw Error(Status::invalid_argument, fmt::format("--input '{}': give one .safetensors file, or two files (Q,K)", spec));
  if (files.size() == 1 && ends_with(files[0], ".npy"))
    bad_input(files[0], "a .npy file holds one tensor: give the layer as Q.npy,K.npy");
  for (const auto& f : files) {
    if (!ends_with(f, ".npy") && !ends_with(f, ".safetensors")) bad_input(f, "unknown file type: use .npy or .safetensors");
    if (!std::ifstream(f)) bad_input(f, "cannot be opened");
  }
  return files;
}

std::pair<LoadedTensor, LoadedTensor> load_layer(const std::string& spec, const Args& a) {
  const std::vector<std::string> files = input_files(spec);
  if (files.size() == 1) {
    auto tensors = read_tensors(files[0]);
    LoadedTensor q{files[0], take(tensors, files[0], a.q_name, true)};
    LoadedTensor k{files[0], take(tensors, files[0], a.k_name, true)};
    return {std::move(q), std::move(k)};
  }
  auto qt = read_tensors(files[0]);
  LoadedTensor q{files[0], take(qt, files[0], a.q_name, a.q_name_given)};
  auto kt = read_tensors(files[1]);
  LoadedTensor k{files[1], take(kt, files[1], a.k_name, a.k_name_given)};
  return {std::move(q), std::move(k)};
}

DType run_dtype(const Args& a, const tools::NpyArray& q) {
  if (!a.dtype.empty()) return parse_dtype(a.dtype);
  if (q.descr == "<f2") return DType::fp16;
  return DType::bf16;  // bf16 dumps, and fp32 ones (bf16 keeps fp32's range)
}

std::string database_path(const Args& a) {
  if (!a.cache_path.empty()) return a.cache_path;
  std::string p = cache::default_database_path();
  if (p.empty())
    throw Error(Status::invalid_argument, "no cache database path (set $VECATTN_CACHE_DIR or pass --cache FILE)");
  return p;
}

// Whether a progress line is open on stderr (an error then starts on a line of its own).
bool g_progress_line = false;

class Progress {
 public:
  explicit Progress(int layers) : layers_(layers), t0_(std::chrono::steady_clock::now()) {}
  void show(int layer_index, int step, int steps) const {
    std::fprintf(stderr, "\rvecattn-calibrate: layer %d/%d, measurement %d/%d, %.1f s", layer_index + 1, layers_, step,
                 steps, seconds());
    std::fflush(stderr);
    g_progress_line = true;
  }
  void done() const {
    if (g_progress_line) std::fprintf(stderr, "\n");
    g_progress_line = false;
  }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

 private:
  int layers_;
  std::chrono::steady_clock::time_point t0_;
};

// One layer read from its files and checked, as 16-bit values of the dtype it runs at.
struct HostLayer {
  std::array<int64_t, 4> q_shape, k_shape;  // B, H, S, D
  DType dtype;
  std::vector<uint16_t> q, k;
};

HostLayer read_layer(const std::string& spec, const Args& a) {
  auto [q, k] = load_layer(spec, a);
  HostLayer l;
  l.q_shape = bhsd(q, "q"), l.k_shape = bhsd(k, "k");
  const auto& qs = l.q_shape;
  const auto& ks = l.k_shape;
  if (qs[0] != ks[0] || qs[2] != ks[2] || qs[3] != ks[3])
    bad_input(k.path, fmt::format("k is [{}, {}, {}, {}] but q is [{}, {}, {}, {}]: B, S and D must agree", ks[0], ks[1],
                                  ks[2], ks[3], qs[0], qs[1], qs[2], qs[3]));
  if (qs[1] % ks[1] != 0) bad_input(k.path, fmt::format("k has {} heads, which do not divide q's {} (GQA)", ks[1], qs[1]));
  tools::check_head_dim(qs[3], q.path);
  l.dtype = run_dtype(a, q.array);
  l.q = tools::to_dtype_bits(q.array, l.dtype);
  l.k = tools::to_dtype_bits(k.array, l.dtype);
  return l;
}

// The device's primary context, current for the object's lifetime (the calibrator's buffers and
// the layer's tensors live in it).
class DeviceContext {
 public:
  explicit DeviceContext(int device) {
    const Driver& d = Driver::get();
    d.check(d.cuDeviceGet(&dev_, device), "cuDeviceGet");
    d.check(d.cuDevicePrimaryCtxRetain(&ctx_, dev_), "cuDevicePrimaryCtxRetain");
    scope_ = std::make_unique<ScopedContext>(ctx_);
  }
  ~DeviceContext() {
    scope_.reset();
    Driver::get().cuDevicePrimaryCtxRelease(dev_);
  }

 private:
  CUdevice dev_ = 0;
  CUcontext ctx_ = nullptr;
  std::unique_ptr<ScopedContext> scope_;
};

int run(const Args& a) {
  // Every input named must exist before a GPU minute is spent.
  for (const auto& spec : a.inputs) input_files(spec);
  const std::string db_path = database_path(a);
  { cache::Database::open(db_path); }  // fail early (and create it) before the long part

  const tuner::CalibrationOptions& o = a.calib;
  std::vector<tuner::HeadCurve> heads;
  Progress progress(int(a.inputs.size()));
  double measure_seconds = 0, load_seconds = 0;
  // Created after the first layer reads well, so a malformed input is reported as such anywhere.
  std::unique_ptr<Runtime> rt;
  std::unique_ptr<DeviceContext> context;
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    const int layer = a.first_layer + int(i);
    const auto t0 = std::chrono::steady_clock::now();
    const HostLayer host = read_layer(a.inputs[i], a);
    if (!rt) {
      RuntimeOptions ro;
      ro.device = a.device;
      rt = std::make_unique<Runtime>(ro);
      context = std::make_unique<DeviceContext>(a.device);
    }
    const auto& qs = host.q_shape;
    const auto& ks = host.k_shape;
    tuner::DeviceTensor qd(qs[0], qs[1], qs[2], qs[3], host.dtype), kd(ks[0], ks[1], ks[2], ks[3], host.dtype);
    qd.upload(host.q);
    kd.upload(host.k);
    const auto t1 = std::chrono::steady_clock::now();
    load_seconds += std::chrono::duration<double>(t1 - t0).count();

    tuner::LayerCalibrator cal(*rt, qd.view(), kd.view(), o);
    auto curves = cal.curves(layer, [&](int step, int steps) { progress.show(int(i), step, steps); });
    measure_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    heads.insert(heads.end(), curves.begin(), curves.end());
  }
  progress.done();

  const auto t_assign = std::chrono::steady_clock::now();
  const tuner::Assignment choice = a.target_sparsity ? tuner::best_recall_at_sparsity(heads, *a.target_sparsity)
                                                     : tuner::best_sparsity_at_recall(heads, *a.target_recall);
  const double assign_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_assign).count();
  const std::string target =
      a.target_sparsity ? fmt::format("sparsity:{}", *a.target_sparsity) : fmt::format("recall:{}", *a.target_recall);
  if (!choice.feasible) {
    double most = 0;
    for (const auto& h : heads) {
      double best = 0;
      for (const auto& p : h.points) best = std::max(best, a.target_sparsity ? p.sparsity : p.recall);
      most += best;
    }
    throw Error(Status::invalid_argument,
                fmt::format("target {} cannot be reached: the measured points give at most {:.4f} (unweighted mean); "
                            "add extra thresholds (--extra) or lower the target",
                            target, most / double(heads.size())));
  }

  std::vector<cache::ThresholdRow> rows;
  const std::string created = cache::utc_timestamp();
  const std::string options = fmt::format("{} target={}", o.describe(), target);
  for (size_t h = 0; h < heads.size(); ++h) {
    const tuner::HeadPoint& p = heads[h].points[size_t(choice.choice[h])];
    rows.push_back(cache::ThresholdRow{a.model, heads[h].layer, heads[h].head, double(p.threshold), p.recall, p.sparsity,
                                       options, created});
  }
  cache::Database::open(db_path)->put_thresholds(rows);
  if (!a.out_json.empty()) cache::write_thresholds_file(a.out_json, rows);

  // Per layer: the mean of its heads (equal weights within a layer).
  std::printf("%-6s %6s %10s %10s %10s %10s %10s\n", "layer", "heads", "t min", "t mean", "t max", "recall", "sparsity");
  for (size_t i = 0; i < rows.size();) {
    size_t j = i;
    double tsum = 0, rsum = 0, ssum = 0, tmin = 1, tmax = 0;
    for (; j < rows.size() && rows[j].layer == rows[i].layer; ++j) {
      tsum += rows[j].threshold, rsum += rows[j].recall, ssum += rows[j].sparsity;
      tmin = std::min(tmin, rows[j].threshold), tmax = std::max(tmax, rows[j].threshold);
    }
    const double n = double(j - i);
    std::printf("%-6d %6zu %10.4f %10.4f %10.4f %10.4f %10.4f\n", rows[i].layer, j - i, tmin, tsum / n, tmax, rsum / n,
                ssum / n);
    if (a.print_heads)
      for (size_t h = i; h < j; ++h)
        std::printf("  head %-4d threshold %.4f recall %.4f sparsity %.4f\n", rows[h].head, rows[h].threshold,
                    rows[h].recall, rows[h].sparsity);
    i = j;
  }
  size_t points = 0;
  for (const auto& h : heads) points += h.points.size();
  std::printf("model %s: %zu heads, target %s: mean recall %.4f, sparsity %.4f (weighted by visible pairs)\n",
              a.model.c_str(), heads.size(), target.c_str(), choice.recall, choice.sparsity);
  std::printf("time: %.1f s reading and uploading, %.1f s measuring (%zu points), %.2f s assigning\n", load_seconds,
              measure_seconds, points, assign_seconds);
  std::printf("stored %zu rows for model %s in %s%s%s\n", rows.size(), a.model.c_str(), db_path.c_str(),
              a.out_json.empty() ? "" : " and ", a.out_json.c_str());
  return 0;
}

// Flags that need no file and no GPU, checked before either is touched.
void check_args(const Args& a) {
  if (a.q_name == a.k_name)
    throw Error(Status::invalid_argument,
                fmt::format("--q-name and --k-name are both '{}': q and k must be different tensors", a.q_name));
  tuner::check_options(a.calib);
  tools::check_kernel_flags(a.calib.pq, a.calib.bk, a.calib.gk, a.calib.causal);
  if (!a.out_json.empty()) tools::check_writable("--out", a.out_json);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vecattn-calibrate: one threshold per (layer, head) of a model for a target sparsity or recall"};
  Args a;
  double sparsity = -1, recall = -1;
  app.add_option("--model", a.model, "model name the thresholds are stored under")->required();
  app.add_option("--input", a.inputs,
                 "one layer's activations, once per layer in order: FILE.safetensors (tensors named by --q-name and "
                 "--k-name) or Q,K (two .npy or .safetensors files); [B, H, S, D] or [H, S, D], k may have fewer heads")
      ->required();
  app.add_option("--q-name", a.q_name,
                 "tensor name of q in a .safetensors file (default q; given, a file's only tensor must have it too)");
  app.add_option("--k-name", a.k_name,
                 "tensor name of k in a .safetensors file (default k; given, a file's only tensor must have it too)");
  app.add_option("--first-layer", a.first_layer, "layer number of the first --input (default 0)")
      ->check(tools::int_range(0));
  app.add_option("--dtype", a.dtype, "run as bf16 or fp16 (default: the inputs' dtype; fp32 inputs run as bf16)")
      ->check(CLI::IsMember({"bf16", "fp16"}));
  app.add_option("--pq", a.calib.pq, "query pooling size (64, 128)");
  app.add_option("--bk", a.calib.bk, "key tile of selection (16, 32, 64)");
  app.add_option("--gk", a.calib.gk, "tiles per selection group (power of two, 1..128)");
  app.add_option("--causal", a.calib.causal, "1 (VLM prefill) or 0 (video DiT)")->check(tools::zero_or_one());
  // --rows, --bisect-*, --extra and --around are checked by tuner::check_options, the calibrator's own rule.
  app.add_option("--rows", a.calib.rows, "query rows sampled per (batch, head) for recall (at least 1; default 256)");
  app.add_option("--target-sparsity", sparsity, "best mean recall whose overall sparsity reaches this (0..1)")
      ->check(tools::real_range(0, 1));
  app.add_option("--target-recall", recall, "highest overall sparsity whose mean recall reaches this (0..1)")
      ->check(tools::real_range(0, 1));
  app.add_option("--bisect-recall", a.calib.bisect_recall,
                 "recall each head's bisection aims at (in (0, 1]; default 0.95)");
  app.add_option("--bisect-steps", a.calib.bisect_steps, "bisection steps per head (0..24; default 10)");
  app.add_option("--extra", a.calib.extra, "thresholds in (0, 1] measured for every head besides the bisection's")
      ->delimiter(',');
  app.add_option("--around", a.calib.around,
                 "per head, also the thresholds whose gap (-ln t) is these multiples (in (0, 100)) of the bisected one")
      ->delimiter(',');
  app.add_option("--seed", a.calib.seed, "seed of the row sample");
  app.add_option("--out", a.out_json, "also export the thresholds as a JSON file");
  app.add_option("--cache", a.cache_path, "cache database to store them in (default: the user cache)");
  app.add_flag("--print-heads", a.print_heads, "print every head's threshold, recall and sparsity");
  app.add_option("--device", a.device, "GPU ordinal (default 0)")->check(tools::int_range(0));
  if (auto rc = tools::parse_command_line(app, "vecattn-calibrate", argc, argv)) return *rc;
  if ((sparsity >= 0) == (recall >= 0)) {
    std::fprintf(stderr, "vecattn-calibrate: give exactly one of --target-sparsity and --target-recall\n");
    return kExitError;
  }
  if (sparsity >= 0) a.target_sparsity = sparsity;
  else a.target_recall = recall;
  a.q_name_given = app.count("--q-name") > 0;
  a.k_name_given = app.count("--k-name") > 0;
  try {
    check_args(a);
    return run(a);
  } catch (const Error& e) {
    std::fprintf(stderr, "%svecattn-calibrate: %s\n%s", g_progress_line ? "\n" : "", e.what(), e.detail().empty() ? "" : (e.detail() + "\n").c_str());
    return e.status() == Status::no_driver || e.status() == Status::no_device ? kExitNoGpu : kExitError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%svecattn-calibrate: %s\n", g_progress_line ? "\n" : "", e.what());
    return kExitError;
  }
}

#pragma once
// Tunes one kernel key on a device: the default config first (the reference and the fallback),
// then each candidate of the search space, timed with events after warm-up (median of many) on
// input sets rotated so they exceed L2, each checked against the default's output. A candidate
// that fails or differs scores infinity and is never the winner.
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "cache/tuned.h"
#include "codegen/key.h"
#include "runtime/device.h"
#include "runtime/runtime.h"
#include "tuner/synthetic.h"

namespace vecattn::tuner {

struct Options {
  int64_t seq_len = 32768;
  int64_t heads = 16;            // q and kv heads of the synthetic problem
  double budget_s = 60;          // per key: candidates left when it runs out are skipped
  int warmup = 2;
  int reps = 15;
  double strong_fraction = 0.02; // vertical key columns (sets the selection density)
  bool vertical = true;          // the vertical-vector pattern; false: plain random Gaussian inputs
  float threshold = 0.9f;        // of the selection that sparse_attn and select keys are timed on
};

struct CandidateTime {
  TileConfig config;
  double ms;                     // median; +inf when it failed or its output differed
  std::string note;              // why it scored infinity
};

struct Result {
  KernelKey key;
  TileConfig best;
  double best_ms = 0, default_ms = 0;
  double density = 1;            // selection density of the inputs (1 for dense kernels)
  int64_t seq_len = 0;
  std::vector<CandidateTime> candidates;
  int skipped = 0;               // not timed: the budget ran out
  double seconds = 0;
};

// Called before each candidate is timed: (index, count).
using Progress = std::function<void(int, int)>;

class Tuner {
 public:
  Tuner(Runtime& rt, const Options& options);
  ~Tuner();

  Result tune(const KernelKey& key, const Progress& progress = {});

 private:
  struct Inputs;
  Inputs& inputs_for(const KernelKey& key);
  // Times one config of key (median ms) and returns its output for the comparison.
  double time_config(const KernelKey& key, const TileConfig& config, Inputs& in, std::vector<uint16_t>* output,
                     double* density);

  double selection_density(const KernelKey& key, Inputs& in);

  Runtime& rt_;
  CUcontext context_ = nullptr;   // the device's primary context, current while tuning
  Options o_;
  std::mt19937_64 rng_;
  std::map<std::pair<int, DType>, std::unique_ptr<Inputs>> inputs_;
};

// The database row of a tuning result measured on `device`.
cache::TunedRow tuned_row(const Result& r, const DeviceInfo& device);

// How far a candidate's output may be from the default's: selections must be identical; an
// attention output may differ by the rounding of another summation order.
double output_tolerance(const KernelKey& key);

}  // namespace vecattn::tuner

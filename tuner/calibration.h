#pragma once
// Calibration of per-head MinP thresholds on a model's dumped activations (vecattn-calibrate):
// for each layer, every q head's curve of (threshold, recall, sparsity) points, measured on the
// GPU with the runtime's own select (one launch for all heads, one threshold each) and the recall
// kernel on sampled rows; a bisection per head toward a target recall, plus fixed extra points.
// threshold_assignment.h then picks one point per head over all layers.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/runtime.h"
#include "tuner/threshold_assignment.h"

namespace vecattn::tuner {

struct CalibrationOptions {
  int pq = 64, bk = 16, gk = 16;
  bool causal = true;
  int rows = 256;               // query rows sampled per (batch, head), uniformly over [0, S)
  double bisect_recall = 0.95;  // each head's bisection aims at this recall
  int bisect_steps = 10;        // halvings of the threshold interval (1/1024 after 10)
  // Thresholds measured for every head besides the bisection's, so the assignment can trade
  // recall for sparsity in both directions.
  std::vector<float> extra{0.3f, 0.5f, 0.7f, 0.8f, 0.85f, 0.9f, 0.95f, 0.98f, 0.995f};
  // And, per head, thresholds around the bisection's: its gap (-ln t) times each of these, so
  // every head has points on both sides of its operating point however sharp it is.
  std::vector<float> around{0.25f, 0.5f, 0.75f, 1.25f, 1.5f, 2.f};
  uint64_t seed = 1;

  // How the points were measured, stored with each threshold row: "pq64-bk16-gk16-causal rows=256".
  std::string describe() const;
};

// Throws Error(invalid_argument) for options that cannot be measured, naming each by its
// vecattn-calibrate flag (--rows, --bisect-recall, --bisect-steps, --extra, --around), so the
// tool can check them before any GPU work. Pq, Bk and Gk are the runtime's to check.
void check_options(const CalibrationOptions& o);

// One measurement: every head's threshold, mean recall over its sampled rows (and batches), and
// exact sparsity over all its rows (docs/semantics.md §6).
struct LayerMeasure {
  std::vector<float> threshold;
  std::vector<double> recall, sparsity;
};

// Measures one layer's inputs (q: [B, Hq, S, D], k: [B, Hkv, S, D], on the runtime's device) at
// many thresholds. Owns the selection, row and recall buffers of the layer's shape.
class LayerCalibrator {
 public:
  LayerCalibrator(Runtime& rt, const Tensor& q, const Tensor& k, const CalibrationOptions& o);
  ~LayerCalibrator();
  LayerCalibrator(const LayerCalibrator&) = delete;
  LayerCalibrator& operator=(const LayerCalibrator&) = delete;

  // One select (with statistics) and one recall launch at one threshold per q head.
  LayerMeasure measure(const std::vector<float>& thresholds);

  // Every head's curve: the bisection's points, the points around its result and the extra
  // points, each threshold once, ordered by threshold. `step` is called after each measurement with (done, total).
  std::vector<HeadCurve> curves(int layer, const std::function<void(int, int)>& step = {});

  // The sampled rows (ascending), for reports and tests.
  const std::vector<int32_t>& rows() const { return rows_; }
  // Weight of each of this layer's heads in a model-wide assignment: its visible pairs
  // (docs/semantics.md §6), so layers of different lengths count by their work.
  double head_weight() const;

 private:
  Runtime& rt_;
  Tensor q_, k_;
  CalibrationOptions o_;
  std::vector<int32_t> rows_;
  void* mask_ = nullptr;
  int32_t* rows_device_ = nullptr;
  float* recall_device_ = nullptr;
};

}  // namespace vecattn::tuner

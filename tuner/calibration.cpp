#include "tuner/calibration.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "codegen/error.h"
#include "runtime/driver.h"

namespace vecattn::tuner {

std::string CalibrationOptions::describe() const {
  return fmt::format("pq{}-bk{}-gk{}-{} rows={} bisect-recall={}", pq, bk, gk, causal ? "causal" : "noncausal", rows,
                     bisect_recall);
}

namespace {

PrefillParams params_of(const CalibrationOptions& o) {
  PrefillParams p;
  p.pq = o.pq, p.bk = o.bk, p.gk = o.gk, p.causal = o.causal;
  return p;
}

}  // namespace

void check_options(const CalibrationOptions& o) {
  if (o.rows < 1) throw Error(Status::invalid_argument, fmt::format("--rows {} must be at least 1", o.rows));
  if (!(o.bisect_recall > 0 && o.bisect_recall <= 1))
    throw Error(Status::invalid_argument, fmt::format("--bisect-recall {} must be in (0, 1]", o.bisect_recall));
  if (o.bisect_steps < 0 || o.bisect_steps > 24)
    throw Error(Status::invalid_argument, fmt::format("--bisect-steps {} must be in [0, 24]", o.bisect_steps));
  if (o.bisect_steps == 0 && o.extra.empty())
    throw Error(Status::invalid_argument, "--bisect-steps 0 and no --extra thresholds: nothing to measure");
  for (float t : o.extra)
    if (!(t > 0 && t <= 1))
      throw Error(Status::invalid_argument, fmt::format("--extra: threshold {} must be in (0, 1]", t));
  for (float m : o.around)
    if (!(m > 0 && m < 100))
      throw Error(Status::invalid_argument, fmt::format("--around: gap multiple {} must be in (0, 100)", m));
}

LayerCalibrator::LayerCalibrator(Runtime& rt, const Tensor& q, const Tensor& k, const CalibrationOptions& o)
    : rt_(rt), q_(q), k_(k), o_(o) {
  check_options(o);
  PrefillParams p = params_of(o);
  // Validates shapes, dtypes and Pq/Bk/Gk before anything is allocated.
  (void)rt_.workspace_min_bytes(q, k, p);

  const int64_t S = q.seq_len();
  std::vector<int32_t> all(static_cast<size_t>(S));
  std::iota(all.begin(), all.end(), 0);
  std::mt19937_64 rng(o.seed);
  const int64_t n = std::min<int64_t>(o.rows, S);
  std::sample(all.begin(), all.end(), std::back_inserter(rows_), n, rng);  // ascending, without repeats

  const Driver& d = Driver::get();
  CUdeviceptr mask = 0, rows = 0, recall = 0;
  try {
    d.check(d.cuMemAlloc(&mask, size_t(Selection::bytes(q.batch(), q.heads(), S, o.pq))), "cuMemAlloc");
    d.check(d.cuMemAlloc(&rows, rows_.size() * sizeof(int32_t)), "cuMemAlloc");
    d.check(d.cuMemAlloc(&recall, size_t(q.batch() * q.heads()) * rows_.size() * sizeof(float)), "cuMemAlloc");
    d.check(d.cuMemcpyHtoD(rows, rows_.data(), rows_.size() * sizeof(int32_t)), "cuMemcpyHtoD");
  } catch (...) {
    for (CUdeviceptr ptr : {mask, rows, recall})
      if (ptr) d.cuMemFree(ptr);
    throw;
  }
  mask_ = reinterpret_cast<void*>(mask);
  rows_device_ = reinterpret_cast<int32_t*>(rows);
  recall_device_ = reinterpret_cast<float*>(recall);
}

LayerCalibrator::~LayerCalibrator() {
  const Driver& d = Driver::get();
  d.cuMemFree(reinterpret_cast<CUdeviceptr>(mask_));
  d.cuMemFree(reinterpret_cast<CUdeviceptr>(rows_device_));
  d.cuMemFree(reinterpret_cast<CUdeviceptr>(recall_device_));
}

double LayerCalibrator::head_weight() const {
  const double S = double(q_.seq_len());
  return double(q_.batch()) * (o_.causal ? S * (S + 1) / 2 : S * S);
}

LayerMeasure LayerCalibrator::measure(const std::vector<float>& thresholds) {
  const int64_t B = q_.batch(), H = q_.heads(), R = int64_t(rows_.size());
  PrefillParams p = params_of(o_);
  p.thresholds = thresholds.data();
  p.num_thresholds = int64_t(thresholds.size());
  PrefillStats stats;
  rt_.select(q_, k_, p, Selection{mask_}, nullptr, {}, &stats);
  rt_.recall(q_, k_, p, Selection{mask_}, rows_device_, R, recall_device_, nullptr);
  std::vector<float> recall(size_t(B * H * R));
  const Driver& d = Driver::get();
  d.check(d.cuMemcpyDtoH(recall.data(), reinterpret_cast<CUdeviceptr>(recall_device_), recall.size() * sizeof(float)),
          "cuMemcpyDtoH");

  LayerMeasure m;
  m.threshold = thresholds;
  m.recall.assign(size_t(H), 0.0);
  m.sparsity.resize(size_t(H));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t r = 0; r < R; ++r) m.recall[size_t(h)] += recall[size_t((b * H + h) * R + r)];
  for (int64_t h = 0; h < H; ++h) {
    m.recall[size_t(h)] = std::clamp(m.recall[size_t(h)] / double(B * R), 0.0, 1.0);  // fp32 sums may pass 1 by ulps
    m.sparsity[size_t(h)] = std::clamp(1.0 - stats.density[size_t(h)], 0.0, 1.0);
    if (!std::isfinite(m.recall[size_t(h)]))
      throw Error(Status::invalid_argument,
                  fmt::format("calibration: the recall of q head {} is not finite (non-finite values in q or k?)", h));
  }
  return m;
}

std::vector<HeadCurve> LayerCalibrator::curves(int layer, const std::function<void(int, int)>& step) {
  const size_t H = size_t(q_.heads());
  std::vector<std::map<float, HeadPoint>> points(H);
  auto record = [&](const LayerMeasure& m) {
    for (size_t h = 0; h < H; ++h) points[h][m.threshold[h]] = HeadPoint{m.threshold[h], m.recall[h], m.sparsity[h]};
  };
  const int total = o_.bisect_steps + (o_.bisect_steps ? int(o_.around.size()) : 0) + int(o_.extra.size());
  int done = 0;

  // Per head, the highest threshold whose recall still reaches the target lies in [lo, hi]:
  // recall falls as the threshold rises (fewer keys pass the MinP rule).
  std::vector<float> lo(H, 0.f), hi(H, 1.f), mid(H);
  for (int s = 0; s < o_.bisect_steps; ++s) {
    for (size_t h = 0; h < H; ++h) mid[h] = 0.5f * (lo[h] + hi[h]);
    const LayerMeasure m = measure(mid);
    record(m);
    for (size_t h = 0; h < H; ++h) (m.recall[h] >= o_.bisect_recall ? lo[h] : hi[h]) = mid[h];
    if (step) step(++done, total);
  }
  if (o_.bisect_steps > 0) {
    // The bisection's answer per head: the highest threshold seen reaching the target, else the
    // lowest tried. Thresholds at multiples of its gap fill the curve on both sides.
    std::vector<double> gap(H);
    for (size_t h = 0; h < H; ++h) gap[h] = -std::log(double(lo[h] > 0 ? lo[h] : hi[h]));
    for (float m : o_.around) {
      std::vector<float> t(H);
      for (size_t h = 0; h < H; ++h) t[h] = float(std::clamp(std::exp(-double(m) * gap[h]), 1e-6, 1.0));
      record(measure(t));
      if (step) step(++done, total);
    }
  }
  for (float t : o_.extra) {
    record(measure(std::vector<float>(H, t)));
    if (step) step(++done, total);
  }

  std::vector<HeadCurve> out(H);
  for (size_t h = 0; h < H; ++h) {
    out[h].layer = layer;
    out[h].head = int(h);
    out[h].weight = head_weight();
    for (const auto& [t, point] : points[h]) out[h].points.push_back(point);
  }
  return out;
}

}  // namespace vecattn::tuner

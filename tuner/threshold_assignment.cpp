#include "tuner/threshold_assignment.h"

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace vecattn::tuner {
namespace {

// Maximizes the weighted mean of gain(point) subject to the weighted mean of cost(point) >=
// target: DP over heads on the constraint's grid (state: cells reached so far, capped at the
// target's), exact objective, back-pointers for the choice.
template <class Gain, class Cost>
Assignment solve(const std::vector<HeadCurve>& heads, double target, int cells, Gain gain, Cost cost) {
  double total_weight = 0;
  for (const auto& h : heads) {
    if (h.points.empty())
      throw std::invalid_argument("head " + std::to_string(h.head) + " of layer " + std::to_string(h.layer) + " has no points");
    if (!(h.weight > 0)) throw std::invalid_argument("a head weight must be > 0");
    for (const auto& p : h.points)
      if (!(p.recall >= 0 && p.recall <= 1 && p.sparsity >= 0 && p.sparsity <= 1))
        throw std::invalid_argument("recall and sparsity must lie in [0, 1]");
    total_weight += h.weight;
  }
  Assignment a;
  if (heads.empty()) return a;
  // Rounding down loses less than one cell per head: cells = 100 per head keeps that under a
  // hundredth of the target (typically half), and the memory at 1 byte per (head, cell).
  if (cells <= 0) cells = int(std::clamp<size_t>(heads.size() * 100, 1000, 100000));
  const int need = int(std::ceil(std::max(0.0, std::min(1.0, target)) * cells - 1e-9));
  constexpr double kNone = -std::numeric_limits<double>::infinity();
  std::vector<double> best(size_t(need) + 1, kNone), next;
  best[0] = 0;
  // pick[h][c]: the point of head h on the best path into cell c. A path enters a cell below
  // `need` from exactly c - add; into `need` (the cap) from anywhere, so that one is recorded.
  std::vector<std::vector<uint8_t>> pick(heads.size(), std::vector<uint8_t>(size_t(need) + 1, 0));
  std::vector<int> from_cap(heads.size(), -1);
  auto add_of = [&](size_t h, size_t i) {
    return int(std::floor(heads[h].weight / total_weight * cost(heads[h].points[i]) * cells + 1e-9));
  };
  for (size_t h = 0; h < heads.size(); ++h) {
    if (heads[h].points.size() > 255) throw std::invalid_argument("at most 255 points per head");
    next.assign(size_t(need) + 1, kNone);
    const double w = heads[h].weight / total_weight;
    for (int c = 0; c <= need; ++c) {
      if (best[size_t(c)] == kNone) continue;
      for (size_t i = 0; i < heads[h].points.size(); ++i) {
        const int to = std::min(need, c + add_of(h, i));
        const double value = best[size_t(c)] + w * gain(heads[h].points[i]);
        if (value > next[size_t(to)]) {
          next[size_t(to)] = value;
          pick[h][size_t(to)] = uint8_t(i);
          if (to == need) from_cap[h] = c;
        }
      }
    }
    best.swap(next);
  }
  if (best[size_t(need)] == kNone) return a;
  a.feasible = true;
  a.choice.assign(heads.size(), 0);
  for (int h = int(heads.size()) - 1, c = need; h >= 0; --h) {
    const int i = pick[size_t(h)][size_t(c)];
    a.choice[size_t(h)] = i;
    c = c == need ? from_cap[size_t(h)] : c - add_of(size_t(h), size_t(i));
  }
  for (size_t h = 0; h < heads.size(); ++h) {
    const HeadPoint& p = heads[h].points[size_t(a.choice[h])];
    a.recall += heads[h].weight / total_weight * p.recall;
    a.sparsity += heads[h].weight / total_weight * p.sparsity;
  }
  return a;
}

}  // namespace

Assignment best_recall_at_sparsity(const std::vector<HeadCurve>& heads, double target_sparsity, int cells) {
  return solve(heads, target_sparsity, cells, [](const HeadPoint& p) { return p.recall; },
               [](const HeadPoint& p) { return p.sparsity; });
}

Assignment best_sparsity_at_recall(const std::vector<HeadCurve>& heads, double target_recall, int cells) {
  return solve(heads, target_recall, cells, [](const HeadPoint& p) { return p.sparsity; },
               [](const HeadPoint& p) { return p.recall; });
}

}  // namespace vecattn::tuner

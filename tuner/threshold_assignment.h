#pragma once
// Per-head thresholds for a model (the calibration's last step): each (layer, head) has a few
// measured points (threshold, recall, sparsity); choose one point per head so that the weighted
// mean recall is highest while the weighted mean sparsity reaches a target, or the reverse
// (highest sparsity at a target recall). A multiple-choice knapsack, solved exactly on a grid.
#include <vector>

namespace vecattn::tuner {

struct HeadPoint {
  float threshold = 0;
  double recall = 0;    // share of the full-attention mass the kept set holds, in [0, 1]
  double sparsity = 0;  // 1 - density, in [0, 1]
};

struct HeadCurve {
  int layer = 0, head = 0;
  double weight = 1;    // its share of the model's candidate pairs (equal heads: 1)
  std::vector<HeadPoint> points;
};

struct Assignment {
  bool feasible = false;   // false: not even the most extreme point of every head reaches the target
  std::vector<int> choice; // per head, the index of its chosen point
  double recall = 0, sparsity = 0;  // the weighted means of the choice (exact, not gridded)
};

// The constrained quantity is counted on a grid of `cells` steps of the weighted mean, rounded
// down per head, so a feasible answer always truly meets the target; the objective is exact.
// Among choices meeting the target on that grid the answer is optimal (tests check it against
// brute force). Throws std::invalid_argument for an empty head, a weight <= 0 or values outside [0, 1].
Assignment best_recall_at_sparsity(const std::vector<HeadCurve>& heads, double target_sparsity, int cells = 0);
Assignment best_sparsity_at_recall(const std::vector<HeadCurve>& heads, double target_recall, int cells = 0);

}  // namespace vecattn::tuner

// The per-head threshold assignment (calibration's last step) against brute force.
#include <catch2/catch.hpp>

#include <functional>
#include <random>

#include "tuner/threshold_assignment.h"

using namespace vecattn::tuner;

namespace {

// Every combination: the best weighted mean gain with weighted mean cost >= target.
double brute_force(const std::vector<HeadCurve>& heads, double target, bool recall_gain, bool* feasible) {
  double total = 0;
  for (const auto& h : heads) total += h.weight;
  double best = -1;
  std::vector<size_t> idx(heads.size(), 0);
  std::function<void(size_t, double, double)> walk = [&](size_t h, double gain, double cost) {
    if (h == heads.size()) {
      if (cost >= target - 1e-12) best = std::max(best, gain);
      return;
    }
    for (const auto& p : heads[h].points) {
      const double w = heads[h].weight / total;
      walk(h + 1, gain + w * (recall_gain ? p.recall : p.sparsity), cost + w * (recall_gain ? p.sparsity : p.recall));
    }
  };
  walk(0, 0, 0);
  *feasible = best >= 0;
  return best;
}

std::vector<HeadCurve> random_heads(std::mt19937& rng, int n, int points, bool on_grid) {
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<HeadCurve> heads;
  for (int h = 0; h < n; ++h) {
    HeadCurve c{0, h, on_grid ? 1.0 : 0.5 + u(rng), {}};
    for (int i = 0; i < points; ++i) {
      // Higher thresholds: sparser, lower recall (a head's curve is monotone).
      double s = (i + u(rng)) / points, r = 1 - s * (0.3 + 0.6 * u(rng));
      if (on_grid) s = std::round(s * 20) / 20, r = std::round(r * 20) / 20;
      c.points.push_back({float(0.5 + 0.05 * i), r, s});
    }
    heads.push_back(c);
  }
  return heads;
}

}  // namespace

TEST_CASE("threshold assignment equals brute force on small models", "[calibrate]") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    const bool on_grid = trial % 2 == 0;  // values on the DP's grid: the optimum itself
    const auto heads = random_heads(rng, 2 + trial % 4, 2 + trial % 3, on_grid);
    const double target = 0.2 + 0.6 * (trial % 7) / 6.0;
    for (bool at_sparsity : {true, false}) {
      INFO("trial " << trial << (at_sparsity ? " recall at sparsity" : " sparsity at recall") << " target " << target);
      bool feasible = false;
      const double want = brute_force(heads, target, at_sparsity, &feasible);
      const int cells = 20 * 60;  // (1 / heads) * (k / 20) * cells is a whole number for 2..5 heads
      const Assignment a = at_sparsity ? best_recall_at_sparsity(heads, target, cells)
                                       : best_sparsity_at_recall(heads, target, cells);
      const double got = at_sparsity ? a.recall : a.sparsity;
      const double met = at_sparsity ? a.sparsity : a.recall;
      if (on_grid) {
        REQUIRE(a.feasible == feasible);
        if (feasible) CHECK(got == Approx(want).margin(1e-9));
      }
      if (a.feasible) {
        CHECK(met >= target - 1e-9);  // rounding down never reports an infeasible choice
        CHECK(got <= want + 1e-9);    // and never beats the true optimum
        REQUIRE(a.choice.size() == heads.size());
      }
    }
  }
}

TEST_CASE("threshold assignment: a model of 784 heads is fast and close to its target", "[calibrate]") {
  std::mt19937 rng(11);
  const auto heads = random_heads(rng, 28 * 28, 8, false);
  const Assignment a = best_recall_at_sparsity(heads, 0.75);
  REQUIRE(a.feasible);
  CHECK(a.sparsity >= 0.75);
  CHECK(a.sparsity < 0.76);  // within a point of the target
  const Assignment b = best_sparsity_at_recall(heads, a.recall);
  REQUIRE(b.feasible);
  CHECK(b.recall >= a.recall - 1e-12);
  CHECK(b.sparsity >= a.sparsity - 0.01);
}

TEST_CASE("threshold assignment rejects bad curves and reports infeasible targets", "[calibrate]") {
  std::vector<HeadCurve> heads = {{0, 0, 1.0, {{0.9f, 0.5, 0.5}}}};
  CHECK_FALSE(best_recall_at_sparsity(heads, 0.6).feasible);
  CHECK(best_recall_at_sparsity(heads, 0.5).feasible);
  heads.push_back({0, 1, 1.0, {}});
  CHECK_THROWS_AS(best_recall_at_sparsity(heads, 0.5), std::invalid_argument);
  heads.back().points = {{0.9f, 1.5, 0.5}};
  CHECK_THROWS_AS(best_recall_at_sparsity(heads, 0.5), std::invalid_argument);
  heads.back().points = {{0.9f, 0.5, 0.5}};
  heads.back().weight = 0;
  CHECK_THROWS_AS(best_recall_at_sparsity(heads, 0.5), std::invalid_argument);
}

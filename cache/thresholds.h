#pragma once
// Calibrated per-head MinP thresholds of a model (vecattn-calibrate), as stored in the cache
// database and exported to a reviewable JSON file that ships with the model.
#include <string>
#include <vector>

namespace vecattn::cache {

struct ThresholdRow {
  std::string model;
  int layer = 0, head = 0;      // q head
  double threshold = 0;         // in (0, 1]
  double recall = 0;            // measured on the calibration inputs, in [0, 1]
  double sparsity = 0;          // measured, in [0, 1]
  std::string options;          // how it was calibrated, e.g. "pq64-bk16-gk16-causal rows=64 target=sparsity:0.75"
  std::string created;          // UTC, 2026-11-24T00:00:00Z; filled when empty
};

// Empty when the row is storable; otherwise what is wrong with it.
std::string check_threshold_row(const ThresholdRow& r);

// The JSON file: {"format": "vecattn-thresholds", "version": 1, "rows": [ {...}, ... ]}, one row
// per line. write throws Error(cache_error) naming the path; read throws Error(invalid_argument)
// naming the path and line for anything malformed.
void write_thresholds_file(const std::string& path, const std::vector<ThresholdRow>& rows);
std::vector<ThresholdRow> read_thresholds_file(const std::string& path);

// One layer of a model as prefill takes it (PrefillParams::thresholds): index = q head. Throws
// Error(invalid_argument) when the model or layer is absent or a head in [0, count) is missing.
std::vector<float> layer_thresholds(const std::vector<ThresholdRow>& rows, const std::string& model, int layer);

}  // namespace vecattn::cache

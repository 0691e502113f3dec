#pragma once
// vecattn-bench's outputs: CSV and JSON rows, and an SVG plot drawn by hand (no dependency).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace vecattn::bench {

struct BenchRow {
  int64_t seq_len = 0;
  std::string method;          // "dense" (ours), "vecattn" (prefill), or a peer: "cudnn", "flash"
  double threshold = 0;        // vecattn only
  double ms = 0;               // median latency
  double pool_ms = 0, select_ms = 0, attend_ms = 0;  // vecattn time split
  double sparsity = 0;
  double recall = NAN;         // full-attention mass kept, mean over sampled rows
  double rel_error = NAN;      // ||out - dense|| / ||dense||
  double tflops = 0;           // dense: all pairs; vecattn: kept pairs
  double speedup = NAN;        // vs our dense at the same S
  double workspace_mib = 0;
};

struct BenchMeta {
  std::string device, dtype, date;
  int64_t batch = 1, q_heads = 0, kv_heads = 0, head_dim = 0;
  bool causal = true;
  int pq = 0, bk = 0, gk = 0;
  std::string input;
};

std::string to_csv(const BenchMeta& meta, const std::vector<BenchRow>& rows);
std::string to_json(const BenchMeta& meta, const std::vector<BenchRow>& rows);
// Left: latency against S (log-log), one line per method (and per threshold); right: the
// pool / select / attend split of each prefill as stacked bars.
std::string to_svg(const BenchMeta& meta, const std::vector<BenchRow>& rows);
// Throws std::runtime_error naming the path.
void write_file(const std::string& path, const std::string& text);

}  // namespace vecattn::bench

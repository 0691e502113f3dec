#pragma once
// A tuned config: the tuner's winner for one kernel key on one GPU model, with what it was
// measured against. Stored in the database's tuned_configs table (one row per kernel key and
// device name) and shipped per arch as a reviewable text file (cache/pretuned_file.h).
#include <cstdint>
#include <string>

namespace vecattn::cache {

struct TunedRow {
  std::string kernel_key;     // KernelKey::str(), e.g. "select/pq64-bk16-gk16-d128-bf16-sm_90a-causal"
  std::string config;         // TileConfig::str(kind), e.g. "bq64-w4-s2"
  std::string device_name;    // "NVIDIA H100 80GB HBM3"
  std::string arch;           // "sm_90a": the kernel key's arch
  double median_ms = 0;       // the winner's median time
  double default_ms = 0;      // the default config's median time, same inputs
  double density = 1;         // selection density the inputs had (1 for dense kernels)
  int64_t seq_len = 0;        // sequence length tuned at
  int driver_version = 0;     // 13000
  std::string nvrtc_version;  // "13.0"
  std::string library_version;
  std::string created;        // "2025-01-31T12:00:00Z" (UTC, seconds); the store fills it when empty

  bool operator==(const TunedRow& o) const;
  bool operator!=(const TunedRow& o) const { return !(*this == o); }
};

// The empty string when the row can be stored and shipped, else what is wrong with it: a kernel
// key or config that does not parse in canonical form, an arch other than the key's, an empty
// device name, a number out of range or not finite, a control character in a text field, a
// `created` not in the form above (empty is allowed: the store fills it).
std::string check_tuned_row(const TunedRow& row);

// Now, in the form of TunedRow::created.
std::string utc_timestamp();

}  // namespace vecattn::cache

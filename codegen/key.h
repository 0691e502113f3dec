#pragma once
// One key type names a kernel variant everywhere: DB row, cubin name, log line, CLI output.
//   KernelKey  select/pq64-bk16-gk16-d128-bf16-sm_90a-causal
//   TileConfig bq64-w4-s2, bq128-w8-s4-wgmma, bn64-w16-s5-wgmma, bn64-w4-r32-s2-mma, w8 (its string
//              depends on the kernel)
//   a variant  select/pq64-bk16-gk16-d128-bf16-sm_90a-causal+bq64-w4-s2
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <tuple>

namespace vecattn {

// recall: the calibration's measure (docs/semantics.md §6); not tuned, it runs its default.
enum class KernelKind { pool, select, sparse_attn, dense_attn, recall };
enum class DType { fp16, bf16 };
// Attention main loop: FA2-style mma.sync (sm_80+) or Hopper wgmma (sm_90a).
enum class AttnPath { mma, wgmma };

const char* kernel_name(KernelKind k);
const char* dtype_name(DType d);
const char* path_name(AttnPath p);
int dtype_size(DType d);

// Which key fields a kernel reads; the others hold canonical zero values.
struct KeyFields {
  bool pq, bk, gk, causal;
};
KeyFields key_fields(KernelKind k);

struct KernelKey {
  KernelKind kernel = KernelKind::pool;
  int pq = 0;          // query pooling size
  int bk = 0;          // key tile of selection
  int gk = 0;          // tiles per selection group
  int head_dim = 0;
  DType dtype = DType::bf16;
  std::string arch;    // "sm_80", "sm_90a", ...
  bool causal = false;

  // Fields the kernel does not read reset to their canonical value.
  KernelKey canonical() const;
  std::string str() const;
  // Parses a canonical string; throws Error(invalid_argument) saying what is wrong.
  static KernelKey parse(std::string_view text);

  auto tie() const { return std::tie(kernel, pq, bk, gk, head_dim, dtype, arch, causal); }
  bool operator==(const KernelKey& o) const { return tie() == o.tie(); }
  bool operator!=(const KernelKey& o) const { return !(*this == o); }
  bool operator<(const KernelKey& o) const { return tie() < o.tie(); }
};

struct TileConfig {
  int rows = 0;     // select: pooled rows per CTA (bq); attention: keys per tile (bn); pool, recall: unused
  int warps = 4;
  int stages = 0;   // pipeline stages; pool: unused
  AttnPath path = AttnPath::mma;  // select and attention
  // mma.sync attention: query rows per warp, 16 (one m16 row group) or 32 (two, sharing every K/V
  // fragment); named only when not 16 ("bn64-w4-r32-s2-mma"), so the names that predate it keep
  // their meaning. Other kernels and paths: 16.
  int warp_rows = kDefaultWarpRows;
  static constexpr int kDefaultWarpRows = 16;

  TileConfig canonical(KernelKind k) const;
  std::string str(KernelKind k) const;
  static TileConfig parse(KernelKind k, std::string_view text);

  auto tie() const { return std::tie(rows, warps, stages, path, warp_rows); }
  bool operator==(const TileConfig& o) const { return tie() == o.tie(); }
  bool operator!=(const TileConfig& o) const { return !(*this == o); }
  bool operator<(const TileConfig& o) const { return tie() < o.tie(); }
};

// A kernel key with one tile config: what NVRTC compiles and the cache stores.
struct Variant {
  KernelKey key;
  TileConfig config;

  std::string str() const { return key.str() + "+" + config.str(key.kernel); }
  static Variant parse(std::string_view text);
  bool operator==(const Variant& o) const { return key == o.key && config == o.config; }
  bool operator<(const Variant& o) const { return std::tie(key, config) < std::tie(o.key, o.config); }
};

// Parses "fp16"/"bf16", "pool"/"select"/..., "sm_90a"; throw Error(invalid_argument) otherwise.
DType parse_dtype(std::string_view text);
KernelKind parse_kernel(std::string_view text);
std::string parse_arch(std::string_view text);

}  // namespace vecattn

template <> struct std::hash<vecattn::KernelKey> {
  size_t operator()(const vecattn::KernelKey& k) const { return std::hash<std::string>()(k.str()); }
};
template <> struct std::hash<vecattn::Variant> {
  size_t operator()(const vecattn::Variant& v) const { return std::hash<std::string>()(v.str()); }
};

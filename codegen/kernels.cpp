#include "codegen/kernels.h"

#include <fmt/format.h>

#include <algorithm>

#include "codegen/error.h"

namespace vecattn {
namespace {

constexpr int kHeadDims[] = {64, 128};
constexpr int kPoolSizes[] = {64, 128};
constexpr int kKeyTiles[] = {16, 32, 64};
constexpr int kGroupTiles[] = {1, 2, 4, 8, 16, 32, 64, 128};
constexpr DType kDTypes[] = {DType::fp16, DType::bf16};
constexpr int kAttnKeyTiles[] = {32, 64, 128};

// Default tile configs, with the reason beside each; the tuner overrides them per GPU.
// pool: 4 warps = 128 threads = 8 (d128) or 16 (d64) rows in flight per CTA; a CTA moves only
// Pq*D*2 bytes (16 KiB at Pq=64, d128), so wider CTAs buy nothing and cut the grid's occupancy.
constexpr TileConfig kPoolDefault{0, 4, 0, AttnPath::mma};
// recall: 8 warps; each thread scores a key against the CTA's 8 sampled rows, so 256 keys are in
// flight per CTA, and a layer's few hundred rows per head still fill the GPU. Not tuned (a
// calibration's cost is a few select launches per step, see tools/vecattn_calibrate.cpp).
constexpr TileConfig kRecallDefault{0, 8, 0, AttnPath::mma};
// select: 64 pooled rows (4 warps of 16) per CTA read K once per 64 rows; two K stages hide
// the load of the next 64 keys behind the mma of this one. 64 KiB of shared memory at d128.
constexpr TileConfig kSelectDefault{64, 4, 2, AttnPath::mma};
// select on sm_90a: two consumer warpgroups (128 pooled rows) share each K tile, four stages;
// 97 KiB of shared memory at d128, so two CTAs (four warpgroups) fit an SM and one's epilogue
// overlaps the others' MMAs.
constexpr TileConfig kSelectSm90Default{128, 8, 4, AttnPath::wgmma};
// sparse_attn: one query block per CTA, double-buffered gathers. Pq 64: 2 warps of 32 rows (each
// K/V fragment feeds two row groups; H200, mma.sync path, 128K causal t=0.8: 298 TFLOP/s on kept
// pairs against 280 with 4 warps of 16), 32-key tiles at d128 (64 keys with 32 rows spill), 64
// at d64. Pq 128 the same way, 4 warps of 32 rows (128K causal t=0.8: 319 TFLOP/s against 270
// with 8 warps of 16).
constexpr int kAttnDefaultKeys = 64;
TileConfig mma_sparse_default(const KernelKey& key) {
  return TileConfig{key.head_dim == 128 ? 32 : kAttnDefaultKeys, key.pq / 32, 2, AttnPath::mma, 32};
}
// dense_attn: 128 query rows as 4 warps of 32 (FA2's sm_80 shape), 64-key tiles. H200, mma.sync
// path, causal: 357 / 367 TFLOP/s at 32K / 128K against 335 / 322 with 16 rows per warp (FA2 343
// / 324 in the same run).
constexpr TileConfig kDenseDefault{64, 4, 2, AttnPath::mma, 32};
// wgmma (sm_90a), sparse and dense: two producer and two consumer warpgroups (16 warps), 64-key
// tiles, deep pipelines: loads are latency-bound long before the tensor cores are (H100, dense
// 32K: 64 keys x 4 stages ran 554 TFLOP/s where 128 x 2 ran 397). Four stages at 128 query rows
// per CTA (32 KiB Q + 4 x 32 KiB K/V), six at a Pq = 64 block (16 KiB Q), whose tiles the two
// consumers take in turn, each fed by its own loading group from its own three stages.
constexpr int kSm90Warps = kAttnSm90Threads / 32;
constexpr int kSm90MaxSmem = 227 * 1024;  // the opt-in limit of one CTA on sm_90
// The most any sm_80+ GPU gives one CTA (sm_90's opt-in); a device's own limit is checked where
// its kernels load (an A100 allows 163 KiB, an sm_86 99 KiB).
constexpr int kMaxSmem = kSm90MaxSmem;
constexpr int kSm90Keys[] = {64, 128};
TileConfig sm90_default(int pq) { return TileConfig{64, kSm90Warps, pq == 64 ? 6 : 4, AttnPath::wgmma}; }

bool contains(const int* begin, const int* end, int v) {
  for (auto p = begin; p != end; ++p)
    if (*p == v) return true;
  return false;
}

std::string list(const int* begin, const int* end) {
  std::string s;
  for (auto p = begin; p != end; ++p) s += fmt::format("{}{}", s.empty() ? "" : ", ", *p);
  return s;
}

}  // namespace

const std::vector<KernelKind>& implemented_kernels() {
  static const std::vector<KernelKind> k = {KernelKind::pool, KernelKind::select, KernelKind::sparse_attn,
                                            KernelKind::dense_attn, KernelKind::recall};
  return k;
}

const char* template_file(const Variant& v) {
  switch (v.key.kernel) {
    case KernelKind::pool: return "pool.cuh";
    case KernelKind::select: return v.config.path == AttnPath::wgmma ? "sm90_select.cuh" : "select.cuh";
    case KernelKind::sparse_attn:
    case KernelKind::dense_attn: return v.config.path == AttnPath::wgmma ? "sm90_attention.cuh" : "attention.cuh";
    case KernelKind::recall: return "recall.cuh";
  }
  return nullptr;
}

bool has_wgmma(const std::string& arch) { return arch == "sm_90a"; }

int select_threads(const Variant& v) {
  return v.config.path == AttnPath::wgmma ? select_sm90_threads(v.config.rows) : v.config.warps * 32;
}

AttnLaunch attn_launch(const Variant& v) {
  const int pq = v.key.kernel == KernelKind::sparse_attn ? v.key.pq : 0;
  if (v.config.path == AttnPath::wgmma) return {attn_sm90_rows(pq), kAttnSm90Threads};
  return {v.config.warps * v.config.warp_rows, v.config.warps * 32};
}

std::string instantiation(const Variant& v) {
  const KernelKey& k = v.key;
  switch (k.kernel) {
    case KernelKind::pool:
      return fmt::format("vecattn::pool_kernel<{}, {}, vecattn::{}, {}>", k.pq, k.head_dim, dtype_name(k.dtype),
                         v.config.warps);
    case KernelKind::select:
      if (v.config.path == AttnPath::wgmma)
        return fmt::format("vecattn::select_sm90_kernel<{}, {}, {}, {}, vecattn::{}, {}, {}, {}>", k.pq, k.bk, k.gk,
                           k.head_dim, dtype_name(k.dtype), v.config.rows, v.config.stages, k.causal);
      return fmt::format("vecattn::select_kernel<{}, {}, {}, {}, vecattn::{}, {}, {}, {}>", k.pq, k.bk, k.gk, k.head_dim,
                         dtype_name(k.dtype), v.config.rows, v.config.stages, k.causal);
    case KernelKind::sparse_attn:
    case KernelKind::dense_attn:
      if (v.config.path == AttnPath::wgmma)
        return fmt::format("vecattn::attn_sm90_kernel<{}, vecattn::{}, {}, {}, {}, {}>", k.head_dim, dtype_name(k.dtype),
                           v.config.rows, v.config.stages, k.causal, k.kernel == KernelKind::sparse_attn ? k.pq : 0);
      return fmt::format("vecattn::attn_kernel<{}, vecattn::{}, {}, {}, {}, {}, {}, {}>", k.head_dim,
                         dtype_name(k.dtype), v.config.warps * v.config.warp_rows, v.config.rows, v.config.stages,
                         k.causal, k.kernel == KernelKind::sparse_attn ? k.pq : 0, v.config.warp_rows);
    case KernelKind::recall:
      return fmt::format("vecattn::recall_kernel<{}, {}, vecattn::{}, {}, {}>", k.pq, k.head_dim, dtype_name(k.dtype),
                         v.config.warps, k.causal);
  }
  throw Error(Status::internal, "unknown kernel kind");
}

TileConfig default_config(const KernelKey& key, AttnPath path) {
  switch (key.kernel) {
    case KernelKind::pool: return kPoolDefault;
    case KernelKind::select: return path == AttnPath::wgmma ? kSelectSm90Default : kSelectDefault;
    case KernelKind::sparse_attn:
      return path == AttnPath::wgmma ? sm90_default(key.pq) : mma_sparse_default(key);
    case KernelKind::dense_attn: return path == AttnPath::wgmma ? sm90_default(0) : kDenseDefault;
    case KernelKind::recall: return kRecallDefault;
  }
  throw Error(Status::internal, "unknown kernel kind");
}

TileConfig default_config(const KernelKey& key) {
  return default_config(key, has_wgmma(key.arch) ? AttnPath::wgmma : AttnPath::mma);
}

std::string why_invalid(const KernelKey& k) {
  bool implemented = false;
  for (auto i : implemented_kernels()) implemented |= (i == k.kernel);
  if (!implemented) return fmt::format("kernel {} is not implemented yet", kernel_name(k.kernel));
  if (!contains(std::begin(kHeadDims), std::end(kHeadDims), k.head_dim))
    return fmt::format("head_dim {} is not supported: use {}", k.head_dim, list(std::begin(kHeadDims), std::end(kHeadDims)));
  try {
    if (parse_arch(k.arch) != k.arch) return fmt::format("arch '{}' is not canonical", k.arch);
  } catch (const Error& e) {
    return e.what();
  }
  const KeyFields f = key_fields(k.kernel);
  if (f.pq && !contains(std::begin(kPoolSizes), std::end(kPoolSizes), k.pq))
    return fmt::format("Pq {} is not supported: use {}", k.pq, list(std::begin(kPoolSizes), std::end(kPoolSizes)));
  if (f.bk && !contains(std::begin(kKeyTiles), std::end(kKeyTiles), k.bk))
    return fmt::format("Bk {} is not supported: use {}", k.bk, list(std::begin(kKeyTiles), std::end(kKeyTiles)));
  if (f.gk && !contains(std::begin(kGroupTiles), std::end(kGroupTiles), k.gk))
    return fmt::format("Gk {} is not supported: use {}", k.gk, list(std::begin(kGroupTiles), std::end(kGroupTiles)));
  if (f.causal && k.causal && f.bk && k.pq % k.bk != 0)
    return fmt::format("causal selection needs Pq % Bk == 0 (Pq {}, Bk {})", k.pq, k.bk);
  if (k.canonical() != k) return fmt::format("key fields unused by {} must be zero", kernel_name(k.kernel));
  return {};
}

std::string why_invalid(const Variant& v) {
  if (auto why = why_invalid(v.key); !why.empty()) return why;
  const TileConfig& c = v.config;
  const bool mma_attention =
      (v.key.kernel == KernelKind::sparse_attn || v.key.kernel == KernelKind::dense_attn) && c.path == AttnPath::mma;
  if (c.warp_rows != TileConfig::kDefaultWarpRows && !mma_attention)
    return fmt::format("rows per warp (r{}) is an option of the mma.sync attention kernel only", c.warp_rows);
  if (c.canonical(v.key.kernel) != c)
    return fmt::format("config fields unused by {} must be zero", kernel_name(v.key.kernel));
  switch (v.key.kernel) {
    case KernelKind::pool:
      if (c.warps < 1 || c.warps > 16) return fmt::format("pool warps {} is out of range: use 1..16", c.warps);
      return {};
    case KernelKind::recall:
      if (c.warps < 1 || c.warps > 16) return fmt::format("recall warps {} is out of range: use 1..16", c.warps);
      return {};
    case KernelKind::select:
      if (c.path == AttnPath::wgmma) {
        // Mirrors the static_asserts of sm90_select.cuh.
        if (!has_wgmma(v.key.arch)) return fmt::format("the wgmma select needs sm_90a, not {}: use mma", v.key.arch);
        if (c.rows < 64 || c.rows > 192 || c.rows % 64)
          return fmt::format("wgmma select rows per CTA {} is not supported: use 64, 128 or 192", c.rows);
        if (c.warps != c.rows / 16)
          return fmt::format("wgmma select with {} rows runs {} consumer warps, not {}", c.rows, c.rows / 16, c.warps);
        if (c.stages < 2 || c.stages > 6) return fmt::format("wgmma select stages {} is not supported: use 2..6", c.stages);
        if (const int bytes = select_sm90_smem_bytes(c.rows, v.key.head_dim, c.stages); bytes > kSm90MaxSmem)
          return fmt::format("wgmma select with {} rows x {} stages needs {} bytes of shared memory (at most {})", c.rows,
                             c.stages, bytes, kSm90MaxSmem);
        return {};
      }
      // Mirrors the static_asserts of select.cuh.
      if (c.rows < 16 || c.rows > 128 || c.rows % 16)
        return fmt::format("select rows per CTA {} is not supported: use 16..128 in steps of 16", c.rows);
      if (c.warps != c.rows / 16) return fmt::format("select with {} rows runs {} warps, not {}", c.rows, c.rows / 16, c.warps);
      if (c.stages < 2 || c.stages > 4) return fmt::format("select stages {} is not supported: use 2..4", c.stages);
      return {};
    case KernelKind::sparse_attn:
    case KernelKind::dense_attn: {
      const bool sparse = v.key.kernel == KernelKind::sparse_attn;
      if (c.path == AttnPath::wgmma) {
        // Mirrors the static_asserts of sm90_config.cuh.
        if (!has_wgmma(v.key.arch))
          return fmt::format("the wgmma attention path needs sm_90a, not {}: use mma", v.key.arch);
        if (!contains(std::begin(kSm90Keys), std::end(kSm90Keys), c.rows))
          return fmt::format("wgmma attention keys per tile {} is not supported: use {}", c.rows,
                             list(std::begin(kSm90Keys), std::end(kSm90Keys)));
        if (c.warps != kSm90Warps)
          return fmt::format("wgmma attention runs {} warps (two producer and two consumer warpgroups), not {}", kSm90Warps,
                             c.warps);
        if (c.stages < 2 || c.stages > 6) return fmt::format("wgmma attention stages {} is not supported: use 2..6", c.stages);
        if (sparse && v.key.pq == 64 && (c.stages % 2 != 0 || c.stages < 4))
          return fmt::format("wgmma attention at Pq 64 needs 4 or 6 stages, not {} (each consumer takes alternate "
                             "tiles from its own half of the ring)", c.stages);
        const int bytes = attn_sm90_smem_bytes(sparse ? v.key.pq : 0, c.rows, v.key.head_dim, c.stages);
        if (bytes > kSm90MaxSmem)
          return fmt::format("wgmma attention with {} keys x {} stages needs {} bytes of shared memory (at most {}): "
                             "use fewer stages or keys", c.rows, c.stages, bytes, kSm90MaxSmem);
        return {};
      }
      // Mirrors the static_asserts of attention.cuh.
      if (!contains(std::begin(kAttnKeyTiles), std::end(kAttnKeyTiles), c.rows))
        return fmt::format("attention keys per tile {} is not supported: use {}", c.rows,
                           list(std::begin(kAttnKeyTiles), std::end(kAttnKeyTiles)));
      if (c.warp_rows != 16 && c.warp_rows != 32)
        return fmt::format("attention rows per warp {} is not supported: use 16 (no r field) or 32 (r32)", c.warp_rows);
      if (sparse && c.warps * c.warp_rows != v.key.pq)
        return fmt::format("sparse attention runs one query block per CTA: Pq {} at {} rows per warp needs {} warps, not {}",
                           v.key.pq, c.warp_rows, v.key.pq / c.warp_rows, c.warps);
      if (!sparse && c.warps != 4 && c.warps != 8) return fmt::format("dense attention warps {} is not supported: use 4 or 8", c.warps);
      if (c.rows > c.warps * 32) return fmt::format("attention keys per tile {} exceeds the {} threads", c.rows, c.warps * 32);
      if (c.stages != 2) return fmt::format("attention stages {} is not supported: use 2", c.stages);
      if (const int regs = attn_acc_regs(c.warp_rows, c.rows, v.key.head_dim, sparse); regs > kAttnMaxAccRegs)
        return fmt::format("{} attention with {} rows per warp, {} keys per tile and head_dim {} holds {} accumulator "
                           "registers per thread (at most {}): use fewer keys or rows per warp", sparse ? "sparse" : "dense",
                           c.warp_rows, c.rows, v.key.head_dim, regs, kAttnMaxAccRegs);
      if (const int regs = attn_score_regs(c.warp_rows, c.rows); regs > kAttnMaxScoreRegs)
        return fmt::format("attention with {} rows per warp and {} keys per tile holds {} score registers per thread "
                           "(at most {}): use fewer keys or rows per warp", c.warp_rows, c.rows, regs, kAttnMaxScoreRegs);
      if (const int bytes = dynamic_smem_bytes(v); bytes > kMaxSmem)
        return fmt::format("attention with {} query rows and {} keys per tile needs {} bytes of shared memory (at most {})",
                           c.warps * c.warp_rows, c.rows, bytes, kMaxSmem);
      return {};
    }
  }
  return "unknown kernel";
}

int dynamic_smem_bytes(const Variant& v) {
  const TileConfig& c = v.config;
  switch (v.key.kernel) {
    case KernelKind::pool:
    case KernelKind::recall: return 0;
    case KernelKind::select:
      return c.path == AttnPath::wgmma ? select_sm90_smem_bytes(c.rows, v.key.head_dim, c.stages)
                                       : select_smem_bytes(c.rows, v.key.head_dim, c.stages);
    case KernelKind::sparse_attn:
    case KernelKind::dense_attn:
      if (c.path == AttnPath::wgmma)
        return attn_sm90_smem_bytes(v.key.kernel == KernelKind::sparse_attn ? v.key.pq : 0, c.rows, v.key.head_dim,
                                    c.stages);
      return attn_smem_bytes(c.warps * c.warp_rows, c.rows, v.key.head_dim, c.stages);
  }
  return 0;
}

void require_valid(const Variant& v) {
  if (auto why = why_invalid(v); !why.empty()) throw Error(Status::unsupported, why, {}, v.str());
}

std::vector<KernelKey> all_keys(const std::string& arch) {
  std::vector<KernelKey> keys;
  for (DType t : kDTypes)
    for (int d : kHeadDims) {
      for (bool causal : {false, true}) keys.push_back(KernelKey{KernelKind::dense_attn, 0, 0, 0, d, t, arch, causal});
      for (int pq : kPoolSizes) {
        keys.push_back(KernelKey{KernelKind::pool, pq, 0, 0, d, t, arch, false});
        for (bool causal : {false, true}) keys.push_back(KernelKey{KernelKind::recall, pq, 0, 0, d, t, arch, causal});
        for (auto kind : {KernelKind::select, KernelKind::sparse_attn})
          for (int bk : kKeyTiles)
            for (int gk : kGroupTiles)
              for (bool causal : {false, true}) keys.push_back(KernelKey{kind, pq, bk, gk, d, t, arch, causal});
      }
    }
  return keys;
}

std::vector<KernelKey> coverage_keys(const std::string& arch) {
  std::vector<KernelKey> keys;
  auto add = [&](KernelKey k) {
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  };
  for (DType t : kDTypes)
    for (int d : kHeadDims)
      for (bool causal : {false, true}) {
        add(KernelKey{KernelKind::dense_attn, 0, 0, 0, d, t, arch, causal});
        for (int pq : kPoolSizes) {
          add(KernelKey{KernelKind::pool, pq, 0, 0, d, t, arch, false});
          add(KernelKey{KernelKind::recall, pq, 0, 0, d, t, arch, causal});
          for (auto kind : {KernelKind::select, KernelKind::sparse_attn}) add(KernelKey{kind, pq, 16, 16, d, t, arch, causal});
        }
      }
  // Every Bk and Gk once, on one base key.
  for (int bk : kKeyTiles) add(KernelKey{KernelKind::select, 64, bk, 16, 128, DType::bf16, arch, true});
  for (int gk : kGroupTiles) add(KernelKey{KernelKind::select, 64, 16, gk, 128, DType::bf16, arch, true});
  return keys;
}

}  // namespace vecattn

#include "tuner/search_space.h"

#include <algorithm>

#include "codegen/error.h"
#include "codegen/kernels.h"
#include "runtime/pretuned.h"

namespace vecattn::tuner {

std::vector<TileConfig> candidates(const KernelKey& key) {
  std::vector<TileConfig> out{default_config(key)};
  std::vector<TileConfig> raw;
  switch (key.kernel) {
    case KernelKind::pool:
      for (int w : {1, 2, 4, 8}) raw.push_back(TileConfig{0, w, 0, AttnPath::mma});
      break;
    case KernelKind::select:
      for (int rows : {32, 64, 128})
        for (int stages : {2, 3}) raw.push_back(TileConfig{rows, rows / 16, stages, AttnPath::mma});
      break;
    case KernelKind::sparse_attn:
      // A CTA is one query block: Pq / 16 warps of 16 rows, or Pq / 32 of 32 (those whose registers fit).
      for (int warp_rows : {16, 32})
        for (int bn : {32, 64, 128}) raw.push_back(TileConfig{bn, key.pq / warp_rows, 2, AttnPath::mma, warp_rows});
      break;
    case KernelKind::recall: break;  // not tuned: its default only
    case KernelKind::dense_attn:
      for (int warp_rows : {16, 32})
        for (int warps : {4, 8})
          for (int bn : {32, 64, 128}) raw.push_back(TileConfig{bn, warps, 2, AttnPath::mma, warp_rows});
      break;
  }
  // Hopper: rows per CTA x stages of the wgmma select (those that fit).
  if (key.kernel == KernelKind::select)
    for (int rows : {64, 128, 192})
      for (int stages : {2, 3, 4}) raw.push_back(TileConfig{rows, rows / 16, stages, AttnPath::wgmma});
  // Hopper: keys per tile x stages of the warp-specialized wgmma kernel (those that fit).
  if (key.kernel == KernelKind::sparse_attn || key.kernel == KernelKind::dense_attn)
    for (int bn : {64, 128})
      for (int stages : {2, 3, 4, 5, 6}) raw.push_back(TileConfig{bn, kAttnSm90Threads / 32, stages, AttnPath::wgmma});
  for (const auto& c : raw)
    if (why_invalid(Variant{key, c}).empty() && std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  return out;
}

std::vector<Variant> all_variants(const std::string& arch) {
  std::vector<Variant> out;
  for (const auto& k : all_keys(arch)) out.push_back(Variant{k, default_config(k)});
  return out;
}

std::vector<Variant> shipped_variants(const std::string& arch) {
  std::vector<Variant> out;
  auto add = [&](const Variant& v) {
    if (why_invalid(v).empty() && std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  };
  for (const auto& k : all_keys(arch)) {
    add(Variant{k, default_config(k)});
    if (k.kernel != KernelKind::pool && k.kernel != KernelKind::recall) add(Variant{k, default_config(k, AttnPath::mma)});
  }
  for (const auto& row : pretuned_rows(arch)) {
    try {
      const KernelKey k = KernelKey::parse(row.kernel_key);
      add(Variant{k, TileConfig::parse(k.kernel, row.config)});
    } catch (const Error&) {
      // An unreadable row is reported where the runtime reads it; it names nothing to ship.
    }
  }
  return out;
}

std::vector<Variant> coverage_variants(const std::string& arch) {
  std::vector<Variant> out;
  for (const auto& k : coverage_keys(arch)) {
    out.push_back(Variant{k, default_config(k)});
    // Every config value of the search space once, on the first key of each kernel.
    if (k == coverage_keys(arch).front() || (k.head_dim == 128 && k.dtype == DType::bf16 && k.causal))
      for (const auto& c : candidates(k))
        if (std::find(out.begin(), out.end(), Variant{k, c}) == out.end()) out.push_back(Variant{k, c});
  }
  return out;
}

}  // namespace vecattn::tuner

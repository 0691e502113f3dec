#include "tuner/search_space.h"

#include <algorithm>

#include "codegen/kernels.h"

namespace vecattn::tuner {

std::vector<TileConfig> candidates(const KernelKey& key) {
  std::vector<TileConfig> out{default_config(key)};
  std::vector<TileConfig> raw;
  switch (key.kernel) {
    case KernelKind::pool:
      for (int w : {1, 2, 4, 8}) raw.push_back(TileConfig{0, w, 0, AttnPath::mma});
      break;
    default: break;
  }
  for (const auto& c : raw)
    if (why_invalid(Variant{key, c}).empty() && std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  return out;
}

std::vector<Variant> all_variants(const std::string& arch) {
  std::vector<Variant> out;
  for (const auto& k : all_keys(arch))
    for (const auto& c : candidates(k)) out.push_back(Variant{k, c});
  return out;
}

}  // namespace vecattn::tuner

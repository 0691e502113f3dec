#include "tuner/presets.h"

#include <algorithm>

#include "codegen/error.h"
#include "codegen/kernels.h"

namespace vecattn::tuner {

KeyGrid preset(const std::string& name) {
  KeyGrid g;
  if (name == "vlm") return g;
  if (name == "dit") {
    g.causal = {false};
    return g;
  }
  throw Error(Status::invalid_argument, "unknown preset '" + name + "': use vlm (causal) or dit (non-causal)");
}

std::vector<KernelKey> grid_keys(const KeyGrid& g, const std::string& arch) {
  std::vector<KernelKey> keys;
  auto add = [&](const KernelKey& k) {
    const bool wanted = std::find(g.kernels.begin(), g.kernels.end(), k.kernel) != g.kernels.end();
    if (wanted && why_invalid(k).empty() && std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  };
  for (DType t : g.dtype)
    for (int d : g.head_dim) {
      for (bool causal : g.causal) add(KernelKey{KernelKind::dense_attn, 0, 0, 0, d, t, arch, causal});
      for (int pq : g.pq) {
        add(KernelKey{KernelKind::pool, pq, 0, 0, d, t, arch, false});
        for (bool causal : g.causal)
          for (int bk : g.bk)
            for (int gk : g.gk)
              for (auto kind : {KernelKind::select, KernelKind::sparse_attn}) add(KernelKey{kind, pq, bk, gk, d, t, arch, causal});
      }
    }
  return keys;
}

}  // namespace vecattn::tuner

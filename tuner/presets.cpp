#include "tuner/presets.h"

#include <fmt/format.h>

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

void check_grid(const KeyGrid& g) {
  // One known-good select key (it uses every field), changed one field at a time.
  const KernelKey base{KernelKind::select, 64, 16, 16, 128, DType::bf16, "sm_80", false};
  auto check = [&](const char* flag, const std::vector<int>& values, int KernelKey::*field) {
    for (int v : values) {
      KernelKey k = base;
      k.*field = v;
      if (const std::string why = why_invalid(k); !why.empty())
        throw Error(Status::invalid_argument, fmt::format("{} {}: {}", flag, v, why));
    }
  };
  check("--pq", g.pq, &KernelKey::pq);
  check("--bk", g.bk, &KernelKey::bk);
  check("--gk", g.gk, &KernelKey::gk);
  check("--head-dim", g.head_dim, &KernelKey::head_dim);
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

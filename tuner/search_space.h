#pragma once
// The tile configs worth trying per kernel key, pruned by codegen's legality check before any
// compile. The default config is always first: it is the tuner's reference and fallback.
#include <vector>

#include "codegen/key.h"

namespace vecattn::tuner {

std::vector<TileConfig> candidates(const KernelKey& key);

// Every (key, candidate) of the implemented kernels for an arch: what `vecattn-tune
// --precompile` puts into the cache.
std::vector<Variant> all_variants(const std::string& arch);

}  // namespace vecattn::tuner

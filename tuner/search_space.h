#pragma once
// The tile configs worth trying per kernel key, pruned by codegen's legality check before any
// compile. The default config is always first: it is the tuner's reference and fallback.
#include <vector>

#include "codegen/key.h"

namespace vecattn::tuner {

std::vector<TileConfig> candidates(const KernelKey& key);

// Every key of the implemented kernels for an arch with its default config: what
// `vecattn-tune --arch` puts into the cache.
std::vector<Variant> all_variants(const std::string& arch);

// What the kernel bundle of an arch holds: every key's default config (on sm_90a also the
// mma.sync default of select and attention, which runs where the copy engine cannot describe a
// tensor or when that path is forced) and every config the shipped pretuned file names.
std::vector<Variant> shipped_variants(const std::string& arch);

// Every template parameter value and every search-space config value at least once: what CI
// compiles per arch.
std::vector<Variant> coverage_variants(const std::string& arch);

}  // namespace vecattn::tuner

#pragma once
// CPU reference of docs/semantics.md §2 (pool), in double, on logical [B, H, S, D] float values.
#include <cstdint>
#include <vector>

namespace vecattn::ref {

// q holds B*H*S*D values in [B, H, S, D] order; returns B*H*nq*D means, unrounded.
std::vector<double> pool(const std::vector<float>& q, int64_t B, int64_t H, int64_t S, int64_t D, int pq);

}  // namespace vecattn::ref

#include "reference/pool_ref.h"

#include <algorithm>

namespace vecattn::ref {

std::vector<double> pool(const std::vector<float>& q, int64_t B, int64_t H, int64_t S, int64_t D, int pq) {
  const int64_t nq = (S + pq - 1) / pq;
  std::vector<double> out(size_t(B * H * nq * D), 0.0);
  for (int64_t bh = 0; bh < B * H; ++bh)
    for (int64_t i = 0; i < nq; ++i) {
      const int64_t r0 = i * pq, r1 = std::min(S, r0 + pq);
      double* o = &out[size_t((bh * nq + i) * D)];
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t d = 0; d < D; ++d) o[d] += q[size_t((bh * S + r) * D + d)];
      for (int64_t d = 0; d < D; ++d) o[d] /= double(r1 - r0);
    }
  return out;
}

}  // namespace vecattn::ref

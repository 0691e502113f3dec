#pragma once
// Which query rows a CTA of the Hopper attention kernel owns. Grid: x = CTAs along the rows of
// one (batch, head) unit, y = units. Causal rows see more keys the later they are, so causal
// launches hand the last row blocks to the first CTAs: the heaviest work starts first and the
// light blocks fill the tail, with no SM left waiting on one long block at the end.
#include "sm90_config.cuh"

namespace vecattn {
namespace sm90 {

struct AttnWork {
  int unit, batch, head, kv_head;
  int m0;  // first query row of the CTA
};

template <class Cfg> __device__ __forceinline__ AttnWork schedule_work(const AttnParams& p) {
  AttnWork w;
  w.unit = p.unit_begin + int(blockIdx.y);
  w.batch = w.unit / p.q_heads;
  w.head = w.unit % p.q_heads;
  w.kv_head = w.head / p.kv_group;
  const int tile = Cfg::kCausal ? int(gridDim.x - 1 - blockIdx.x) : int(blockIdx.x);
  w.m0 = p.row_begin + tile * Cfg::kRows;
  return w;
}

}  // namespace sm90
}  // namespace vecattn

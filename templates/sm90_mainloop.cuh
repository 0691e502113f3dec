#pragma once
// A consumer warpgroup's main loop: for each key tile it owns, S = Q.K^T (wgmma, both operands in
// shared memory), the mask where the tile needs one, the online softmax, then O += P.V (wgmma, P
// from registers), and the stage handed back to the producer. A tile's softmax overlaps the
// previous tile's P.V (FlashAttention-3's intra-warpgroup pipelining), and the two consumers
// share the tensor cores: while one runs its softmax the other's MMAs proceed.
#include "sm90_config.cuh"
#include "sm90_scheduler.cuh"
#include "sm90_softmax.cuh"

namespace vecattn {
namespace sm90 {

template <class Cfg> struct Consumer {
  using T = typename Cfg::T;
  using Softmax = OnlineSoftmax<Cfg::kBN, Cfg::kHeadDim, T>;
  static constexpr int kBN = Cfg::kBN, kD = Cfg::kHeadDim;

  int wg;            // 0 or 1
  int row_a, row_b;  // this thread's two query rows
  float o[Cfg::kAccO];
  Softmax softmax;

  __device__ Consumer(const AttnWork& w) {
    wg = (int(threadIdx.x) - Cfg::kProducerThreads) / kWarpgroupThreads;
    const int t = int(threadIdx.x) % kWarpgroupThreads;
    row_a = w.m0 + (Cfg::kSplitKeys ? 0 : wg * 64) + (t / 32) * 16 + (t % 32) / 4;
    row_b = row_a + 8;
#pragma unroll
    for (int i = 0; i < Cfg::kAccO; ++i) o[i] = 0.f;
  }

  // Scores of keys past the tile's count, or (causal) after the row, become -inf.
  __device__ __forceinline__ void mask(float (&s)[Cfg::kAccS], const int* idx) const {
    const int quad = int(threadIdx.x) % 4;
#pragma unroll
    for (int n = 0; n < kBN / 8; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int key = idx[n * 8 + quad * 2 + e];
        if (key < 0 || (Cfg::kCausal && key > row_a)) s[4 * n + e] = neg_inf();
        if (key < 0 || (Cfg::kCausal && key > row_b)) s[4 * n + 2 + e] = neg_inf();
      }
  }

  __device__ void run(const AttnParams& p, const AttnSmem<Cfg>& sm) {
    // K-major descriptors: Q rows of this consumer, K rows of a stage; one k-step is 16 columns
    // (32 bytes) inside a 64-column block, the next block is a whole block further.
    const u32 q_base = smem_addr(sm.q()) + (Cfg::kSplitKeys ? 0 : wg * 64 * kRowBytes);
    auto q_desc = [&](int kk) {
      return sw128_desc(q_base + (kk / 4) * Cfg::QTile::kBlockBytes + (kk % 4) * 32, 16, kSwizzleAtomBytes);
    };
    auto k_desc = [&](int stage, int kk) {
      return sw128_desc(smem_addr(sm.k(stage)) + (kk / 4) * Cfg::KVTile::kBlockBytes + (kk % 4) * 32, 16,
                        kSwizzleAtomBytes);
    };
    // MN-major V: a k-step is 16 keys (rows); the 64-column atoms of D lie a block apart.
    auto v_desc = [&](int stage, int kk) {
      return sw128_desc(smem_addr(sm.v(stage)) + kk * 16 * kRowBytes, Cfg::KVTile::kBlockBytes, kSwizzleAtomBytes);
    };

    const int lane = int(threadIdx.x) % 32;
    auto issue_qk = [&](float (&s)[Cfg::kAccS], int stage) {
#pragma unroll
      for (int kk = 0; kk < kD / 16; ++kk) WgmmaSS<T, kBN>::run(s, q_desc(kk), k_desc(stage, kk), kk > 0);
      wgmma_commit();
    };
    auto issue_pv = [&](u32 (&pa)[kBN / 16][4], int stage) {
#pragma unroll
      for (int kk = 0; kk < kBN / 16; ++kk) WgmmaRS<T, kD>::run(o, pa[kk], v_desc(stage, kk));
      wgmma_commit();
    };
    auto release = [&](int stage) {
      __syncwarp();
      if (lane == 0) mbar_arrive(sm.empty(stage));
    };
    // Waits for tile j; returns its info word (count 0: no tile left for this consumer).
    auto acquire = [&](int j) {
      const int stage = j % Cfg::kStages;
      mbar_wait(sm.full(stage), (j / Cfg::kStages) & 1);
      const int info = *sm.info(stage);
      if (info & kTileGathered) fence_async_shared();  // cp.async rows (generic proxy) feed wgmma
      return info;
    };

    mbar_wait(sm.q_full(), 0);
    const int step = Cfg::kSplitKeys ? 2 : 1;
    int j = Cfg::kSplitKeys ? wg : 0;
    int info = acquire(j);
    if ((info & kTileCount) == 0) return;

    // The first tile: scores and probabilities only (O is still zero).
    float s[Cfg::kAccS];
    u32 pa[kBN / 16][4];
    float alpha_a, alpha_b;
    int prev = j % Cfg::kStages;
    wgmma_fence();
    issue_qk(s, prev);
    wgmma_wait<0>();
    fence_operands(s);
    if (info & kTileMasked) mask(s, sm.idx(prev));
    softmax.scores(s, p.sm_scale_log2, alpha_a, alpha_b);
    Softmax::pack(s, pa);

    // Then per tile: S = QK^T of this tile and O += PV of the previous one go to the tensor cores
    // together; this tile's softmax runs while the previous PV is still in flight, and O is
    // rescaled once that PV has landed.
    for (j += step;; j += step) {
      info = acquire(j);
      if ((info & kTileCount) == 0) break;
      const int stage = j % Cfg::kStages;
      fence_operands(o);
      wgmma_fence();
      issue_qk(s, stage);
      issue_pv(pa, prev);
      wgmma_wait<1>();
      fence_operands(s);
      if (info & kTileMasked) mask(s, sm.idx(stage));
      softmax.scores(s, p.sm_scale_log2, alpha_a, alpha_b);
      wgmma_wait<0>();
      fence_operands(o);
      fence_operands(pa);
      release(prev);
      Softmax::rescale(o, alpha_a, alpha_b);
      Softmax::pack(s, pa);
      prev = stage;
    }
    fence_operands(o);
    wgmma_fence();
    issue_pv(pa, prev);
    wgmma_wait<0>();
    fence_operands(o);
    fence_operands(pa);
    release(prev);
  }
};

}  // namespace sm90
}  // namespace vecattn

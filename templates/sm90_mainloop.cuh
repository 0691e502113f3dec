#pragma once
// A consumer warpgroup's main loop: for each key tile it owns, S = Q.K^T (wgmma; Q from registers
// at 64-key tiles, else from shared memory), the mask where the tile needs one, the online
// softmax, then O += P.V (wgmma, P from registers); a stage goes back to the producer once its
// P.V has landed.
// The two consumers share the tensor cores: while one runs its softmax the other's MMAs proceed.
// Where both read every tile (Pq 128, dense), this tile's S and the previous tile's P.V are
// issued together, and both are waited for before the softmax (ptxas hoisted a later wait for the
// P.V there anyway; forcing the overlap measured 3% slower on dense and equal on sparse, since the
// other consumer already keeps the tensor pipe busy: bench/NOTES.md, v7), so the previous stage
// goes back to the producer before the softmax. With split keys (Pq 64) a tile's P.V follows its
// own softmax, so a consumer holds one stage at a time (below).
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
    // K-major descriptors: Q rows of this consumer, K rows of a stage.
    const Sw128Desc q_desc(smem_addr(sm.q()) + (Cfg::kSplitKeys ? 0 : wg * 64 * kRowBytes), 16, kSwizzleAtomBytes);
    auto k_desc = [&](int stage) { return Sw128Desc(smem_addr(sm.k(stage)), 16, kSwizzleAtomBytes); };
    // MN-major V: a k-step is 16 keys (rows); the 64-column atoms of D lie a block apart.
    auto v_desc = [&](int stage) {
      return Sw128Desc(smem_addr(sm.v(stage)), Cfg::KVTile::kBlockBytes, kSwizzleAtomBytes);
    };
    // K-major k-step kk: 16 columns (32 bytes) inside a 64-column block, the next block a whole
    // block further.
    auto k_step = [](int kk, int block_bytes) { return u32((kk / 4) * block_bytes + (kk % 4) * 32); };

    const int lane = int(threadIdx.x) % 32;
    // Q in registers (the A-fragment layout, loaded once): the S GEMM then reads only K from
    // shared memory, half of what a 64x64x16 wgmma with both operands there reads in its 32
    // cycles (all of the SM's 128 B/clk). Measured +1.5%: shared memory was not the limit.
    u32 qa[Cfg::kQInRegs ? kD / 16 : 1][4];
    auto issue_qk = [&](float (&s)[Cfg::kAccS], int stage) {
      const Sw128Desc k = k_desc(stage);
#pragma unroll
      for (int kk = 0; kk < kD / 16; ++kk) {
        const u64 kd = k.at(k_step(kk, Cfg::KVTile::kBlockBytes));
        if constexpr (Cfg::kQInRegs)
          WgmmaRSK<T, kBN>::run(s, qa[kk], kd, kk > 0);
        else
          WgmmaSS<T, kBN>::run(s, q_desc.at(k_step(kk, Cfg::QTile::kBlockBytes)), kd, kk > 0);
      }
      wgmma_commit();
    };
    auto issue_pv = [&](u32 (&pa)[kBN / 16][4], int stage) {
      const Sw128Desc v = v_desc(stage);
#pragma unroll
      for (int kk = 0; kk < kBN / 16; ++kk) WgmmaRS<T, kD>::run(o, pa[kk], v.at(kk * 16 * kRowBytes));
      wgmma_commit();
    };
    auto release = [&](int stage) {
      __syncwarp();
      if (lane == 0) mbar_arrive(sm.empty(stage));
    };
    // Whether tile j has landed, without waiting.
    auto landed = [&](int j) { return mbar_test(sm.full(j % Cfg::kStages), (j / Cfg::kStages) & 1); };
    // Waits for tile j; returns its info word (count 0: no tile left for this consumer).
    auto acquire = [&](int j) {
      const int stage = j % Cfg::kStages;
      mbar_wait(sm.full(stage), (j / Cfg::kStages) & 1);
      const int info = *sm.info(stage);
      if (info & kTileGathered) fence_async_shared();  // cp.async rows (generic proxy) feed wgmma
      return info;
    };

    mbar_wait(sm.q_full(), 0);
    if constexpr (Cfg::kQInRegs) {
      // ldmatrix x4 per k-step: lanes 0-15 address rows 0-15 of the warp's 16 at the step's first
      // 8 columns, lanes 16-31 the same rows at the next 8 (the wgmma A-fragment order).
      const int warp = (int(threadIdx.x) % kWarpgroupThreads) / 32;
      const int row = (Cfg::kSplitKeys ? 0 : wg * 64) + warp * 16 + (lane & 15);
#pragma unroll
      for (int kk = 0; kk < kD / 16; ++kk)
        ldmatrix_x4(qa[kk], smem_addr(sm.q()) + Cfg::QTile::offset(row, kk * 2 + (lane >> 4)));
    }
    const int step = Cfg::kSplitKeys ? 2 : 1;
    int j = Cfg::kSplitKeys ? wg : 0;
    int info = acquire(j);
    if ((info & kTileCount) == 0) return;

    float s[Cfg::kAccS];
    u32 pa[kBN / 16][4];
    float alpha_a, alpha_b;
    // S = Q.K^T of the tile in `stage` alone on the tensor cores, masked where it needs, then its
    // probabilities.
    auto scores_of = [&](int stage, int tile_info) {
      wgmma_fence();
      issue_qk(s, stage);
      wgmma_wait<0>();
      fence_operands(s);
      if (tile_info & kTileMasked) mask(s, sm.idx(stage));
      softmax.scores(s, p.sm_scale_log2, alpha_a, alpha_b);
    };
    // Once a P.V has landed: O and P are this thread's again, and the stage goes back.
    auto pv_landed = [&](int stage) {
      fence_operands(o);
      fence_operands(pa);
      release(stage);
    };
    // O += P.V of the tile in `stage` alone on the tensor cores; the stage goes back once it landed.
    auto pv_alone = [&](int stage) {
      fence_operands(o);
      wgmma_fence();
      issue_pv(pa, stage);
      wgmma_wait<0>();
      pv_landed(stage);
    };

    if constexpr (Cfg::kSplitKeys) {
      // Split keys: each tile's P.V right after its own softmax, the consumer's next tile's S
      // queued behind it on the tensor cores, and the stage handed back once that P.V has landed
      // (a wait for all but the newest group). A consumer holds one stage through its softmax,
      // so its loading group keeps its other stages in flight (v12's consumers, holding two,
      // waited for tiles: bench/NOTES.md, v12f). The tensor pipe still overlaps: the
      // other consumer's GEMMs run during this one's softmax.
      int stage = j % Cfg::kStages;
      scores_of(stage, info);  // the first tile: O is still zero, nothing to rescale
      Softmax::pack(s, pa);
      while (true) {
        fence_operands(o);
        wgmma_fence();
        issue_pv(pa, stage);
        // Where the next tile has not landed yet, this stage goes back as soon as its P.V has,
        // not after that wait, since its loading group may be waiting for it (holding it across
        // the wait measured 2% slower at the DiT shapes, bench/NOTES.md, v14c). Decided per
        // warp: each warp arrives on `empty` for itself, and the GEMMs issued are the same
        // either way.
        const int nj = j + step;
        const bool early = !__shfl_sync(0xffffffffu, landed(nj), 0);
        if (early) {
          wgmma_wait<0>();
          pv_landed(stage);
        }
        const int next_info = acquire(nj);
        const bool more = (next_info & kTileCount) != 0;
        // After the last tile the S GEMM reruns on this tile's keys and is dropped (its loading
        // group writes nothing after the empty tile, and the merge waits for both consumers): a
        // GEMM issued on one branch only made ptxas serialize every wgmma of the kernel.
        const int next = more ? nj % Cfg::kStages : stage;
        wgmma_fence();
        issue_qk(s, next);
        wgmma_wait<1>();
        if (!early) pv_landed(stage);
        wgmma_wait<0>();
        fence_operands(s);
        if (!more) break;
        if (next_info & kTileMasked) mask(s, sm.idx(next));
        softmax.scores(s, p.sm_scale_log2, alpha_a, alpha_b);
        Softmax::rescale(o, alpha_a, alpha_b);
        Softmax::pack(s, pa);
        j += step;
        stage = next;
      }
      return;
    }

    // The first tile: scores and probabilities only (O is still zero).
    int prev = j % Cfg::kStages;
    scores_of(prev, info);
    Softmax::pack(s, pa);

    // Then per tile: S = QK^T of this tile and O += PV of the previous one go to the tensor cores
    // together; once both have landed the previous stage goes back, then this tile's softmax and
    // O's rescale.
    for (j += step;; j += step) {
      info = acquire(j);
      if ((info & kTileCount) == 0) break;
      const int stage = j % Cfg::kStages;
      fence_operands(o);
      wgmma_fence();
      issue_qk(s, stage);
      issue_pv(pa, prev);
      wgmma_wait<0>();
      fence_operands(s);
      fence_operands(o);
      fence_operands(pa);
      release(prev);
      if (info & kTileMasked) mask(s, sm.idx(stage));
      softmax.scores(s, p.sm_scale_log2, alpha_a, alpha_b);
      Softmax::rescale(o, alpha_a, alpha_b);
      Softmax::pack(s, pa);
      prev = stage;
    }
    pv_alone(prev);
  }
};

}  // namespace sm90
}  // namespace vecattn

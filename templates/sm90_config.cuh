#pragma once
// The Hopper attention kernel's compile-time shape and its shared-memory map, used by every role
// (scheduler, producer, consumer main loop, softmax, epilogue).
#include "params.h"
#include "sm90_wgmma.cuh"
#include "tile.cuh"

namespace vecattn {
namespace sm90 {

template <int HeadDim, typename T_, int BN, int Stages, bool Causal, int Pq> struct AttnConfig {
  using T = T_;
  static constexpr int kHeadDim = HeadDim, kBN = BN, kStages = Stages, kPq = Pq;
  static constexpr bool kCausal = Causal, kSparse = Pq > 0;
  // Pq = 64: both consumers hold the block's 64 rows and take its key tiles in turn (merged at the
  // end), so one block keeps two warpgroups busy. Pq = 128 and dense: each consumer owns 64 of
  // the CTA's 128 rows and reads every tile, so a K/V tile serves 128 rows.
  static constexpr bool kSplitKeys = Pq == 64;
  static constexpr int kRows = attn_sm90_rows(Pq);
  // The span of the causal sink and diagonal blocks (sparse), or of the dense CTA's rows.
  static constexpr int kBlockRows = kSparse ? Pq : kRows;
  static constexpr int kConsumers = 2;
  // Two producer warpgroups: cp.async gathers are limited by the copies each warp keeps in flight
  // (one producer warpgroup moved ~12 B/clk per SM), so eight warps issue them.
  static constexpr int kProducerThreads = kAttnSm90ProducerThreads;
  // The threads that run the key schedule and issue the copies: every producer where rows are
  // gathered; one warpgroup for dense tiles (one thread issues their TMA boxes; more warps would
  // only spin on the ring's barriers in the consumers' issue slots).
  static constexpr int kLoaderThreads = kSparse ? kProducerThreads : kWarpgroupThreads;
  static constexpr int kThreads = kAttnSm90Threads;
  // 65536 registers per SM: the producer needs few (addresses, the key schedule), the consumers
  // hold S and O accumulators (2 x 64 fp32 at BN = D = 128) and P.
  static constexpr int kProducerRegs = 48, kConsumerRegs = 208;
  static_assert(kThreads == kProducerThreads + kWarpgroupThreads * kConsumers, "producers, then two consumers");
  static_assert(kProducerRegs * kProducerThreads + kConsumerRegs * kConsumers * kWarpgroupThreads <= 65536,
                "the register split exceeds the register file");
  static_assert(HeadDim == 64 || HeadDim == 128, "head_dim 64 or 128");
  static_assert(BN == 64 || BN == 128, "keys per tile: 64 or 128 (the N of one wgmma)");
  static_assert(Stages >= 2 && Stages <= 6, "2..6 pipeline stages");
  // Split keys: each consumer has its own loading group and half of the ring (an even number of
  // stages, so a stage has one writer); with one stage a group could not load while its consumer
  // computes.
  static_assert(!kSplitKeys || (Stages % 2 == 0 && Stages >= 4), "split keys need 4 or 6 stages");
  static_assert(!kSparse || Pq == 64 || Pq == 128, "Pq 64 or 128");
  static_assert(BN <= kWarpgroupThreads, "the producer writes one key index per thread");

  using QTile = SwizzledTile<kRows, HeadDim>;
  using KVTile = SwizzledTile<BN, HeadDim>;
  static constexpr AttnSm90Layout kLayout = attn_sm90_layout(Pq, BN, HeadDim, Stages);
  static_assert(kLayout.kv == QTile::kBytes && kLayout.stage_bytes == 2 * KVTile::kBytes, "layout drift");
  static_assert(kLayout.kv % kSwizzleAtomBytes == 0 && KVTile::kBytes % kSwizzleAtomBytes == 0, "tiles on atoms");
  static_assert(attn_sm90_smem_bytes(Pq, BN, HeadDim, Stages) <= kAttnSm90MaxSmem, "shared memory: fewer stages or keys");
  // The merge of split-key partials reuses the K/V stages: O (HeadDim/2 floats) and 4 row
  // statistics per consumer thread.
  static_assert((HeadDim / 2 + 4) * kWarpgroupThreads * 4 <= Stages * kLayout.stage_bytes, "merge scratch");

  // Q.K^T with Q in registers (32 more per thread at D = 128) where the accumulators leave room:
  // at 64-key tiles S, P, O and Q take 144 of the consumer's 208.
  static constexpr bool kQInRegs = BN == 64;

  static constexpr int kAccS = BN / 2;        // S accumulator floats per consumer thread
  static constexpr int kAccO = HeadDim / 2;   // O accumulator floats per consumer thread
};

// Pointers into one CTA's shared memory.
template <class Cfg> struct AttnSmem {
  char* base;
  __device__ explicit AttnSmem(char* aligned) : base(aligned) {}
  __device__ char* q() const { return base + Cfg::kLayout.q; }
  __device__ char* k(int stage) const { return base + Cfg::kLayout.kv + stage * Cfg::kLayout.stage_bytes; }
  __device__ char* v(int stage) const { return k(stage) + Cfg::KVTile::kBytes; }
  __device__ int* idx(int stage) const { return reinterpret_cast<int*>(base + Cfg::kLayout.idx) + stage * Cfg::kBN; }
  __device__ int* info(int stage) const { return reinterpret_cast<int*>(base + Cfg::kLayout.info) + stage; }
  __device__ int* list() const { return reinterpret_cast<int*>(base + Cfg::kLayout.list); }
  __device__ int* scratch() const { return reinterpret_cast<int*>(base + Cfg::kLayout.scratch); }
  __device__ float* merge() const { return reinterpret_cast<float*>(base + Cfg::kLayout.kv); }
  __device__ u32 q_full() const { return smem_addr(base + Cfg::kLayout.bars); }
  __device__ u32 full(int stage) const { return q_full() + 8 * (1 + stage); }
  __device__ u32 empty(int stage) const { return q_full() + 8 * (1 + Cfg::kStages + stage); }
};

// Named barriers (0 is __syncthreads): the key schedules of the two loading groups, their shared
// refills, and the consumers' merge of split-key partials.
constexpr int kLoadBarrier[2] = {1, 3};
constexpr int kMergeBarrier = 2;
constexpr int kRefillBarrier = 4;  // both loading groups, compacting their shared key list

// A tile's info word: its real key count, and whether some of its scores must be masked (keys
// past the count, or causal keys after a row).
constexpr int kTileMasked = 1 << 16;
constexpr int kTileCount = kTileMasked - 1;
// Its rows were gathered by cp.async (the generic proxy): wgmma may read them only after a proxy
// fence.
constexpr int kTileGathered = 1 << 17;

}  // namespace sm90
}  // namespace vecattn

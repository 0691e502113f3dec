#pragma once
// The producer warpgroups: load the CTA's Q tile, then walks the key schedule and brings each
// tile's K and V rows into the next free stage in the 128-byte swizzled layout wgmma reads.
//   contiguous keys (sink, diagonal, dense ranges): the copy engine (TMA), one box of BN rows per
//     64 columns, issued by one thread;
//   gathered keys (the selection): cp.async, 16 bytes a copy, each thread two column chunks (half
//     a row apart) of rows a pass apart (16 rows a pass for a 128-thread group at D = 128). (sm_90 has no
//     gathering TMA, and one box per row went through the uniform datapath lane by lane: about
//     20 cycles a box, 4 boxes a key, slower than cp.async by 2x.)
// A stage is published on its `full` barrier twice per loading thread: once when its cp.async
// copies have landed (cp.async.mbarrier.arrive, immediate when it issued none) and once with
// release semantics for the key indices and tile info it wrote; the first thread's second
// arrival also expects the copy engine's bytes. (One arrival per warp instead, with the copies
// tracked by the non-counting cp.async arrive, measured under 1% faster and tripped
// compute-sanitizer's synccheck and racecheck, which follow arrivals per thread.)
#include "key_schedule.cuh"
#include "sm90_config.cuh"
#include "sm90_scheduler.cuh"

namespace vecattn {
namespace sm90 {

template <class Cfg> struct Producer {
  using T = typename Cfg::T;
  // Split keys: two loading groups, one per consumer. Group g loads tiles g, g + 2, ... into its own
  // stages (Stages is even, so stage j % Stages has one writer) from its own copy of the key
  // schedule, stepping over the other group's tiles without loading them (the two meet only at the
  // refills of their shared key list, below). The two pipelines then run side by side: one group
  // of eight warps in lockstep delivered a gathered tile every ~1000 cycles (its per-tile chain of
  // waits, barrier and copies), half of what two consumers can take at Pq 64 (bench/NOTES.md, v11).
  static constexpr int kGroups = Cfg::kSplitKeys ? 2 : 1;
  static constexpr int kGroupThreads = Cfg::kLoaderThreads / kGroups;
  // The groups share one key list, compacted by all loading threads together: each refill reads
  // the mask words once, not once a group, and covers twice the keys.
  static constexpr int kListCapacity = Cfg::kLayout.list_capacity;
  static_assert(Cfg::kLoaderThreads / 32 + 1 <= kAttnSm90ScratchBytes / 4, "scan scratch: one int per warp, plus one");
  static_assert(kGroups == 1 || Cfg::kStages % 2 == 0, "one writer per stage: an even ring");
  // Arrivals on one stage's `full` barrier: two per thread of its group (plus the copy engine's bytes).
  static constexpr int kFullArrivals = 2 * kGroupThreads;
  static constexpr int kColBlocks = Cfg::kHeadDim / 64;
  static constexpr u32 kTileBytes = 2u * Cfg::KVTile::kBytes;  // K and V, out-of-bounds rows included
  static constexpr u32 kQBytes = Cfg::QTile::kBytes;
  static constexpr int kChunks = Cfg::kHeadDim / 8;               // 16-byte chunks per row
  // Each thread copies two chunks of a row, half a row apart: one key read and one address per
  // row serve both (the second is a constant offset in global and in shared memory).
  static constexpr int kChunksPerThread = 2;
  static constexpr int kThreadsPerRow = kChunks / kChunksPerThread;
  static constexpr int kRowsPerPass = kGroupThreads / kThreadsPerRow;  // rows one pass of the group copies
  static constexpr int kRowsPerThread = Cfg::kBN / kRowsPerPass;
  // Mask words a thread reads per refill pass once the list is under half full after a pass (a
  // sparse row: a 4096-key list at ~7% kept spans ~840 words, three passes of the loading threads,
  // not four).
  static constexpr int kMaskWords = 2;
  // Keys read ahead of their copies: four (eight registers of addresses), as many as the
  // producer's 48 registers hold.
  static constexpr int kKeyBatch = kRowsPerThread < 4 ? kRowsPerThread : 4;
  static_assert(kRowsPerThread % kKeyBatch == 0, "whole key batches");

  // K and V rows idx[0, BN) of a tile (-1: zero-filled) into one stage, by cp.async. A batch of
  // keys is read first, then its copies go out back to back (read one row at a time, each row's
  // copies waited on its key's shared-memory load).
  template <class Group>
  __device__ static __forceinline__ void gather_kv(u32 k_dst, u32 v_dst, const T* k, const T* v, const AttnParams& p,
                                                   const int* idx) {
    using Tile = typename Cfg::KVTile;
    const int c = Group::rank() % kThreadsPerRow, r0 = Group::rank() / kThreadsPerRow;
    const char* k_col = reinterpret_cast<const char*>(k + c * 8);
    const char* v_col = reinterpret_cast<const char*>(v + c * 8);
    const u64 k_row_bytes = u64(p.k_stride_s) * sizeof(T), v_row_bytes = u64(p.v_stride_s) * sizeof(T);
    // Rows a pass apart share their swizzle phase (a pass is whole 8-row atoms): one offset per
    // chunk a thread copies.
    static_assert(kRowsPerPass % 8 == 0 && kRowsPerPass <= Cfg::kBN, "a pass of whole swizzle atoms");
    constexpr int kHalfRowBytes = kThreadsPerRow * 16;
    const u32 off0 = Tile::offset(r0, c), off1 = Tile::offset(r0, c + kThreadsPerRow);
#pragma unroll
    for (int b = 0; b < kRowsPerThread; b += kKeyBatch) {
      int key[kKeyBatch];
#pragma unroll
      for (int i = 0; i < kKeyBatch; ++i) key[i] = idx[r0 + (b + i) * kRowsPerPass];
#pragma unroll
      for (int i = 0; i < kKeyBatch; ++i) {
        const u32 row = max(key[i], 0);  // an empty slot reads nothing but still forms an address
        const u32 step = (b + i) * kRowsPerPass * kRowBytes;
        const char* k_row = row_address(k_col, row, k_row_bytes);
        const char* v_row = row_address(v_col, row, v_row_bytes);
        cp_async_16_key(k_dst + off0 + step, k_row, key[i]);
        cp_async_16_key(k_dst + off1 + step, k_row + kHalfRowBytes, key[i]);
        cp_async_16_key(v_dst + off0 + step, v_row, key[i]);
        cp_async_16_key(v_dst + off1 + step, v_row + kHalfRowBytes, key[i]);
      }
    }
  }

  __device__ static void run(const AttnSm90Params& prm, const AttnWork& w, const AttnSmem<Cfg>& sm) {
    if (int(threadIdx.x) < Cfg::kLoaderThreads) load(prm, w, sm);
  }

  // A loading group's tiles: g, g + kGroups, ... for group g (with one group, every tile). Both
  // groups run this one copy of the code (SplitGroup), so they meet at their shared refill's
  // barriers at the same instructions.
  __device__ static void load(const AttnSm90Params& prm, const AttnWork& w, const AttnSmem<Cfg>& sm) {
    using Group = SplitGroup<kGroups, kGroupThreads, kLoadBarrier[0], kLoadBarrier[1]>;
    // With one group: the same threads and barrier as Group.
    using Refill = NamedGroup<kGroups == 2 ? kRefillBarrier : kLoadBarrier[0], Cfg::kLoaderThreads, 0>;
    const int g = Group::index();
    const AttnParams& p = prm.a;
    const int tid = Group::rank();
    const T* k = static_cast<const T*>(p.k) + i64(w.batch) * p.k_stride_b + i64(w.kv_head) * p.k_stride_h;
    const T* v = static_cast<const T*>(p.v) + i64(w.batch) * p.v_stride_b + i64(w.kv_head) * p.v_stride_h;

    if (threadIdx.x == 0) {
      for (int cb = 0; cb < kColBlocks; ++cb)
        tma_load_4d(smem_addr(sm.q()) + cb * Cfg::QTile::kBlockBytes, &prm.q, cb * 64, w.m0, w.head, w.batch,
                    sm.q_full());
      mbar_arrive_expect_tx(sm.q_full(), kQBytes);
    }

    KeySchedule ks;
    const unsigned long long* mask_row = nullptr;
    if constexpr (Cfg::kSparse) {
      const int block = w.m0 / Cfg::kPq;
      mask_row = p.mask + ((i64(w.unit) - p.mask_unit_origin) * ((p.seq_len + Cfg::kPq - 1) / Cfg::kPq) + block) * p.words;
      ks = KeySchedule::sparse<Cfg::kPq, Cfg::kCausal, true>(w.m0, p.words, p.seq_len);
    } else {
      ks = KeySchedule::range(Cfg::kCausal ? min(w.m0 + Cfg::kRows, p.seq_len) : p.seq_len);
    }
    auto tile_keys = [&](int* idx, bool write) {
      return next_tile<Group, Cfg::kBN, Cfg::kBlockRows, Cfg::kCausal, kListCapacity, kMaskWords, Refill>(
          ks, idx, mask_row, sm.list(), sm.scratch(), w.m0, p.seq_len, write);
    };

    // Tile j goes to stage j % Stages and, with split keys, to consumer j % 2. After the last
    // real tile each group hands its consumer an empty one, which ends its loop.
    // One call of tile_keys a step, for the group's own tiles and the other group's alike, so
    // a refill that either triggers is reached from that one place.
    for (int j = 0;; ++j) {
      const bool mine = kGroups == 1 || j % 2 == g;
      const int stage = j % Cfg::kStages;
      if (mine && j >= Cfg::kStages) mbar_wait(sm.empty(stage), (j / Cfg::kStages - 1) & 1);
      int* idx = sm.idx(stage);
      const int n = tile_keys(idx, mine);
      if (!mine) continue;
      const u32 full = sm.full(stage);
      bool by_engine = false;  // this tile's rows come through the copy engine
      if (n > 0) {
        const u32 k_dst = smem_addr(sm.k(stage)), v_dst = smem_addr(sm.v(stage));
        by_engine = ks.phase != KeySchedule::kSelected;
        if (by_engine) {
          // Consecutive keys idx[0] .. idx[0] + n - 1: whole boxes (rows past n are masked).
          if (tid == 0)
            for (int cb = 0; cb < kColBlocks; ++cb) {
              const int off = cb * Cfg::KVTile::kBlockBytes;
              tma_load_4d(k_dst + off, &prm.k_tiles, cb * 64, idx[0], w.kv_head, w.batch, full);
              tma_load_4d(v_dst + off, &prm.v_tiles, cb * 64, idx[0], w.kv_head, w.batch, full);
            }
        } else {
          gather_kv<Group>(k_dst, v_dst, k, v, p, idx);
        }
      }
      mbar_arrive_on_copies(full);
      // Keys ascend within a tile, so its last key tells whether a causal row may lie before it.
      if (tid == 0) {
        *sm.info(stage) = n | ((n > 0 && (n < Cfg::kBN || (Cfg::kCausal && idx[n - 1] > w.m0))) ? kTileMasked : 0) |
                          (n > 0 && !by_engine ? kTileGathered : 0);
        mbar_arrive_expect_tx(full, by_engine ? kTileBytes : 0);
      } else {
        mbar_arrive(full);
      }
      if (n == 0) break;
    }
  }
};

}  // namespace sm90
}  // namespace vecattn

#pragma once
// The producer warpgroup: loads the CTA's Q tile, then walks the key schedule and brings each
// tile's K and V rows into the next free stage, all through the copy engine (TMA), which writes
// the 128-byte swizzled layout wgmma reads. A contiguous range of keys (sink, diagonal, dense)
// is one box of BN rows per 64 columns; gathered keys (the selection) are one box per key and 64
// columns, issued by the thread that owns the key (sm_90 has no gathering TMA; per-thread
// cp.async gathers tried first kept too few bytes in flight: ~12 B/clk per SM). A stage is
// published on its `full` barrier by every producer thread (release: the key indices and tile
// info it wrote) and by the copy engine's byte count.
#include "key_schedule.cuh"
#include "sm90_config.cuh"
#include "sm90_scheduler.cuh"

namespace vecattn {
namespace sm90 {

// Arrivals on one stage's `full` barrier: one per producer thread (plus the bytes).
constexpr int kFullArrivals = kWarpgroupThreads;

template <class Cfg> struct Producer {
  using Group = NamedGroup<1, kWarpgroupThreads, 0>;  // warpgroup 0, barrier 1
  static constexpr int kColBlocks = Cfg::kHeadDim / 64;
  static constexpr u32 kTileBytes = 2u * Cfg::KVTile::kBytes;  // K and V, out-of-bounds rows included
  static constexpr u32 kQBytes = Cfg::QTile::kBytes;

  __device__ static void run(const AttnSm90Params& prm, const AttnWork& w, const AttnSmem<Cfg>& sm) {
    const AttnParams& p = prm.a;
    const int tid = Group::rank();

    if (tid == 0) {
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
      ks = KeySchedule::sparse<Cfg::kPq, Cfg::kCausal>(w.m0, p.words);
    } else {
      ks = KeySchedule::range(Cfg::kCausal ? min(w.m0 + Cfg::kRows, p.seq_len) : p.seq_len);
    }

    // Tile j goes to stage j % Stages; with split keys, to consumer j % 2. After the last real
    // tile every consumer gets an empty one, which ends its loop.
    int terminals = 0;
    for (int j = 0; terminals < (Cfg::kSplitKeys ? 2 : 1); ++j) {
      const int stage = j % Cfg::kStages;
      if (j >= Cfg::kStages) mbar_wait(sm.empty(stage), (j / Cfg::kStages - 1) & 1);
      int* idx = sm.idx(stage);
      const int n = terminals ? 0
                              : next_tile<Group, Cfg::kBN, Cfg::kBlockRows, Cfg::kCausal>(
                                    ks, idx, mask_row, sm.list(), sm.scratch(), w.m0, p.seq_len);
      const u32 full = sm.full(stage);
      if (n > 0) {
        const u32 k_dst = smem_addr(sm.k(stage)), v_dst = smem_addr(sm.v(stage));
        if (ks.phase != KeySchedule::kSelected) {
          // Consecutive keys idx[0] .. idx[0] + n - 1: whole boxes (rows past n are masked).
          if (tid == 0)
            for (int cb = 0; cb < kColBlocks; ++cb) {
              const int off = cb * Cfg::KVTile::kBlockBytes;
              tma_load_4d(k_dst + off, &prm.k_tiles, cb * 64, idx[0], w.kv_head, w.batch, full);
              tma_load_4d(v_dst + off, &prm.v_tiles, cb * 64, idx[0], w.kv_head, w.batch, full);
            }
        } else if (tid < Cfg::kBN) {
          const int key = idx[tid];  // -1 past n: an out-of-bounds row, zero-filled
          for (int cb = 0; cb < kColBlocks; ++cb) {
            const int off = cb * Cfg::KVTile::kBlockBytes + tid * kRowBytes;
            tma_load_4d(k_dst + off, &prm.k_rows, cb * 64, key, w.kv_head, w.batch, full);
            tma_load_4d(v_dst + off, &prm.v_rows, cb * 64, key, w.kv_head, w.batch, full);
          }
        }
      } else {
        ++terminals;
      }
      // Keys ascend within a tile, so its last key tells whether a causal row may lie before it.
      if (tid == 0) {
        *sm.info(stage) = n | ((n > 0 && (n < Cfg::kBN || (Cfg::kCausal && idx[n - 1] > w.m0))) ? kTileMasked : 0);
        mbar_arrive_expect_tx(full, n > 0 ? kTileBytes : 0);
      } else {
        mbar_arrive(full);
      }
    }
  }
};

}  // namespace sm90
}  // namespace vecattn

#pragma once
// The producer warpgroup: loads the CTA's Q tile, then walks the key schedule and gathers each
// tile's K and V rows into the next free stage. Rows are gathered with cp.async (16 bytes a
// thread, written straight into the swizzled layout); the copy engine cannot gather rows on
// sm_90, and 128 threads keep 32 copies each in flight per 128-key tile (D = 128). A stage is published
// on its `full` barrier twice per thread: once when its copies land (cp.async.mbarrier.arrive)
// and once, with release semantics, for the key indices and tile info it wrote.
#include "key_schedule.cuh"
#include "sm90_config.cuh"
#include "sm90_scheduler.cuh"

namespace vecattn {
namespace sm90 {

// Arrivals on one stage's `full` barrier: two per producer thread.
constexpr int kFullArrivals = 2 * kWarpgroupThreads;

template <class Cfg> struct Producer {
  using T = typename Cfg::T;
  using Group = NamedGroup<1, kWarpgroupThreads, 0>;  // warpgroup 0, barrier 1
  static constexpr int kChunks = Cfg::kHeadDim / 8;    // 16-byte chunks per row

  // Each thread copies one 16-byte column chunk of every (128 / kChunks)-th row, so a row's
  // address is computed once per 16 (D = 128) or 8 (D = 64) chunks, and the 16 threads of a row
  // read its 256 contiguous bytes together.
  static constexpr int kRowsPerPass = kWarpgroupThreads / kChunks;

  // Rows [row0, row0 + Rows) of a [S, D] matrix into a swizzled tile, zero past seq_len.
  template <class Tile, int Rows>
  __device__ static __forceinline__ void copy_range(char* tile, const T* src, long long stride, int row0, int seq_len) {
    const int c = Group::rank() % kChunks, r0 = Group::rank() / kChunks;
    const u32 dst = smem_addr(tile);
#pragma unroll
    for (int r = r0; r < Rows; r += kRowsPerPass) {
      const int row = row0 + r;
      const bool valid = row < seq_len;
      cp_async_16(dst + Tile::offset(r, c), src + i64(valid ? row : 0) * stride + c * 8, valid);
    }
  }

  // K and V rows idx[0, BN) of a tile (-1: zero-filled) into one stage.
  __device__ static __forceinline__ void gather_kv(char* k_tile, char* v_tile, const T* k, const T* v,
                                                   const AttnParams& p, const int* idx) {
    using Tile = typename Cfg::KVTile;
    const int c = Group::rank() % kChunks, r0 = Group::rank() / kChunks;
    const u32 k_dst = smem_addr(k_tile), v_dst = smem_addr(v_tile);
#pragma unroll
    for (int r = r0; r < Cfg::kBN; r += kRowsPerPass) {
      const int key = idx[r];
      const i64 row = key >= 0 ? key : 0;
      const int off = Tile::offset(r, c);
      cp_async_16(k_dst + off, k + row * p.k_stride_s + c * 8, key >= 0);
      cp_async_16(v_dst + off, v + row * p.v_stride_s + c * 8, key >= 0);
    }
  }

  __device__ static void run(const AttnParams& p, const AttnWork& w, const AttnSmem<Cfg>& sm) {
    const T* q = static_cast<const T*>(p.q) + i64(w.batch) * p.q_stride_b + i64(w.head) * p.q_stride_h;
    const T* k = static_cast<const T*>(p.k) + i64(w.batch) * p.k_stride_b + i64(w.kv_head) * p.k_stride_h;
    const T* v = static_cast<const T*>(p.v) + i64(w.batch) * p.v_stride_b + i64(w.kv_head) * p.v_stride_h;
    const int tid = Group::rank();

    copy_range<typename Cfg::QTile, Cfg::kRows>(sm.q(), q, p.q_stride_s, w.m0, p.seq_len);
    mbar_arrive_on_copies(sm.q_full());

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
      if (n > 0) {
        gather_kv(sm.k(stage), sm.v(stage), k, v, p, idx);
      } else {
        ++terminals;
      }
      // Keys ascend within a tile, so its last key tells whether a causal row may lie before it.
      if (tid == 0)
        *sm.info(stage) = n | ((n > 0 && (n < Cfg::kBN || (Cfg::kCausal && idx[n - 1] > w.m0))) ? kTileMasked : 0);
      mbar_arrive_on_copies(sm.full(stage));
      mbar_arrive(sm.full(stage));
    }
  }
};

}  // namespace sm90
}  // namespace vecattn

#pragma once
// TilingSelect on Hopper (docs/semantics.md §3-§4): the rule and the mask of select.cuh, with the
// scores on warpgroup MMAs.
//   warpgroups 0 .. Rows/64 - 1  consumers: 64 pooled rows each (scaled once into shared memory),
//                                times each 64-key K tile (wgmma, both operands in shared memory),
//                                then the MinP rule (select_rule.cuh) and one mask word per row
//   the last warp                producer: one thread brings K tiles into a ring of stages with
//                                the copy engine (keys are contiguous: one box per 64 columns)
// Why this shape: with mma.sync every warp read the whole K tile from shared memory for its 16
// rows (16 FLOP per byte: the shared-memory port was as busy as the tensor cores); a warpgroup MMA
// reads it once for 64 rows. The rule is ALU work, the MMAs are asynchronous: a consumer issues two
// steps' MMAs and runs the first step's rule while the second's run, and two CTAs per SM (four
// consumer warpgroups) fill the rest.
#include "params.h"
#include "select_rule.cuh"
#include "sm90_wgmma.cuh"
#include "tile.cuh"

namespace vecattn {

template <int Pq, int Bk, int Gk, int HeadDim, typename T, int Rows, int Stages, bool Causal>
__global__ void __launch_bounds__(select_sm90_threads(Rows), Rows <= 128 ? 2 : 1)
    select_sm90_kernel(const __grid_constant__ SelectSm90Params prm) {
  using namespace sm90;
  constexpr int kStep = kSelectKeysPerStep;
  constexpr int kConsumers = Rows / 64;
  constexpr int kConsumerThreads = kConsumers * kWarpgroupThreads;
  constexpr int kThreads = select_sm90_threads(Rows);
  using QTile = SwizzledTile<Rows, HeadDim>;       // written by the threads, read by wgmma
  using KTile = SwizzledTile<kStep, HeadDim>;      // written by the copy engine, read by wgmma
  static_assert(Rows % 64 == 0 && Rows <= 192, "rows per CTA: one to three consumer warpgroups of 64");
  static_assert(!Causal || Pq % kStep == 0, "causal candidates start at Pq, which must be a whole mask word");
  static_assert(Stages >= 2 && Stages <= 6, "2..6 K stages");
  static_assert(select_sm90_smem_bytes(Rows, HeadDim, Stages) <= 227 * 1024, "shared memory: fewer stages");

  extern __shared__ char smem_raw[];
  // The dynamic base aligned up to a swizzle atom (the launch reserves one atom of slack).
  char* smem = smem_raw + ((kSwizzleAtomBytes - (smem_addr(smem_raw) & (kSwizzleAtomBytes - 1))) &
                           (kSwizzleAtomBytes - 1));
  char* k_tiles = smem;
  char* q_tile = smem + Stages * KTile::kBytes;
  const u32 bars = smem_addr(q_tile + QTile::kBytes);
  auto full = [&](int stage) { return bars + 8 * stage; };
  auto empty = [&](int stage) { return bars + 8 * (Stages + stage); };

  const SelectParams& p = prm.s;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int unit = p.unit_begin + blockIdx.z;
  const int batch = unit / p.q_heads, head = unit % p.q_heads, kv_head = head / p.kv_group;
  const int row0 = blockIdx.y * Rows;
  const int rows_end = min(row0 + Rows, p.num_pooled);
  const int key0 = blockIdx.x * p.key_chunk;
  const int key1 = min(key0 + p.key_chunk, p.seq_len);
  unsigned long long* mask = p.mask + (i64(unit) - p.mask_unit_origin) * p.num_pooled * p.words;

  // Keys some row of this CTA may select: causal rows see [Pq, i * Pq).
  const int compute_begin = Causal ? max(key0, Pq) : key0;
  const int compute_end = Causal ? min(key1, (rows_end - 1) * Pq) : key1;
  const int word0 = key0 / kStep, word1 = (key1 + kStep - 1) / kStep;
  const int cw0 = compute_begin / kStep;
  const int cw1 = compute_end > compute_begin ? (compute_end + kStep - 1) / kStep : cw0;

  if (p.exact_mask) zero_unreachable_words(mask, p.words, row0, rows_end, word0, word1, cw0, cw1, kThreads);
  const int steps = cw1 - cw0;
  if (steps <= 0) return;

  if (tid == 0) {
    for (int s = 0; s < Stages; ++s) {
      mbar_init(full(s), 1);
      mbar_init(empty(s), kConsumerThreads / 32);  // one arrival per consumer warp
    }
    // The copy engine completes transactions on these barriers: their initialization must be
    // visible to it (the async proxy), not only to the other threads.
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    fence_async_shared();
  }
  // Pooled rows, times sm_scale and rounded to T (docs/semantics.md §3), into shared memory.
  const T* qp = static_cast<const T*>(p.qp) + ((i64(unit) - p.qp_unit_origin) * p.num_pooled + row0) * HeadDim;
  for (int i = tid; i < Rows * QTile::kChunksPerRow; i += kThreads) {
    const int r = i / QTile::kChunksPerRow, c = i % QTile::kChunksPerRow;
    vec16 v{0, 0, 0, 0};
    if (row0 + r < rows_end) {
      v = scaled_chunk<T>(load_vec16(qp + i64(r) * HeadDim + c * 8), p.sm_scale);
    }
    *reinterpret_cast<vec16*>(q_tile + QTile::offset(r, c)) = v;
  }
  fence_async_shared();  // the rows were stored through the generic proxy; wgmma reads them
  __syncthreads();

  if (tid >= kConsumerThreads) {
    // Producer: K tile of step j into stage j % Stages, once every consumer warp is done with the
    // tile that stage held before.
    if (tid == kConsumerThreads) {
      for (int j = 0; j < steps; ++j) {
        const int stage = j % Stages;
        if (j >= Stages) mbar_wait(empty(stage), (j / Stages - 1) & 1);
        mbar_arrive_expect_tx(full(stage), KTile::kBytes);
        const u32 dst = smem_addr(k_tiles + stage * KTile::kBytes);
#pragma unroll
        for (int cb = 0; cb < KTile::kColBlocks; ++cb)
          tma_load_4d(dst + cb * KTile::kBlockBytes, &prm.k, cb * 64, (cw0 + j) * kStep, kv_head, batch, full(stage));
      }
    }
    return;
  }

  // Consumer warpgroup wg: rows row0 + 64 wg + [0, 64); this thread's two are g and g + 8 of its
  // warp's 16.
  const int wg = warp / 4;
  const int g = lane >> 2, quad = lane & 3;
  const int row_a = row0 + wg * 64 + (warp % 4) * 16 + g, row_b = row_a + 8;
  const int lo = Causal ? Pq : 0;
  const int hi_a = Causal ? min(row_a * Pq, p.seq_len) : p.seq_len;
  const int hi_b = Causal ? min(row_b * Pq, p.seq_len) : p.seq_len;
  const float gap = p.gap[head];
  // Causal rows end at their own i * Pq, so the warpgroup of the CTA's first 64 rows runs out of
  // candidates before the CTA does: past its last word it only writes zeros.
  const int wg_rows_end = min(row0 + wg * 64 + 64, rows_end);
  const int wg_keys_end = min(max(wg_rows_end - 1, 0) * Pq, p.seq_len);
  const int wg_steps = Causal ? min(steps, max(0, (wg_keys_end + kStep - 1) / kStep - cw0)) : steps;

  const u32 q_base = smem_addr(q_tile) + wg * 64 * kRowBytes;
  auto q_desc = [&](int kk) {
    return sw128_desc(q_base + (kk / 4) * QTile::kBlockBytes + (kk % 4) * 32, 16, kSwizzleAtomBytes);
  };
  auto k_desc = [&](int stage, int kk) {
    return sw128_desc(smem_addr(k_tiles + stage * KTile::kBytes) + (kk / 4) * KTile::kBlockBytes + (kk % 4) * 32, 16,
                      kSwizzleAtomBytes);
  };
  // Scores of step j into s, once its K tile has landed (asynchronous: wgmma_wait before reading s).
  auto issue = [&](float (&s)[32], int j) {
    const int stage = j % Stages;
    mbar_wait(full(stage), (j / Stages) & 1);
    fence_operands(s);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < HeadDim / 16; ++kk) WgmmaSS<T, 64>::run(s, q_desc(kk), k_desc(stage, kk), kk > 0);
    wgmma_commit();
  };
  auto release = [&](int j) {
    __syncwarp();
    if (lane == 0) mbar_arrive(empty(j % Stages));
  };
  // Both rows' words are in every thread of the quad: one thread stores each.
  int kept = 0;  // keys kept of this thread's stored row (quad 0: row a, quad 1: row b)
  auto store = [&](int word, unsigned long long bits_a, unsigned long long bits_b) {
    if (quad == 0 && row_a < rows_end) mask[i64(row_a) * p.words + word] = bits_a;
    if (quad == 1 && row_b < rows_end) mask[i64(row_b) * p.words + word] = bits_b;
    kept += __popcll(quad == 0 ? bits_a : bits_b);
  };
  SelectRule<Bk, Gk> rule;
  // The rule on step j's scores (Crossing: the last word, when S is not a multiple of 64), stored.
  auto finish = [&](const float (&s)[32], int j, bool crossing) {
    const int word = cw0 + j;
    unsigned long long bits_a, bits_b;
    if (crossing) rule.template step<true>(s, word * kStep, gap, lo, hi_a, hi_b, bits_a, bits_b);
    else rule.template step<false>(s, word * kStep, gap, lo, hi_a, hi_b, bits_a, bits_b);
    store(word, bits_a, bits_b);
  };
  constexpr bool Whole = false, Crossing = true;
  // The pipelined loop runs whole words only: reading one accumulator in a branch while the
  // other's MMAs are in flight makes the compiler serialize every wgmma. A crossing word comes
  // last, alone.
  const bool crossing_last = p.seq_len % kStep != 0 && cw0 + wg_steps - 1 == (p.seq_len - 1) / kStep;
  const int whole_steps = crossing_last ? wg_steps - 1 : wg_steps;

  // Two accumulators: step j + 1's MMAs run while step j's rule does (the MMAs are asynchronous,
  // the rule is ALU work), so a warpgroup keeps the tensor cores and its ALUs busy at once.
  // Steps in pairs: the second step's MMAs run while the first's rule does. Nothing stays in
  // flight across the loop's back edge (the compiler would serialize every wgmma otherwise).
  float s0[32], s1[32];
  for (int j = 0; j + 1 < whole_steps; j += 2) {
    issue(s0, j);
    issue(s1, j + 1);
    wgmma_wait<1>();
    fence_operands(s0);
    release(j);
    finish(s0, j, Whole);
    wgmma_wait<0>();
    fence_operands(s1);
    release(j + 1);
    finish(s1, j + 1, Whole);
  }
  if (whole_steps % 2) {
    issue(s0, whole_steps - 1);
    wgmma_wait<0>();
    fence_operands(s0);
    release(whole_steps - 1);
    finish(s0, whole_steps - 1, Whole);
  }
  if (crossing_last) {
    issue(s0, whole_steps);
    wgmma_wait<0>();
    fence_operands(s0);
    release(whole_steps);
    finish(s0, whole_steps, Crossing);
  }
  for (int j = wg_steps; j < steps; ++j) {
    mbar_wait(full(j % Stages), (j / Stages) & 1);  // the stage's phase must complete before reuse
    release(j);
    store(cw0 + j, 0ull, 0ull);
  }
  // Kept keys per row (statistics): one atomic per row and CTA, not per word.
  if (p.counts && quad < 2) {
    const int row = quad == 0 ? row_a : row_b;
    if (row < rows_end && kept) atomicAdd(p.counts + (i64(unit) - p.mask_unit_origin) * p.num_pooled + row, kept);
  }
}

}  // namespace vecattn

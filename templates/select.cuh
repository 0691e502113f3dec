#pragma once
// TilingSelect (docs/semantics.md §3-§4): pooled query rows x key tiles on tensor cores, a running
// maximum per row and selection group, the MinP rule, and one 64-bit mask word per pooled row
// and 64 keys. K is read once per CTA row tile, so larger row tiles read K fewer times.
#include "params.h"
#include "select_rule.cuh"
#include "tile.cuh"

namespace vecattn {

template <int Pq, int Bk, int Gk, int HeadDim, typename T, int Rows, int Stages, bool Causal>
__global__ void __launch_bounds__(Rows / 16 * 32) select_kernel(const __grid_constant__ SelectParams p) {
  constexpr int kWarps = Rows / 16;        // a warp owns 16 pooled rows
  constexpr int kThreads = kWarps * 32;
  constexpr int kStep = kSelectKeysPerStep;
  using QTile = SmemTile<Rows, HeadDim>;
  using KTile = SmemTile<kStep, HeadDim>;
  static_assert(Rows % 16 == 0 && Rows <= 128, "rows per CTA: 16..128 in steps of 16");
  static_assert(Bk == 16 || Bk == 32 || Bk == 64, "Bk must be 16, 32 or 64");
  static_assert(Gk >= 1 && (Gk & (Gk - 1)) == 0, "Gk must be a power of two");
  static_assert(!Causal || Pq % kStep == 0, "causal candidates start at Pq, which must be a whole mask word");
  static_assert(Stages >= 2, "the K pipeline needs two stages");

  extern __shared__ __align__(128) char smem[];
  char* q_tile = smem;
  char* k_tiles = smem + QTile::kBytes;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, tig = lane & 3;
  const int unit = p.unit_begin + blockIdx.z;
  const int batch = unit / p.q_heads, head = unit % p.q_heads, kv_head = head / p.kv_group;
  const int row0 = blockIdx.y * Rows;
  const int rows_here = min(Rows, p.num_pooled - row0);
  const int key0 = blockIdx.x * p.key_chunk;
  const int key1 = min(key0 + p.key_chunk, p.seq_len);
  const float gap = p.gap[head];

  unsigned long long* mask = p.mask + (i64(unit) - p.mask_unit_origin) * p.num_pooled * p.words;
  const char* k_base = static_cast<const char*>(p.k) +
                       (i64(batch) * p.k_stride_b + i64(kv_head) * p.k_stride_h) * i64(sizeof(T));

  // Keys some row of this CTA may select: causal rows see [Pq, i * Pq).
  const int compute_begin = Causal ? max(key0, Pq) : key0;
  const int compute_end = Causal ? min(key1, (row0 + rows_here - 1) * Pq) : key1;
  const int word0 = key0 / kStep, word1 = (key1 + kStep - 1) / kStep;
  const int cw0 = compute_begin / kStep;
  const int cw1 = compute_end > compute_begin ? (compute_end + kStep - 1) / kStep : cw0;

  if (p.exact_mask) zero_unreachable_words(mask, p.words, row0, row0 + rows_here, word0, word1, cw0, cw1, kThreads);
  const int steps = cw1 - cw0;
  if (steps <= 0) return;

  // Pooled rows, times sm_scale and rounded to T (docs/semantics.md §3), into shared memory.
  const T* qp = static_cast<const T*>(p.qp) + ((i64(unit) - p.qp_unit_origin) * p.num_pooled + row0) * HeadDim;
  for (int i = tid; i < Rows * QTile::kChunks; i += kThreads) {
    const int r = i / QTile::kChunks, c = i % QTile::kChunks;
    vec16 v{0, 0, 0, 0};
    if (r < rows_here) {
      v = scaled_chunk<T>(load_vec16(qp + i64(r) * HeadDim + c * 8), p.sm_scale);
    }
    *reinterpret_cast<vec16*>(q_tile + QTile::offset(r, c)) = v;
  }

  auto load_k_step = [&](int step, int stage) {
    const int key_begin = (cw0 + step) * kStep;
    const u32 dst = smem_addr(k_tiles + stage * KTile::kBytes);
    for (int i = tid; i < kStep * KTile::kChunks; i += kThreads) {
      const int r = i / KTile::kChunks, c = i % KTile::kChunks;
      const int key = key_begin + r;
      const bool valid = key < p.seq_len;
      cp_async_16(dst + KTile::offset(r, c), k_base + (i64(valid ? key : 0) * p.k_stride_s + c * 8) * i64(sizeof(T)),
                  valid);
    }
  };
#pragma unroll
  for (int s = 0; s < Stages - 1; ++s) {
    if (s < steps) load_k_step(s, s);
    cp_async_commit();
  }
  __syncthreads();
  u32 a[HeadDim / 16][4];
  load_a_frags<Rows, HeadDim>(a, q_tile, warp * 16, lane);

  // This thread's two rows (g and g + 8 of the warp's 16) and the candidate keys of each.
  const int row_a = row0 + warp * 16 + g, row_b = row_a + 8;
  const int lo = Causal ? Pq : 0;
  const int hi_a = Causal ? min(row_a * Pq, p.seq_len) : p.seq_len;
  const int hi_b = Causal ? min(row_b * Pq, p.seq_len) : p.seq_len;
  SelectRule<Bk, Gk> rule;
  int kept_a = 0, kept_b = 0;

  for (int step = 0; step < steps; ++step) {
    cp_async_wait<Stages - 2>();
    __syncthreads();
    if (step + Stages - 1 < steps) load_k_step(step + Stages - 1, (step + Stages - 1) % Stages);
    cp_async_commit();

    const char* k_tile = k_tiles + (step % Stages) * KTile::kBytes;
    float s[32];
#pragma unroll
    for (int i = 0; i < 32; ++i) s[i] = 0.f;
#pragma unroll
    for (int kk = 0; kk < HeadDim / 16; ++kk)
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        u32 b[4];
        load_kt_frags<kStep, HeadDim>(b, k_tile, np * 16, kk, lane);
        mma_16816<T>(*reinterpret_cast<float(*)[4]>(&s[8 * np]), a[kk], b[0], b[1]);
        mma_16816<T>(*reinterpret_cast<float(*)[4]>(&s[8 * np + 4]), a[kk], b[2], b[3]);
      }

    const int word = cw0 + step, key_begin = word * kStep;
    unsigned long long bits_a, bits_b;
    if (key_begin + kStep <= p.seq_len) rule.template step<false>(s, key_begin, gap, lo, hi_a, hi_b, bits_a, bits_b);
    else rule.template step<true>(s, key_begin, gap, lo, hi_a, hi_b, bits_a, bits_b);
    if (tig == 0) {
      if (row_a < row0 + rows_here) mask[i64(row_a) * p.words + word] = bits_a;
      if (row_b < row0 + rows_here) mask[i64(row_b) * p.words + word] = bits_b;
      kept_a += __popcll(bits_a);
      kept_b += __popcll(bits_b);
    }
  }
  // Kept keys per row (statistics): one atomic per row and CTA, not per word.
  if (p.counts && tig == 0) {
    int* counts = p.counts + (i64(unit) - p.mask_unit_origin) * p.num_pooled;
    if (row_a < row0 + rows_here && kept_a) atomicAdd(counts + row_a, kept_a);
    if (row_b < row0 + rows_here && kept_b) atomicAdd(counts + row_b, kept_b);
  }
  cp_async_wait<0>();
}

}  // namespace vecattn

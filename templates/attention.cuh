#pragma once
// Attention (docs/semantics.md §5), FlashAttention-2 style on mma.sync: a warp owns 16 query rows, key
// tiles of BN rows are gathered by cp.async into swizzled shared memory (double-buffered), and
// softmax runs online in fp32. Every key tile is a list of BN key indices (-1 = none), so one
// main loop serves dense ranges and gathered selected columns alike.
//   sparse (Pq > 0): a CTA is one query block; tiles come from its mask row (compacted on the
//                    fly), then, causal, the sink block and the diagonal block.
//   dense  (Pq = 0): keys [0, S), causal ones up to each row.
// The main loop issues little besides its mma.sync: a thread's shared-memory addresses (copies and
// ldmatrix) are computed once and move by an add per stage (TileCopy, FragAddrs), and per-key
// checks run only on tiles holding a key some row of the warp must not see.
#include "key_schedule.cuh"
#include "params.h"
#include "tile.cuh"

namespace vecattn {

// Whether some key of a tile is one a row of this warp must not attend: an empty slot (-1), or,
// causal, a key after the warp's first row (a later row sees every key its first row sees).
// Warp-uniform, so the per-element checks are skipped as a whole.
template <int BN, bool Causal> __device__ __forceinline__ bool tile_needs_mask(const int* keys, int first_row, int lane) {
  bool hidden = false;
#pragma unroll
  for (int j0 = 0; j0 < BN; j0 += 32) {
    const int key = j0 + lane < BN ? keys[j0 + lane] : 0;
    // Causal: one unsigned compare covers both, a -1 slot being the largest u32.
    hidden |= Causal ? u32(key) > u32(first_row) : key < 0;
  }
  return __any_sync(0xffffffffu, hidden);
}

// At least one CTA per SM, i.e. registers as needed: left unset, ptxas trades registers for an
// occupancy it guesses, which shared memory often rules out (D = 128: held to 168 registers for
// 3 CTAs when 2 fit) or which costs spills (D = 64: held to 128 registers).
constexpr int kAttnMinCtasPerSm = 1;

template <int HeadDim, typename T, int BM, int BN, int Stages, bool Causal, int Pq>
__global__ void __launch_bounds__(BM / 16 * 32, kAttnMinCtasPerSm) attn_kernel(const __grid_constant__ AttnParams p) {
  constexpr int kWarps = BM / 16;
  constexpr int kThreads = kWarps * 32;
  constexpr bool kSparse = Pq > 0;
  using QTile = SmemTile<BM, HeadDim>;
  using KVTile = SmemTile<BN, HeadDim>;
  static_assert(!kSparse || Pq == BM, "a sparse CTA is one query block");
  static_assert(BN % 16 == 0 && BN <= kThreads, "key tile: a multiple of 16, at most one key per thread");
  static_assert(Stages == 2, "the key schedule is double-buffered");

  extern __shared__ __align__(128) char smem[];
  char* q_tile = smem;
  char* k_tiles = q_tile + QTile::kBytes;
  char* v_tiles = k_tiles + Stages * KVTile::kBytes;
  int* tile_keys = reinterpret_cast<int*>(v_tiles + Stages * KVTile::kBytes);  // [Stages][BN]
  int* list = tile_keys + Stages * BN;
  int* scratch = list + kAttnListCapacity;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, tig = lane & 3;
  const int unit = p.unit_begin + blockIdx.y;
  const int batch = unit / p.q_heads, head = unit % p.q_heads, kv_head = head / p.kv_group;
  const int m0 = p.row_begin + blockIdx.x * BM;

  const T* q = static_cast<const T*>(p.q) + i64(batch) * p.q_stride_b + i64(head) * p.q_stride_h;
  const T* k = static_cast<const T*>(p.k) + i64(batch) * p.k_stride_b + i64(kv_head) * p.k_stride_h;
  const T* v = static_cast<const T*>(p.v) + i64(batch) * p.v_stride_b + i64(kv_head) * p.v_stride_h;

  using QCopy = TileCopy<BM, HeadDim, kThreads>;
  using KVCopy = TileCopy<BN, HeadDim, kThreads>;
  {
    const QCopy cp(tid);
#pragma unroll
    for (int i = 0; i < QCopy::kRows; ++i) {
      const int r = cp.row(i);
      const bool valid = m0 + r < p.seq_len;
      const T* src = q + i64(valid ? m0 + r : 0) * p.q_stride_s + cp.col;
#pragma unroll
      for (int j = 0; j < QCopy::kChunkGroups; ++j)
        cp_async_16(smem_addr(q_tile) + cp.dst + QCopy::dst_step(i, j),
                    reinterpret_cast<const char*>(src) + QCopy::src_step(j), valid);
    }
  }
  cp_async_commit();

  KeySchedule ks;
  const unsigned long long* mask_row = nullptr;
  if constexpr (kSparse) {
    const int block = m0 / Pq;
    mask_row = p.mask + ((i64(unit) - p.mask_unit_origin) * ((p.seq_len + Pq - 1) / Pq) + block) * p.words;
    ks = KeySchedule::sparse<Pq, Causal>(m0, p.words);
  } else {
    ks = KeySchedule::range(Causal ? min(m0 + BM, p.seq_len) : p.seq_len);
  }
  using Group = CtaGroup<kThreads>;

  // Everything of the K/V copies that is the same every tile, computed once.
  const KVCopy kv_copy(tid);
  const char* k_src = reinterpret_cast<const char*>(k + kv_copy.col);
  const char* v_src = reinterpret_cast<const char*>(v + kv_copy.col);
  const u64 k_row_bytes = u64(p.k_stride_s) * sizeof(T), v_row_bytes = u64(p.v_stride_s) * sizeof(T);
  const u32 k_smem = smem_addr(k_tiles);
  constexpr u32 kVOffset = Stages * KVTile::kBytes;  // V tiles follow the K tiles

  auto load_kv = [&](int stage) {
    const int* keys = tile_keys + stage * BN + kv_copy.row0;
    const u32 dst = k_smem + stage * KVTile::kBytes + kv_copy.dst;
    // Addresses first, then the copies back to back (ptxas pads each run of cp.async).
    int key[KVCopy::kRows];
    const char* k_row[KVCopy::kRows];
    const char* v_row[KVCopy::kRows];
#pragma unroll
    for (int i = 0; i < KVCopy::kRows; ++i) {
      key[i] = keys[i * KVCopy::kRowStep];
      const u32 row = max(key[i], 0);  // an empty slot reads nothing but still forms an address
      k_row[i] = row_address(k_src, row, k_row_bytes);
      v_row[i] = row_address(v_src, row, v_row_bytes);
    }
#pragma unroll
    for (int i = 0; i < KVCopy::kRows; ++i)
#pragma unroll
      for (int j = 0; j < KVCopy::kChunkGroups; ++j) {
        cp_async_16_key(dst + KVCopy::dst_step(i, j), k_row[i] + KVCopy::src_step(j), key[i]);
        cp_async_16_key(dst + kVOffset + KVCopy::dst_step(i, j), v_row[i] + KVCopy::src_step(j), key[i]);
      }
  };

  int n_cur = next_tile<Group, BN, Pq, Causal>(ks, tile_keys, mask_row, list, scratch, m0, p.seq_len);
  if (n_cur) load_kv(0);
  cp_async_commit();

  cp_async_wait<1>();  // Q landed
  __syncthreads();
  u32 qa[HeadDim / 16][4];
  load_a_frags<BM, HeadDim>(qa, q_tile, warp * 16, lane);

  const int warp_row0 = m0 + warp * 16;  // keys up to it are visible to every row of the warp
  const int row_a = warp_row0 + g, row_b = row_a + 8;
  float o[HeadDim / 8][4];
#pragma unroll
  for (int n = 0; n < HeadDim / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float max_a = neg_inf(), max_b = neg_inf(), sum_a = 0.f, sum_b = 0.f;
  const float scale = p.sm_scale_log2;
  // ldmatrix addresses into stage 0, moved along with the stage.
  FragAddrs<BN, HeadDim> kt_addr = FragAddrs<BN, HeadDim>::kt(k_smem, lane);
  FragAddrs<BN, HeadDim> v_addr = FragAddrs<BN, HeadDim>::v(k_smem + kVOffset, lane);
  int stage_step = KVTile::kBytes;  // to the other of the two stages

  for (int it = 0; n_cur > 0; ++it) {
    const int cur = it % Stages, nxt = (it + 1) % Stages;
    cp_async_wait<0>();  // this thread's copies of tile cur have landed
    // ... and everyone's; and every warp is done with the previous tile, whose buffers get refilled.
    __syncthreads();
    const int n_next =
        next_tile<Group, BN, Pq, Causal>(ks, tile_keys + nxt * BN, mask_row, list, scratch, m0, p.seq_len);
    if (n_next) load_kv(nxt);
    cp_async_commit();

    const int* keys = tile_keys + cur * BN;

    float s[BN / 8][4];
#pragma unroll
    for (int n = 0; n < BN / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < HeadDim / 16; ++kk)
#pragma unroll
      for (int np = 0; np < BN / 16; ++np) {
        u32 b[4];
        ldmatrix_x4(b, kt_addr.at(np * 16, kk));
        mma_16816<T>(s[2 * np], qa[kk], b[0], b[1]);
        mma_16816<T>(s[2 * np + 1], qa[kk], b[2], b[3]);
      }

    // Per-key checks only where one can fail: an empty slot, or (causal) a key after the warp's first row.
    if (tile_needs_mask<BN, Causal>(keys, warp_row0, lane)) {
#pragma unroll
      for (int n = 0; n < BN / 8; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          // key < 0 || (Causal && key > row); causal as one unsigned compare (rows are >= 0).
          const int key = keys[n * 8 + tig * 2 + e];
          if (Causal ? u32(key) > u32(row_a) : key < 0) s[n][e] = neg_inf();
          if (Causal ? u32(key) > u32(row_b) : key < 0) s[n][2 + e] = neg_inf();
        }
    }
    float tile_a = neg_inf(), tile_b = neg_inf();
#pragma unroll
    for (int n = 0; n < BN / 8; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        tile_a = fmaxf(tile_a, s[n][e]);
        tile_b = fmaxf(tile_b, s[n][2 + e]);
      }
#pragma unroll
    for (int o_ = 1; o_ <= 2; o_ <<= 1) {
      tile_a = fmaxf(tile_a, __shfl_xor_sync(0xffffffffu, tile_a, o_));
      tile_b = fmaxf(tile_b, __shfl_xor_sync(0xffffffffu, tile_b, o_));
    }
    const float new_a = fmaxf(max_a, tile_a), new_b = fmaxf(max_b, tile_b);
    // A row with nothing seen yet keeps max -inf; subtracting 0 instead keeps exp2 finite.
    const float base_a = new_a == neg_inf() ? 0.f : new_a * scale;
    const float base_b = new_b == neg_inf() ? 0.f : new_b * scale;
    const float alpha_a = fast_exp2(max_a * scale - base_a), alpha_b = fast_exp2(max_b * scale - base_b);
    max_a = new_a;
    max_b = new_b;
    sum_a *= alpha_a;
    sum_b *= alpha_b;
#pragma unroll
    for (int n = 0; n < HeadDim / 8; ++n) {
      o[n][0] *= alpha_a;
      o[n][1] *= alpha_a;
      o[n][2] *= alpha_b;
      o[n][3] *= alpha_b;
    }
#pragma unroll
    for (int n = 0; n < BN / 8; ++n) {
      s[n][0] = fast_exp2(s[n][0] * scale - base_a);
      s[n][1] = fast_exp2(s[n][1] * scale - base_a);
      s[n][2] = fast_exp2(s[n][2] * scale - base_b);
      s[n][3] = fast_exp2(s[n][3] * scale - base_b);
      sum_a += s[n][0] + s[n][1];
      sum_b += s[n][2] + s[n][3];
    }

    // P (accumulator layout) is already the A layout of the next product, two n-tiles a k-step.
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      const u32 pa[4] = {pack2<T>(s[2 * kk][0], s[2 * kk][1]), pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                         pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]), pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int dp = 0; dp < HeadDim / 16; ++dp) {
        u32 b[4];
        ldmatrix_x4_trans(b, v_addr.at(kk * 16, dp));
        mma_16816<T>(o[2 * dp], pa, b[0], b[1]);
        mma_16816<T>(o[2 * dp + 1], pa, b[2], b[3]);
      }
    }
    kt_addr.move(stage_step);
    v_addr.move(stage_step);
    stage_step = -stage_step;
    n_cur = n_next;
  }
  cp_async_wait<0>();

  // Row sums were kept per thread; the quad holds the whole row.
#pragma unroll
  for (int o_ = 1; o_ <= 2; o_ <<= 1) {
    sum_a += __shfl_xor_sync(0xffffffffu, sum_a, o_);
    sum_b += __shfl_xor_sync(0xffffffffu, sum_b, o_);
  }
  const float inv_a = sum_a > 0.f ? 1.f / sum_a : 0.f, inv_b = sum_b > 0.f ? 1.f / sum_b : 0.f;
  T* out = static_cast<T*>(p.out) + i64(batch) * p.o_stride_b + i64(head) * p.o_stride_h;
#pragma unroll
  for (int n = 0; n < HeadDim / 8; ++n) {
    const int d = n * 8 + tig * 2;
    if (row_a < p.row_end)
      *reinterpret_cast<u32*>(out + i64(row_a) * p.o_stride_s + d) = pack2<T>(o[n][0] * inv_a, o[n][1] * inv_a);
    if (row_b < p.row_end)
      *reinterpret_cast<u32*>(out + i64(row_b) * p.o_stride_s + d) = pack2<T>(o[n][2] * inv_b, o[n][3] * inv_b);
  }
}

}  // namespace vecattn

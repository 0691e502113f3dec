#pragma once
// Attention (docs/semantics.md §5), FlashAttention-2 style on mma.sync: a warp owns WarpRows query
// rows (16, or 32 as two m16 row groups that share every K and V fragment it loads), key tiles of
// BN rows are gathered by cp.async into swizzled shared memory (double-buffered), and softmax
// runs online in fp32. Every key tile is a list of BN key indices (-1 = none), so one
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

// A warp's A operand of Q.K^T, RowGroups x 16 rows from row0 of the Q tile: held in registers
// (loaded once), or where registers are short (attn_q_in_regs) reloaded from the tile at each
// k-step. get() gives row group r's fragment for k-step kk (both compile-time after unrolling).
template <int BM, int HeadDim, int RowGroups, bool InRegs> struct QFrags;
template <int BM, int HeadDim, int RowGroups> struct QFrags<BM, HeadDim, RowGroups, true> {
  u32 a[RowGroups][HeadDim / 16][4];
  __device__ QFrags(const void* tile, int row0, int lane) {
#pragma unroll
    for (int r = 0; r < RowGroups; ++r) load_a_frags<BM, HeadDim>(a[r], tile, row0 + r * 16, lane);
  }
  __device__ void get(u32 (&f)[4], int r, int kk) const {
#pragma unroll
    for (int i = 0; i < 4; ++i) f[i] = a[r][kk][i];
  }
};
template <int BM, int HeadDim, int RowGroups> struct QFrags<BM, HeadDim, RowGroups, false> {
  XorFragAddrs<BM, HeadDim> addr;
  __device__ QFrags(const void* tile, int row0, int lane) : addr(XorFragAddrs<BM, HeadDim>::a(smem_addr(tile), row0, lane)) {}
  __device__ void get(u32 (&f)[4], int r, int kk) const { ldmatrix_x4(f, addr.at(r * 16, kk)); }
};

template <int HeadDim, typename T, int BM, int BN, int Stages, bool Causal, int Pq, int WarpRows = 16>
__global__ void __launch_bounds__(BM / WarpRows * 32, kAttnMinCtasPerSm) attn_kernel(const __grid_constant__ AttnParams p) {
  constexpr int kRowGroups = WarpRows / 16;  // m16 row groups per warp
  constexpr int kWarps = BM / WarpRows;
  constexpr int kThreads = kWarps * 32;
  constexpr bool kSparse = Pq > 0;
  constexpr bool kQInRegs = attn_q_in_regs(WarpRows, BN, HeadDim);
  using QTile = SmemTile<BM, HeadDim>;
  using KVTile = SmemTile<BN, HeadDim>;
  static_assert(WarpRows == 16 || WarpRows == 32, "one or two m16 row groups per warp");
  static_assert(BM % WarpRows == 0, "whole warps");
  static_assert(!kSparse || Pq == BM, "a sparse CTA is one query block");
  static_assert(BN % 16 == 0 && BN <= kThreads, "key tile: a multiple of 16, at most one key per thread");
  static_assert(Stages == 2, "the key schedule is double-buffered");
  static_assert(attn_acc_regs(WarpRows, BN, HeadDim, kSparse) <= kAttnMaxAccRegs &&
                    attn_score_regs(WarpRows, BN) <= kAttnMaxScoreRegs,
                "S and O must fit the registers (params.h)");

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
    ks = KeySchedule::sparse<Pq, Causal>(m0, p.words, p.seq_len);
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
  const QFrags<BM, HeadDim, kRowGroups, kQInRegs> qa(q_tile, warp * WarpRows, lane);

  // Thread state per row group r and half h (rows 8 apart): row warp_row0 + 16 r + 8 h + g, whose
  // S and O elements are [2 h] and [2 h + 1] of each 8-column n-tile.
  const int warp_row0 = m0 + warp * WarpRows;  // keys up to it are visible to every row of the warp
  const int row_g = warp_row0 + g;
  float o[kRowGroups][HeadDim / 8][4];
  float row_max[kRowGroups][2], row_sum[kRowGroups][2];
#pragma unroll
  for (int r = 0; r < kRowGroups; ++r) {
#pragma unroll
    for (int n = 0; n < HeadDim / 8; ++n) o[r][n][0] = o[r][n][1] = o[r][n][2] = o[r][n][3] = 0.f;
    row_max[r][0] = row_max[r][1] = neg_inf();
    row_sum[r][0] = row_sum[r][1] = 0.f;
  }
  const float scale = p.sm_scale_log2;
  // ldmatrix addresses into stage 0, moved along with the stage.
  FragAddrs<BN, HeadDim> kt_addr = FragAddrs<BN, HeadDim>::kt(k_smem, lane);
  FragAddrs<BN, HeadDim> v_addr = FragAddrs<BN, HeadDim>::v(k_smem + kVOffset, lane);
  for (int cur = 0; n_cur > 0; cur ^= 1) {
    const int nxt = cur ^ 1;
    cp_async_wait<0>();  // this thread's copies of tile cur have landed
    // ... and everyone's; and every warp is done with the previous tile, whose buffers get refilled.
    __syncthreads();
    const int n_next =
        next_tile<Group, BN, Pq, Causal>(ks, tile_keys + nxt * BN, mask_row, list, scratch, m0, p.seq_len);
    if (n_next) load_kv(nxt);
    cp_async_commit();

    const int* keys = tile_keys + cur * BN;

    // S = Q.K^T; each K fragment serves every row group.
    float s[kRowGroups][BN / 8][4];
#pragma unroll
    for (int r = 0; r < kRowGroups; ++r)
#pragma unroll
      for (int n = 0; n < BN / 8; ++n) s[r][n][0] = s[r][n][1] = s[r][n][2] = s[r][n][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < HeadDim / 16; ++kk) {
      u32 a[kRowGroups][4];
#pragma unroll
      for (int r = 0; r < kRowGroups; ++r) qa.get(a[r], r, kk);
#pragma unroll
      for (int np = 0; np < BN / 16; ++np) {
        u32 b[4];
        ldmatrix_x4(b, kt_addr.at(np * 16, kk));
#pragma unroll
        for (int r = 0; r < kRowGroups; ++r) {
          mma_16816<T>(s[r][2 * np], a[r], b[0], b[1]);
          mma_16816<T>(s[r][2 * np + 1], a[r], b[2], b[3]);
        }
      }
    }

    // Per-key checks only where one can fail: an empty slot, or (causal) a key after the warp's first row.
    if (tile_needs_mask<BN, Causal>(keys, warp_row0, lane)) {
#pragma unroll
      for (int n = 0; n < BN / 8; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          // key < 0 || (Causal && key > row); causal as one unsigned compare (rows are >= 0).
          const int key = keys[n * 8 + tig * 2 + e];
#pragma unroll
          for (int r = 0; r < kRowGroups; ++r)
#pragma unroll
            for (int h = 0; h < 2; ++h)
              if (Causal ? u32(key) > u32(row_g + r * 16 + h * 8) : key < 0) s[r][n][2 * h + e] = neg_inf();
        }
    }

    // Online softmax, row by row as in the 16-row kernel.
#pragma unroll
    for (int r = 0; r < kRowGroups; ++r) {
      float tile_max[2] = {neg_inf(), neg_inf()};
#pragma unroll
      for (int n = 0; n < BN / 8; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e)
#pragma unroll
          for (int h = 0; h < 2; ++h) tile_max[h] = fmaxf(tile_max[h], s[r][n][2 * h + e]);
#pragma unroll
      for (int o_ = 1; o_ <= 2; o_ <<= 1)
#pragma unroll
        for (int h = 0; h < 2; ++h) tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h], o_));
      float base[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float new_max = fmaxf(row_max[r][h], tile_max[h]);
        // A row with nothing seen yet keeps max -inf; subtracting 0 instead keeps exp2 finite.
        base[h] = new_max == neg_inf() ? 0.f : new_max * scale;
        const float alpha = fast_exp2(row_max[r][h] * scale - base[h]);
        row_max[r][h] = new_max;
        row_sum[r][h] *= alpha;
#pragma unroll
        for (int n = 0; n < HeadDim / 8; ++n) {
          o[r][n][2 * h] *= alpha;
          o[r][n][2 * h + 1] *= alpha;
        }
      }
#pragma unroll
      for (int n = 0; n < BN / 8; ++n)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          s[r][n][2 * h] = fast_exp2(s[r][n][2 * h] * scale - base[h]);
          s[r][n][2 * h + 1] = fast_exp2(s[r][n][2 * h + 1] * scale - base[h]);
          row_sum[r][h] += s[r][n][2 * h] + s[r][n][2 * h + 1];
        }
    }

    // O += P.V. P (accumulator layout) is already the A layout of the next product, two n-tiles a
    // k-step; each V fragment serves every row group.
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      u32 pa[kRowGroups][4];
#pragma unroll
      for (int r = 0; r < kRowGroups; ++r) {
        pa[r][0] = pack2<T>(s[r][2 * kk][0], s[r][2 * kk][1]);
        pa[r][1] = pack2<T>(s[r][2 * kk][2], s[r][2 * kk][3]);
        pa[r][2] = pack2<T>(s[r][2 * kk + 1][0], s[r][2 * kk + 1][1]);
        pa[r][3] = pack2<T>(s[r][2 * kk + 1][2], s[r][2 * kk + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < HeadDim / 16; ++dp) {
        u32 b[4];
        ldmatrix_x4_trans(b, v_addr.at(kk * 16, dp));
#pragma unroll
        for (int r = 0; r < kRowGroups; ++r) {
          mma_16816<T>(o[r][2 * dp], pa[r], b[0], b[1]);
          mma_16816<T>(o[r][2 * dp + 1], pa[r], b[2], b[3]);
        }
      }
    }
    const int stage_step = cur ? -KVTile::kBytes : KVTile::kBytes;  // to the other of the two stages
    kt_addr.move(stage_step);
    v_addr.move(stage_step);
    n_cur = n_next;
  }
  cp_async_wait<0>();

  // Row sums were kept per thread; the quad holds the whole row.
  T* out = static_cast<T*>(p.out) + i64(batch) * p.o_stride_b + i64(head) * p.o_stride_h;
#pragma unroll
  for (int r = 0; r < kRowGroups; ++r)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float sum = row_sum[r][h];
#pragma unroll
      for (int o_ = 1; o_ <= 2; o_ <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o_);
      const float inv = sum > 0.f ? 1.f / sum : 0.f;
      const int row = row_g + r * 16 + h * 8;
      if (row < p.row_end) {
#pragma unroll
        for (int n = 0; n < HeadDim / 8; ++n)
          *reinterpret_cast<u32*>(out + i64(row) * p.o_stride_s + n * 8 + tig * 2) =
              pack2<T>(o[r][n][2 * h] * inv, o[r][n][2 * h + 1] * inv);
      }
    }
}

}  // namespace vecattn

#pragma once
// Recall of sampled query rows (docs/semantics.md §6): the share of a row's full softmax, over
// every key it can see, that falls on the set it attends under a selection (§5.1). What
// calibration measures per threshold; a plain CUDA-core pass, since it covers a few rows only.
//
// One CTA per (kRecallRowsPerCta sampled rows, unit). The rows' queries sit in shared memory,
// pre-scaled so that a dot product is a logit in log2 units; each thread walks keys with a stride,
// scores each against every row, and keeps per row an online (max, mass, attended mass). The
// triples merge across the warp, then across warps.
#include "common.cuh"
#include "params.h"

namespace vecattn {

// (max, mass, attended mass) of an online softmax in log2 units; mass is relative to max.
struct SoftmaxMass {
  float max, all, kept;
};

__device__ __forceinline__ SoftmaxMass merge(const SoftmaxMass& a, const SoftmaxMass& b) {
  const float m = fmaxf(a.max, b.max);
  if (m == neg_inf()) return a;  // both empty
  const float sa = exp2f(a.max - m), sb = exp2f(b.max - m);  // exp2(-inf) = 0 for an empty side
  return SoftmaxMass{m, a.all * sa + b.all * sb, a.kept * sa + b.kept * sb};
}

// Whether key j is in the attended set of row `row` (docs/semantics.md §5.1); j is visible.
template <int Pq, bool Causal>
__device__ __forceinline__ bool attends(const RecallParams& p, const unsigned long long* unit_mask, int row, int j) {
  if (row < p.dense_prefix) return true;
  const int block = row / Pq;
  if (Causal && (j < Pq || j >= block * Pq)) return true;  // sink, diagonal
  return (unit_mask[i64(block) * p.words + (j >> 6)] >> (j & 63)) & 1ull;
}

// Two CTAs per SM at most 128 registers: the key loads are scattered rows, so latency hides
// behind more warps, not more unrolling.
constexpr int kRecallMinCtasPerSm = 2;

template <int Pq, int HeadDim, typename T, int Warps, bool Causal>
__global__ void __launch_bounds__(Warps * 32, kRecallMinCtasPerSm) recall_kernel(const RecallParams p) {
  constexpr int kRows = kRecallRowsPerCta;
  constexpr int kThreads = Warps * 32;
  constexpr int kVecsPerRow = HeadDim / kElemsPerVec<T>;
  static_assert(HeadDim % kElemsPerVec<T> == 0, "head_dim must be a multiple of 8");
  static_assert(Warps >= 1 && Warps <= 16, "1..16 warps");

  __shared__ float4 q_rows[kRows][HeadDim / 4];  // q * sm_scale * log2(e)
  __shared__ int row_index[kRows];               // -1: no row (past the list, or out of range)
  __shared__ SoftmaxMass partial[Warps][kRows];

  const int unit = p.unit_begin + blockIdx.y;
  const int batch = unit / p.q_heads, head = unit % p.q_heads;
  const int first = blockIdx.x * kRows;
  const char* q = static_cast<const char*>(p.q) + (batch * p.q_stride_b + head * p.q_stride_h) * i64(sizeof(T));
  const char* k = static_cast<const char*>(p.k) +
                  (batch * p.k_stride_b + (head / p.kv_group) * p.k_stride_h) * i64(sizeof(T));
  const unsigned long long* unit_mask = p.mask + i64(unit) * p.num_pooled * p.words;

  for (int i = threadIdx.x; i < kRows * HeadDim; i += kThreads) {
    const int r = i / HeadDim, d = i % HeadDim;
    const int n = first + r;
    const int row = n < p.num_rows ? p.rows[n] : -1;
    const bool valid = row >= 0 && row < p.seq_len;
    const T* src = reinterpret_cast<const T*>(q + i64(valid ? row : 0) * p.q_stride_s * i64(sizeof(T)));
    reinterpret_cast<float*>(q_rows[r])[d] = valid ? to_float(src[d]) * p.sm_scale_log2 : 0.f;
    if (d == 0) row_index[r] = valid ? row : -1;
  }
  __syncthreads();

  int last_row = -1;
#pragma unroll
  for (int r = 0; r < kRows; ++r) last_row = max(last_row, row_index[r]);
  const int key_end = Causal ? last_row + 1 : (last_row >= 0 ? p.seq_len : 0);

  SoftmaxMass acc[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) acc[r] = SoftmaxMass{neg_inf(), 0.f, 0.f};

  for (int j = threadIdx.x; j < key_end; j += kThreads) {
    const char* key = k + i64(j) * p.k_stride_s * i64(sizeof(T));
    float logit[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) logit[r] = 0.f;
#pragma unroll 2
    for (int v = 0; v < kVecsPerRow; ++v) {
      const vec16 x = load_vec16(key + v * kVecBytes);
      const u32 w[4] = {x.x, x.y, x.z, x.w};
      float kf[8];
#pragma unroll
      for (int e = 0; e < 4; ++e) kf[2 * e] = lo_float<T>(w[e]), kf[2 * e + 1] = hi_float<T>(w[e]);
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const float4 a = q_rows[r][2 * v], b = q_rows[r][2 * v + 1];
        logit[r] += a.x * kf[0] + a.y * kf[1] + a.z * kf[2] + a.w * kf[3] + b.x * kf[4] + b.y * kf[5] + b.z * kf[6] +
                    b.w * kf[7];
      }
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int row = row_index[r];
      if (row < 0 || (Causal && j > row)) continue;
      SoftmaxMass& s = acc[r];
      if (logit[r] > s.max) {
        const float scale = exp2f(s.max - logit[r]);
        s.all *= scale, s.kept *= scale, s.max = logit[r];
      }
      const float e = exp2f(logit[r] - s.max);
      s.all += e;
      if (attends<Pq, Causal>(p, unit_mask, row, j)) s.kept += e;
    }
  }

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    SoftmaxMass s = acc[r];
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) {
      const SoftmaxMass o{__shfl_xor_sync(0xffffffffu, s.max, offset), __shfl_xor_sync(0xffffffffu, s.all, offset),
                          __shfl_xor_sync(0xffffffffu, s.kept, offset)};
      s = merge(s, o);
    }
    if (lane == 0) partial[warp][r] = s;
  }
  __syncthreads();
  if (threadIdx.x < kRows && first + int(threadIdx.x) < p.num_rows) {
    const int r = threadIdx.x;
    SoftmaxMass s = partial[0][r];
    for (int w = 1; w < Warps; ++w) s = merge(s, partial[w][r]);
    // A row outside [0, S) has no recall: NaN, never a plausible number.
    p.out[i64(unit) * p.num_rows + first + r] = row_index[r] < 0 ? __int_as_float(0x7fffffff) : s.kept / s.all;
  }
}

}  // namespace vecattn

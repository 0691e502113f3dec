#pragma once
// Pooling (docs/semantics.md §2): qp[i] = mean of Q rows [i*Pq, min((i+1)*Pq, S)) in fp32, rounded to T.
// One CTA per (pooled row, unit). Threads take (16-byte column slice, row group) pairs and walk
// the group's rows with a stride; the CTA then sums the row groups through shared memory.
#include "common.cuh"
#include "params.h"

namespace vecattn {

// The summation order is fixed by kRowGroups, not by the warp count: every config of the key
// yields the same bits (pooled rows feed the selection, where a rounding flip could change a
// kept column).
constexpr int kPoolRowGroups = 8;

template <int Pq, int HeadDim, typename T, int Warps>
__global__ void __launch_bounds__(Warps * 32) pool_kernel(const PoolParams p) {
  constexpr int kThreads = Warps * 32;
  constexpr int kVecsPerRow = HeadDim / kElemsPerVec<T>;
  constexpr int kSlices = kVecsPerRow * kPoolRowGroups;  // (16-byte column slice, row group) pairs
  static_assert(HeadDim % kElemsPerVec<T> == 0, "head_dim must be a multiple of 8");
  static_assert(kPoolRowGroups <= Pq, "more row groups than rows in a block");

  __shared__ float partial[kPoolRowGroups][HeadDim];

  const int block = blockIdx.x;
  const int unit = p.unit_begin + blockIdx.y;
  const int batch = unit / p.heads, head = unit % p.heads;
  const int row0 = block * Pq;
  const int rows = min(Pq, p.seq_len - row0);
  const char* q = static_cast<const char*>(p.q) +
                  (batch * p.q_stride_b + head * p.q_stride_h + i64(row0) * p.q_stride_s) * i64(sizeof(T));

  for (int slice = threadIdx.x; slice < kSlices; slice += kThreads) {
    const int vec = slice % kVecsPerRow, group = slice / kVecsPerRow;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
#pragma unroll 4
    for (int r = group; r < rows; r += kPoolRowGroups)
      accumulate<T>(acc, load_vec16(q + i64(r) * p.q_stride_s * i64(sizeof(T)) + vec * kVecBytes));
#pragma unroll
    for (int i = 0; i < 8; ++i) partial[group][vec * 8 + i] = acc[i];
  }
  __syncthreads();

  T* out = static_cast<T*>(p.out) + batch * p.out_stride_b + head * p.out_stride_h + i64(block) * p.out_stride_s -
           p.out_origin;
  for (int c = threadIdx.x; c < HeadDim; c += kThreads) {
    float sum = 0.f;
#pragma unroll
    for (int g = 0; g < kPoolRowGroups; ++g) sum += partial[g][c];
    out[c] = from_float<T>(sum / float(rows));
  }
}

}  // namespace vecattn

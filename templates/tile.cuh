#pragma once
// Tensor-core tile primitives for sm_80+: cp.async row copies into swizzled shared memory,
// ldmatrix fragment loads, mma.sync m16n8k16 with fp32 accumulation.
#include "common.cuh"

namespace vecattn {

// ---- shared-memory tiles of Rows x HeadDim elements, 16-byte chunks XOR-swizzled by row ----
// A row is 128 or 256 bytes, so without the swizzle the 8 rows an ldmatrix reads would all hit
// the same banks; XOR-ing the chunk index with (row % 8) spreads them over all 32.
template <int Rows, int HeadDim> struct SmemTile {
  static constexpr int kChunks = HeadDim / 8;   // 16-byte chunks per row
  static constexpr int kBytes = Rows * HeadDim * 2;
  static_assert(kChunks % 8 == 0, "swizzle needs at least 8 chunks per row");
  __device__ static __forceinline__ int offset(int row, int chunk) {  // in bytes
    return (row * kChunks + (chunk ^ (row & 7))) * kVecBytes;
  }
};

__device__ __forceinline__ u32 smem_addr(const void* p) { return u32(__cvta_generic_to_shared(p)); }

// 16 bytes global -> shared, bypassing L1; zero-filled when !valid (nothing is read then).
__device__ __forceinline__ void cp_async_16(u32 dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// ---- fragments ----
__device__ __forceinline__ void ldmatrix_x4(u32 (&r)[4], u32 addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(u32 (&r)[4], u32 addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

template <typename T> struct MmaName;
template <> struct MmaName<bf16> { static constexpr bool is_bf16 = true; };
template <> struct MmaName<fp16> { static constexpr bool is_bf16 = false; };

// D(16x8, f32) += A(16x16, row) * B(16x8, col).
template <typename T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const u32 (&a)[4], u32 b0, u32 b1) {
  if constexpr (MmaName<T>::is_bf16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// Two floats -> one register of two T (low half first), rounded to nearest even.
template <typename T> __device__ __forceinline__ u32 pack2(float lo, float hi) {
  return u32(from_float<T>(lo).bits) | (u32(from_float<T>(hi).bits) << 16);
}

// Loads a warp's 16-row A operand (rows row0..row0+15, all of HeadDim) from a swizzled tile.
template <int Rows, int HeadDim>
__device__ __forceinline__ void load_a_frags(u32 (&a)[HeadDim / 16][4], const void* tile, int row0, int lane) {
  using Tile = SmemTile<Rows, HeadDim>;
  const u32 base = smem_addr(tile);
  const int row = row0 + (lane & 15);
#pragma unroll
  for (int kk = 0; kk < HeadDim / 16; ++kk) ldmatrix_x4(a[kk], base + Tile::offset(row, kk * 2 + (lane >> 4)));
}

// B operands of two n-tiles (keys n0..n0+15) for k-step kk from a [keys][HeadDim] tile: Q.K^T.
template <int Rows, int HeadDim>
__device__ __forceinline__ void load_kt_frags(u32 (&b)[4], const void* tile, int n0, int kk, int lane) {
  using Tile = SmemTile<Rows, HeadDim>;
  const int row = n0 + (lane & 7) + ((lane >> 4) << 3);
  const int chunk = kk * 2 + ((lane >> 3) & 1);
  ldmatrix_x4(b, smem_addr(tile) + Tile::offset(row, chunk));
}

// B operands of two n-tiles (dims d0..d0+15) for keys k0..k0+15 from a [keys][HeadDim] tile: P.V.
template <int Rows, int HeadDim>
__device__ __forceinline__ void load_v_frags(u32 (&b)[4], const void* tile, int k0, int d0, int lane) {
  using Tile = SmemTile<Rows, HeadDim>;
  const int row = k0 + (lane & 7) + (((lane >> 3) & 1) << 3);
  const int chunk = (d0 >> 3) + (lane >> 4);
  ldmatrix_x4_trans(b, smem_addr(tile) + Tile::offset(row, chunk));
}

}  // namespace vecattn

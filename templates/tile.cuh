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

// ---- hoisted addressing for main loops (the functions above recompute it per call) ----

// SmemTile XORs chunk bits 0..2 with row % 8: the pattern spans 8 chunks (a row's chunks c and
// c + 8 sit 128 bytes apart whatever the row) and repeats every 8 rows.
constexpr int kSwizzleChunks = 8;
constexpr int kSwizzleBytes = kSwizzleChunks * kVecBytes;
constexpr int kSwizzleRows = 8;

// A thread's share of copying Rows x HeadDim into a SmemTile: 8 threads per row, each the same
// chunk c (mod 8) of rows row0 + i * kRowStep. kRowStep is a multiple of 8, so every row a
// thread copies has the same row % 8 and XOR pattern: its destination offsets are one base plus
// compile-time constants, and each row's source address serves all its chunks. A warp
// instruction covers 128 contiguous bytes of each of 4 rows.
template <int Rows, int HeadDim, int Threads> struct TileCopy {
  using Tile = SmemTile<Rows, HeadDim>;
  static constexpr int kRowStep = Threads / kSwizzleChunks;
  static constexpr int kRows = Rows / kRowStep;                      // rows per thread
  static constexpr int kChunkGroups = Tile::kChunks / kSwizzleChunks;  // chunks per row per thread
  static constexpr int kRowBytes = Tile::kChunks * kVecBytes;
  static constexpr int kChunkElems = HeadDim / Tile::kChunks;
  static_assert(kRowStep % kSwizzleRows == 0 && Rows % kRowStep == 0, "whole passes of rows, one XOR pattern per thread");

  int row0;     // this thread's first row
  int col;      // its first column, in elements
  int dst;      // byte offset of (row0, col) in the tile

  __device__ explicit TileCopy(int tid)
      : row0(tid / kSwizzleChunks),
        col(tid % kSwizzleChunks * kChunkElems),
        dst(Tile::offset(row0, tid % kSwizzleChunks)) {}
  __device__ int row(int i) const { return row0 + i * kRowStep; }
  // Byte offsets, relative to dst and to row(i)'s source address, of chunk group j of row i.
  __device__ static constexpr int dst_step(int i, int j) { return i * kRowStep * kRowBytes + j * kSwizzleBytes; }
  __device__ static constexpr int src_step(int j) { return j * kSwizzleBytes; }
};

// A lane's ldmatrix.x4 addresses into a SmemTile. The lane reads row lane_row + r0 (r0 a multiple of kSwizzleRows)
// and chunk 2 * step + lane_chunk, so its row % 8, hence its XOR pattern, never changes: for each
// step % 4 the address is one register plus compile-time constants (step / 4 moves past the XOR
// pattern's 8 chunks). The registers hold whole shared addresses and move from stage to stage
// by an add, so the compiler keeps them instead of recomputing lane arithmetic every tile.
template <int Rows, int HeadDim> struct FragAddrs {
  using Tile = SmemTile<Rows, HeadDim>;
  static constexpr int kPatternSteps = kSwizzleChunks / 2;  // 16-element steps in 8 chunks
  static constexpr int kRowBytes = Tile::kChunks * kVecBytes;
  u32 addr[kPatternSteps];

  __device__ FragAddrs(u32 tile, int lane_row, int lane_chunk) {
#pragma unroll
    for (int j = 0; j < kPatternSteps; ++j) addr[j] = tile + Tile::offset(lane_row, 2 * j + lane_chunk);
  }
  // r0 (a multiple of kSwizzleRows) and step compile-time after unrolling.
  __device__ u32 at(int r0, int step) const {
    return addr[step % kPatternSteps] + (step / kPatternSteps) * kSwizzleBytes + r0 * kRowBytes;
  }
  __device__ void move(int bytes) {
#pragma unroll
    for (int j = 0; j < kPatternSteps; ++j) addr[j] += bytes;
  }
  // The lanes of load_kt_frags: B of Q.K^T, two n-tiles (keys r0..r0+15) at k-step `step`.
  __device__ static FragAddrs kt(u32 tile, int lane) {
    return FragAddrs(tile, (lane & 7) + ((lane >> 4) << 3), (lane >> 3) & 1);
  }
  // B of P.V (ldmatrix .trans), keys r0..r0+15, dims 16 * step..+15: lanes 0-7 and 8-15 address
  // the two 8-key halves of the first 8 dims, lanes 16-31 the same keys at the next 8.
  __device__ static FragAddrs v(u32 tile, int lane) {
    return FragAddrs(tile, (lane & 7) + (((lane >> 3) & 1) << 3), lane >> 4);
  }
};

// FragAddrs in one register, for a tile that stays put in a kernel short of registers (the Q
// tile of 32-row attention warps at D = 128): a tile starts 128-byte aligned and
// a row is a multiple of 128 bytes, so a lane's 8-chunk XOR pattern is address bits 4..6 alone,
// and step `step` (chunk 2 * step + lane_chunk) is its step-0 address XOR 32 * (step % 4), plus
// compile-time constants. One LOP3 per distinct address (ptxas shares them across row offsets)
// instead of three more registers.
template <int Rows, int HeadDim> struct XorFragAddrs {
  using Tile = SmemTile<Rows, HeadDim>;
  static constexpr int kPatternSteps = kSwizzleChunks / 2;
  static constexpr int kRowBytes = Tile::kChunks * kVecBytes;
  static_assert(kRowBytes % kSwizzleBytes == 0, "rows keep the 128-byte alignment");
  u32 addr;

  __device__ XorFragAddrs(u32 tile, int lane_row, int lane_chunk) : addr(tile + Tile::offset(lane_row, lane_chunk)) {}
  __device__ u32 at(int r0, int step) const {
    return (addr ^ u32(step % kPatternSteps * 2 * kVecBytes)) + (step / kPatternSteps) * kSwizzleBytes + r0 * kRowBytes;
  }
  // The lanes of load_a_frags for rows row0..row0+15 (row0 a multiple of kSwizzleRows): A of
  // Q.K^T at k-step `step`; at(16 * i, step) reads rows 16 * i further.
  __device__ static XorFragAddrs a(u32 tile, int row0, int lane) { return XorFragAddrs(tile, row0 + (lane & 15), lane >> 4); }
};

// As cp_async_16 for the row of a key list slot: zero-filled when key < 0 (an empty slot). The
// predicate form of the zero fill (ignore-src) lets the compiler test the key's sign once a row.
__device__ __forceinline__ void cp_async_16_key(u32 dst, const void* src, int key) {
  asm volatile("{\n .reg .pred z;\n setp.lt.s32 z, %2, 0;\n cp.async.cg.shared.global [%0], [%1], 16, z;\n}\n" ::"r"(dst),
               "l"(src), "r"(key));
}

// base + row * stride (bytes) in two multiply-adds: a wide one by the stride's low word, then the
// high word's product added to the high half. (Spelled as an i64 product, or with the low word
// visibly a truncation, it costs one to three instructions more.)
__device__ __forceinline__ const char* row_address(const char* base, u32 row, u64 stride) {
  u32 s_lo = u32(stride);
  asm("" : "+r"(s_lo));  // opaque: a u32 operand makes the product a plain mul.wide.u32
  const u64 wide = reinterpret_cast<u64>(base) + u64(row) * s_lo;
  u32 lo, hi;
  asm("mov.b64 {%0, %1}, %2;" : "=r"(lo), "=r"(hi) : "l"(wide));
  hi += row * u32(stride >> 32);
  u64 r;
  asm("mov.b64 %0, {%1, %2};" : "=l"(r) : "r"(lo), "r"(hi));
  return reinterpret_cast<const char*>(r);
}

}  // namespace vecattn

#pragma once
// Hopper (sm_90a) primitives: shared-memory tiles in the 128-byte swizzled layout that wgmma and
// the copy engine share, wgmma matrix descriptors, warpgroup MMAs with fp32 accumulators,
// mbarriers, named barriers, register reallocation and the async-proxy fence.
#include "common.cuh"
#include "params.h"

namespace vecattn {
namespace sm90 {

constexpr int kWarpgroupThreads = 128;
// A swizzle atom: 8 rows of 128 bytes; tiles start on this boundary so the address-based XOR
// pattern (16-byte chunk ^= row % 8) matches what wgmma expects.
constexpr int kSwizzleAtomBytes = 1024;
constexpr int kRowBytes = 128;  // one row of a column block: 64 fp16/bf16 elements

// A Rows x Cols tile of 16-bit elements stored as Cols/64 column blocks, each Rows x 128 bytes
// with the 128-byte swizzle. Row-major K, Q and V tiles all use it; a column block is what one
// wgmma K-major operand or one MN-major atom spans.
template <int Rows, int Cols> struct SwizzledTile {
  static_assert(Cols % 64 == 0 && Rows % 8 == 0, "whole 64-column blocks of whole swizzle atoms");
  static constexpr int kColBlocks = Cols / 64;
  static constexpr int kBlockBytes = Rows * kRowBytes;
  static constexpr int kBytes = kColBlocks * kBlockBytes;
  static constexpr int kChunksPerRow = Cols / 8;  // 16-byte chunks
  // Byte offset of 16-byte chunk `chunk` (0 .. Cols/8) of row `row`.
  __device__ static __forceinline__ int offset(int row, int chunk) {
    return (chunk >> 3) * kBlockBytes + row * kRowBytes + (((chunk & 7) ^ (row & 7)) << 4);
  }
};

// wgmma shared-memory matrix descriptor, 128-byte swizzle. Addresses and offsets in bytes.
//   K-major (rows x 64-element k block): leading offset unused, stride = 8 rows = 1024 bytes.
//   MN-major (k rows x 64-element n atoms): leading = bytes between n atoms, stride = 1024.
__device__ __forceinline__ u64 sw128_desc(u32 smem_addr, u32 leading_bytes, u32 stride_bytes) {
  return u64((smem_addr & 0x3ffff) >> 4) | (u64(leading_bytes >> 4) << 16) | (u64(stride_bytes >> 4) << 32) |
         (u64(1) << 62);
}

// The same descriptor split in its two words, for main loops that step through a tile: the high
// word (stride, swizzle) is fixed per operand, and a byte offset inside the tile adds to the low
// word's address field, which cannot carry (shared memory ends below 256 KiB). One add per MMA
// instead of rebuilding the 64-bit word each time.
struct Sw128Desc {
  u32 lo, hi;
  __device__ __forceinline__ Sw128Desc(u32 smem_addr, u32 leading_bytes, u32 stride_bytes)
      : lo(((smem_addr & 0x3ffff) >> 4) | ((leading_bytes >> 4) << 16)), hi((stride_bytes >> 4) | (1u << 30)) {}
  __device__ __forceinline__ u64 at(u32 byte_offset) const {
    u64 d;
    asm("mov.b64 %0, {%1, %2};" : "=l"(d) : "r"(lo + (byte_offset >> 4)), "r"(hi));
    return d;
  }
};

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Keeps the compiler from moving reads or writes of accumulator registers across the
// asynchronous MMAs that own them (between fence/commit and wait).
template <int N> __device__ __forceinline__ void fence_operands(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
// The same for A fragments in registers: an in-flight wgmma still reads them, so they must stay
// live (and unmodified) until its wait.
template <int N> __device__ __forceinline__ void fence_operands(u32 (&r)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) asm volatile("" : "+r"(r[i][j])::"memory");
}

// Warpgroup MMAs, M = 64, K = 16, fp32 accumulators in the wgmma register layout:
// thread t of the warpgroup holds rows 16*(t/32) + (t%32)/4 and +8, and for each 8-column
// block c: d[4c + 0, 1] = (row, 8c + 2*(t%4) + 0, 1), d[4c + 2, 3] = (row + 8, same columns).
//   WgmmaSS: D (+)= A * B, A and B from shared memory (descriptors), both K-major.
//   WgmmaRS: D += A * B, A from registers (the mma.sync A-fragment layout), B MN-major.
//   WgmmaRSK: D (+)= A * B, A from registers, B K-major (Q.K^T with Q held in registers).
template <typename T, int N> struct WgmmaSS;
template <typename T, int N> struct WgmmaRS;
template <typename T, int N> struct WgmmaRSK;

// One definition per element type: TYPE the tag, PTX its name in the instruction.
#define VECATTN_WGMMA_OPS(TYPE, PTX) \
  template <> struct WgmmaSS<TYPE, 64> {                                                                  \
    __device__ static __forceinline__ void run(float (&d)[32], u64 a, u64 b, int accumulate) {             \
      asm volatile("{\n .reg .pred p;\n setp.ne.b32 p, %34, 0;\n"                                            \
                   "wgmma.mma_async.sync.aligned.m64n64k16.f32." PTX "." PTX " "                               \
                   "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n"                                     \
          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])                                                                                       \
          : "l"(a), "l"(b), "r"(accumulate));                                                              \
    }                                                                                                     \
  };                                                                                                      \
  template <> struct WgmmaRS<TYPE, 64> {                                                                  \
    __device__ static __forceinline__ void run(float (&d)[32], const u32 (&a)[4], u64 b) {                \
      asm volatile("{\n .reg .pred p;\n setp.ne.b32 p, 1, 0;\n"                                               \
                   "wgmma.mma_async.sync.aligned.m64n64k16.f32." PTX "." PTX " "                               \
                   "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"            \
          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])                                                                                       \
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));                                           \
    }                                                                                                     \
  }; \
  template <> struct WgmmaRSK<TYPE, 64> {                                                                 \
    __device__ static __forceinline__ void run(float (&d)[32], const u32 (&a)[4], u64 b, int accumulate) {  \
      asm volatile("{\n .reg .pred p;\n setp.ne.b32 p, %37, 0;\n"                                            \
                   "wgmma.mma_async.sync.aligned.m64n64k16.f32." PTX "." PTX " "                               \
                   "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, 0;\n}\n"            \
          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])                                                                                       \
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate));                          \
    }                                                                                                     \
  };                                                                                                      \
  template <> struct WgmmaSS<TYPE, 128> {                                                                  \
    __device__ static __forceinline__ void run(float (&d)[64], u64 a, u64 b, int accumulate) {             \
      asm volatile("{\n .reg .pred p;\n setp.ne.b32 p, %66, 0;\n"                                            \
                   "wgmma.mma_async.sync.aligned.m64n128k16.f32." PTX "." PTX " "                               \
                   "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 0;\n}\n"                                     \
          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])                                                                                       \
          : "l"(a), "l"(b), "r"(accumulate));                                                              \
    }                                                                                                     \
  };                                                                                                      \
  template <> struct WgmmaRS<TYPE, 128> {                                                                  \
    __device__ static __forceinline__ void run(float (&d)[64], const u32 (&a)[4], u64 b) {                \
      asm volatile("{\n .reg .pred p;\n setp.ne.b32 p, 1, 0;\n"                                               \
                   "wgmma.mma_async.sync.aligned.m64n128k16.f32." PTX "." PTX " "                               \
                   "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"            \
          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])                                                                                       \
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));                                           \
    }                                                                                                     \
  };

VECATTN_WGMMA_OPS(bf16, "bf16")
VECATTN_WGMMA_OPS(fp16, "f16")
#undef VECATTN_WGMMA_OPS

// ---- mbarriers (shared-memory arrive/wait barriers with a phase bit) ----
__device__ __forceinline__ void mbar_init(u32 bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
// Arrives with release semantics: this thread's earlier shared-memory writes are visible to
// whoever sees the phase complete.
__device__ __forceinline__ void mbar_arrive(u32 bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Arrives once this thread's earlier cp.async copies have landed (counts as one arrival).
__device__ __forceinline__ void mbar_arrive_on_copies(u32 bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
// Waits (acquire) until the phase of parity `parity` has completed.
__device__ __forceinline__ void mbar_wait(u32 bar, int parity) {
  asm volatile(
      "{\n .reg .pred done;\n"
      "WAIT:\n"
      " mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      " @!done bra WAIT;\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}

// Whether the phase of parity `parity` has completed, without waiting (acquire when it has).
__device__ __forceinline__ bool mbar_test(u32 bar, int parity) {
  u32 done;
  asm volatile(
      "{\n .reg .pred p;\n"
      " mbarrier.test_wait.parity.shared::cta.b64 p, [%1], %2;\n"
      " selp.u32 %0, 1, 0, p;\n}\n"
      : "=r"(done)
      : "r"(bar), "r"(parity)
      : "memory");
  return done != 0;
}

// The phase also waits for `bytes` more bytes of copy-engine writes; counts as one arrival.
__device__ __forceinline__ void mbar_arrive_expect_tx(u32 bar, u32 bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}

// ---- the copy engine (TMA) ----
// One box of a 4-D tensor (coordinates innermost first) into shared memory at `dst`, completing
// on `bar` with the box's byte count. Out-of-bounds elements (rows past S, or a row -1) arrive
// as zeros and still count. The 128-byte swizzle follows the destination address, so a box of
// one row lands at its row of a swizzled tile.
__device__ __forceinline__ void tma_load_4d(u32 dst, const TmaDescriptor* map, int c0, int c1, int c2, int c3,
                                            u32 bar) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], "
      "[%6];\n" ::"r"(dst),
      "l"(reinterpret_cast<u64>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar)
      : "memory");
}

// Shared memory written through the generic proxy (stores, cp.async) becomes visible to the
// async proxy (wgmma operands) of this thread.
__device__ __forceinline__ void fence_async_shared() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

template <int Id, int Threads> __device__ __forceinline__ void named_sync() {
  asm volatile("bar.sync %0, %1;\n" ::"n"(Id), "n"(Threads) : "memory");
}

// Register reallocation between warpgroups (needs a register cap at entry: __launch_bounds__).
template <int Regs> __device__ __forceinline__ void regs_dealloc() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(Regs));
}
template <int Regs> __device__ __forceinline__ void regs_alloc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(Regs));
}

}  // namespace sm90
}  // namespace vecattn

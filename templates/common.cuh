#pragma once
// Primitives shared by every vecattn kernel. Compiled by NVRTC with no toolkit headers:
// fp16/bf16 live as raw 16-bit patterns and convert through PTX.

namespace vecattn {

using u16 = unsigned short;
using u32 = unsigned int;
using u64 = unsigned long long;
using i64 = long long;

// Element types carry their raw bits; the tag type picks the conversions.
struct fp16 { u16 bits; };
struct bf16 { u16 bits; };

// A 16-byte vector: the width of one coalesced load per thread.
struct alignas(16) vec16 { u32 x, y, z, w; };
constexpr int kVecBytes = 16;
template <typename T> constexpr int kElemsPerVec = kVecBytes / sizeof(T);

__device__ __forceinline__ float to_float(fp16 v) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v.bits));
  return f;
}
__device__ __forceinline__ float to_float(bf16 v) { return __uint_as_float(u32(v.bits) << 16); }

template <typename T> __device__ __forceinline__ T from_float(float f);
template <> __device__ __forceinline__ fp16 from_float<fp16>(float f) {
  fp16 v;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(v.bits) : "f"(f));
  return v;
}
template <> __device__ __forceinline__ bf16 from_float<bf16>(float f) {
  bf16 v;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(v.bits) : "f"(f));
  return v;
}

// The two halves of a 32-bit word holding two packed elements.
template <typename T> __device__ __forceinline__ float lo_float(u32 w) { return to_float(T{u16(w & 0xffffu)}); }
template <typename T> __device__ __forceinline__ float hi_float(u32 w) { return to_float(T{u16(w >> 16)}); }

// Adds the 8 elements of a 16-byte vector into acc[0..7].
template <typename T> __device__ __forceinline__ void accumulate(float (&acc)[8], const vec16& v) {
  const u32 w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    acc[2 * i] += lo_float<T>(w[i]);
    acc[2 * i + 1] += hi_float<T>(w[i]);
  }
}

__device__ __forceinline__ float neg_inf() { return __int_as_float(0xff800000); }

// 2^x in one MUFU instruction. exp2f without fast math adds a range test and two scalings to keep
// results below 2^-126 (four instructions an element, a third of the softmax); here they flush to
// zero, and a key weighing under 2^-126 of the row's maximum (weight 1) cannot move the output.
// exp2(-inf) = 0.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ vec16 load_vec16(const void* p) { return *reinterpret_cast<const vec16*>(p); }

}  // namespace vecattn

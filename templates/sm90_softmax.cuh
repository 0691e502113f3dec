#pragma once
// Online softmax on a consumer thread's fragment of a 64 x BN score tile (wgmma accumulator
// layout: two rows a thread, a and b = a + 8; the four threads of a quad share them). Scores stay
// raw; the log2-domain scale is applied inside exp2, as FlashAttention does, so one FFMA per
// element both scales and subtracts the running maximum.
#include "sm90_config.cuh"

namespace vecattn {
namespace sm90 {

template <int BN, int HeadDim, typename T> struct OnlineSoftmax {
  static constexpr int kS = BN / 2, kO = HeadDim / 2;
  float max_a = neg_inf(), max_b = neg_inf();  // running row maxima (raw scores)
  float sum_a = 0.f, sum_b = 0.f;              // this thread's part of the row sums

  // s -> unnormalized probabilities (in place) against the new running maxima; the sums follow.
  // Returns through alpha_a/b the factor by which O, accumulated against the old maxima, must be
  // rescaled (done later, once the previous tile's P.V has left the tensor cores). A row with
  // nothing seen yet keeps max -inf and subtracts 0, so exp2 stays finite.
  __device__ __forceinline__ void scores(float (&s)[kS], float scale_log2, float& alpha_a, float& alpha_b) {
    float tile_a = neg_inf(), tile_b = neg_inf();
#pragma unroll
    for (int n = 0; n < BN / 8; ++n) {
      tile_a = fmaxf(tile_a, fmaxf(s[4 * n], s[4 * n + 1]));
      tile_b = fmaxf(tile_b, fmaxf(s[4 * n + 2], s[4 * n + 3]));
    }
#pragma unroll
    for (int x = 1; x <= 2; x <<= 1) {
      tile_a = fmaxf(tile_a, __shfl_xor_sync(0xffffffffu, tile_a, x));
      tile_b = fmaxf(tile_b, __shfl_xor_sync(0xffffffffu, tile_b, x));
    }
    const float new_a = fmaxf(max_a, tile_a), new_b = fmaxf(max_b, tile_b);
    const float base_a = new_a == neg_inf() ? 0.f : new_a * scale_log2;
    const float base_b = new_b == neg_inf() ? 0.f : new_b * scale_log2;
    alpha_a = fast_exp2(max_a * scale_log2 - base_a);
    alpha_b = fast_exp2(max_b * scale_log2 - base_b);
    max_a = new_a;
    max_b = new_b;
    sum_a *= alpha_a;
    sum_b *= alpha_b;
#pragma unroll
    for (int n = 0; n < BN / 8; ++n) {
      s[4 * n] = fast_exp2(fmaf(s[4 * n], scale_log2, -base_a));
      s[4 * n + 1] = fast_exp2(fmaf(s[4 * n + 1], scale_log2, -base_a));
      s[4 * n + 2] = fast_exp2(fmaf(s[4 * n + 2], scale_log2, -base_b));
      s[4 * n + 3] = fast_exp2(fmaf(s[4 * n + 3], scale_log2, -base_b));
      sum_a += s[4 * n] + s[4 * n + 1];
      sum_b += s[4 * n + 2] + s[4 * n + 3];
    }
  }

  __device__ __forceinline__ static void rescale(float (&o)[kO], float alpha_a, float alpha_b) {
#pragma unroll
    for (int n = 0; n < HeadDim / 8; ++n) {
      o[4 * n] *= alpha_a;
      o[4 * n + 1] *= alpha_a;
      o[4 * n + 2] *= alpha_b;
      o[4 * n + 3] *= alpha_b;
    }
  }

  // Probabilities rounded to T as the A operand of P.V: the accumulator layout of two 8-key
  // column blocks is the A-fragment layout of one 16-key k-step.
  __device__ __forceinline__ static void pack(const float (&s)[kS], u32 (&p)[BN / 16][4]) {
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      p[kk][0] = pack2<T>(s[8 * kk], s[8 * kk + 1]);
      p[kk][1] = pack2<T>(s[8 * kk + 2], s[8 * kk + 3]);
      p[kk][2] = pack2<T>(s[8 * kk + 4], s[8 * kk + 5]);
      p[kk][3] = pack2<T>(s[8 * kk + 6], s[8 * kk + 7]);
    }
  }

  // Whole-row sums (the quad's parts added).
  __device__ __forceinline__ void reduce_sums() {
#pragma unroll
    for (int x = 1; x <= 2; x <<= 1) {
      sum_a += __shfl_xor_sync(0xffffffffu, sum_a, x);
      sum_b += __shfl_xor_sync(0xffffffffu, sum_b, x);
    }
  }
};

}  // namespace sm90
}  // namespace vecattn

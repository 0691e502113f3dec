#pragma once
// The MinP rule of docs/semantics.md §4 on one select step (64 keys, one mask word) of a thread's
// two pooled rows, shared by the mma.sync (select.cuh) and wgmma (sm90_select.cuh) kernels. The
// scores arrive in the accumulator layout both MMAs share: s[4n + e] is row a and key
// 8n + 2*quad + e, s[4n + 2 + e] row b and the same key, for n-tiles n = 0..7 and e = 0, 1.
//
// This is the selection's hot loop (a 64 x 64 tile of scores costs the tensor cores less than its
// epilogue), so it is written for instruction count: bit positions are compile-time constants
// within 32-bit halves, shifted into place once per step; the running maximum becomes one
// threshold per selection tile; key bounds are tested per key only on a word that crosses one.
#include "common.cuh"
#include "params.h"
#include "tile.cuh"

namespace vecattn {

// A 16-byte chunk of a pooled row times sm_scale, rounded back to T: the query side of every
// score (docs/semantics.md §3).
template <typename T> __device__ __forceinline__ vec16 scaled_chunk(const vec16& raw, float scale) {
  const u32 w[4] = {raw.x, raw.y, raw.z, raw.w};
  u32 o[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) o[j] = pack2<T>(lo_float<T>(w[j]) * scale, hi_float<T>(w[j]) * scale);
  return vec16{o[0], o[1], o[2], o[3]};
}

// bits |= bit where x >= thr: a compare into a predicate and a predicated OR (the compiler's own
// form, a select and an add per score, costs one more ALU instruction on the hot loop).
__device__ __forceinline__ void or_if_ge(u32& bits, float x, float thr, u32 bit) {
  asm("{\n .reg .pred p;\n setp.ge.f32 p, %1, %2;\n @p or.b32 %0, %0, %3;\n}\n" : "+r"(bits) : "f"(x), "f"(thr), "r"(bit));
}

// Zeros into the words [word0, word1) of rows [row0, row_end) that lie outside the computed words
// [cw0, cw1): a warp per row, a lane per word (coalesced, no division).
__device__ __forceinline__ void zero_unreachable_words(unsigned long long* mask, int words, int row0, int row_end,
                                                       int word0, int word1, int cw0, int cw1, int threads) {
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  for (int r = row0 + warp; r < row_end; r += threads / 32)
    for (int w = word0 + lane; w < word1; w += 32)
      if (w < cw0 || w >= cw1) mask[i64(r) * words + w] = 0ull;
}

template <int Bk, int Gk> struct SelectRule {
  static constexpr int kStep = kSelectKeysPerStep;
  static constexpr int kGroup = Gk * Bk;
  static constexpr int kSubtiles = kStep / Bk;   // selection tiles in one step
  static constexpr int kNtPerSubtile = Bk / 8;   // 8-key n-tiles per selection tile
  static_assert(Bk == 16 || Bk == 32 || Bk == 64, "Bk must be 16, 32 or 64");
  static_assert(Gk >= 1 && (Gk & (Gk - 1)) == 0, "Gk must be a power of two");

  float max_a = neg_inf(), max_b = neg_inf();   // running maximum of the current selection group

  // The mask words of rows a and b for keys [key_begin, key_begin + 64), in every thread of the
  // quad. Row a's candidates are [lo, hi_a), row b's [lo, hi_b). Checked (warp-uniform): the word
  // may cross a bound, so every key is tested; otherwise each row's word lies wholly inside its
  // range or wholly outside (then its word is 0; its running max is never read again).
  template <bool Checked>
  __device__ __forceinline__ void step(const float (&s)[32], int key_begin, float gap, int lo, int hi_a, int hi_b,
                                       unsigned long long& word_a, unsigned long long& word_b) {
    const int quad = int(threadIdx.x) & 3;
    u32 bits[2][2] = {{0u, 0u}, {0u, 0u}};  // [row a, b][keys 0-31, 32-63] before the quad shift
#pragma unroll
    for (int sub = 0; sub < kSubtiles; ++sub) {
      // Groups are aligned to absolute key positions; a step starts on a group boundary when
      // the group is at least a step long, and holds whole groups otherwise.
      const bool starts_group = kGroup <= kStep ? (sub * Bk) % kGroup == 0 : (sub == 0 && key_begin % kGroup == 0);
      float tile_a = neg_inf(), tile_b = neg_inf();
#pragma unroll
      for (int n = sub * kNtPerSubtile; n < (sub + 1) * kNtPerSubtile; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float va = s[4 * n + e], vb = s[4 * n + 2 + e];
          if constexpr (Checked) {
            const int key = key_begin + n * 8 + quad * 2 + e;
            if (key < lo || key >= hi_a) va = neg_inf();
            if (key < lo || key >= hi_b) vb = neg_inf();
          }
          tile_a = fmaxf(tile_a, va);
          tile_b = fmaxf(tile_b, vb);
        }
#pragma unroll
      for (int o = 1; o <= 2; o <<= 1) {
        tile_a = fmaxf(tile_a, __shfl_xor_sync(0xffffffffu, tile_a, o));
        tile_b = fmaxf(tile_b, __shfl_xor_sync(0xffffffffu, tile_b, o));
      }
      max_a = starts_group ? tile_a : fmaxf(max_a, tile_a);
      max_b = starts_group ? tile_b : fmaxf(max_b, tile_b);
      // s + gap >= max, as s >= max - gap: one comparison per score.
      const float thr_a = max_a - gap, thr_b = max_b - gap;
#pragma unroll
      for (int n = sub * kNtPerSubtile; n < (sub + 1) * kNtPerSubtile; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const u32 bit = 1u << ((n % 4) * 8 + e);
          if constexpr (Checked) {
            const int key = key_begin + n * 8 + quad * 2 + e;
            bits[0][n / 4] |= s[4 * n + e] >= thr_a && key >= lo && key < hi_a ? bit : 0u;
            bits[1][n / 4] |= s[4 * n + 2 + e] >= thr_b && key >= lo && key < hi_b ? bit : 0u;
          } else {
            or_if_ge(bits[0][n / 4], s[4 * n + e], thr_a, bit);
            or_if_ge(bits[1][n / 4], s[4 * n + 2 + e], thr_b, bit);
          }
        }
    }
    // Into place (this thread's keys are 2*quad further), then the quad's disjoint bits together.
#pragma unroll
    for (int r = 0; r < 2; ++r)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        u32 w = bits[r][h] << (2 * quad);
        w |= __shfl_xor_sync(0xffffffffu, w, 1);
        w |= __shfl_xor_sync(0xffffffffu, w, 2);
        bits[r][h] = w;
      }
    word_a = (static_cast<unsigned long long>(bits[0][1]) << 32) | bits[0][0];
    word_b = (static_cast<unsigned long long>(bits[1][1]) << 32) | bits[1][0];
    if constexpr (!Checked) {
      if (!(key_begin >= lo && key_begin + kStep <= hi_a)) word_a = 0;
      if (!(key_begin >= lo && key_begin + kStep <= hi_b)) word_b = 0;
    }
  }
};

}  // namespace vecattn

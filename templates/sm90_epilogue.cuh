#pragma once
// After the main loop: with split keys the second consumer's partial (O, row max, row sum) goes
// through shared memory to the first, which merges the two; then O / sum is rounded to T and
// stored, rows past row_end skipped.
#include "sm90_config.cuh"
#include "sm90_mainloop.cuh"
#include "sm90_scheduler.cuh"

namespace vecattn {
namespace sm90 {

template <class Cfg> struct Epilogue {
  using T = typename Cfg::T;
  static constexpr int kO = Cfg::kAccO;
  static constexpr int kConsumerThreads = Cfg::kConsumers * kWarpgroupThreads;

  // Consumer 1's partial merged into consumer 0's. Layout [value][thread]: each thread reads back
  // exactly what its counterpart wrote, conflict-free.
  __device__ static void merge(Consumer<Cfg>& c, const AttnSmem<Cfg>& sm, float scale_log2) {
    float* buf = sm.merge();
    const int t = int(threadIdx.x) % kWarpgroupThreads;
    // Both loops done: no stage is read any more, and none is being written: each consumer's last
    // wait was on its loading group's empty tile, that group's last act, after which the group
    // issues no copy.
    named_sync<kMergeBarrier, kConsumerThreads>();
    if (c.wg == 1) {
      buf[0 * kWarpgroupThreads + t] = c.softmax.max_a;
      buf[1 * kWarpgroupThreads + t] = c.softmax.max_b;
      buf[2 * kWarpgroupThreads + t] = c.softmax.sum_a;
      buf[3 * kWarpgroupThreads + t] = c.softmax.sum_b;
#pragma unroll
      for (int i = 0; i < kO; ++i) buf[(4 + i) * kWarpgroupThreads + t] = c.o[i];
    }
    named_sync<kMergeBarrier, kConsumerThreads>();
    if (c.wg == 0) {
      const float m1a = buf[0 * kWarpgroupThreads + t], m1b = buf[1 * kWarpgroupThreads + t];
      const float ma = fmaxf(c.softmax.max_a, m1a), mb = fmaxf(c.softmax.max_b, m1b);
      auto weight = [&](float m, float mx) { return m == neg_inf() ? 0.f : exp2f((m - mx) * scale_log2); };
      const float a0 = weight(c.softmax.max_a, ma), a1 = weight(m1a, ma);
      const float b0 = weight(c.softmax.max_b, mb), b1 = weight(m1b, mb);
      c.softmax.sum_a = c.softmax.sum_a * a0 + buf[2 * kWarpgroupThreads + t] * a1;
      c.softmax.sum_b = c.softmax.sum_b * b0 + buf[3 * kWarpgroupThreads + t] * b1;
#pragma unroll
      for (int n = 0; n < kO / 4; ++n) {
        const float* r = buf + (4 + 4 * n) * kWarpgroupThreads + t;
        c.o[4 * n] = c.o[4 * n] * a0 + r[0] * a1;
        c.o[4 * n + 1] = c.o[4 * n + 1] * a0 + r[kWarpgroupThreads] * a1;
        c.o[4 * n + 2] = c.o[4 * n + 2] * b0 + r[2 * kWarpgroupThreads] * b1;
        c.o[4 * n + 3] = c.o[4 * n + 3] * b0 + r[3 * kWarpgroupThreads] * b1;
      }
    }
  }

  // Expects whole-row sums (reduce_sums done).
  __device__ static void store(Consumer<Cfg>& c, const AttnParams& p, const AttnWork& w) {
    const float inv_a = c.softmax.sum_a > 0.f ? 1.f / c.softmax.sum_a : 0.f;
    const float inv_b = c.softmax.sum_b > 0.f ? 1.f / c.softmax.sum_b : 0.f;
    T* out = static_cast<T*>(p.out) + i64(w.batch) * p.o_stride_b + i64(w.head) * p.o_stride_h;
    const int col = (int(threadIdx.x) % 4) * 2;
#pragma unroll
    for (int n = 0; n < kO / 4; ++n) {
      const int d = n * 8 + col;
      if (c.row_a < p.row_end)
        *reinterpret_cast<u32*>(out + i64(c.row_a) * p.o_stride_s + d) = pack2<T>(c.o[4 * n] * inv_a, c.o[4 * n + 1] * inv_a);
      if (c.row_b < p.row_end)
        *reinterpret_cast<u32*>(out + i64(c.row_b) * p.o_stride_s + d) =
            pack2<T>(c.o[4 * n + 2] * inv_b, c.o[4 * n + 3] * inv_b);
    }
  }

  __device__ static void run(Consumer<Cfg>& c, const AttnParams& p, const AttnWork& w, const AttnSmem<Cfg>& sm) {
    c.softmax.reduce_sums();
    if constexpr (Cfg::kSplitKeys) {
      merge(c, sm, p.sm_scale_log2);
      if (c.wg != 0) return;
    }
    store(c, p, w);
  }
};

}  // namespace sm90
}  // namespace vecattn

#pragma once
// Attention on Hopper (docs/semantics.md §5): warp-specialized and wgmma-based, the same key
// schedule, selection and results as the mma.sync kernel (attention.cuh).
//   warpgroups 0-1  producers: Q, then K/V tiles (TMA: rows or ranges) into a ring of stages
//                   (sm90_producer)
//   warpgroups 2-3  consumers: S = QK^T, online softmax, O += PV (sm90_mainloop, sm90_softmax),
//                   then the merge of split-key partials and the store (sm90_epilogue)
// Which rows a CTA owns comes from sm90_scheduler; the compile-time shape and the shared-memory
// map from sm90_config.
#include "sm90_epilogue.cuh"
#include "sm90_mainloop.cuh"
#include "sm90_producer.cuh"
#include "sm90_scheduler.cuh"

namespace vecattn {

template <int HeadDim, typename T, int BN, int Stages, bool Causal, int Pq>
__global__ void __launch_bounds__(kAttnSm90Threads, 1) attn_sm90_kernel(const __grid_constant__ AttnSm90Params prm) {
  using namespace sm90;
  using Cfg = AttnConfig<HeadDim, T, BN, Stages, Causal, Pq>;
  extern __shared__ char smem_raw[];
  // The dynamic base is aligned up to a swizzle atom (the launch reserves one atom of slack).
  char* aligned = smem_raw + ((kSwizzleAtomBytes - (smem_addr(smem_raw) & (kSwizzleAtomBytes - 1))) &
                              (kSwizzleAtomBytes - 1));
  const AttnSmem<Cfg> sm(aligned);
  const AttnParams& p = prm.a;
  const AttnWork work = schedule_work<Cfg>(p);

  if (threadIdx.x == 0) {
    mbar_init(sm.q_full(), 1);
    for (int s = 0; s < Stages; ++s) {
      mbar_init(sm.full(s), Producer<Cfg>::kFullArrivals);
      // One arrival per consumer warp that reads the stage.
      mbar_init(sm.empty(s), (Cfg::kSplitKeys ? 1 : Cfg::kConsumers) * kWarpgroupThreads / 32);
    }
    // The copy engine completes transactions on these barriers: their initialization must be
    // visible to it (the async proxy), not only to the other threads.
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    fence_async_shared();
  }
  __syncthreads();

  if (threadIdx.x < Cfg::kProducerThreads) {
    regs_dealloc<Cfg::kProducerRegs>();
    Producer<Cfg>::run(prm, work, sm);
  } else {
    regs_alloc<Cfg::kConsumerRegs>();
    Consumer<Cfg> consumer(work);
    consumer.run(p, sm);
    Epilogue<Cfg>::run(consumer, p, work, sm);
  }
}

}  // namespace vecattn

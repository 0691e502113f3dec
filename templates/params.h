#pragma once
// Kernel arguments: flat PODs passed by value, shared verbatim by the host (C++) and the
// kernels (NVRTC), so their layouts cannot drift apart. Plain C++ only in this file.

namespace vecattn {

// DESIGN §2.1. Q rows [i*Pq, min((i+1)*Pq, S)) -> one pooled row i. Strides in elements,
// innermost stride 1.
struct PoolParams {
  const void* q;                                  // [B, H, S, D]
  void* out;                                      // [B, H, nq, D]
  long long q_stride_b, q_stride_h, q_stride_s;
  long long out_stride_b, out_stride_h, out_stride_s;
  int seq_len;                                    // S
  int num_pooled;                                 // nq = ceil(S / Pq)
};

}  // namespace vecattn

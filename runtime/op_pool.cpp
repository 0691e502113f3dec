// Runtime::pool: docs/semantics.md §2 through the pool kernel.
#include <fmt/format.h>

#include "codegen/kernels.h"
#include "runtime/driver.h"
#include "runtime/launch.h"
#include "runtime/runtime_impl.h"
#include "runtime/validate.h"
#include "templates/params.h"

namespace vecattn {

void Runtime::pool(const Tensor& q, const Tensor& out, int pq, Stream stream) {
  check_tensor(q, "q");
  check_tensor(out, "out");
  check_distinct_elements(out, "out");
  check_same_dtype(q, "q", out, "out");
  const KernelKey k = key(KernelKind::pool, pq, 0, 0, int(q.head_dim()), q.dtype, false);
  if (auto why = why_invalid(k); !why.empty()) throw Error(Status::invalid_argument, why, {}, k.str());
  const int64_t seq = q.seq_len();
  const int64_t pooled = (seq + pq - 1) / pq;
  const int64_t expected[4] = {q.batch(), q.heads(), pooled, q.head_dim()};
  check_shape(out, "out", expected, fmt::format("q pooled by Pq={}", pq).c_str());
  check_no_overlap(out, "out", q, "q");
  if (q.batch() * q.heads() > 65535)
    throw Error(Status::invalid_argument, fmt::format("q: batch {} x heads {} must be at most 65535", q.batch(),
                                                      q.heads()));

  const LoadedKernel& kern = impl_->kernel(k);
  PoolParams p{};
  p.q = q.data;
  p.out = out.data;
  p.q_stride_b = q.stride[0];
  p.q_stride_h = q.stride[1];
  p.q_stride_s = q.stride[2];
  p.out_stride_b = out.stride[0];
  p.out_stride_h = out.stride[1];
  p.out_stride_s = out.stride[2];
  p.out_origin = 0;
  p.unit_begin = 0;
  p.heads = int(q.heads());
  p.seq_len = int(seq);
  p.num_pooled = int(pooled);
  ScopedContext scope(impl_->context);
  launch(kern, Dim3{unsigned(pooled), unsigned(q.batch() * q.heads())},
         Dim3{unsigned(kern.variant.config.warps * 32)}, 0, stream, p);
}

}  // namespace vecattn

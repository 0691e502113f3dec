// Runtime::recall: docs/semantics.md §6 (recall of sampled rows) through the recall kernel, the
// measure vecattn-calibrate bisects thresholds on.
#include <fmt/format.h>

#include <cmath>
#include <cstdint>

#include "codegen/kernels.h"
#include "runtime/driver.h"
#include "runtime/launch.h"
#include "runtime/prefill_plan.h"
#include "runtime/runtime_impl.h"
#include "templates/params.h"

namespace vecattn {

void Runtime::recall(const Tensor& q, const Tensor& k, const PrefillParams& params, Selection selection,
                     const int32_t* rows, int64_t n_rows, float* recall, Stream stream) {
  const PrefillPlan plan = plan_prefill(q, k, nullptr, nullptr, params);
  if (!selection.data) throw Error(Status::invalid_argument, "recall: selection data pointer is null");
  if (reinterpret_cast<uintptr_t>(selection.data) % 8)
    throw Error(Status::invalid_argument, "recall: selection data pointer is not 8-byte aligned");
  if (!rows || reinterpret_cast<uintptr_t>(rows) % 4)
    throw Error(Status::invalid_argument, "recall: rows must be a non-null, 4-byte aligned device array of int32");
  if (!recall || reinterpret_cast<uintptr_t>(recall) % 4)
    throw Error(Status::invalid_argument, "recall: the output must be a non-null, 4-byte aligned device array of float");
  constexpr int64_t kMaxRows = int64_t(1) << 24;  // far beyond any sample; keeps every index in int
  if (n_rows < 1 || n_rows > kMaxRows)
    throw Error(Status::invalid_argument, fmt::format("recall: n_rows {} must be in [1, {}]", n_rows, kMaxRows));

  const LoadedKernel& kern =
      impl_->kernel(key(KernelKind::recall, plan.pq, 0, 0, int(plan.head_dim), plan.dtype, plan.causal));
  RecallParams p{};
  p.q = q.data;
  p.k = k.data;
  p.mask = static_cast<const unsigned long long*>(selection.data);
  p.rows = rows;
  p.out = recall;
  p.q_stride_b = q.stride[0], p.q_stride_h = q.stride[1], p.q_stride_s = q.stride[2];
  p.k_stride_b = k.stride[0], p.k_stride_h = k.stride[1], p.k_stride_s = k.stride[2];
  p.q_heads = int(plan.q_heads);
  p.kv_group = int(plan.q_heads / plan.kv_heads);
  p.seq_len = int(plan.seq_len);
  p.num_pooled = int(plan.pooled);
  p.words = int(plan.words);
  p.num_rows = int(n_rows);
  p.dense_prefix = int(std::min<int64_t>(plan.dense_prefix, plan.seq_len));
  p.sm_scale_log2 = float(1.0 / std::sqrt(double(plan.head_dim)) * 1.4426950408889634);

  ScopedContext scope(impl_->context);
  const unsigned groups = unsigned((n_rows + kRecallRowsPerCta - 1) / kRecallRowsPerCta);
  constexpr int64_t kMaxUnitsPerLaunch = 65535;  // gridDim.y
  for (int64_t u0 = 0; u0 < plan.units(); u0 += kMaxUnitsPerLaunch) {
    p.unit_begin = int(u0);
    const unsigned units = unsigned(std::min(kMaxUnitsPerLaunch, plan.units() - u0));
    launch(kern, Dim3{groups, units}, Dim3{unsigned(kern.variant.config.warps * 32)}, 0,
           reinterpret_cast<CUstream>(stream), p);
  }
}

}  // namespace vecattn

#include "runtime/launch.h"

#include <fmt/format.h>

#include "codegen/error.h"
#include "runtime/driver.h"

namespace vecattn {

void launch_raw(const LoadedKernel& k, Dim3 grid, Dim3 block, unsigned dynamic_smem, CUstream stream, void* params) {
  const Driver& d = Driver::get();
  void* args[] = {params};
  CUresult r = d.cuLaunchKernel(k.function, grid.x, grid.y, grid.z, block.x, block.y, block.z, dynamic_smem, stream,
                                args, nullptr);
  if (r != CUDA_SUCCESS)
    throw Error(Status::cuda_error,
                fmt::format("launching {} (grid {}x{}x{}, block {}, {} B shared) failed: {}", k.variant.str(), grid.x,
                            grid.y, grid.z, block.x * block.y * block.z, dynamic_smem, d.error_text(r)),
                {}, k.variant.str());
}

}  // namespace vecattn

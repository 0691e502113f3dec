#pragma once
// One kernel launch: grid, block, dynamic shared memory, a by-value Params struct, a stream.
#include <cuda.h>

#include "runtime/module_cache.h"

namespace vecattn {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

template <typename Params>
void launch(const LoadedKernel& k, Dim3 grid, Dim3 block, unsigned dynamic_smem, CUstream stream, const Params& params);

void launch_raw(const LoadedKernel& k, Dim3 grid, Dim3 block, unsigned dynamic_smem, CUstream stream, void* params);

template <typename Params>
void launch(const LoadedKernel& k, Dim3 grid, Dim3 block, unsigned dynamic_smem, CUstream stream, const Params& params) {
  Params copy = params;  // cuLaunchKernel copies the bytes before it returns
  launch_raw(k, grid, block, dynamic_smem, stream, &copy);
}

}  // namespace vecattn

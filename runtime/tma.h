#pragma once
// The copy engine's (TMA) descriptors of q, k and v for the sm_90a select and attention kernels.
#include <string>

#include "runtime/tensor.h"
#include "templates/params.h"

namespace vecattn {

// Fills out.q (boxes of q_rows rows), out.k_rows / v_rows (one row) and out.k_tiles / v_tiles
// (key_rows rows), all 64 columns wide with the 128-byte swizzle. Returns false, with the reason
// in *why, when the driver cannot describe a tensor (a zero stride, say); the caller then runs the
// mma.sync kernel instead.
bool encode_attention_maps(const Tensor& q, const Tensor& k, const Tensor& v, int q_rows, int key_rows,
                           AttnSm90Params& out, std::string* why);

// Fills out.k with boxes of one select step (64 keys) of k; false with the reason as above.
bool encode_select_map(const Tensor& k, SelectSm90Params& out, std::string* why);

}  // namespace vecattn

#pragma once
// safetensors files, the format engines dump activations with: an 8-byte little-endian header
// length, a JSON header naming each tensor's dtype, shape and byte range, then the bytes.
// Read strictly: dtypes F16, BF16 and F32; every tensor's range inside the data, sized for its
// shape, the ranges covering the data without overlap or gap; anything else is an error naming
// the file and what is wrong.
#include <map>
#include <string>

#include "tools/npy.h"

namespace vecattn::tools {

// Tensors by name, as arrays to_dtype_bits converts (descr "<f2", "<f4", or "bf16").
// Throws std::runtime_error("<path>: <what is wrong>").
std::map<std::string, NpyArray> read_safetensors(const std::string& path);

}  // namespace vecattn::tools

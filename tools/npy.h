#pragma once
// NumPy .npy files (format 1.0, 2.0, 3.0), read for vecattn-bench's --input npy.
#include <cstdint>
#include <string>
#include <vector>

#include "codegen/key.h"

namespace vecattn::tools {

struct NpyArray {
  std::vector<int64_t> shape;
  std::string descr;        // e.g. "<f4"
  std::vector<char> data;   // C order, as stored
};

// Throws std::runtime_error naming the path and what is wrong (magic, header, descr, size).
NpyArray read_npy(const std::string& path);

// A whole file's bytes, read in one call (dumps run to gigabytes). Throws std::runtime_error
// naming the path when it cannot be opened or read.
std::vector<char> read_file_bytes(const std::string& path);

// The values as 16-bit patterns of `to`, rounded to nearest even: '<f2' (fp16), '<f4', '<f8',
// 'bf16' (a safetensors BF16 tensor); '<u2', '<i2' and '|V2' are taken as raw bits of `to` (how
// bf16 arrays are usually saved with NumPy).
std::vector<uint16_t> to_dtype_bits(const NpyArray& a, DType to);

}  // namespace vecattn::tools

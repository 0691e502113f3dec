#pragma once
// Small .npy and .safetensors files for the command-line tests: fp32, every value 0.5 (the tools'
// checks look at shapes and names, not values).
#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace vecattn::test {

// A little-endian fp32 .npy file of the given shape.
inline void write_npy(const std::string& path, const std::vector<int64_t>& shape) {
  std::string dims;
  size_t count = 1;
  for (auto d : shape) dims += std::to_string(d) + ", ", count *= size_t(d);
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = uint16_t(header.size());
  f.write(reinterpret_cast<const char*>(&len), 2);
  f << header;
  const std::vector<float> v(count, 0.5f);
  f.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * 4));
}

// A .safetensors file with F32 tensors of these names and shapes.
inline void write_safetensors(const std::string& path,
                              const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors) {
  std::string header = "{";
  size_t offset = 0;
  for (const auto& [name, shape] : tensors) {
    size_t count = 1;
    std::string dims;
    for (auto d : shape) dims += (dims.empty() ? "" : ", ") + std::to_string(d), count *= size_t(d);
    header += (header.size() > 1 ? ", \"" : "\"") + name + "\": {\"dtype\": \"F32\", \"shape\": [" + dims +
              "], \"data_offsets\": [" + std::to_string(offset) + ", " + std::to_string(offset + count * 4) + "]}";
    offset += count * 4;
  }
  header += "}";
  std::ofstream f(path, std::ios::binary);
  const uint64_t n = header.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << header << std::string(offset, '\0');
}

}  // namespace vecattn::test

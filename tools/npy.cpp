#include "tools/npy.h"

#include "codegen/host_dtype.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace vecattn::tools {
namespace {

[[noreturn]] void bad(const std::string& path, const std::string& why) { throw std::runtime_error(path + ": " + why); }

// The value of 'key' in the header dict, as the raw text up to the next top-level comma/brace.
std::string field(const std::string& header, const std::string& key, const std::string& path) {
  const auto at = header.find("'" + key + "'");
  if (at == std::string::npos) bad(path, "the .npy header has no '" + key + "'");
  auto colon = header.find(':', at);
  size_t i = colon + 1;
  while (i < header.size() && header[i] == ' ') ++i;
  int depth = 0;
  size_t end = i;
  for (; end < header.size(); ++end) {
    const char c = header[end];
    if (c == '(' || c == '[') ++depth;
    if (c == ')' || c == ']') --depth;
    if (depth == 0 && (c == ',' || c == '}')) break;
    if (depth < 0) break;
  }
  if (depth > 0 || end >= header.size()) bad(path, "malformed .npy header");
  return header.substr(i, end - i + (header[end] == ')' ? 1 : 0));
}

}  // namespace

std::vector<char> read_file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) bad(path, "cannot be opened");
  const std::streamoff size = f.tellg();
  if (size < 0) bad(path, "cannot be read (its size is unknown)");
  std::vector<char> bytes(static_cast<size_t>(size));
  f.seekg(0);
  if (!f.read(bytes.data(), size)) bad(path, "cannot be read");
  return bytes;
}

NpyArray read_npy(const std::string& path) {
  const std::vector<char> bytes = read_file_bytes(path);
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0) bad(path, "not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len, offset;
  if (major == 1) {
    header_len = size_t(static_cast<unsigned char>(bytes[8])) | size_t(static_cast<unsigned char>(bytes[9])) << 8;
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) bad(path, "truncated .npy header");
    header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= size_t(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    offset = 12;
  } else {
    bad(path, "unsupported .npy format version " + std::to_string(major));
  }
  if (bytes.size() < offset + header_len) bad(path, "truncated .npy header");
  const std::string header(bytes.data() + offset, header_len);
  NpyArray a;
  std::string descr = field(header, "descr", path);
  if (descr.size() < 2 || (descr.front() != '\'' && descr.front() != '"')) bad(path, "malformed descr " + descr);
  a.descr = descr.substr(1, descr.size() - 2);
  if (field(header, "fortran_order", path).find("True") != std::string::npos)
    bad(path, "fortran_order arrays are not supported: save with np.ascontiguousarray");
  const std::string shape = field(header, "shape", path);
  int64_t count = 1;
  for (size_t i = 0; i < shape.size();) {
    if (std::isdigit(static_cast<unsigned char>(shape[i]))) {
      size_t used = 0;
      const int64_t dim = std::stoll(shape.substr(i), &used);
      a.shape.push_back(dim);
      count *= dim;
      i += used;
    } else {
      ++i;
    }
  }
  int64_t item = 0;
  if (a.descr == "<f2" || a.descr == "<u2" || a.descr == "<i2" || a.descr == "|V2") item = 2;
  else if (a.descr == "<f4") item = 4;
  else if (a.descr == "<f8") item = 8;
  else bad(path, "dtype '" + a.descr + "' is not supported: use little-endian float16/32/64 or 2-byte raw bf16");
  const size_t data_at = offset + header_len;
  if (bytes.size() - data_at != size_t(count * item))
    bad(path, "holds " + std::to_string(bytes.size() - data_at) + " data bytes; the shape needs " +
                  std::to_string(count * item));
  a.data.assign(bytes.begin() + std::ptrdiff_t(data_at), bytes.end());
  return a;
}

std::vector<uint16_t> to_dtype_bits(const NpyArray& a, DType to) {
  const char* p = a.data.data();
  std::vector<uint16_t> out;
  auto from_float = [&](float f) { return to_bits(to, f); };
  if (a.descr == "<f4" || a.descr == "<f8" || a.descr == "<f2") {
    const size_t item = a.descr == "<f4" ? 4 : a.descr == "<f8" ? 8 : 2;
    out.resize(a.data.size() / item);
    for (size_t i = 0; i < out.size(); ++i) {
      float f;
      if (item == 4) {
        std::memcpy(&f, p + 4 * i, 4);
      } else if (item == 8) {
        double d;
        std::memcpy(&d, p + 8 * i, 8);
        f = float(d);
      } else {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        if (to == DType::fp16) {
          out[i] = h;
          continue;
        }
        f = fp16_to_float(h);
      }
      out[i] = from_float(f);
    }
    return out;
  }
  if (a.descr == "bf16") {  // bf16 values (a safetensors BF16 tensor)
    out.resize(a.data.size() / 2);
    std::memcpy(out.data(), p, out.size() * 2);
    if (to != DType::bf16)
      for (auto& x : out) x = from_float(from_bits(DType::bf16, x));
    return out;
  }
  out.resize(a.data.size() / 2);  // raw 2-byte patterns of the target type
  std::memcpy(out.data(), p, out.size() * 2);
  return out;
}

}  // namespace vecattn::tools

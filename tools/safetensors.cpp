#include "tools/safetensors.h"

#include "cache/json.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace vecattn::tools {
namespace {

using Json = cache::JsonValue;

// Headers larger than this are refused before reading them (the format's own limit is 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

[[noreturn]] void bad(const std::string& path, const std::string& why) { throw std::runtime_error(path + ": " + why); }

struct DtypeInfo {
  const char* name;
  const char* descr;
  int bytes;
};
constexpr DtypeInfo kDtypes[] = {{"F16", "<f2", 2}, {"BF16", "bf16", 2}, {"F32", "<f4", 4}};

}  // namespace

std::map<std::string, NpyArray> read_safetensors(const std::string& path) {
  const std::vector<char> bytes = read_file_bytes(path);
  if (bytes.size() < 8) bad(path, "not a safetensors file: shorter than its 8-byte header length");
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= uint64_t(static_cast<unsigned char>(bytes[size_t(i)])) << (8 * i);
  if (header_len > kMaxHeaderBytes) bad(path, "not a safetensors file: a header of " + std::to_string(header_len) + " bytes");
  if (header_len > bytes.size() - 8)
    bad(path, "truncated: the header needs " + std::to_string(header_len) + " bytes, the file has " +
                  std::to_string(bytes.size() - 8) + " after the length");
  const std::string_view header(bytes.data() + 8, size_t(header_len));
  const auto doc = cache::parse_json(header, path + ": malformed header");
  if (doc->kind != Json::object) bad(path, "the header is not a JSON object");
  const size_t data_at = 8 + size_t(header_len);
  const uint64_t data_bytes = bytes.size() - data_at;

  std::map<std::string, NpyArray> out;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, t] : doc->fields) {
    if (name == "__metadata__") {
      if (t->kind != Json::object) bad(path, "__metadata__ is not an object");
      for (const auto& [k, v] : t->fields)
        if (v->kind != Json::string) bad(path, "__metadata__ value of \"" + k + "\" is not a string");
      continue;
    }
    const std::string what = "tensor \"" + name + "\"";
    if (t->kind != Json::object) bad(path, what + " is not an object");
    for (const auto& [k, v] : t->fields)
      if (k != "dtype" && k != "shape" && k != "data_offsets") bad(path, what + " has an unknown key \"" + k + "\"");
    const Json* dtype = t->get("dtype");
    const Json* shape = t->get("shape");
    const Json* offsets = t->get("data_offsets");
    if (!dtype || dtype->kind != Json::string) bad(path, what + " has no dtype string");
    if (!shape || shape->kind != Json::array) bad(path, what + " has no shape array");
    uint64_t begin = 0, end = 0;
    if (!offsets || offsets->kind != Json::array || offsets->items.size() != 2 ||
        !offsets->items[0]->unsigned_integer(&begin) || !offsets->items[1]->unsigned_integer(&end))
      bad(path, what + " has no data_offsets [begin, end] of non-negative integers");
    const DtypeInfo* info = nullptr;
    for (const auto& d : kDtypes)
      if (dtype->text == d.name) info = &d;
    if (!info) bad(path, what + " has dtype " + dtype->text + ": use F16, BF16 or F32");
    NpyArray a;
    a.descr = info->descr;
    uint64_t count = 1;
    for (const auto& dim : shape->items) {
      uint64_t n = 0;
      if (!dim->unsigned_integer(&n)) bad(path, what + " has a shape entry that is not a non-negative integer");
      if (n > 0 && count > UINT64_MAX / n) bad(path, what + " has a shape too large");
      count *= n;
      a.shape.push_back(int64_t(n));
    }
    if (begin > end || end > data_bytes)
      bad(path, what + " has data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                    "] outside the " + std::to_string(data_bytes) + " data bytes");
    if (count > UINT64_MAX / uint64_t(info->bytes) || end - begin != count * uint64_t(info->bytes))
      bad(path, what + " holds " + std::to_string(end - begin) + " bytes; its shape and dtype need " +
                    std::to_string(count * uint64_t(info->bytes)));
    a.data.assign(bytes.begin() + std::ptrdiff_t(data_at + begin), bytes.begin() + std::ptrdiff_t(data_at + end));
    ranges.emplace_back(begin, end);
    out.emplace(name, std::move(a));
  }
  // The ranges tile the data exactly: no overlap (one byte read as two tensors), no gap.
  std::sort(ranges.begin(), ranges.end());
  uint64_t at = 0;
  for (const auto& [begin, end] : ranges) {
    if (begin < at) bad(path, "two tensors' data_offsets overlap at byte " + std::to_string(begin));
    if (begin > at) bad(path, "bytes [" + std::to_string(at) + ", " + std::to_string(begin) + ") belong to no tensor");
    at = end;
  }
  if (at != data_bytes) bad(path, std::to_string(data_bytes - at) + " bytes after the last tensor belong to none");
  return out;
}

}  // namespace vecattn::tools

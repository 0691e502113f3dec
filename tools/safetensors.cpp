#include "tools/safetensors.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace vecattn::tools {
namespace {

// Headers larger than this are refused before reading them (the format's own limit is 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

[[noreturn]] void bad(const std::string& path, const std::string& why) { throw std::runtime_error(path + ": " + why); }

// The header's JSON: objects, arrays, strings and non-negative integers (all the format uses).
struct Json {
  enum Kind { object, array, string, integer } kind = object;
  std::vector<std::pair<std::string, std::unique_ptr<Json>>> fields;  // object, in file order
  std::vector<std::unique_ptr<Json>> items;                           // array
  std::string text;                                                   // string
  uint64_t value = 0;                                                 // integer

  const Json* get(std::string_view key) const {
    for (const auto& [k, v] : fields)
      if (k == key) return v.get();
    return nullptr;
  }
};

class Parser {
 public:
  Parser(std::string_view text, const std::string& path) : s_(text), path_(path) {}

  std::unique_ptr<Json> document() {
    auto v = value(0);
    space();
    if (i_ != s_.size()) fail("text after the header's closing brace");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    bad(path_, "malformed header at byte " + std::to_string(8 + i_) + ": " + what);
  }
  void space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
  }
  bool accept(char c) {
    space();
    if (i_ < s_.size() && s_[i_] == c) return ++i_, true;
    return false;
  }
  void expect(char c) {
    if (!accept(c)) fail(std::string("expected '") + c + "'");
  }

  std::unique_ptr<Json> value(int depth) {
    if (depth > 8) fail("nested too deeply");
    space();
    if (i_ >= s_.size()) fail("the header ends early");
    auto v = std::make_unique<Json>();
    const char c = s_[i_];
    if (c == '{') {
      v->kind = Json::object;
      ++i_;
      if (!accept('}')) {
        do {
          space();
          std::string key = string_literal();
          if (v->get(key)) fail("key \"" + key + "\" appears twice");
          expect(':');
          v->fields.emplace_back(std::move(key), value(depth + 1));
        } while (accept(','));
        expect('}');
      }
    } else if (c == '[') {
      v->kind = Json::array;
      ++i_;
      if (!accept(']')) {
        do v->items.push_back(value(depth + 1));
        while (accept(','));
        expect(']');
      }
    } else if (c == '"') {
      v->kind = Json::string;
      v->text = string_literal();
    } else if (c >= '0' && c <= '9') {
      v->kind = Json::integer;
      const size_t start = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
        if (v->value > (UINT64_MAX - 9) / 10) fail("an integer is too large");
        v->value = v->value * 10 + uint64_t(s_[i_++] - '0');
      }
      if (s_[start] == '0' && i_ - start > 1) fail("an integer has a leading zero");
      if (i_ < s_.size() && (s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E')) fail("a number is not an integer");
    } else {
      fail(std::string("unexpected '") + c + "'");
    }
    return v;
  }

  std::string string_literal() {
    if (i_ >= s_.size() || s_[i_] != '"') fail("expected a string");
    ++i_;
    std::string out;
    while (true) {
      if (i_ >= s_.size()) fail("a string is not closed");
      const char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("a control character inside a string");
      if (c == '\\') {
        if (i_ >= s_.size()) fail("a string is not closed");
        const char e = s_[i_++];
        switch (e) {
          case '"': case '\\': case '/': out += e; break;
          case 'n': out += '\n'; break;
          case 't': out += '\t'; break;
          default: fail(std::string("unsupported escape \\") + e);
        }
      } else {
        out += c;
      }
    }
  }

  std::string_view s_;
  const std::string& path_;
  size_t i_ = 0;
};

struct DtypeInfo {
  const char* name;
  const char* descr;
  int bytes;
};
constexpr DtypeInfo kDtypes[] = {{"F16", "<f2", 2}, {"BF16", "bf16", 2}, {"F32", "<f4", 4}};

}  // namespace

std::map<std::string, NpyArray> read_safetensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) bad(path, "cannot be opened");
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (bytes.size() < 8) bad(path, "not a safetensors file: shorter than its 8-byte header length");
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= uint64_t(static_cast<unsigned char>(bytes[size_t(i)])) << (8 * i);
  if (header_len > kMaxHeaderBytes) bad(path, "not a safetensors file: a header of " + std::to_string(header_len) + " bytes");
  if (header_len > bytes.size() - 8)
    bad(path, "truncated: the header needs " + std::to_string(header_len) + " bytes, the file has " +
                  std::to_string(bytes.size() - 8) + " after the length");
  const std::string_view header(bytes.data() + 8, size_t(header_len));
  const auto doc = Parser(header, path).document();
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
    if (!offsets || offsets->kind != Json::array || offsets->items.size() != 2 ||
        offsets->items[0]->kind != Json::integer || offsets->items[1]->kind != Json::integer)
      bad(path, what + " has no data_offsets [begin, end]");
    const DtypeInfo* info = nullptr;
    for (const auto& d : kDtypes)
      if (dtype->text == d.name) info = &d;
    if (!info) bad(path, what + " has dtype " + dtype->text + ": use F16, BF16 or F32");
    NpyArray a;
    a.descr = info->descr;
    uint64_t count = 1;
    for (const auto& dim : shape->items) {
      if (dim->kind != Json::integer) bad(path, what + " has a shape entry that is not a non-negative integer");
      if (dim->value > 0 && count > UINT64_MAX / dim->value) bad(path, what + " has a shape too large");
      count *= dim->value;
      a.shape.push_back(int64_t(dim->value));
    }
    const uint64_t begin = offsets->items[0]->value, end = offsets->items[1]->value;
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

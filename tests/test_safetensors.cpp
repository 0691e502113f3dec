// The strict .safetensors reader: good files read and convert exactly; every malformed file is an
// error naming the file and what is wrong.
#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>

#include "tools/safetensors.h"
#include "temp_dir.h"

using namespace vecattn;

namespace {

// header: the JSON text; data: the bytes after it. The length prefix is written as given, or as
// the header's size.
std::string write(test::TempDir& dir, const std::string& name, const std::string& header, const std::string& data,
                  int64_t length = -1) {
  const std::string path = dir.file(name);
  std::ofstream f(path, std::ios::binary);
  const uint64_t n = length < 0 ? header.size() : uint64_t(length);
  for (int i = 0; i < 8; ++i) f.put(char((n >> (8 * i)) & 0xff));
  f << header << data;
  return path;
}

std::string bytes_of(const void* p, size_t n) { return std::string(static_cast<const char*>(p), n); }

}  // namespace

TEST_CASE("safetensors: F32, F16 and BF16 tensors read and convert exactly", "[bench][safetensors]") {
  test::TempDir dir;
  const float f32[6] = {1.f, -2.5f, 0.f, 3.f, 0.5f, -0.25f};
  const uint16_t f16[2] = {0x3c00, 0xc000};     // 1, -2
  const uint16_t bf16[2] = {0x3f80, 0x4040};    // 1, 3
  const std::string header =
      R"({"__metadata__": {"layer": "3"}, "q": {"dtype": "F32", "shape": [1, 2, 3], "data_offsets": [0, 24]},)"
      R"( "k": {"dtype": "F16", "shape": [2], "data_offsets": [24, 28]}, "v": {"dtype": "BF16", "shape": [2, 1],)"
      R"( "data_offsets": [28, 32]}}    )";  // trailing spaces pad headers in real files
  const auto t = tools::read_safetensors(
      write(dir, "a.safetensors", header, bytes_of(f32, 24) + bytes_of(f16, 4) + bytes_of(bf16, 4)));
  REQUIRE(t.size() == 3);
  CHECK(t.at("q").shape == std::vector<int64_t>{1, 2, 3});
  CHECK(t.at("k").shape == std::vector<int64_t>{2});
  CHECK(t.at("v").shape == std::vector<int64_t>{2, 1});
  CHECK(tools::to_dtype_bits(t.at("q"), DType::bf16) ==
        std::vector<uint16_t>{0x3f80, 0xc020, 0x0000, 0x4040, 0x3f00, 0xbe80});
  CHECK(tools::to_dtype_bits(t.at("k"), DType::fp16) == std::vector<uint16_t>{0x3c00, 0xc000});
  CHECK(tools::to_dtype_bits(t.at("k"), DType::bf16) == std::vector<uint16_t>{0x3f80, 0xc000});
  CHECK(tools::to_dtype_bits(t.at("v"), DType::bf16) == std::vector<uint16_t>{0x3f80, 0x4040});
  CHECK(tools::to_dtype_bits(t.at("v"), DType::fp16) == std::vector<uint16_t>{0x3c00, 0x4200});
}

TEST_CASE("safetensors: malformed files are errors that say what is wrong", "[bench][safetensors]") {
  test::TempDir dir;
  const std::string four(4, '\0');
  auto message = [&](const std::string& path) -> std::string {
    try {
      tools::read_safetensors(path);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "no error";
  };
  const std::string good = R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})";
  struct Bad {
    std::string name, header, data, expect;
    int64_t length = -1;
  };
  const Bad cases[] = {
      {"short", "", "", "shorter than its 8-byte header length"},
      {"huge", good, four, "a header of", int64_t(1) << 40},
      {"truncated", good, four, "truncated", int64_t(good.size()) + 100},
      {"not json", "{x}", four, "malformed header"},
      {"array", "[1, 2]", "", "not a JSON object"},
      {"float", R"({"x": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", four, "not a non-negative integer"},
      {"dtype", R"({"x": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}})", std::string(8, '\0'),
       "dtype I64: use F16, BF16 or F32"},
      {"size", R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})", four, "need 8"},
      {"outside", R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", four, "outside the 4 data bytes"},
      {"overlap", R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "y": {"dtype": "F16", "shape": [2], "data_offsets": [2, 6]}})",
       std::string(6, '\0'), "overlap"},
      {"gap", R"({"x": {"dtype": "F16", "shape": [1], "data_offsets": [2, 4]}})", four, "belong to no tensor"},
      {"tail", good, std::string(6, '\0'), "after the last tensor"},
      {"twice", R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
       four, "appears twice"},
      {"key", R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "strides": [1]}})", four, "unknown key"},
      {"metadata", R"({"__metadata__": {"a": 1}})", "", "is not a string"},
  };
  for (const Bad& b : cases) {
    INFO(b.name);
    const std::string path = b.name == "short" ? dir.file("short") : write(dir, b.name, b.header, b.data, b.length);
    if (b.name == "short") std::ofstream(path, std::ios::binary) << "abc";
    const std::string what = message(path);
    CHECK_THAT(what, Catch::Contains(b.expect));
    CHECK_THAT(what, Catch::StartsWith(path));
  }
  CHECK_THAT(message(dir.file("missing.safetensors")), Catch::Contains("cannot be opened"));
}

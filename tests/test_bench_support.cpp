// vecattn-bench's writers and .npy reader (no GPU).
#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>

#include "temp_dir.h"
#include "tools/bench_report.h"
#include "tools/npy.h"

using namespace vecattn;

namespace {

bench::BenchMeta meta() {
  bench::BenchMeta m;
  m.device = "NVIDIA H100 <80GB> & co";
  m.dtype = "bf16";
  m.date = "2026-11-23";
  m.q_heads = m.kv_heads = 32;
  m.head_dim = 128;
  m.pq = 64, m.bk = 16, m.gk = 16;
  m.input = "synthetic";
  return m;
}

std::vector<bench::BenchRow> rows() {
  std::vector<bench::BenchRow> r;
  for (int64_t S : {8192, 32768, 131072}) {
    bench::BenchRow d;
    d.seq_len = S, d.method = "dense", d.ms = double(S) * double(S) / 4e8, d.tflops = 260;
    r.push_back(d);
    bench::BenchRow c = d;
    c.method = "cudnn", c.ms /= 2.3;
    r.push_back(c);
    for (double t : {0.8, 0.9}) {
      bench::BenchRow v;
      v.seq_len = S, v.method = "vecattn", v.threshold = t, v.ms = double(S) / 6000.0, v.pool_ms = 0.1, v.select_ms = 0.5,
      v.attend_ms = v.ms - 0.6, v.sparsity = 0.97, v.recall = 0.95, v.rel_error = 0.02, v.speedup = d.ms / v.ms;
      r.push_back(v);
    }
  }
  r[3].recall = NAN;  // a point without recall
  return r;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

void write_npy(const std::string& path, int version, const std::string& descr, const std::string& shape,
               const void* data, size_t bytes) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t prefix = version == 1 ? 10 : 12;
  while ((prefix + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY", 6);
  f.put(char(version));
  f.put(0);
  const uint32_t len = uint32_t(header.size());
  f.write(reinterpret_cast<const char*>(&len), version == 1 ? 2 : 4);
  f << header;
  f.write(static_cast<const char*>(data), std::streamsize(bytes));
}

}  // namespace

TEST_CASE("bench CSV and JSON carry every row, NaN as null", "[bench]") {
  const auto csv = bench::to_csv(meta(), rows());
  CHECK(csv.find("seq_len,method,threshold,ms,pool_ms") != std::string::npos);
  CHECK(count(csv, "\n131072,vecattn,0.9,") == 1);
  CHECK(count(csv, "\n") == 6 + 1 + rows().size());
  const auto json = bench::to_json(meta(), rows());
  CHECK(json.find("\"recall\": null") != std::string::npos);
  CHECK(json.find("\"device\": \"NVIDIA H100 <80GB> & co\"") != std::string::npos);
  CHECK(count(json, "\"method\": ") == rows().size());
}

TEST_CASE("bench SVG: a line per series, bars per prefill, escaped text, empty input", "[bench]") {
  const auto svg = bench::to_svg(meta(), rows());
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK(svg.size() > 7);
  CHECK(svg.substr(svg.size() - 7) == "</svg>\n");
  CHECK(count(svg, "<polyline") == 4);  // dense, cudnn, vecattn t=0.8, t=0.9
  CHECK(count(svg, "<g>") == count(svg, "</g>"));
  CHECK(count(svg, "<text") == count(svg, "</text>"));
  CHECK(svg.find("&lt;80GB&gt; &amp; co") != std::string::npos);
  CHECK(svg.find("<80GB>") == std::string::npos);
  CHECK(count(svg, "height=") >= 1 + 3 * 6);  // 6 prefill rows, 3 stacked parts each
  auto one = rows();
  one.resize(1);
  CHECK(count(bench::to_svg(meta(), one), "<polyline") == 1);
  CHECK(bench::to_svg(meta(), {}).find("no data") != std::string::npos);
}

TEST_CASE("npy files are read and converted exactly", "[bench]") {
  test::TempDir dir;
  const float f4[] = {1.0f, -2.5f, 65504.0f, 1e-8f, NAN, 0.1f};
  write_npy(dir.file("a.npy"), 1, "<f4", "(2, 3)", f4, sizeof(f4));
  const auto a = tools::read_npy(dir.file("a.npy"));
  CHECK(a.shape == std::vector<int64_t>{2, 3});
  const auto h = tools::to_dtype_bits(a, DType::fp16);
  CHECK(h == std::vector<uint16_t>{0x3c00, 0xc100, 0x7bff, 0x0000, 0x7e00, 0x2e66});
  const auto b = tools::to_dtype_bits(a, DType::bf16);
  CHECK(b == std::vector<uint16_t>{0x3f80, 0xc020, 0x4780, 0x322c, 0x7fc0, 0x3dcd});
  const double f8[] = {1.0, -2.5};
  write_npy(dir.file("b.npy"), 2, "<f8", "(2,)", f8, sizeof(f8));
  CHECK(tools::to_dtype_bits(tools::read_npy(dir.file("b.npy")), DType::bf16) == std::vector<uint16_t>{0x3f80, 0xc020});
  const uint16_t raw[] = {0x3f80};
  write_npy(dir.file("c.npy"), 1, "<u2", "()", raw, sizeof(raw));
  const auto c = tools::read_npy(dir.file("c.npy"));
  CHECK(c.shape.empty());
  CHECK(tools::to_dtype_bits(c, DType::bf16) == std::vector<uint16_t>{0x3f80});
}

TEST_CASE("bad npy files are refused with the reason", "[bench]") {
  test::TempDir dir;
  std::ofstream(dir.file("magic.npy")) << "not numpy at all";
  CHECK_THROWS_WITH(tools::read_npy(dir.file("magic.npy")), Catch::Contains("bad magic"));
  const float f4[] = {1, 2, 3};
  write_npy(dir.file("short.npy"), 1, "<f4", "(2, 3)", f4, sizeof(f4));
  CHECK_THROWS_WITH(tools::read_npy(dir.file("short.npy")), Catch::Contains("the shape needs 24"));
  write_npy(dir.file("big.npy"), 1, ">f4", "(3,)", f4, sizeof(f4));
  CHECK_THROWS_WITH(tools::read_npy(dir.file("big.npy")), Catch::Contains("'>f4' is not supported"));
  {
    std::string header = "{'descr': '<f4', 'fortran_order': True, 'shape': (3,), }";
    while ((10 + header.size() + 1) % 64) header += ' ';
    header += '\n';
    std::ofstream f(dir.file("fortran.npy"), std::ios::binary);
    f.write("\x93NUMPY\x01\x00", 8);
    const uint16_t len = uint16_t(header.size());
    f.write(reinterpret_cast<const char*>(&len), 2);
    f << header;
    f.write(reinterpret_cast<const char*>(f4), sizeof(f4));
  }
  CHECK_THROWS_WITH(tools::read_npy(dir.file("fortran.npy")), Catch::Contains("fortran_order"));
  CHECK_THROWS_WITH(tools::read_npy(dir.file("missing.npy")), Catch::Contains("cannot be opened"));
}

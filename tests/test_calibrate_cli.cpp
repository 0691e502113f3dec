// vecattn-calibrate's command line without a GPU: every bad input is an error naming the file and
// the fault (exit 1), before any GPU work; good inputs on a machine without a driver exit 2.
#include <catch2/catch.hpp>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "run_command.h"
#include "temp_dir.h"

namespace {

using Result = vecattn::test::CommandResult;

Result calibrate(const std::string& args, const std::string& env = "VECATTN_LIBCUDA=/nonexistent/libcuda.so.1") {
  return vecattn::test::run_command(env + " " VECATTN_CALIBRATE_PATH " " + args);
}

// A little-endian fp32 .npy file of the given shape (values 0.5).
void write_npy(const std::string& path, const std::vector<int64_t>& shape) {
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
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors) {
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

}  // namespace

TEST_CASE("vecattn-calibrate: flags and inputs are checked and named", "[calibrate][cli]") {
  vecattn::test::TempDir dir;
  const std::string db = " --cache " + dir.file("c.sqlite");
  write_npy(dir.file("q.npy"), {4, 256, 64});
  write_npy(dir.file("k.npy"), {2, 256, 64});
  write_npy(dir.file("k3.npy"), {3, 256, 64});
  write_npy(dir.file("k_short.npy"), {2, 128, 64});
  write_npy(dir.file("flat.npy"), {256, 64});
  const std::string qk = dir.file("q.npy") + "," + dir.file("k.npy");

  Result r = calibrate("--model m --input " + qk + db);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("exactly one of --target-sparsity and --target-recall"));
  r = calibrate("--model m --input " + qk + " --target-sparsity 0.5 --target-recall 0.9" + db);
  CHECK(r.exit_code == 1);
  r = calibrate("--input " + qk + " --target-sparsity 0.5" + db);
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.output, Catch::Contains("--model"));

  r = calibrate("--model m --input " + dir.file("q.npy") + " --target-sparsity 0.5" + db);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("a .npy file holds one tensor"));
  r = calibrate("--model m --input " + dir.file("q.npy") + "," + dir.file("nope.npy") + " --target-sparsity 0.5" + db);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("nope.npy: cannot be opened"));
  r = calibrate("--model m --input " + qk + " --input " + dir.file("q.txt") + " --target-sparsity 0.5" + db);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("q.txt: unknown file type"));
  r = calibrate("--model m --input " + dir.file("flat.npy") + "," + dir.file("k.npy") + " --target-sparsity 0.5" + db);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("flat.npy: q has shape (256, 64): expected [B, H, S, D] or [H, S, D]"));
  r = calibrate("--model m --input " + dir.file("q.npy") + "," + dir.file("k3.npy") + " --target-sparsity 0.5" + db);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("k3.npy: k has 3 heads, which do not divide q's 4 (GQA)"));
  r = calibrate("--model m --input " + dir.file("q.npy") + "," + dir.file("k_short.npy") + " --target-sparsity 0.5" + db);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("B, S and D must agree"));

  write_safetensors(dir.file("only_q.safetensors"), {{"q", {4, 256, 64}}});
  r = calibrate("--model m --input " + dir.file("only_q.safetensors") + " --target-sparsity 0.5" + db);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("only_q.safetensors: no tensor named 'k' (it holds: q)"));
  std::ofstream(dir.file("broken.safetensors")) << "not a safetensors file";
  r = calibrate("--model m --input " + dir.file("broken.safetensors") + " --target-sparsity 0.5" + db);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("broken.safetensors"));

  // Good inputs, in both forms: without a driver, the tool says so and exits 2.
  write_safetensors(dir.file("layer.safetensors"), {{"query", {1, 4, 256, 64}}, {"key", {1, 2, 256, 64}}});
  r = calibrate("--model m --input " + dir.file("layer.safetensors") + " --q-name query --k-name key --input " + qk +
                " --target-recall 0.9" + db);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("no CUDA driver"));
}

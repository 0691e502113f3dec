// vecattn-calibrate's command line without a GPU: every bad flag or input is an error naming the
// flag or file and the fault (exit 1, parse errors included), before the driver is opened; good
// inputs on a machine without a driver exit 2.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "run_command.h"
#include "temp_dir.h"
#include "tensor_files.h"

namespace {

using Result = vecattn::test::CommandResult;

Result calibrate(const std::string& args, const std::string& env = "VECATTN_LIBCUDA=/nonexistent/libcuda.so.1") {
  return vecattn::test::run_command(env + " " VECATTN_CALIBRATE_PATH " " + args);
}

using vecattn::test::write_npy;
using vecattn::test::write_safetensors;

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
  CHECK(r.exit_code == 1);
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

TEST_CASE("vecattn-calibrate: option errors name the flag, before the driver and the database", "[calibrate][cli]") {
  vecattn::test::TempDir dir;
  const std::string db_file = dir.file("c.sqlite");
  write_npy(dir.file("q.npy"), {4, 256, 64});
  write_npy(dir.file("k.npy"), {2, 256, 64});
  const std::string good = "--model m --input " + dir.file("q.npy") + "," + dir.file("k.npy") +
                           " --target-sparsity 0.5 --cache " + db_file;

  // Each is rejected with a message naming the flag, exit 1 (not CLI11's 105..109, not the no-driver 2).
  const std::pair<std::string, std::string> cases[] = {
      {" --rows 0", "--rows 0 must be at least 1"},
      {" --bisect-recall 0", "--bisect-recall 0 must be in (0, 1]"},
      {" --bisect-steps 25", "--bisect-steps 25 must be in [0, 24]"},
      {" --extra 0.5,1.5", "--extra: threshold 1.5 must be in (0, 1]"},
      {" --around 0", "--around: gap multiple 0 must be in (0, 100)"},
      {" --pq 32", "--pq 32: Pq 32 is not supported"},
      {" --bk 8", "--bk 8: Bk 8 is not supported"},
      {" --gk 3", "--gk 3: Gk 3 is not supported"},
      {" --causal 2", "--causal: 2 must be 0 or 1"},
      {" --device -1", "--device: -1 must be at least 0"},
      {" --first-layer -1", "--first-layer: -1 must be at least 0"},
      {" --target-recall 1.5", "--target-recall: 1.5 must be in [0, 1]"},
      {" --no-such-flag", "vecattn-calibrate: The following argument was not expected: --no-such-flag"},
      {" --q-name t --k-name t", "--q-name and --k-name are both 't'"},
      {" --out " + dir.file("missing/t.json"), "--out " + dir.file("missing/t.json") + ": folder"},
      {" --out " + dir.path().string(), "is a folder, not a file"},
  };
  for (const auto& [flags, message] : cases) {
    INFO(flags);
    const Result r = calibrate(good + flags);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.output, Catch::Contains(message));
    CHECK_THAT(r.output, !Catch::Contains("no CUDA driver"));
  }
  CHECK(!std::filesystem::exists(db_file));  // no option error leaves a database behind

  // A head dim the kernels lack is the file's fault, named before any GPU work.
  write_npy(dir.file("q96.npy"), {4, 256, 96});
  write_npy(dir.file("k96.npy"), {2, 256, 96});
  Result r = calibrate("--model m --input " + dir.file("q96.npy") + "," + dir.file("k96.npy") +
                       " --target-sparsity 0.5 --cache " + db_file);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("q96.npy: head_dim 96 is not supported: use 64, 128"));

  // The same command with a writable --out gets as far as the driver.
  r = calibrate(good + " --out " + dir.file("t.json") + " --causal 0 --pq 128 --bk 64 --gk 1");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("no CUDA driver"));
  CHECK(!std::filesystem::exists(dir.file("t.json")));  // checked, not created
  CHECK(calibrate("--help").exit_code == 0);
}

TEST_CASE("vecattn-calibrate: --q-name and --k-name given match exactly", "[calibrate][cli]") {
  vecattn::test::TempDir dir;
  const std::string db = " --cache " + dir.file("c.sqlite");
  write_safetensors(dir.file("q.safetensors"), {{"x", {4, 256, 64}}});
  write_safetensors(dir.file("k.safetensors"), {{"key", {2, 256, 64}}});
  const std::string layer = " --input " + dir.file("q.safetensors") + "," + dir.file("k.safetensors");

  // Default names: a file's single tensor is taken whatever its name.
  Result r = calibrate("--model m --target-recall 0.9" + layer + db);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("no CUDA driver"));

  // Named: the single tensor must bear that name; the error names the file and what it holds.
  r = calibrate("--model m --target-recall 0.9 --q-name query" + layer + db);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("q.safetensors: no tensor named 'query' (it holds: x)"));
  r = calibrate("--model m --target-recall 0.9 --k-name k" + layer + db);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("k.safetensors: no tensor named 'k' (it holds: key)"));
  r = calibrate("--model m --target-recall 0.9 --q-name x --k-name key" + layer + db);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("no CUDA driver"));
}

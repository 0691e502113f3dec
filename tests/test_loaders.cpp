// The loaders fail cleanly: run the real tool in a child process with libcuda or NVRTC pointed at
// something that is not there (each process opens them once, so this needs a fresh process).
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "run_command.h"
#include "temp_dir.h"

namespace {

using Result = vecattn::test::CommandResult;

Result run(const std::string& env, const std::string& args) {
  return vecattn::test::run_command(env + " " VECATTN_TUNE_PATH " " + args);
}

}  // namespace

TEST_CASE("no libcuda: the tool says what is missing and exits 2", "[loader]") {
  Result r = run("VECATTN_LIBCUDA=/nonexistent/libcuda.so.1", "");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("no CUDA driver: /nonexistent/libcuda.so.1 could not be opened"));
  CHECK_THAT(r.output, Catch::Contains("--arch sm_90a"));
}

TEST_CASE("a library that is not the CUDA driver is refused by name", "[loader]") {
  Result r = run("VECATTN_LIBCUDA=libm.so.6", "");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("lacks cuGetProcAddress_v2"));
}

TEST_CASE("no NVRTC: compiling says what is missing", "[loader]") {
  vecattn::test::TempDir dir;
  Result r = run("VECATTN_NVRTC=/nonexistent/libnvrtc.so.13", "--arch sm_90a --db " + dir.file("c.sqlite"));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("NVRTC (libnvrtc.so.13) could not be opened"));
  CHECK_THAT(r.output, Catch::Contains("/nonexistent/libnvrtc.so.13"));
}

TEST_CASE("bad flags are named", "[loader][cli]") {
  Result r = run("", "--arch sm_70 --list");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("needs sm_80 or newer"));
  r = run("", "--no-such-flag");
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.output, Catch::Contains("--no-such-flag"));
  r = run("", "--arch sm_90a --list");
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("pool/pq64-d128-bf16-sm_90a  (4 candidates)"));
}

TEST_CASE("vecattn-tune flag errors are named", "[loader][cli]") {
  Result r = run("", "--preset foo --arch sm_90a --list");
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.output, Catch::Contains("--preset"));
  r = run("", "--causal 2 --arch sm_90a --list");
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.output, Catch::Contains("--causal"));
  r = run("", "--dtype int8 --arch sm_90a --list");
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.output, Catch::Contains("--dtype"));
  r = run("", "--budget -1 --arch sm_90a --list");
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.output, Catch::Contains("--budget"));
  r = run("", "--import /nonexistent/sm_90a.json");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("/nonexistent/sm_90a.json"));
  // Without a GPU tuning is refused with the reason; listing for an arch works.
  r = run("VECATTN_LIBCUDA=/nonexistent/libcuda.so.1", "--preset dit");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("Tuning needs a GPU"));
  r = run("", "--preset vlm,dit --arch sm_90a --list --pq 64 --bk 16 --gk 16 --dtype bf16");
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("select/pq64-bk16-gk16-d128-bf16-sm_90a-causal"));
  CHECK_THAT(r.output, Catch::Contains("sparse_attn/pq64-bk16-gk16-d128-bf16-sm_90a-noncausal"));
  CHECK_THAT(r.output, Catch::Contains("dense_attn/d128-bf16-sm_90a-causal"));
}

TEST_CASE("vecattn-tune --export: alone it exports, beside tuning flags it runs after the tune", "[loader][cli]") {
  vecattn::test::TempDir dir;
  const std::string db = dir.file("c.sqlite");
  // Nothing tuned yet: said, and no file written.
  Result r = run("", "--db " + db + " --export " + dir.file("none.json"));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("nothing to export"));
  CHECK_THAT(r.output, Catch::Contains(db));
  CHECK_FALSE(std::filesystem::exists(dir.file("none.json")));
  // The shipped file goes in and comes out whole.
  r = run("", "--db " + db + " --import " VECATTN_SHIPPED_SM90A);
  REQUIRE(r.exit_code == 0);
  r = run("", "--db " + db + " --arch sm_90a --export " + dir.file("out.json"));
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("tuned configs for sm_90a to"));
  CHECK(std::filesystem::file_size(dir.file("out.json")) == std::filesystem::file_size(VECATTN_SHIPPED_SM90A));
  // Tuning flags with --export ask for a tune first: without a GPU that is refused, not skipped.
  r = run("VECATTN_LIBCUDA=/nonexistent/libcuda.so.1",
          "--preset dit --pq 64 --db " + db + " --export " + dir.file("after_tune.json"));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("Tuning needs a GPU"));
  CHECK_FALSE(std::filesystem::exists(dir.file("after_tune.json")));
}

TEST_CASE("vecattn-tune refuses flags its mode would drop, and values no kernel takes", "[loader][cli]") {
  vecattn::test::TempDir dir;
  const std::string db = " --db " + dir.file("c.sqlite");
  struct Case {
    std::string args, says;
  };
  const Case cases[] = {
      {"--import " VECATTN_SHIPPED_SM90A " --pq 64" + db, "--pq does not go with --import"},
      {"--import " VECATTN_SHIPPED_SM90A " --aot-bundle b.sqlite --aot-archs sm_90a" + db, "--aot-bundle does not go with --import"},
      {"--arch sm_90a --kernel pool --budget 5" + db, "--budget does not go with --arch"},
      {"--arch sm_90a --list --device 1", "--device does not go with --arch"},
      {"--aot-bundle " + dir.file("b.sqlite") + " --aot-archs sm_90a --kernel pool", "--kernel does not go with --aot-bundle"},
      {"--aot-archs sm_90a --arch sm_90a --list", "--aot-archs names the archs of --aot-bundle"},
      {"--aot-bundle " + dir.file("b.sqlite") + " --aot-archs sm_90a,bogus", "invalid arch 'bogus'"},
      {"--arch sm_90a --list --gk 3 --kernel select", "--gk 3: Gk 3 is not supported"},
      {"--arch sm_90a --list --head-dim 96", "--head-dim 96: head_dim 96 is not supported"},
      {"--arch sm_90a --list --pq 65", "--pq 65: Pq 65 is not supported"},
      {"--cubin-dir " + dir.file("cubins") + " --kernel pool", "--cubin-dir goes with --arch"},
      {"--arch sm_90a --kernel pool --pq 64 --dtype bf16 --cubin-dir " VECATTN_SHIPPED_SM90A "/sub" + db,
       "cannot create the folder"},
      {"--device 0,0", "GPU 0 is named twice"},
      {"--device 1,x", "--device '1,x'"},
      {"--budget 0", "--budget: 0 must be in (0, 86400]"},
      {"--threshold 0", "--threshold: 0 must be in (0, 1]"},
      {"--no-such-flag", "--no-such-flag"},
  };
  for (const Case& c : cases) {
    INFO(c.args);
    const Result r = run("", c.args);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.output, Catch::Contains(c.says));
  }
  // A bundle refused for a bad arch leaves nothing behind, not even its partial file.
  CHECK_FALSE(std::filesystem::exists(dir.file("b.sqlite.partial")));
  CHECK_FALSE(std::filesystem::exists(dir.file("b.sqlite")));
  // An export that would be empty writes no file.
  REQUIRE(run("", "--import " VECATTN_SHIPPED_SM90A + db).exit_code == 0);
  const Result r = run("", "--arch sm_80 --export " + dir.file("sm_80.json") + db);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("holds no tuned configs for sm_80"));
  CHECK_FALSE(std::filesystem::exists(dir.file("sm_80.json")));
  // --import then --export in one call.
  CHECK(run("", "--import " VECATTN_SHIPPED_SM90A " --export " + dir.file("again.json") + db).exit_code == 0);
  CHECK(std::filesystem::exists(dir.file("again.json")));
}

// vecattn-bench's command line without a GPU: every bad flag, input file or output path is an error
// naming it (exit 1, parse errors included) before the driver is opened, so no measurement is
// lost to it; good arguments on a machine without a driver reach the no-driver error (exit 2).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "cache/thresholds.h"
#include "run_command.h"
#include "temp_dir.h"
#include "tensor_files.h"

namespace {

using Result = vecattn::test::CommandResult;
using vecattn::test::write_npy;

Result bench(const std::string& args) {
  return vecattn::test::run_command("VECATTN_LIBCUDA=/nonexistent/libcuda.so.1 " VECATTN_BENCH_PATH " " + args);
}

void check_rejected(const std::string& args, const std::string& message) {
  INFO(args);
  const Result r = bench(args);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains(message));
  CHECK_THAT(r.output, !Catch::Contains("no CUDA driver"));
}

void check_reaches_driver(const std::string& args) {
  INFO(args);
  const Result r = bench(args);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("no CUDA driver"));
}

// One layer of per-head thresholds for model m, as vecattn-calibrate exports them.
void write_thresholds(const std::string& path, int heads) {
  std::vector<vecattn::cache::ThresholdRow> rows;
  for (int h = 0; h < heads; ++h) rows.push_back({"m", 0, h, 0.9, 0.95, 0.5, "pq64-bk16-gk16", ""});
  vecattn::cache::write_thresholds_file(path, rows);
}

}  // namespace

TEST_CASE("vecattn-bench: values out of range name the flag", "[bench][cli]") {
  check_rejected("--batch 0", "vecattn-bench: --batch: 0 must be in [1, 65535]");
  check_rejected("--heads 0", "--heads: 0 must be in [1, 256]");
  check_rejected("--kv-heads 0", "--kv-heads: 0 must be in [1, 256]");
  check_rejected("--seq-len 8192,0", "--seq-len: 0 must be at least 1");
  check_rejected("--seq-len 3000000000", "--seq-len: 3000000000 must be at most 2147483647");
  check_rejected("--causal 2", "--causal: 2 must be 0 or 1");
  check_rejected("--thresholds 0.8,0", "--thresholds: 0 must be in (0, 1]");
  check_rejected("--thresholds 1.5", "--thresholds: 1.5 must be in (0, 1]");
  check_rejected("--strong-fraction 1.5", "--strong-fraction: 1.5 must be in [0, 1]");
  check_rejected("--reps 0", "--reps: 0 must be at least 1");
  check_rejected("--device -1", "--device: -1 must be at least 0");
  check_rejected("--recall-rows -1", "--recall-rows: -1 must be in [0, 16777216]");
  check_rejected("--no-such-flag", "vecattn-bench: The following argument was not expected: --no-such-flag");
  check_rejected("--pq 32", "--pq 32: Pq 32 is not supported: use 64, 128");
  check_rejected("--bk 8", "--bk 8: Bk 8 is not supported");
  check_rejected("--gk 3", "--gk 3: Gk 3 is not supported");
  check_rejected("--head-dim 96", "--head-dim 96: head_dim 96 is not supported: use 64, 128");
  check_rejected("--heads 32 --kv-heads 5", "--kv-heads 5 does not divide --heads 32 (GQA)");
  check_rejected("--attn-config bogus", "--attn-config: invalid tile config 'bogus'");
  check_rejected("--select-config bogus", "--select-config: invalid tile config 'bogus'");
  check_rejected("--dense-config bogus", "--dense-config: invalid tile config 'bogus'");
  check_rejected("--skip-dense --dense-config bn64-w16-s4-wgmma", "--dense-config has no effect with --skip-dense");
  CHECK(bench("--help").exit_code == 0);
}

TEST_CASE("vecattn-bench: flags that would be ignored are rejected", "[bench][cli]") {
  check_rejected("--q q.npy", "--q is read only with --input npy");
  check_rejected("--input random --v v.npy", "--v is read only with --input npy");
  check_rejected("--input random --strong-fraction 0.1", "--strong-fraction sets the synthetic inputs");
  check_rejected("--input npy --q q.npy --k k.npy", "--input npy needs --q, --k and --v");
  check_rejected("--model m", "--model is read only with --thresholds-file");
  check_rejected("--layer 1", "--layer is read only with --thresholds-file");
  check_rejected("--thresholds-file t.json", "--thresholds-file needs --model");
  check_rejected("--thresholds-file t.json --model m --thresholds 0.9",
                 "--thresholds cannot be given with --thresholds-file");
  for (const char* flag : {"--recall-rows 8", "--workspace-overhead", "--attn-config bn64-w4-s2-mma",
                           "--dense-config bn64-w4-s2-mma"}) {
    check_rejected(std::string("--select-only ") + flag, "has no effect with --select-only");
  }
  for (const char* flag : {"--csv x.csv", "--json x.json", "--svg x.svg", "--peers p.csv"})
    check_rejected(std::string("--select-only ") + flag, "cannot be given with --select-only");
  // --select-only times no dense attention, and reaches the driver without --skip-dense.
  check_reaches_driver("--select-only --thresholds 0.5,0.9");
  check_reaches_driver("");
}

TEST_CASE("vecattn-bench: input files and output paths are checked first", "[bench][cli]") {
  vecattn::test::TempDir dir;
  const std::string out =
      " --csv " + dir.file("r.csv") + " --json " + dir.file("r.json") + " --svg " + dir.file("r.svg");
  check_rejected("--csv " + dir.file("missing/r.csv"), "--csv " + dir.file("missing/r.csv") + ": folder");
  check_rejected("--json " + dir.path().string(), "--json " + dir.path().string() + ": is a folder, not a file");
  check_rejected("--peers " + dir.file("none.csv"), "--peers " + dir.file("none.csv") + ": cannot be opened");
  check_rejected("--thresholds-file " + dir.file("none.json") + " --model m", ": cannot be opened");

  std::ofstream(dir.file("peers.csv")) << "seq_len,method,ms\n8192,cudnn,1.5\n16384,cudnn,fast\n";
  check_rejected("--peers " + dir.file("peers.csv"),
                 "--peers " + dir.file("peers.csv") + " line 3: ms 'fast' is not a positive number");
  std::ofstream(dir.file("peers2.csv")) << "8192x,cudnn,1.5\n";
  check_rejected("--peers " + dir.file("peers2.csv"), "line 1: seq_len '8192x' is not a positive integer");
  std::ofstream(dir.file("peers3.csv")) << "8192,cudnn\n";
  check_rejected("--peers " + dir.file("peers3.csv"), "line 1: 2 fields");
  std::ofstream(dir.file("good_peers.csv")) << "seq_len,method,ms\r\n8192,cudnn,1.5\r\n";

  write_thresholds(dir.file("t32.json"), 32);
  check_rejected("--thresholds-file " + dir.file("t32.json") + " --model other", "no thresholds for model 'other'");
  check_rejected("--thresholds-file " + dir.file("t32.json") + " --model m --heads 16 --kv-heads 16",
                 "model 'm' layer 0 has 32 heads but the inputs have 16 q heads");

  // All good: the run gets as far as the driver, and the outputs are checked, not created.
  check_reaches_driver("--thresholds-file " + dir.file("t32.json") + " --model m --layer 0 --peers " +
                       dir.file("good_peers.csv") + out);
  CHECK(!std::filesystem::exists(dir.file("r.csv")));
  CHECK(!std::filesystem::exists(dir.file("r.json")));
  CHECK(!std::filesystem::exists(dir.file("r.svg")));
}

TEST_CASE("vecattn-bench: --input npy takes its shape from the arrays", "[bench][cli]") {
  vecattn::test::TempDir dir;
  write_npy(dir.file("q.npy"), {1, 4, 256, 64});
  write_npy(dir.file("k.npy"), {1, 2, 256, 64});
  write_npy(dir.file("k3.npy"), {1, 3, 256, 64});
  write_npy(dir.file("k_short.npy"), {1, 2, 128, 64});
  write_npy(dir.file("q96.npy"), {1, 4, 256, 96});
  write_npy(dir.file("k96.npy"), {1, 2, 256, 96});
  write_npy(dir.file("flat.npy"), {256, 64});
  auto npy = [&](const std::string& q, const std::string& k, const std::string& v) {
    return "--input npy --q " + dir.file(q) + " --k " + dir.file(k) + " --v " + dir.file(v);
  };
  const std::string qkv = npy("q.npy", "k.npy", "k.npy");

  for (const char* flag : {"--seq-len 256", "--batch 1", "--heads 4", "--kv-heads 2", "--head-dim 64"})
    check_rejected(qkv + " " + flag, std::string(flag).substr(0, std::string(flag).find(' ')) +
                                         " cannot be given with --input npy: the arrays' shapes set it");
  check_rejected(npy("none.npy", "k.npy", "k.npy"), "--q " + dir.file("none.npy") + ": cannot be opened");
  check_rejected(npy("flat.npy", "k.npy", "k.npy"), "--q/--k/--v: expected arrays of shape");
  check_rejected(npy("q.npy", "k.npy", "q.npy"), "v like k");
  check_rejected(npy("q.npy", "k_short.npy", "k_short.npy"), "does not match --q's (1, 4, 256, 64)");
  check_rejected(npy("q.npy", "k3.npy", "k3.npy"), "--k " + dir.file("k3.npy") + ": 3 heads do not divide --q's 4 (GQA)");
  // The head dim of the arrays, not the --head-dim default (128), is the one checked.
  check_rejected(npy("q96.npy", "k96.npy", "k96.npy"), "--q " + dir.file("q96.npy") + ": head_dim 96 is not supported");

  // Per-head thresholds are counted against the arrays' 4 q heads, not the --heads default (32).
  write_thresholds(dir.file("t4.json"), 4);
  write_thresholds(dir.file("t32.json"), 32);
  check_rejected(qkv + " --thresholds-file " + dir.file("t32.json") + " --model m", "has 32 heads but the inputs have 4");
  check_reaches_driver(qkv + " --thresholds-file " + dir.file("t4.json") + " --model m");
  check_reaches_driver(qkv + " --causal 0 --pq 128 --bk 64 --gk 1 --csv " + dir.file("r.csv"));
}

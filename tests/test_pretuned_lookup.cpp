// The pretuned layer of the config lookup: the shipped file of an arch is found through
// VECATTN_PRETUNED_DIR and read once; a malformed file is ignored, not fatal.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>

#include "cache/pretuned_file.h"
#include "runtime/pretuned.h"
#include "temp_dir.h"

using namespace vecattn;

TEST_CASE("pretuned rows come from the arch's file in VECATTN_PRETUNED_DIR", "[cache][pretuned]") {
  test::TempDir dir;
  cache::TunedRow row;
  row.kernel_key = "select/pq64-bk16-gk16-d128-bf16-sm_86-causal";
  row.config = "bq128-w8-s2";
  row.device_name = "NVIDIA GeForce RTX 3090";
  row.arch = "sm_86";
  row.median_ms = 0.5;
  row.default_ms = 0.7;
  row.density = 0.05;
  row.seq_len = 32768;
  row.driver_version = 13000;
  row.nvrtc_version = "13.0";
  row.library_version = "0.1.0";
  row.created = "2026-11-22T00:00:00Z";
  cache::write_pretuned_file(dir.file("sm_86.json"), {row});
  std::ofstream(dir.file("sm_87.json")) << "{ not json";
  setenv("VECATTN_PRETUNED_DIR", dir.path().c_str(), 1);
  REQUIRE(pretuned_dirs().front() == dir.path().string());

  const auto& rows = pretuned_rows("sm_86");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0] == row);
  CHECK(&pretuned_rows("sm_86") == &rows);  // read once
  CHECK(pretuned_rows("sm_87").empty());    // malformed: a warning, no rows
  CHECK(pretuned_rows("sm_89").empty());    // no file
  unsetenv("VECATTN_PRETUNED_DIR");
}

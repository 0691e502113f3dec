// Tuning end to end on a device: a small key is tuned, its winner stored, and a new runtime over
// the same database launches with it; a bad stored config falls back to the default.
#include <catch2/catch.hpp>

#include <cmath>

#include "cache/database.h"
#include "gpu/device_buffer.h"
#include "codegen/kernels.h"
#include "codegen/nvrtc.h"
#include "runtime/runtime.h"
#include "temp_dir.h"
#include "tuner/search_space.h"
#include "tuner/tuner.h"

using namespace vecattn;

TEST_CASE("tune a small key end to end; the runtime then uses the stored winner", "[gpu][tune]") {
  test::TempDir dir;
  RuntimeOptions ro;
  ro.cache_path = dir.file("c.sqlite");
  Runtime rt(ro);
  tuner::Options o;
  o.seq_len = 4096;
  o.heads = 4;
  o.reps = 3;
  o.warmup = 1;
  tuner::Tuner tuner(rt, o);
  for (const KernelKey& key : {rt.key(KernelKind::select, 64, 16, 16, 128, DType::bf16, true),
                              rt.key(KernelKind::sparse_attn, 64, 16, 16, 128, DType::bf16, true),
                              rt.key(KernelKind::pool, 128, 0, 0, 64, DType::fp16, false)}) {
    INFO(key.str());
    int progress_calls = 0;
    const tuner::Result r = tuner.tune(key, [&](int, int) { ++progress_calls; });
    CHECK(r.candidates.size() == tuner::candidates(key).size());
    CHECK(progress_calls == int(r.candidates.size()));
    CHECK(r.candidates.front().config == default_config(key));
    CHECK(std::isfinite(r.default_ms));
    CHECK(r.best_ms <= r.default_ms);
    for (const auto& c : r.candidates) CHECK((std::isfinite(c.ms) || !c.note.empty()));
    if (key.kernel != KernelKind::pool) {
      CHECK(r.density > 0.0);
      CHECK(r.density < 1.0);
    }
    CHECK(rt.config_for(key).source != ConfigSource::override_config);  // the tuner leaves no pin behind

    const cache::TunedRow row = tuner::tuned_row(r, rt.device());
    cache::Database::open(ro.cache_path)->put_tuned(row);

    Runtime fresh(ro);
    const ConfigChoice c = fresh.config_for(key);
    CHECK(c.source == ConfigSource::user_database);
    CHECK(c.config == r.best);
    CHECK(fresh.lookup_stats().user_database == 1);
  }
}

TEST_CASE("a stored config that is not legal is skipped for the next layer", "[gpu][tune]") {
  test::TempDir dir;
  RuntimeOptions ro;
  ro.cache_path = dir.file("c.sqlite");
  Runtime rt(ro);
  const KernelKey key = rt.key(KernelKind::dense_attn, 0, 0, 0, 128, DType::bf16, true);
  // A config from a build with other limits: parses, but this build refuses it.
  cache::TunedRow row;
  row.kernel_key = key.str();
  row.config = "bn64-w4-s3-mma";
  row.device_name = rt.device().name;
  row.arch = rt.device().arch;
  row.median_ms = row.default_ms = 1;
  row.seq_len = 1024;
  row.nvrtc_version = "13.0";
  row.library_version = "0.0.1";
  cache::Database::open(ro.cache_path)->put_tuned(row);
  Runtime fresh(ro);
  const ConfigChoice c = fresh.config_for(key);
  CHECK(c.source != ConfigSource::user_database);
  CHECK(c.config.str(key.kernel) != row.config);
  // The pretuned file or the default serves, exactly as for a runtime without that row.
  Runtime plain(test::in_memory());
  CHECK(c.config == plain.config_for(key).config);
  CHECK(c.source == plain.config_for(key).source);
}

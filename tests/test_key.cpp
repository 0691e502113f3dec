#include <catch2/catch.hpp>

#include <algorithm>

#include "codegen/error.h"
#include "codegen/kernels.h"
#include "codegen/key.h"
#include "tuner/search_space.h"

using namespace vecattn;

TEST_CASE("kernel keys print and parse back", "[key]") {
  const KernelKey keys[] = {
      {KernelKind::pool, 64, 0, 0, 128, DType::bf16, "sm_90a", false},
      {KernelKind::pool, 128, 0, 0, 64, DType::fp16, "sm_80", false},
      {KernelKind::select, 64, 16, 16, 128, DType::bf16, "sm_90a", true},
      {KernelKind::select, 128, 64, 1, 64, DType::fp16, "sm_86", false},
      {KernelKind::sparse_attn, 64, 32, 128, 128, DType::bf16, "sm_90a", true},
      {KernelKind::dense_attn, 0, 0, 0, 128, DType::fp16, "sm_100a", false},
  };
  for (const auto& k : keys) {
    INFO(k.str());
    CHECK(KernelKey::parse(k.str()) == k);
  }
  CHECK(keys[0].str() == "pool/pq64-d128-bf16-sm_90a");
  CHECK(keys[2].str() == "select/pq64-bk16-gk16-d128-bf16-sm_90a-causal");
  CHECK(keys[3].str() == "select/pq128-bk64-gk1-d64-fp16-sm_86-noncausal");
  CHECK(keys[5].str() == "dense_attn/d128-fp16-sm_100a-noncausal");
}

TEST_CASE("tile configs print and parse back per kernel", "[key]") {
  CHECK(TileConfig{0, 4, 0, AttnPath::mma}.str(KernelKind::pool) == "w4");
  CHECK(TileConfig{64, 4, 2, AttnPath::mma}.str(KernelKind::select) == "bq64-w4-s2");
  CHECK(TileConfig{128, 8, 4, AttnPath::wgmma}.str(KernelKind::select) == "bq128-w8-s4-wgmma");
  CHECK(TileConfig::parse(KernelKind::select, "bq128-w8-s4-wgmma").path == AttnPath::wgmma);
  CHECK_THROWS_AS(TileConfig::parse(KernelKind::select, "bq64-w4-s2-mma"), Error);  // not canonical
  CHECK(TileConfig{128, 8, 3, AttnPath::wgmma}.str(KernelKind::sparse_attn) == "bn128-w8-s3-wgmma");
  for (auto kind : {KernelKind::pool, KernelKind::select, KernelKind::sparse_attn, KernelKind::dense_attn}) {
    TileConfig c = TileConfig{64, 8, 2, AttnPath::wgmma}.canonical(kind);
    INFO(c.str(kind));
    CHECK(TileConfig::parse(kind, c.str(kind)) == c);
  }
  const Variant v{{KernelKind::pool, 64, 0, 0, 128, DType::bf16, "sm_90a", false}, {0, 4, 0, AttnPath::mma}};
  CHECK(v.str() == "pool/pq64-d128-bf16-sm_90a+w4");
  CHECK(Variant::parse(v.str()) == v);
}

TEST_CASE("malformed keys are rejected with the reason", "[key]") {
  auto message = [](const char* text) {
    try {
      KernelKey::parse(text);
    } catch (const Error& e) {
      CHECK(e.status() == Status::invalid_argument);
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK_THAT(message("pool"), Catch::Contains("expected <kernel>/<fields>"));
  CHECK_THAT(message("conv/pq64-d128-bf16-sm_90a"), Catch::Contains("use pool, select"));
  CHECK_THAT(message("pool/pq64-d128-bf16"), Catch::Contains("needs a head dim"));
  CHECK_THAT(message("pool/pq64-d128-bf16-sm_70"), Catch::Contains("sm_80 or newer"));
  CHECK_THAT(message("pool/pq64-d128-int8-sm_90a"), Catch::Contains("unknown field 'int8'"));
  CHECK_THAT(message("pool/d128-pq64-bf16-sm_90a"), Catch::Contains("canonical form is 'pool/pq64-d128-bf16-sm_90a'"));
  CHECK_THAT(message("pool/pq64-bk16-d128-bf16-sm_90a"), Catch::Contains("canonical form"));
  CHECK_THAT(message("pool/pqx-d128-bf16-sm_90a"), Catch::Contains("unknown field 'pqx'"));
  CHECK_THROWS_AS(TileConfig::parse(KernelKind::select, "w4"), Error);
  CHECK_THROWS_AS(TileConfig::parse(KernelKind::pool, "bq64-w4"), Error);
  CHECK_THROWS_AS(Variant::parse("pool/pq64-d128-bf16-sm_90a"), Error);
}

TEST_CASE("illegal variants are named before any compile", "[key]") {
  KernelKey k{KernelKind::pool, 64, 0, 0, 128, DType::bf16, "sm_90a", false};
  CHECK(why_invalid(k).empty());
  k.head_dim = 80;
  CHECK(why_invalid(k) == "head_dim 80 is not supported: use 64, 128");
  k.head_dim = 128;
  k.pq = 32;
  CHECK(why_invalid(k) == "Pq 32 is not supported: use 64, 128");
  k.pq = 64;
  CHECK_THAT(why_invalid(Variant{k, {0, 32, 0, AttnPath::mma}}), Catch::Contains("out of range"));
  CHECK_THAT(why_invalid(Variant{k, {64, 4, 0, AttnPath::mma}}), Catch::Contains("must be zero"));
  CHECK_THROWS_AS(require_valid(Variant{k, {0, 0, 0, AttnPath::mma}}), Error);
  // wgmma at Pq 64: each consumer's loading group owns half of the ring, so an even number of
  // stages, two each at least.
  const KernelKey sparse64{KernelKind::sparse_attn, 64, 16, 16, 128, DType::bf16, "sm_90a", true};
  CHECK(why_invalid(Variant{sparse64, {64, 16, 6, AttnPath::wgmma}}).empty());
  CHECK(why_invalid(Variant{sparse64, {64, 16, 4, AttnPath::wgmma}}).empty());
  CHECK_THAT(why_invalid(Variant{sparse64, {64, 16, 5, AttnPath::wgmma}}), Catch::Contains("needs 4 or 6 stages, not 5"));
  CHECK_THAT(why_invalid(Variant{sparse64, {64, 16, 2, AttnPath::wgmma}}), Catch::Contains("needs 4 or 6 stages, not 2"));
  CHECK(default_config(sparse64).str(KernelKind::sparse_attn) == "bn64-w16-s6-wgmma");
  // The search space holds only legal configs, default first.
  for (const auto& key : all_keys("sm_80")) {
    auto cands = tuner::candidates(key);
    REQUIRE(!cands.empty());
    CHECK(cands.front() == default_config(key));
    for (const auto& c : cands) CHECK(why_invalid(Variant{key, c}).empty());
  }
}

TEST_CASE("mma.sync attention names 32 rows per warp only when asked for", "[key]") {
  const KernelKey dense{KernelKind::dense_attn, 0, 0, 0, 128, DType::bf16, "sm_80", true};
  const KernelKey sparse64{KernelKind::sparse_attn, 64, 16, 16, 128, DType::bf16, "sm_80", true};
  const KernelKey sparse128{KernelKind::sparse_attn, 128, 16, 16, 128, DType::bf16, "sm_80", true};
  // The names before the field keep their meaning: 16 rows per warp, no r field.
  const TileConfig r16 = TileConfig::parse(KernelKind::dense_attn, "bn64-w4-s2-mma");
  CHECK(r16 == TileConfig{64, 4, 2, AttnPath::mma});
  CHECK(r16.warp_rows == 16);
  // The mma.sync defaults: 32 rows per warp for dense and both block sizes.
  CHECK(default_config(dense, AttnPath::mma).str(KernelKind::dense_attn) == "bn64-w4-r32-s2-mma");
  CHECK(default_config(sparse64, AttnPath::mma).str(KernelKind::sparse_attn) == "bn32-w2-r32-s2-mma");
  CHECK(default_config(sparse128, AttnPath::mma).str(KernelKind::sparse_attn) == "bn32-w4-r32-s2-mma");
  // Round trips, the r field between the warps and the stages.
  const TileConfig r32{64, 4, 2, AttnPath::mma, 32};
  CHECK(r32.str(KernelKind::dense_attn) == "bn64-w4-r32-s2-mma");
  CHECK(TileConfig::parse(KernelKind::dense_attn, "bn64-w4-r32-s2-mma") == r32);
  CHECK(TileConfig::parse(KernelKind::sparse_attn, "bn32-w2-r32-s2-mma") == TileConfig{32, 2, 2, AttnPath::mma, 32});
  CHECK(r32 != r16);
  CHECK(r16 < r32);
  const Variant v{dense, r32};
  CHECK(v.str() == "dense_attn/d128-bf16-sm_80-causal+bn64-w4-r32-s2-mma");
  CHECK(Variant::parse(v.str()) == v);
  // Canonical form: r16 is never written, r sits after w, and only attention names carry it.
  auto message = [](KernelKind k, const char* text) {
    try {
      TileConfig::parse(k, text);
    } catch (const Error& e) {
      CHECK(e.status() == Status::invalid_argument);
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK_THAT(message(KernelKind::dense_attn, "bn64-w4-r16-s2-mma"), Catch::Contains("expected the shape 'bn64-w4-s2-mma'"));
  CHECK_THAT(message(KernelKind::dense_attn, "bn64-r32-w4-s2-mma"),
             Catch::Contains("expected the shape 'bn64-w4-r32-s2-mma'"));
  CHECK_THAT(message(KernelKind::dense_attn, "bn64-w4-s2-mma-r32"), Catch::Contains("not in canonical form"));
  CHECK_THAT(message(KernelKind::dense_attn, "bn64-w4-rx-s2-mma"), Catch::Contains("unknown field 'rx'"));
  CHECK_THAT(message(KernelKind::select, "bq64-w4-r32-s2"), Catch::Contains("expected the shape 'bq64-w4-s2'"));
  CHECK_THAT(message(KernelKind::pool, "w4-r32"), Catch::Contains("expected the shape 'w4'"));
  // canonical() drops it where nothing reads it.
  CHECK(TileConfig{64, 4, 2, AttnPath::mma, 32}.canonical(KernelKind::select).warp_rows == 16);
  CHECK(TileConfig{64, 16, 4, AttnPath::wgmma, 32}.canonical(KernelKind::dense_attn).warp_rows == 16);
  CHECK(r32.canonical(KernelKind::dense_attn) == r32);

  // Launch shape: warps x rows per warp query rows, 32 threads a warp.
  CHECK(attn_launch(Variant{dense, r16}).rows_per_cta == 64);
  CHECK(attn_launch(Variant{dense, r16}).threads == 128);
  CHECK(attn_launch(v).rows_per_cta == 128);
  CHECK(attn_launch(v).threads == 128);
  CHECK(attn_launch(Variant{dense, {64, 8, 2, AttnPath::mma, 32}}).rows_per_cta == 256);
  const Variant sp64{sparse64, {64, 2, 2, AttnPath::mma, 32}};
  CHECK(attn_launch(sp64).rows_per_cta == 64);
  CHECK(attn_launch(sp64).threads == 64);
  const Variant sp128{sparse128, {64, 4, 2, AttnPath::mma, 32}};
  CHECK(attn_launch(sp128).rows_per_cta == 128);
  CHECK(attn_launch(sp128).threads == 128);
  CHECK(instantiation(v) == "vecattn::attn_kernel<128, vecattn::bf16, 128, 64, 2, true, 0, 32>");
  CHECK(instantiation(sp64) == "vecattn::attn_kernel<128, vecattn::bf16, 64, 64, 2, true, 64, 32>");
  CHECK(instantiation(Variant{dense, r16}) == "vecattn::attn_kernel<128, vecattn::bf16, 64, 64, 2, true, 0, 16>");
  CHECK(dynamic_smem_bytes(v) == attn_smem_bytes(128, 64, 128, 2));

  // Validation.
  CHECK(why_invalid(v).empty());
  CHECK(why_invalid(Variant{sparse64, {32, 2, 2, AttnPath::mma, 32}}).empty());
  CHECK(why_invalid(Variant{sparse128, {32, 4, 2, AttnPath::mma, 32}}).empty());
  // Sparse at D = 128: the key schedule's registers leave room for 32 keys per tile.
  CHECK_THAT(why_invalid(sp64), Catch::Contains("sparse attention with 32 rows per warp, 64 keys per tile and head_dim "
                                                "128 holds 208 accumulator registers"));
  CHECK_THAT(why_invalid(sp128), Catch::Contains("208 accumulator registers"));
  const KernelKey sparse64_d64{KernelKind::sparse_attn, 64, 16, 16, 64, DType::bf16, "sm_80", true};
  CHECK(why_invalid(Variant{sparse64_d64, {64, 2, 2, AttnPath::mma, 32}}).empty());
  // Sparse: a CTA is one query block, Pq = warps x rows per warp.
  CHECK_THAT(why_invalid(Variant{sparse64, {64, 4, 2, AttnPath::mma, 32}}),
             Catch::Contains("Pq 64 at 32 rows per warp needs 2 warps, not 4"));
  CHECK_THAT(why_invalid(Variant{sparse128, {64, 8, 2, AttnPath::mma, 32}}),
             Catch::Contains("Pq 128 at 32 rows per warp needs 4 warps, not 8"));
  // Registers: S and O of two row groups; 128 keys at D = 128 do not fit, nor S of 128 keys at D = 64.
  CHECK_THAT(why_invalid(Variant{dense, {128, 4, 2, AttnPath::mma, 32}}), Catch::Contains("256 accumulator registers"));
  CHECK(why_invalid(Variant{dense, {128, 4, 2, AttnPath::mma}}).empty());  // 16 rows: 128
  const KernelKey dense64{KernelKind::dense_attn, 0, 0, 0, 64, DType::bf16, "sm_80", true};
  CHECK_THAT(why_invalid(Variant{dense64, {128, 4, 2, AttnPath::mma, 32}}), Catch::Contains("128 score registers"));
  CHECK(why_invalid(Variant{dense64, {64, 4, 2, AttnPath::mma, 32}}).empty());
  // Keys per tile: at most one per thread (Pq 64 at r32 runs 64 threads).
  CHECK_THAT(why_invalid(Variant{KernelKey{KernelKind::sparse_attn, 64, 16, 16, 64, DType::bf16, "sm_80", true},
                                 {128, 2, 2, AttnPath::mma, 32}}),
             Catch::Contains("exceeds the 64 threads"));
  CHECK_THAT(why_invalid(Variant{dense, {64, 4, 2, AttnPath::mma, 64}}), Catch::Contains("rows per warp 64 is not supported"));
  CHECK_THAT(why_invalid(Variant{dense, {64, 4, 2, AttnPath::mma, 8}}), Catch::Contains("rows per warp 8 is not supported"));
  // Only the mma.sync attention kernel has the option.
  const KernelKey dense90{KernelKind::dense_attn, 0, 0, 0, 128, DType::bf16, "sm_90a", true};
  CHECK_THAT(why_invalid(Variant{dense90, {64, 16, 4, AttnPath::wgmma, 32}}), Catch::Contains("mma.sync attention kernel only"));
  CHECK(why_invalid(Variant{dense90, r32}).empty());  // the mma.sync kernel on sm_90a
  const KernelKey select{KernelKind::select, 64, 16, 16, 128, DType::bf16, "sm_80", true};
  CHECK_THAT(why_invalid(Variant{select, {64, 4, 2, AttnPath::mma, 32}}), Catch::Contains("mma.sync attention kernel only"));
  // Register use decides where Q's fragments live: every 16-row shape holds them; 32 rows at D = 128 reload them.
  CHECK(attn_q_in_regs(16, 128, 128));
  CHECK(attn_q_in_regs(32, 64, 64));
  CHECK(!attn_q_in_regs(32, 64, 128));
  CHECK(!attn_q_in_regs(32, 32, 128));

  // The search space offers them where they are legal.
  auto has = [](const KernelKey& key, const TileConfig& c) {
    const auto cands = tuner::candidates(key);
    return std::find(cands.begin(), cands.end(), c) != cands.end();
  };
  CHECK(has(dense, r32));
  CHECK(has(dense, {32, 4, 2, AttnPath::mma, 32}));
  CHECK(has(dense, {64, 8, 2, AttnPath::mma, 32}));
  CHECK(!has(dense, {128, 4, 2, AttnPath::mma, 32}));
  CHECK(has(sparse64, {32, 2, 2, AttnPath::mma, 32}));
  CHECK(!has(sparse64, {64, 2, 2, AttnPath::mma, 32}));
  CHECK(has(sparse64_d64, {64, 2, 2, AttnPath::mma, 32}));
  CHECK(has(sparse128, {32, 4, 2, AttnPath::mma, 32}));
  CHECK(!has(sparse128, {64, 4, 2, AttnPath::mma, 32}));
  CHECK(tuner::candidates(dense).front() == default_config(dense));  // the default first
}

#include <catch2/catch.hpp>

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
  // The search space holds only legal configs, default first.
  for (const auto& key : all_keys("sm_80")) {
    auto cands = tuner::candidates(key);
    REQUIRE(!cands.empty());
    CHECK(cands.front() == default_config(key));
    for (const auto& c : cands) CHECK(why_invalid(Variant{key, c}).empty());
  }
}

// The C ABI on a device: the same bytes as the C++ API, stats through caller arrays, errors as
// status codes with the text kept.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>

#include "gpu/device_buffer.h"
#include "reference/dtype.h"
#include "runtime/vecattn.h"
#include "runtime/runtime.h"

using namespace vecattn;

TEST_CASE("C ABI prefill, select and dense equal the C++ API", "[gpu][c_abi]") {
  test::TestContext ctx;
  const int64_t B = 1, Hq = 4, Hkv = 2, S = 2500, D = 128;
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> n01;
  auto random_bits = [&](int64_t n) {
    std::vector<uint16_t> bits(static_cast<size_t>(n));
    for (auto& x : bits) x = ref::to_bits(DType::fp16, n01(rng));
    return bits;
  };
  test::DeviceBuffer q(size_t(B * Hq * S * D) * 2), k(size_t(B * Hkv * S * D) * 2), v(k.bytes()), out(q.bytes()),
      out_c(q.bytes());
  q.upload(random_bits(B * Hq * S * D));
  k.upload(random_bits(B * Hkv * S * D));
  v.upload(random_bits(B * Hkv * S * D));

  vecattn_runtime* rt = nullptr;
  REQUIRE(vecattn_create(0, nullptr, &rt) == VECATTN_OK);
  REQUIRE(rt);
  const vecattn_tensor cq = vecattn_tensor_bshd(q.get(), VECATTN_FP16, B, S, Hq, D);
  const vecattn_tensor ck = vecattn_tensor_bshd(k.get(), VECATTN_FP16, B, S, Hkv, D);
  const vecattn_tensor cv = vecattn_tensor_bshd(v.get(), VECATTN_FP16, B, S, Hkv, D);
  const vecattn_tensor co = vecattn_tensor_bshd(out_c.get(), VECATTN_FP16, B, S, Hq, D);
  vecattn_prefill_params p = vecattn_default_params();
  p.causal = 0;
  const float thresholds[Hq] = {0.6f, 0.7f, 0.8f, 0.95f};
  p.thresholds = thresholds;
  p.num_thresholds = Hq;
  double density[Hq] = {};
  vecattn_prefill_stats stats{};
  stats.density = density;
  stats.density_len = Hq;
  out_c.poison();
  REQUIRE(vecattn_prefill(rt, &cq, &ck, &cv, &co, &p, nullptr, nullptr, 0, &stats) == VECATTN_OK);
  CHECK(std::string(vecattn_last_error()).empty());

  Runtime cpp(test::in_memory());
  PrefillParams pp;
  pp.causal = false;
  pp.thresholds = thresholds;
  pp.num_thresholds = Hq;
  PrefillStats cpp_stats;
  out.poison();
  const Tensor tq = Tensor::bshd(q.get(), DType::fp16, B, S, Hq, D), tk = Tensor::bshd(k.get(), DType::fp16, B, S, Hkv, D),
               tv = Tensor::bshd(v.get(), DType::fp16, B, S, Hkv, D), to = Tensor::bshd(out.get(), DType::fp16, B, S, Hq, D);
  cpp.prefill(tq, tk, tv, to, pp, nullptr, {}, &cpp_stats);
  CHECK(out_c.download<uint16_t>() == out.download<uint16_t>());
  CHECK(stats.sparsity == cpp_stats.sparsity);
  CHECK(stats.density_count == Hq);
  for (int h = 0; h < Hq; ++h) CHECK(density[h] == cpp_stats.density[size_t(h)]);

  test::DeviceBuffer mask(size_t(Selection::bytes(B, Hq, S, 64))), mask_c(mask.bytes());
  mask.poison();
  mask_c.poison();
  REQUIRE(vecattn_select(rt, &cq, &ck, &p, mask_c.get(), nullptr, nullptr, 0) == VECATTN_OK);
  cpp.select(tq, tk, pp, Selection{mask.get()}, nullptr);
  CHECK(mask_c.download<uint64_t>() == mask.download<uint64_t>());

  out.poison();
  out_c.poison();
  REQUIRE(vecattn_dense(rt, &cq, &ck, &cv, &co, 1, nullptr) == VECATTN_OK);
  cpp.dense(tq, tk, tv, to, true, nullptr);
  CHECK(out_c.download<uint16_t>() == out.download<uint16_t>());

  // A bad call on a live runtime: a status, the text, nothing written.
  const vecattn_tensor wrong = vecattn_tensor_bshd(out_c.get(), VECATTN_FP16, B, S, Hq, 64);
  out_c.poison();
  CHECK(vecattn_prefill(rt, &cq, &ck, &cv, &wrong, &p, nullptr, nullptr, 0, nullptr) == VECATTN_INVALID_ARGUMENT);
  CHECK(std::string(vecattn_last_error()).find("out") != std::string::npos);
  const auto untouched = out_c.download<uint16_t>();
  CHECK(std::all_of(untouched.begin(), untouched.end(), [](uint16_t x) { return x == 0xffff; }));
  vecattn_destroy(rt);
}

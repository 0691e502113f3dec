// A VecAttention prefill through the installed header-only C++ API (find_package(vecattn),
// vecattn::vecattn), with per-head thresholds and a caller workspace. Without a GPU it says so and
// exits 0.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include <vecattn/vecattn.hpp>

#include "device_memory.h"

int main() {
  constexpr int64_t B = 1, Hq = 8, Hkv = 2, S = 8192, D = 128;  // GQA 4:1
  std::printf("vecattn %s\n", vecattn::version().c_str());
  try {
    vecattn::Runtime rt;
    device_memory_api cu;
    if (device_memory_open(&cu)) throw std::runtime_error("could not open the CUDA driver for device memory");
    std::mt19937 rng(1);
    std::normal_distribution<float> normal;
    auto upload = [&](int64_t elements) {
      std::vector<uint16_t> host(static_cast<size_t>(elements));
      for (auto& x : host) x = to_bf16(normal(rng));
      uint64_t ptr = 0;
      if (cu.mem_alloc(&ptr, host.size() * 2) || cu.memcpy_htod(ptr, host.data(), host.size() * 2))
        throw std::runtime_error("device memory failed");
      return ptr;
    };
    const uint64_t q = upload(B * S * Hq * D), k = upload(B * S * Hkv * D), v = upload(B * S * Hkv * D),
                   out = upload(B * S * Hq * D);
    using vecattn::DType;
    using vecattn::Tensor;
    auto ptr = [](uint64_t p) { return reinterpret_cast<void*>(static_cast<uintptr_t>(p)); };
    const Tensor tq = Tensor::bshd(ptr(q), DType::bf16, B, S, Hq, D), tk = Tensor::bshd(ptr(k), DType::bf16, B, S, Hkv, D),
                 tv = Tensor::bshd(ptr(v), DType::bf16, B, S, Hkv, D), to = Tensor::bshd(ptr(out), DType::bf16, B, S, Hq, D);
    vecattn::PrefillParams p;
    p.thresholds = {0.9f, 0.9f, 0.8f, 0.8f, 0.9f, 0.9f, 0.8f, 0.8f};
    uint64_t ws = 0;
    const size_t ws_bytes = rt.workspace_size(tq, tk, p);
    if (cu.mem_alloc(&ws, ws_bytes)) throw std::runtime_error("workspace allocation failed");
    vecattn::PrefillStats stats;
    rt.prefill(tq, tk, tv, to, p, nullptr, vecattn::Workspace{ptr(ws), ws_bytes}, &stats);
    std::vector<uint16_t> host(size_t(B * S * Hq * D));
    cu.memcpy_dtoh(host.data(), out, host.size() * 2);
    double sum = 0;
    for (uint16_t x : host) sum += std::fabs(from_bf16(x));
    std::printf("prefill S=%lld Hq=%lld Hkv=%lld: sparsity %.3f, density of head 0 %.3f, mean |out| %.4f\n",
                (long long)S, (long long)Hq, (long long)Hkv, stats.sparsity, stats.density.at(0), sum / double(host.size()));
    for (uint64_t p2 : {q, k, v, out, ws}) cu.mem_free(p2);
    return std::isfinite(sum) && sum > 0 ? 0 : 1;
  } catch (const vecattn::Error& e) {
    if (e.status() == vecattn::Status::no_driver || e.status() == vecattn::Status::no_device) {
      std::printf("no GPU here (%s): nothing to run\n", e.what());
      return 0;
    }
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}

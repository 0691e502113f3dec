#include "codegen/kernels.h"

#include <fmt/format.h>

#include "codegen/error.h"

namespace vecattn {
namespace {

constexpr int kHeadDims[] = {64, 128};
constexpr int kPoolSizes[] = {64, 128};
constexpr DType kDTypes[] = {DType::fp16, DType::bf16};

// Default tile configs, with the reason beside each; the tuner overrides them per GPU.
// pool: 4 warps = 128 threads = 8 (d128) or 16 (d64) rows in flight per CTA; a CTA moves only
// Pq*D*2 bytes (16 KiB at Pq=64, d128), so wider CTAs buy nothing and cut the grid's occupancy.
constexpr TileConfig kPoolDefault{0, 4, 0, AttnPath::mma};

bool contains(const int* begin, const int* end, int v) {
  for (auto p = begin; p != end; ++p)
    if (*p == v) return true;
  return false;
}

std::string list(const int* begin, const int* end) {
  std::string s;
  for (auto p = begin; p != end; ++p) s += fmt::format("{}{}", s.empty() ? "" : ", ", *p);
  return s;
}

}  // namespace

const std::vector<KernelKind>& implemented_kernels() {
  static const std::vector<KernelKind> k = {KernelKind::pool};
  return k;
}

const char* template_file(KernelKind k) {
  switch (k) {
    case KernelKind::pool: return "pool.cuh";
    default: return nullptr;
  }
}

std::string instantiation(const Variant& v) {
  const KernelKey& k = v.key;
  switch (k.kernel) {
    case KernelKind::pool:
      return fmt::format("vecattn::pool_kernel<{}, {}, vecattn::{}, {}>", k.pq, k.head_dim, dtype_name(k.dtype),
                         v.config.warps);
    default: throw Error(Status::unsupported, fmt::format("kernel {} has no template yet", kernel_name(k.kernel)));
  }
}

TileConfig default_config(const KernelKey& key) {
  switch (key.kernel) {
    case KernelKind::pool: return kPoolDefault;
    default: throw Error(Status::unsupported, fmt::format("kernel {} has no template yet", kernel_name(key.kernel)));
  }
}

std::string why_invalid(const KernelKey& k) {
  bool implemented = false;
  for (auto i : implemented_kernels()) implemented |= (i == k.kernel);
  if (!implemented) return fmt::format("kernel {} is not implemented yet", kernel_name(k.kernel));
  if (!contains(std::begin(kHeadDims), std::end(kHeadDims), k.head_dim))
    return fmt::format("head_dim {} is not supported: use {}", k.head_dim, list(std::begin(kHeadDims), std::end(kHeadDims)));
  try {
    if (parse_arch(k.arch) != k.arch) return fmt::format("arch '{}' is not canonical", k.arch);
  } catch (const Error& e) {
    return e.what();
  }
  if (key_fields(k.kernel).pq && !contains(std::begin(kPoolSizes), std::end(kPoolSizes), k.pq))
    return fmt::format("Pq {} is not supported: use {}", k.pq, list(std::begin(kPoolSizes), std::end(kPoolSizes)));
  if (k.canonical() != k) return fmt::format("key fields unused by {} must be zero", kernel_name(k.kernel));
  return {};
}

std::string why_invalid(const Variant& v) {
  if (auto why = why_invalid(v.key); !why.empty()) return why;
  const TileConfig& c = v.config;
  if (c.canonical(v.key.kernel) != c)
    return fmt::format("config fields unused by {} must be zero", kernel_name(v.key.kernel));
  switch (v.key.kernel) {
    case KernelKind::pool: {
      // Mirrors the static_asserts of pool.cuh.
      const int vecs_per_row = v.key.head_dim / 8;
      const int threads = c.warps * 32;
      if (c.warps < 1 || c.warps > 16) return fmt::format("pool warps {} is out of range: use 1..16", c.warps);
      if (threads % vecs_per_row) return "pool threads must cover whole rows";
      if (threads / vecs_per_row > v.key.pq)
        return fmt::format("pool with {} warps has more row groups than Pq={} rows", c.warps, v.key.pq);
      return {};
    }
    default: return fmt::format("kernel {} is not implemented yet", kernel_name(v.key.kernel));
  }
}

void require_valid(const Variant& v) {
  if (auto why = why_invalid(v); !why.empty()) throw Error(Status::unsupported, why, {}, v.str());
}

std::vector<KernelKey> all_keys(const std::string& arch) {
  std::vector<KernelKey> keys;
  for (auto kind : implemented_kernels()) {
    if (kind != KernelKind::pool) continue;
    for (int pq : kPoolSizes)
      for (int d : kHeadDims)
        for (DType t : kDTypes) keys.push_back(KernelKey{kind, pq, 0, 0, d, t, arch, false});
  }
  return keys;
}

}  // namespace vecattn

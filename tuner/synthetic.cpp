#include "tuner/synthetic.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "codegen/error.h"
#include "codegen/host_dtype.h"
#include "runtime/driver.h"

namespace vecattn::tuner {
DeviceTensor::DeviceTensor(int64_t b, int64_t h, int64_t s, int64_t d, DType t) {
  view_ = Tensor::bhsd(nullptr, t, b, h, s, d);
  bytes_ = size_t(b * h * s * d) * 2;
  const Driver& drv = Driver::get();
  drv.check(drv.cuMemAlloc(&ptr_, bytes_), "cuMemAlloc");
  view_.data = reinterpret_cast<void*>(ptr_);
}

DeviceTensor::~DeviceTensor() { Driver::get().cuMemFree(ptr_); }

void DeviceTensor::fill(std::mt19937_64& rng, const std::vector<float>& dir, double fraction, float weight) {
  const int64_t d = view_.head_dim();
  const int64_t pool_rows = 1 << 16;
  std::vector<uint16_t> pool(size_t(pool_rows * d));
  std::bernoulli_distribution strong(fraction);
  for (int64_t r = 0; r < pool_rows; ++r) {
    const bool s = fraction > 0 && strong(rng);
    for (int64_t j = 0; j < d; j += 4) {
      const uint64_t bits = rng();
      for (int64_t e = 0; e < 4; ++e) {
        // A sum of 16 fair bits, centred and scaled: close enough to N(0, 1) and cheap.
        const float noise = (float(__builtin_popcount(uint32_t(bits >> (16 * e)) & 0xffffu)) - 8.f) / 2.f;
        pool[size_t(r * d + j + e)] = to_bits(view_.dtype, noise + (s ? weight * dir[size_t(j + e)] : 0.f));
      }
    }
  }
  const Driver& drv = Driver::get();
  const size_t pool_bytes = pool.size() * 2;
  size_t offset = 0;
  for (size_t rotate = 0; offset < bytes_; ++rotate) {
    const size_t start = (rotate * 7919 % size_t(pool_rows)) * size_t(d) * 2;
    const size_t n = std::min(bytes_ - offset, pool_bytes - start);
    drv.check(drv.cuMemcpyHtoD(ptr_ + offset, reinterpret_cast<const char*>(pool.data()) + start, n), "cuMemcpyHtoD");
    offset += n;
  }
}

std::vector<uint16_t> DeviceTensor::download() const {
  std::vector<uint16_t> host(bytes_ / 2);
  const Driver& drv = Driver::get();
  drv.check(drv.cuMemcpyDtoH(host.data(), ptr_, bytes_), "cuMemcpyDtoH");
  return host;
}

void DeviceTensor::upload(const std::vector<uint16_t>& bits) {
  if (bits.size() * 2 != bytes_)
    throw Error(Status::invalid_argument, fmt::format("upload of {} elements into a tensor of {}", bits.size(), bytes_ / 2));
  const Driver& drv = Driver::get();
  drv.check(drv.cuMemcpyHtoD(ptr_, bits.data(), bytes_), "cuMemcpyHtoD");
}

AttentionInputs::AttentionInputs(int64_t batch, int64_t q_heads, int64_t kv_heads, int64_t seq_len, int64_t head_dim,
                                 DType t, double strong_fraction, std::mt19937_64& rng, bool pattern)
    : q(batch, q_heads, seq_len, head_dim, t),
      k(batch, kv_heads, seq_len, head_dim, t),
      v(batch, kv_heads, seq_len, head_dim, t),
      out(batch, q_heads, seq_len, head_dim, t) {
  std::normal_distribution<float> n01;
  std::vector<float> dir(static_cast<size_t>(head_dim));
  for (auto& x : dir) x = n01(rng);
  q.fill(rng, dir, pattern ? 1.0 : 0.0, 1.0f);
  k.fill(rng, dir, pattern ? strong_fraction : 0.0, 2.5f);
  v.fill(rng, dir, 0.0, 0.f);
}

}  // namespace vecattn::tuner

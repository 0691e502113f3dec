#pragma once
// The host conversions (codegen/host_dtype.h) under the reference's names, plus helpers only the
// tests need.
#include <cstdlib>

#include "codegen/host_dtype.h"

namespace vecattn::ref {

using vecattn::bf16_to_float;
using vecattn::float_to_bf16;
using vecattn::float_to_fp16;
using vecattn::fp16_to_float;
using vecattn::from_bits;
using vecattn::to_bits;

inline float round_to(DType t, double v) { return from_bits(t, to_bits(t, float(v))); }

// Distance in representable steps between two finite values of one 16-bit type (0 = equal).
inline int ulp_distance(uint16_t a, uint16_t b) {
  auto ordered = [](uint16_t h) { return (h & 0x8000u) ? -int(h & 0x7fffu) : int(h); };
  return std::abs(ordered(a) - ordered(b));
}

}  // namespace vecattn::ref

#include "runtime/validate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "codegen/error.h"

namespace vecattn {
namespace {

[[noreturn]] void bad(const std::string& msg) { throw Error(Status::invalid_argument, msg); }

// [first, last) bytes a tensor can touch.
std::pair<uintptr_t, uintptr_t> extent(const Tensor& t) {
  int64_t span = 0;
  for (int i = 0; i < 4; ++i) span += (t.shape[i] - 1) * std::llabs(t.stride[i]);
  const auto base = reinterpret_cast<uintptr_t>(t.data);
  return {base, base + uintptr_t(span + 1) * uintptr_t(dtype_size(t.dtype))};
}

}  // namespace

void check_tensor(const Tensor& t, const char* name) {
  if (!t.data) bad(fmt::format("{}: data pointer is null", name));
  if (reinterpret_cast<uintptr_t>(t.data) % 16)
    bad(fmt::format("{}: data pointer {} is not 16-byte aligned (vecattn reads rows with 16-byte loads)", name, t.data));
  static const char* dims[] = {"batch", "heads", "seq_len", "head_dim"};
  for (int i = 0; i < 4; ++i)
    if (t.shape[i] <= 0) bad(fmt::format("{}: {} is {}; it must be positive", name, dims[i], t.shape[i]));
  if (t.shape[2] > INT32_MAX) bad(fmt::format("{}: seq_len {} is over 2^31-1", name, t.shape[2]));
  if (t.stride[3] != 1)
    bad(fmt::format("{}: the head_dim stride is {}; it must be 1 (the innermost dimension contiguous)", name, t.stride[3]));
  for (int i = 0; i < 3; ++i)
    if (t.stride[i] < 0)
      bad(fmt::format("{}: the {} stride is {}; strides must not be negative", name, dims[i], t.stride[i]));
  for (int i = 0; i < 3; ++i)
    if (t.stride[i] % 8 != 0 && t.shape[i] > 1)
      bad(fmt::format("{}: the {} stride {} is not a multiple of 8 elements (16 bytes)", name, dims[i], t.stride[i]));
}

void check_distinct_elements(const Tensor& t, const char* name) {
  // Dimensions by increasing stride: each must step over everything the smaller ones span.
  static const char* dims[] = {"batch", "heads", "seq_len", "head_dim"};
  int order[4] = {0, 1, 2, 3};
  std::sort(order, order + 4, [&](int a, int b) { return t.stride[a] < t.stride[b]; });
  int64_t span = 1;  // elements covered by the dimensions so far
  for (int i : order) {
    if (t.shape[i] == 1) continue;
    if (t.stride[i] < span)
      bad(fmt::format("{}: the {} stride {} makes elements overlap (it must be at least {}): an output needs a "
                      "distinct place for every element", name, dims[i], t.stride[i], span));
    span = t.stride[i] * t.shape[i];
  }
}

void check_shape(const Tensor& t, const char* name, const int64_t (&e)[4], const char* what) {
  for (int i = 0; i < 4; ++i)
    if (t.shape[i] != e[i])
      bad(fmt::format("{}: shape [{}, {}, {}, {}] does not match {}: expected [{}, {}, {}, {}] (B, H, S, D)", name,
                      t.shape[0], t.shape[1], t.shape[2], t.shape[3], what, e[0], e[1], e[2], e[3]));
}

void check_same_dtype(const Tensor& a, const char* an, const Tensor& b, const char* bn) {
  if (a.dtype != b.dtype)
    bad(fmt::format("{} is {} but {} is {}: they must have the same dtype", an, dtype_name(a.dtype), bn, dtype_name(b.dtype)));
}

void check_no_overlap(const Tensor& out, const char* on, const Tensor& in, const char* in_name) {
  auto [o0, o1] = extent(out);
  auto [i0, i1] = extent(in);
  if (o0 < i1 && i0 < o1) bad(fmt::format("{} overlaps {} in memory: the output must not alias an input", on, in_name));
}

}  // namespace vecattn

#pragma once
// Checks of user arguments. Each failure throws Error(invalid_argument) naming the argument
// and what is allowed; nothing has been launched or written at that point.
#include <cstdint>

#include "runtime/tensor.h"

namespace vecattn {

// Non-null, 16-byte aligned data, positive shape, unit innermost stride, and every other stride
// non-negative and a multiple of 8 elements (so each row starts on a 16-byte boundary for vector loads).
void check_tensor(const Tensor& t, const char* name);

// No two elements share an address (an output written in parallel needs that).
void check_distinct_elements(const Tensor& t, const char* name);

// The shape must equal `expected` (B, H, S, D); `what` says where the expectation comes from.
void check_shape(const Tensor& t, const char* name, const int64_t (&expected)[4], const char* what);

void check_same_dtype(const Tensor& a, const char* a_name, const Tensor& b, const char* b_name);

// The byte ranges the two tensors can touch must not overlap (an output aliasing an input).
void check_no_overlap(const Tensor& out, const char* out_name, const Tensor& in, const char* in_name);

}  // namespace vecattn

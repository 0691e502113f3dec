// Argument checks that need no GPU: each names the argument and what is allowed.
#include <catch2/catch.hpp>

#include "codegen/error.h"
#include "runtime/prefill_plan.h"
#include "runtime/validate.h"
#include "runtime/vecattn.h"

using namespace vecattn;

namespace {

std::string why(const Tensor& t) {
  try {
    check_tensor(t, "q");
  } catch (const Error& e) {
    CHECK(e.status() == Status::invalid_argument);
    return e.what();
  }
  return "accepted";
}

void* aligned() { return reinterpret_cast<void*>(uintptr_t(0x10000)); }

}  // namespace

TEST_CASE("tensor checks", "[validation]") {
  CHECK(why(Tensor::bhsd(aligned(), DType::bf16, 1, 2, 3, 128)) == "accepted");
  CHECK(why(Tensor::bshd(aligned(), DType::bf16, 1, 3, 2, 128)) == "accepted");
  CHECK(why(Tensor::bhsd(nullptr, DType::bf16, 1, 2, 3, 128)) == "q: data pointer is null");
  CHECK_THAT(why(Tensor::bhsd(reinterpret_cast<void*>(uintptr_t(0x10002)), DType::bf16, 1, 2, 3, 128)),
             Catch::Contains("not 16-byte aligned"));
  CHECK_THAT(why(Tensor::bhsd(aligned(), DType::bf16, 1, 2, 0, 128)), Catch::Contains("seq_len is 0"));
  Tensor t = Tensor::bhsd(aligned(), DType::bf16, 1, 2, 3, 128);
  t.stride[3] = 2;
  CHECK_THAT(why(t), Catch::Contains("head_dim stride is 2; it must be 1"));
  t = Tensor::bhsd(aligned(), DType::bf16, 1, 2, 3, 128);
  t.stride[2] = 130;
  CHECK_THAT(why(t), Catch::Contains("seq_len stride 130 is not a multiple of 8"));
}

TEST_CASE("shape, dtype and aliasing checks", "[validation]") {
  Tensor q = Tensor::bhsd(aligned(), DType::bf16, 2, 4, 100, 128);
  const int64_t pooled[4] = {2, 4, 2, 128};
  Tensor out = Tensor::bhsd(reinterpret_cast<void*>(uintptr_t(0x1000000)), DType::bf16, 2, 4, 2, 128);
  CHECK_NOTHROW(check_shape(out, "out", pooled, "q pooled"));
  Tensor wrong = Tensor::bhsd(out.data, DType::bf16, 2, 4, 3, 128);
  CHECK_THROWS_WITH(check_shape(wrong, "out", pooled, "q pooled"),
                    Catch::Contains("out: shape [2, 4, 3, 128] does not match q pooled: expected [2, 4, 2, 128]"));
  Tensor half = Tensor::bhsd(out.data, DType::fp16, 2, 4, 2, 128);
  CHECK_THROWS_WITH(check_same_dtype(q, "q", half, "out"), "q is bf16 but out is fp16: they must have the same dtype");
  CHECK_NOTHROW(check_no_overlap(out, "out", q, "q"));
  Tensor inside = Tensor::bhsd(static_cast<char*>(q.data) + 4096, DType::bf16, 2, 4, 2, 128);
  CHECK_THROWS_WITH(check_no_overlap(inside, "out", q, "q"), Catch::Contains("out overlaps q"));
}

TEST_CASE("negative strides and self-overlapping outputs are refused", "[validation]") {
  auto at = [](uintptr_t a) { return reinterpret_cast<void*>(a); };
  const Tensor q = Tensor::bhsd(at(0x10000000), DType::bf16, 1, 2, 256, 128);
  const Tensor k = Tensor::bhsd(at(0x20000000), DType::bf16, 1, 2, 256, 128);
  const Tensor v = Tensor::bhsd(at(0x30000000), DType::bf16, 1, 2, 256, 128);
  Tensor out = Tensor::bhsd(at(0x40000000), DType::bf16, 1, 2, 256, 128);
  PrefillParams p;
  CHECK_NOTHROW(plan_prefill(q, k, &v, &out, p));

  Tensor backwards = out;
  backwards.stride[2] = -128;
  CHECK_THROWS_WITH(plan_prefill(q, k, &v, &backwards, p), "out: the seq_len stride is -128; strides must not be negative");
  Tensor rows_overlap = out;
  rows_overlap.stride[2] = 64;  // each row starts in the middle of the previous one
  CHECK_THROWS_WITH(plan_prefill(q, k, &v, &rows_overlap, p),
                    Catch::Contains("out: the seq_len stride 64 makes elements overlap (it must be at least 128)"));
  Tensor heads_overlap = out;
  heads_overlap.stride[1] = 0;
  CHECK_THROWS_WITH(plan_prefill(q, k, &v, &heads_overlap, p), Catch::Contains("out: the heads stride 0 makes elements overlap"));

  // The same through the C ABI.
  vecattn_tensor cq = vecattn_tensor_bhsd(q.data, VECATTN_BF16, 1, 2, 256, 128);
  vecattn_tensor ck = vecattn_tensor_bhsd(k.data, VECATTN_BF16, 1, 2, 256, 128);
  vecattn_tensor cv = vecattn_tensor_bhsd(v.data, VECATTN_BF16, 1, 2, 256, 128);
  vecattn_tensor co = vecattn_tensor_bhsd(out.data, VECATTN_BF16, 1, 2, 256, 128);
  const vecattn_prefill_params cp = vecattn_default_params();
  CHECK(vecattn_check_prefill(&cq, &ck, &cv, &co, &cp) == VECATTN_OK);
  co.stride[2] = 64;
  CHECK(vecattn_check_prefill(&cq, &ck, &cv, &co, &cp) == VECATTN_INVALID_ARGUMENT);
  CHECK_THAT(vecattn_last_error(), Catch::Contains("makes elements overlap"));
  co.stride[2] = -128;
  CHECK(vecattn_check_prefill(&cq, &ck, &cv, &co, &cp) == VECATTN_INVALID_ARGUMENT);
  CHECK_THAT(vecattn_last_error(), Catch::Contains("must not be negative"));
}

// The C ABI (runtime/vecattn.h) and the prefill argument checks behind it, without a GPU. Every bad
// input is run through both layers: the C++ checks must throw the right Status with a message
// naming the argument, and the C ABI must return the same status with the same text, since a C
// caller has nothing else to go on. Tensor addresses are fake: nothing is dereferenced.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "cache/thresholds.h"
#include "codegen/error.h"
#include "runtime/prefill_plan.h"
#include "runtime/runtime.h"
#include "runtime/vecattn.h"
#include "temp_dir.h"

using namespace vecattn;

namespace {

// 16-byte aligned and 2^40 bytes apart, so that no two tensors overlap whatever their shapes,
// unless a case makes them.
void* addr(int i) { return reinterpret_cast<void*>(uintptr_t(i + 1) << 40); }
void* offset(void* p, int64_t bytes) { return static_cast<char*>(p) + bytes; }

struct Inputs {
  Tensor q, k, v, out;
  bool has_v = true, has_out = true;
  PrefillParams params;
  // params.thresholds points here once finish() has run (a copy of Inputs would dangle).
  std::vector<float> thresholds;

  void finish() {
    if (!thresholds.empty()) params.thresholds = thresholds.data();
  }
};

Inputs make(int64_t b, int64_t hq, int64_t hkv, int64_t s, int64_t d, DType dt = DType::bf16) {
  Inputs in;
  in.q = Tensor::bhsd(addr(0), dt, b, hq, s, d);
  in.k = Tensor::bhsd(addr(1), dt, b, hkv, s, d);
  in.v = Tensor::bhsd(addr(2), dt, b, hkv, s, d);
  in.out = Tensor::bhsd(addr(3), dt, b, hq, s, d);
  return in;
}

// GQA with two q heads per kv head: the shape every case starts from.
Inputs valid() { return make(2, 4, 2, 256, 128); }

// Written apart from c_api.cpp's conversion so that a mistake there shows up here.
vecattn_tensor to_c(const Tensor& t) {
  vecattn_tensor r;
  r.data = t.data;
  r.dtype = t.dtype == DType::fp16 ? VECATTN_FP16 : VECATTN_BF16;
  for (int i = 0; i < 4; ++i) {
    r.shape[i] = t.shape[i];
    r.stride[i] = t.stride[i];
  }
  return r;
}

vecattn_prefill_params to_c(const PrefillParams& p) {
  vecattn_prefill_params r = vecattn_default_params();
  r.pq = p.pq;
  r.bk = p.bk;
  r.gk = p.gk;
  r.causal = p.causal;
  r.threshold = p.threshold;
  r.thresholds = p.thresholds;
  r.num_thresholds = p.num_thresholds;
  r.dense_prefix = p.dense_prefix;
  return r;
}

vecattn_status check_c(const Inputs& in) {
  const vecattn_tensor q = to_c(in.q), k = to_c(in.k), v = to_c(in.v), out = to_c(in.out);
  const vecattn_prefill_params p = to_c(in.params);
  return vecattn_check_prefill(&q, &k, in.has_v ? &v : nullptr, in.has_out ? &out : nullptr, &p);
}

struct Caught {
  bool thrown = false;
  Status status = Status::ok;
  std::string what;
};

template <class F>
Caught catch_error(F&& f) {
  Caught c;
  try {
    f();
  } catch (const Error& e) {
    c = {true, e.status(), e.what()};
  }
  return c;
}

Caught plan(const Inputs& in) {
  return catch_error([&] {
    plan_prefill(in.q, in.k, in.has_v ? &in.v : nullptr, in.has_out ? &in.out : nullptr, in.params);
  });
}

void set_raw_dtype(vecattn_tensor& t, int value) {
  // What a C caller can store; a static_cast to the C++ enum type would be undefined here.
  static_assert(sizeof t.dtype == sizeof value);
  std::memcpy(&t.dtype, &value, sizeof value);
}

struct BadCase {
  const char* name;
  std::function<void(Inputs&)> change;
  Status status;
  const char* message;  // a part of the text that names the argument and the rule
  // Params play no part and v and out are given: check_dense must reject it the same way.
  bool dense_too;
};

constexpr Status kInvalid = Status::invalid_argument;
constexpr Status kUnsupported = Status::unsupported;

const std::vector<BadCase>& bad_cases() {
  static const std::vector<BadCase> cases = {
      // Shapes.
      {"k batch differs from q", [](Inputs& in) { in.k = Tensor::bhsd(addr(1), DType::bf16, 1, 2, 256, 128); },
       kInvalid, "k: shape [1, 2, 256, 128] does not match q [2, 4, 256, 128]", true},
      {"k seq_len differs from q", [](Inputs& in) { in.k = Tensor::bhsd(addr(1), DType::bf16, 2, 2, 128, 128); },
       kInvalid, "k: shape [2, 2, 128, 128] does not match q [2, 4, 256, 128]", true},
      {"k head_dim differs from q", [](Inputs& in) { in.k = Tensor::bhsd(addr(1), DType::bf16, 2, 2, 256, 64); },
       kInvalid, "k: shape [2, 2, 256, 64] does not match q [2, 4, 256, 128]", true},
      {"v heads differ from k", [](Inputs& in) { in.v = Tensor::bhsd(addr(2), DType::bf16, 2, 4, 256, 128); },
       kInvalid, "v: shape [2, 4, 256, 128] does not match k: expected [2, 2, 256, 128]", true},
      {"v seq_len differs from k", [](Inputs& in) { in.v = Tensor::bhsd(addr(2), DType::bf16, 2, 2, 255, 128); },
       kInvalid, "v: shape [2, 2, 255, 128] does not match k: expected [2, 2, 256, 128]", true},
      {"out heads differ from q", [](Inputs& in) { in.out = Tensor::bhsd(addr(3), DType::bf16, 2, 2, 256, 128); },
       kInvalid, "out: shape [2, 2, 256, 128] does not match q: expected [2, 4, 256, 128]", true},
      {"Hq not a multiple of Hkv", [](Inputs& in) { in = make(2, 6, 4, 256, 128); }, kInvalid,
       "q has 6 heads and k has 4: q heads must be a multiple of kv heads (GQA)", true},
      {"more kv heads than q heads", [](Inputs& in) { in = make(2, 4, 8, 256, 128); }, kInvalid,
       "q has 4 heads and k has 8", true},
      {"head_dim 80", [](Inputs& in) { in = make(2, 4, 2, 256, 80); }, kUnsupported,
       "head_dim 80 is not supported: use 64 or 128", true},
      {"head_dim 256", [](Inputs& in) { in = make(2, 4, 2, 256, 256); }, kUnsupported,
       "head_dim 256 is not supported: use 64 or 128", true},
      {"seq_len 0", [](Inputs& in) { in = make(2, 4, 2, 0, 128); }, kInvalid, "q: seq_len is 0; it must be positive",
       true},
      {"k with 0 heads", [](Inputs& in) { in.k.shape[1] = 0; }, kInvalid, "k: heads is 0; it must be positive", true},
      {"out with a negative batch", [](Inputs& in) { in.out.shape[0] = -1; }, kInvalid,
       "out: batch is -1; it must be positive", true},
      {"batch over 65535", [](Inputs& in) { in = make(65536, 1, 1, 64, 64); }, kInvalid, "q: batch 65536 is over 65535",
       true},
      {"seq_len over 2^31-1", [](Inputs& in) { in = make(1, 1, 1, int64_t(1) << 31, 64); }, kInvalid,
       "q: seq_len 2147483648 is over 2^31-1", true},

      // Pointers and strides.
      {"q data null", [](Inputs& in) { in.q.data = nullptr; }, kInvalid, "q: data pointer is null", true},
      {"v data null", [](Inputs& in) { in.v.data = nullptr; }, kInvalid, "v: data pointer is null", true},
      {"out data null", [](Inputs& in) { in.out.data = nullptr; }, kInvalid, "out: data pointer is null", true},
      {"q misaligned (0x10002)", [](Inputs& in) { in.q.data = reinterpret_cast<void*>(uintptr_t(0x10002)); }, kInvalid,
       "q: data pointer 0x10002 is not 16-byte aligned", true},
      {"k 8-byte aligned only", [](Inputs& in) { in.k.data = offset(in.k.data, 8); }, kInvalid,
       "k: data pointer 0x20000000008 is not 16-byte aligned", true},
      {"k innermost stride 2", [](Inputs& in) { in.k.stride[3] = 2; }, kInvalid,
       "k: the head_dim stride is 2; it must be 1", true},
      {"q row stride 132", [](Inputs& in) { in.q.stride[2] = 132; }, kInvalid,
       "q: the seq_len stride 132 is not a multiple of 8 elements (16 bytes)", true},
      {"v head stride not a multiple of 8", [](Inputs& in) { in.v.stride[1] = 256 * 128 + 4; }, kInvalid,
       "v: the heads stride 32772 is not a multiple of 8 elements", true},
      {"out aliases q", [](Inputs& in) { in.out.data = in.q.data; }, kInvalid,
       "out overlaps q in memory: the output must not alias an input", true},
      {"out overlaps part of k", [](Inputs& in) { in.out.data = offset(in.k.data, 4096); }, kInvalid,
       "out overlaps k in memory", true},
      {"out aliases v", [](Inputs& in) { in.out.data = in.v.data; }, kInvalid, "out overlaps v in memory", true},

      // Dtypes.
      {"k fp16, q bf16", [](Inputs& in) { in.k.dtype = DType::fp16; }, kInvalid,
       "q is bf16 but k is fp16: they must have the same dtype", true},
      {"v fp16, q bf16", [](Inputs& in) { in.v.dtype = DType::fp16; }, kInvalid, "q is bf16 but v is fp16", true},
      {"out bf16, q fp16",
       [](Inputs& in) {
         in = make(2, 4, 2, 256, 128, DType::fp16);
         in.out.dtype = DType::bf16;
       },
       kInvalid, "q is fp16 but out is bf16", true},

      // Tiling parameters.
      {"pq 32", [](Inputs& in) { in.params.pq = 32; }, kUnsupported,
       "pq (q_pooling_size) 32 is not supported: use 64 or 128", false},
      {"bk 8", [](Inputs& in) { in.params.bk = 8; }, kUnsupported,
       "bk (k_local_size) 8 is not supported: use 16, 32 or 64", false},
      {"bk 128", [](Inputs& in) { in.params.bk = 128; }, kUnsupported, "bk (k_local_size) 128 is not supported", false},
      {"gk 0", [](Inputs& in) { in.params.gk = 0; }, kUnsupported,
       "gk (group_k_block) 0 is not supported: use a power of two from 1 to 128", false},
      {"gk 3", [](Inputs& in) { in.params.gk = 3; }, kUnsupported, "gk (group_k_block) 3 is not supported", false},
      {"gk 256", [](Inputs& in) { in.params.gk = 256; }, kUnsupported, "gk (group_k_block) 256 is not supported",
       false},
      // plan_prefill's "causal selection needs pq % bk == 0" cannot be reached: every supported
      // pq (64, 128) is a multiple of every supported bk (16, 32, 64), and pq and bk are checked
      // first. A causal pair that does not divide is therefore reported as an unsupported size.
      {"causal, pq 96 with bk 64", [](Inputs& in) {
         in.params.pq = 96;
         in.params.bk = 64;
       }, kUnsupported,
       "pq (q_pooling_size) 96 is not supported", false},
      {"causal, pq 64 with bk 48", [](Inputs& in) { in.params.bk = 48; }, kUnsupported,
       "bk (k_local_size) 48 is not supported", false},
      {"negative dense_prefix", [](Inputs& in) { in.params.dense_prefix = -1; }, kInvalid, "dense_prefix -1 is negative",
       false},

      // Thresholds.
      {"threshold 0", [](Inputs& in) { in.params.threshold = 0.f; }, kInvalid, "threshold 0 is outside (0, 1]", false},
      {"threshold -0.5", [](Inputs& in) { in.params.threshold = -0.5f; }, kInvalid, "threshold -0.5 is outside (0, 1]",
       false},
      {"threshold 1.5", [](Inputs& in) { in.params.threshold = 1.5f; }, kInvalid, "threshold 1.5 is outside (0, 1]",
       false},
      {"threshold NaN", [](Inputs& in) { in.params.threshold = std::numeric_limits<float>::quiet_NaN(); }, kInvalid,
       "threshold nan is outside (0, 1]", false},
      {"threshold +inf", [](Inputs& in) { in.params.threshold = std::numeric_limits<float>::infinity(); }, kInvalid,
       "threshold inf is outside (0, 1]", false},
      {"3 thresholds for 4 q heads",
       [](Inputs& in) {
         in.thresholds = {0.9f, 0.9f, 0.9f};
         in.params.num_thresholds = 3;
       },
       kInvalid, "thresholds has 3 values but q has 4 heads: give one per q head", false},
      {"thresholds given, num_thresholds 0",
       [](Inputs& in) {
         in.thresholds = {0.9f, 0.9f, 0.9f, 0.9f};
         in.params.num_thresholds = 0;
       },
       kInvalid, "thresholds has 0 values but q has 4 heads", false},
      {"one threshold 0",
       [](Inputs& in) {
         in.thresholds = {0.9f, 0.5f, 0.f, 0.9f};
         in.params.num_thresholds = 4;
       },
       kInvalid, "thresholds[2] 0 is outside (0, 1]", false},
      {"one threshold NaN",
       [](Inputs& in) {
         in.thresholds = {0.9f, 0.5f, 0.7f, std::nanf("")};
         in.params.num_thresholds = 4;
       },
       kInvalid, "thresholds[3] nan is outside (0, 1]", false},
      {"num_thresholds set, thresholds null", [](Inputs& in) { in.params.num_thresholds = 4; }, kInvalid,
       "num_thresholds is set but thresholds is null", false},
  };
  return cases;
}

}  // namespace

TEST_CASE("C ABI: every bad input is rejected by both layers alike", "[validation]") {
  REQUIRE(bad_cases().size() >= 24);
  for (const BadCase& c : bad_cases()) {
    DYNAMIC_SECTION(c.name) {
      Inputs in = valid();
      c.change(in);
      in.finish();

      const Caught cpp = plan(in);
      REQUIRE(cpp.thrown);
      CHECK(status_name(cpp.status) == std::string(status_name(c.status)));
      CHECK_THAT(cpp.what, Catch::Contains(c.message));

      if (c.dense_too) {
        const Caught dense = catch_error([&] { check_dense(in.q, in.k, in.v, in.out); });
        REQUIRE(dense.thrown);
        CHECK(dense.status == c.status);
        CHECK(dense.what == cpp.what);
      }

      const vecattn_status s = check_c(in);
      CHECK(int(s) == int(c.status));
      CHECK(std::string(vecattn_status_name(s)) == status_name(c.status));
      CHECK(std::string(vecattn_last_error()) == cpp.what);
    }
  }
}

TEST_CASE("C ABI: valid inputs pass both layers and clear the error", "[validation]") {
  struct GoodCase {
    const char* name;
    std::function<void(Inputs&)> change;
  };
  const std::vector<GoodCase> cases = {
      {"BHSD, GQA, defaults", [](Inputs&) {}},
      {"BSHD fp16",
       [](Inputs& in) {
         in.q = Tensor::bshd(addr(0), DType::fp16, 2, 256, 4, 128);
         in.k = Tensor::bshd(addr(1), DType::fp16, 2, 256, 2, 128);
         in.v = Tensor::bshd(addr(2), DType::fp16, 2, 256, 2, 128);
         in.out = Tensor::bshd(addr(3), DType::fp16, 2, 256, 4, 128);
       }},
      {"q and out BSHD, k and v BHSD, head_dim 64",
       [](Inputs& in) {
         in = make(1, 8, 1, 1000, 64);
         in.q = Tensor::bshd(addr(0), DType::bf16, 1, 1000, 8, 64);
         in.out = Tensor::bshd(addr(3), DType::bf16, 1, 1000, 8, 64);
       }},
      {"K and V halves of one fused KV buffer",
       [](Inputs& in) {
         // [B, S, 2, Hkv, D]: k and v interleave in memory but never share a byte; out is apart.
         const int64_t b = 2, s = 256, h = 2, d = 128;
         for (Tensor* t : {&in.k, &in.v}) *t = Tensor::bshd(addr(1), DType::bf16, b, s, h, d);
         in.k.stride[0] = in.v.stride[0] = s * 2 * h * d;
         in.k.stride[2] = in.v.stride[2] = 2 * h * d;
         in.v.data = offset(addr(1), h * d * 2);
       }},
      {"select only: no v, no out",
       [](Inputs& in) {
         in.has_v = false;
         in.has_out = false;
       }},
      {"per-head thresholds, one exactly 1",
       [](Inputs& in) {
         in.thresholds = {0.5f, 1.f, 0.999f, 1e-6f};
         in.params.num_thresholds = 4;
       }},
      {"non-causal, pq 128, bk 64, gk 128",
       [](Inputs& in) {
         in.params.causal = false;
         in.params.pq = 128;
         in.params.bk = 64;
         in.params.gk = 128;
       }},
      {"gk 1, dense_prefix beyond S",
       [](Inputs& in) {
         in.params.gk = 1;
         in.params.dense_prefix = 1 << 20;
       }},
      {"seq_len 1, one head", [](Inputs& in) { in = make(1, 1, 1, 1, 128); }},
  };
  for (const GoodCase& c : cases) {
    DYNAMIC_SECTION(c.name) {
      Inputs in = valid();
      c.change(in);
      in.finish();
      const Caught cpp = plan(in);
      CHECK_FALSE(cpp.thrown);
      INFO(cpp.what);
      if (in.has_v && in.has_out) CHECK_NOTHROW(check_dense(in.q, in.k, in.v, in.out));

      // A failure first, so that the success below visibly clears it.
      const vecattn_prefill_params p = vecattn_default_params();
      REQUIRE(vecattn_check_prefill(nullptr, nullptr, nullptr, nullptr, &p) == VECATTN_INVALID_ARGUMENT);
      REQUIRE(std::string(vecattn_last_error()) != "");
      CHECK(check_c(in) == VECATTN_OK);
      CHECK(std::string(vecattn_last_error()) == "");
    }
  }
}

TEST_CASE("C ABI: the plan of a valid prefill", "[validation]") {
  Inputs in = make(2, 4, 2, 1000, 64);
  in.params.dense_prefix = 5000;
  const PrefillPlan plan = plan_prefill(in.q, in.k, &in.v, &in.out, in.params);
  CHECK(plan.units() == 8);
  CHECK(plan.pooled == 16);      // ceil(1000 / 64)
  CHECK(plan.words == 16);       // ceil(1000 / 64)
  CHECK(plan.dense_prefix == 1000);
  REQUIRE(plan.gaps.size() == 4);
  CHECK(plan.gaps[0] == Approx(-std::log(0.9)));
}

TEST_CASE("C ABI: every supported causal pq and bk pair divides", "[validation]") {
  // Why the pq % bk check in plan_prefill is unreachable (see the bad cases above).
  for (int pq : {64, 128})
    for (int bk : {16, 32, 64}) {
      Inputs in = valid();
      in.params.pq = pq;
      in.params.bk = bk;
      in.params.causal = true;
      INFO("pq " << pq << " bk " << bk);
      CHECK_FALSE(plan(in).thrown);
      CHECK(check_c(in) == VECATTN_OK);
    }
}

TEST_CASE("C ABI: null arguments and bad enum values are named", "[validation]") {
  Inputs in = valid();
  const vecattn_tensor q = to_c(in.q), k = to_c(in.k), v = to_c(in.v), out = to_c(in.out);
  const vecattn_prefill_params p = vecattn_default_params();
  auto expect = [](vecattn_status s, const char* text) {
    CHECK(s == VECATTN_INVALID_ARGUMENT);
    CHECK_THAT(std::string(vecattn_last_error()), Catch::StartsWith(text));
  };

  SECTION("check_prefill") {
    expect(vecattn_check_prefill(nullptr, &k, &v, &out, &p), "q is NULL");
    expect(vecattn_check_prefill(&q, nullptr, &v, &out, &p), "k is NULL");
    expect(vecattn_check_prefill(&q, &k, &v, &out, nullptr), "params is NULL");
    // The first bad argument is the one named.
    expect(vecattn_check_prefill(nullptr, nullptr, nullptr, nullptr, nullptr), "q is NULL");
  }

  SECTION("a dtype outside the enum") {
    // Only the C layer can see this: a vecattn::DType always holds one of its values.
    vecattn_tensor bad = q;
    set_raw_dtype(bad, 2);
    expect(vecattn_check_prefill(&bad, &k, &v, &out, &p), "q: dtype 2 is not a vecattn_dtype");
    bad = out;
    set_raw_dtype(bad, -1);
    expect(vecattn_check_prefill(&q, &k, &v, &bad, &p), "out: dtype -1 is not a vecattn_dtype");
    bad = v;
    set_raw_dtype(bad, 7);
    expect(vecattn_check_prefill(&q, &k, &bad, &out, &p), "v: dtype 7 is not a vecattn_dtype");
  }

  SECTION("entry points that take a runtime") {
    size_t bytes = 123;
    char mask[8];
    expect(vecattn_prefill(nullptr, &q, &k, &v, &out, &p, nullptr, nullptr, 0, nullptr), "rt is NULL");
    expect(vecattn_workspace_size(nullptr, &q, &k, &p, &bytes), "rt is NULL");
    CHECK(bytes == 0);
    bytes = 123;
    expect(vecattn_workspace_min_bytes(nullptr, &q, &k, &p, &bytes), "rt is NULL");
    CHECK(bytes == 0);
    expect(vecattn_select(nullptr, &q, &k, &p, mask, nullptr, nullptr, 0), "rt is NULL");
    expect(vecattn_dense(nullptr, &q, &k, &v, &out, 1, nullptr), "rt is NULL");
    expect(vecattn_pool(nullptr, &q, &out, 64, nullptr), "rt is NULL");
    vecattn_destroy(nullptr);  // a no-op, like free(NULL)
  }

  SECTION("create without an out pointer") {
    expect(vecattn_create(0, nullptr, nullptr), "out is NULL");
  }
}

TEST_CASE("C ABI: status names and values", "[validation]") {
  const std::vector<std::pair<vecattn_status, Status>> all = {
      {VECATTN_OK, Status::ok},
      {VECATTN_INVALID_ARGUMENT, Status::invalid_argument},
      {VECATTN_UNSUPPORTED, Status::unsupported},
      {VECATTN_NO_DRIVER, Status::no_driver},
      {VECATTN_NO_DEVICE, Status::no_device},
      {VECATTN_CUDA_ERROR, Status::cuda_error},
      {VECATTN_NVRTC_UNAVAILABLE, Status::nvrtc_unavailable},
      {VECATTN_COMPILE_ERROR, Status::compile_error},
      {VECATTN_CACHE_ERROR, Status::cache_error},
      {VECATTN_INTERNAL, Status::internal},
  };
  for (auto [c, cpp] : all) {
    CHECK(int(c) == int(cpp));
    CHECK(std::string(vecattn_status_name(c)) == status_name(cpp));
  }
  CHECK(VECATTN_OK == 0);
  // 15 lies within the enum's range of values (0..15), so the cast is defined.
  CHECK(std::string(vecattn_status_name(static_cast<vecattn_status>(15))) == "unknown");
}

TEST_CASE("C ABI: defaults and tensor helpers match the C++ API", "[validation]") {
  const vecattn_prefill_params p = vecattn_default_params();
  CHECK(p.pq == 64);
  CHECK(p.bk == 16);
  CHECK(p.gk == 16);
  CHECK(p.causal == 1);
  CHECK(p.threshold == 0.9f);
  CHECK(p.thresholds == nullptr);
  CHECK(p.num_thresholds == 0);
  CHECK(p.dense_prefix == 0);
  const PrefillParams d;
  CHECK((p.pq == d.pq && p.bk == d.bk && p.gk == d.gk && bool(p.causal) == d.causal && p.threshold == d.threshold));

  auto same = [](const vecattn_tensor& c, const Tensor& t) {
    CHECK(c.data == t.data);
    CHECK(int(c.dtype) == int(t.dtype));
    for (int i = 0; i < 4; ++i) {
      CHECK(c.shape[i] == t.shape[i]);
      CHECK(c.stride[i] == t.stride[i]);
    }
  };
  same(vecattn_tensor_bhsd(addr(0), VECATTN_BF16, 2, 3, 5, 64), Tensor::bhsd(addr(0), DType::bf16, 2, 3, 5, 64));
  same(vecattn_tensor_bshd(addr(1), VECATTN_FP16, 2, 5, 3, 128), Tensor::bshd(addr(1), DType::fp16, 2, 5, 3, 128));
}

TEST_CASE("C ABI: the last error is per thread and cleared by success", "[validation]") {
  std::string fresh = "unset";
  std::thread([&] { fresh = vecattn_last_error(); }).join();
  CHECK(fresh == "");

  Inputs in = valid();
  in.params.threshold = 2.f;
  REQUIRE(check_c(in) == VECATTN_INVALID_ARGUMENT);
  const std::string mine = vecattn_last_error();
  CHECK_THAT(mine, Catch::Contains("threshold 2 is outside (0, 1]"));

  // Another thread's failure and success leave this thread's text alone.
  std::string other_failed, other_after;
  std::thread([&] {
    other_failed = vecattn_last_error();
    Inputs bad = valid();
    bad.params.gk = 5;
    check_c(bad);
    other_failed = vecattn_last_error();
    check_c(valid());
    other_after = vecattn_last_error();
  }).join();
  CHECK_THAT(other_failed, Catch::Contains("gk (group_k_block) 5"));
  CHECK(other_after == "");
  CHECK(std::string(vecattn_last_error()) == mine);

  // Functions that return no status do not touch it.
  vecattn_status_name(VECATTN_OK);
  vecattn_default_params();
  vecattn_destroy(nullptr);
  CHECK(std::string(vecattn_last_error()) == mine);

  CHECK(check_c(valid()) == VECATTN_OK);
  CHECK(std::string(vecattn_last_error()) == "");
}

TEST_CASE("C ABI: vecattn_create without a GPU", "[validation]") {
  std::string cpp_what;
  bool cpp_ok = false;
  try {
    Runtime rt;
    cpp_ok = true;
  } catch (const Error& e) {
    cpp_what = e.what();
  }

  // Poisoned, to see that a failure leaves NULL behind rather than the old value.
  auto* rt = reinterpret_cast<vecattn_runtime*>(uintptr_t(0x1234));
  const vecattn_status s = vecattn_create(0, nullptr, &rt);
  if (s == VECATTN_OK) {
    // Where a GPU exists there is nothing to check here; the [gpu] tests cover that machine.
    CHECK(cpp_ok);
    CHECK(rt != nullptr);
    vecattn_destroy(rt);
    WARN("a GPU is present: the no-GPU path of vecattn_create was not exercised");
    return;
  }
  CHECK((s == VECATTN_NO_DRIVER || s == VECATTN_NO_DEVICE));
  CHECK(rt == nullptr);
  const std::string text = vecattn_last_error();
  CHECK_THAT(text, Catch::Contains("CUDA"));
  CHECK(text == cpp_what);
}

TEST_CASE("C ABI: the header compiles as strict C99 and as C++", "[validation]") {
  // The repository root is two levels above this file (tests/test_c_api.cpp): CMake passes
  // sources by absolute path, so __FILE__ locates it without a definition from the build.
  const std::filesystem::path root = std::filesystem::path(__FILE__).parent_path().parent_path();
  if (!std::filesystem::exists(root / "runtime" / "vecattn.h")) {
    WARN("sources not found at " << root << ": skipped (binary run away from its checkout?)");
    return;
  }
  test::TempDir dir;
  const std::string src = dir.file("use_vecattn.c");
  std::ofstream(src) << R"(#include "runtime/vecattn.h"
#include <stdio.h>

/* Uses every type and function, so that each declaration is checked, not only parsed. */
int use(void* p, void* stream) {
  vecattn_runtime* rt = NULL;
  vecattn_tensor t = vecattn_tensor_bshd(p, VECATTN_BF16, 1, 3, 2, 64);
  vecattn_tensor u = vecattn_tensor_bhsd(p, VECATTN_FP16, 1, 2, 3, 128);
  vecattn_prefill_params prm = vecattn_default_params();
  vecattn_prefill_stats st;
  double density[2];
  size_t bytes = 0;
  vecattn_status s = vecattn_create(0, NULL, &rt);
  st.density = density;
  st.density_len = 2;
  if (s == VECATTN_OK) s = vecattn_check_prefill(&t, &t, NULL, NULL, &prm);
  if (s == VECATTN_OK) s = vecattn_workspace_size(rt, &t, &t, &prm, &bytes);
  if (s == VECATTN_OK) s = vecattn_workspace_min_bytes(rt, &t, &t, &prm, &bytes);
  if (s == VECATTN_OK) s = vecattn_prefill(rt, &t, &t, &t, &u, &prm, stream, NULL, 0, &st);
  if (s == VECATTN_OK) s = vecattn_select(rt, &t, &t, &prm, p, stream, p, bytes);
  if (s == VECATTN_OK) s = vecattn_dense(rt, &t, &t, &t, &u, 1, stream);
  if (s == VECATTN_OK) s = vecattn_pool(rt, &t, &u, 64, stream);
  if (s != VECATTN_OK) fprintf(stderr, "%s: %s\n", vecattn_status_name(s), vecattn_last_error());
  vecattn_destroy(rt);
  return s == VECATTN_UNSUPPORTED || s == VECATTN_NO_DRIVER || s == VECATTN_NO_DEVICE || s == VECATTN_CUDA_ERROR ||
         s == VECATTN_NVRTC_UNAVAILABLE || s == VECATTN_COMPILE_ERROR || s == VECATTN_CACHE_ERROR ||
         s == VECATTN_INTERNAL || s == VECATTN_INVALID_ARGUMENT;
}
)";
  const std::string log = dir.file("cc.log");
  const std::string include = "'" + root.string() + "'";
  const std::vector<std::pair<std::string, std::string>> compilers = {
      {"cc", "-std=c99 -Wall -Wextra -pedantic -Werror -fsyntax-only -x c"},
      {"c++", "-std=c++11 -Wall -Wextra -pedantic -Werror -fsyntax-only -x c++"},
  };
  for (const auto& [compiler, flags] : compilers) {
    if (std::system(("command -v " + compiler + " >/dev/null 2>&1").c_str()) != 0) {
      WARN(compiler << " not found: the header was not compiled by it");
      continue;
    }
    const std::string cmd = compiler + " " + flags + " -I" + include + " '" + src + "' >'" + log + "' 2>&1";
    const int rc = std::system(cmd.c_str());
    std::ifstream f(log);
    const std::string output((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    INFO(cmd << "\n" << output);
    CHECK(rc == 0);
  }
}

TEST_CASE("C ABI: one layer's calibrated thresholds from a thresholds file", "[c_api][calibrate]") {
  test::TempDir dir;
  std::vector<cache::ThresholdRow> rows;
  for (int h = 0; h < 3; ++h) rows.push_back({"m", 2, h, 0.5 + 0.1 * h, 0.9, 0.7, "", ""});
  cache::write_thresholds_file(dir.file("t.json"), rows);
  int64_t count = -1;
  REQUIRE(vecattn_layer_thresholds(dir.file("t.json").c_str(), "m", 2, nullptr, 0, &count) == VECATTN_OK);
  CHECK(count == 3);
  float out[3] = {0, 0, 0};
  REQUIRE(vecattn_layer_thresholds(dir.file("t.json").c_str(), "m", 2, out, 3, &count) == VECATTN_OK);
  CHECK(out[0] == Approx(0.5f));
  CHECK(out[2] == Approx(0.7f));
  CHECK(vecattn_layer_thresholds(dir.file("t.json").c_str(), "m", 5, out, 3, &count) == VECATTN_INVALID_ARGUMENT);
  CHECK_THAT(vecattn_last_error(), Catch::Contains("no thresholds for layer 5"));
  CHECK(vecattn_layer_thresholds(dir.file("none.json").c_str(), "m", 2, out, 3, &count) == VECATTN_INVALID_ARGUMENT);
  CHECK_THAT(vecattn_last_error(), Catch::Contains("cannot be opened"));
  CHECK(vecattn_layer_thresholds(nullptr, "m", 2, out, 3, &count) == VECATTN_INVALID_ARGUMENT);
}

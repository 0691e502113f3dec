#include "runtime/tma.h"

#include <fmt/format.h>

#include <cstring>

#include "runtime/driver.h"

namespace vecattn {
namespace {

static_assert(sizeof(TmaDescriptor) == sizeof(CUtensorMap) && alignof(TmaDescriptor) == alignof(CUtensorMap),
              "TmaDescriptor must mirror CUtensorMap");

constexpr cuuint32_t kBoxColumns = 64;  // 128 bytes of fp16/bf16: the swizzle span

// t as a 4-D tensor (D, S, H, B) with boxes of 64 columns x `rows` rows.
bool encode(const Tensor& t, int rows, TmaDescriptor& out, std::string* why, const char* name) {
  const Driver& d = Driver::get();
  const cuuint64_t dims[4] = {cuuint64_t(t.head_dim()), cuuint64_t(t.seq_len()), cuuint64_t(t.heads()),
                              cuuint64_t(t.batch())};
  cuuint64_t strides[3] = {cuuint64_t(t.stride[2]) * 2, cuuint64_t(t.stride[1]) * 2, cuuint64_t(t.stride[0]) * 2};
  // A dimension of extent 1 is never stepped over: give it the packed stride, since its own may
  // be anything (0, or not a multiple of 16 bytes), which the driver would refuse.
  const cuuint64_t packed[3] = {dims[0] * 2, strides[0] * dims[1], strides[1] * dims[2]};
  for (int i = 0; i < 3; ++i)
    if (dims[i + 1] == 1) strides[i] = packed[i] ? packed[i] : 16;
  const cuuint32_t box[4] = {kBoxColumns, cuuint32_t(rows), 1, 1};
  const cuuint32_t element_strides[4] = {1, 1, 1, 1};
  CUtensorMap map;
  const CUresult r = d.cuTensorMapEncodeTiled(
      &map, t.dtype == DType::bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 4, t.data, dims,
      strides, box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
      rows > 1 ? CU_TENSOR_MAP_L2_PROMOTION_L2_256B : CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
      CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    if (why)
      *why = fmt::format("{} (strides {}, {}, {} elements) cannot be described to the copy engine: {}", name,
                         t.stride[0], t.stride[1], t.stride[2], d.error_text(r));
    return false;
  }
  static_assert(sizeof(map) == sizeof(out));
  std::memcpy(&out, &map, sizeof(out));
  return true;
}

}  // namespace

bool encode_attention_maps(const Tensor& q, const Tensor& k, const Tensor& v, int q_rows, int key_rows,
                           AttnSm90Params& out, std::string* why) {
  return encode(q, q_rows, out.q, why, "q") && encode(k, 1, out.k_rows, why, "k") &&
         encode(v, 1, out.v_rows, why, "v") && encode(k, key_rows, out.k_tiles, why, "k") &&
         encode(v, key_rows, out.v_tiles, why, "v");
}

bool encode_select_map(const Tensor& k, SelectSm90Params& out, std::string* why) {
  return encode(k, kSelectKeysPerStep, out.k, why, "k");
}

}  // namespace vecattn

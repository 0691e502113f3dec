#pragma once
// Kernel arguments: flat PODs passed by value, shared verbatim by the host (C++) and the
// kernels (NVRTC), so their layouts cannot drift apart. Plain C++ only in this file.

// Functions both sides call: host and device under NVRTC, plain C++ on the host.
#if defined(__CUDACC_RTC__) || defined(__CUDACC__)
#define VECATTN_HOST_DEVICE __host__ __device__
#else
#define VECATTN_HOST_DEVICE
#endif

namespace vecattn {

// docs/semantics.md §2. Q rows [i*Pq, min((i+1)*Pq, S)) -> one pooled row i. Strides in elements,
// innermost stride 1.
// One CTA per (pooled row, unit); a unit is one (batch, head) pair u = b * heads + h, and a
// launch covers units [unit_begin, unit_begin + gridDim.y). The output element of (b, h, i, d)
// is out[b * out_stride_b + h * out_stride_h + i * out_stride_s + d - out_origin], so a
// workspace holding only a chunk of units is addressed like a whole tensor.
struct PoolParams {
  const void* q;                                  // [B, H, S, D]
  void* out;                                      // [B, H, nq, D]
  long long q_stride_b, q_stride_h, q_stride_s;
  long long out_stride_b, out_stride_h, out_stride_s;
  long long out_origin;
  int unit_begin, heads;
  int seq_len;                                    // S
  int num_pooled;                                 // nq = ceil(S / Pq)
};

// The largest q head count one launch carries thresholds for (kernel parameters stay < 4 KiB).
constexpr int kMaxQHeads = 256;

// Keys of one select step: one 64-bit mask word per pooled row.
constexpr int kSelectKeysPerStep = 64;

// docs/semantics.md §3-§4. Grid: x = key chunks of key_chunk keys, y = tiles of pooled rows, z = units.
// Pooled rows of unit u are qp[(u - qp_unit_origin) * num_pooled * D ...] (contiguous), mask
// words of unit u are mask[(u - mask_unit_origin) * num_pooled * words ...].
struct SelectParams {
  const void* qp;
  const void* k;                                  // [B, Hkv, S, D]
  unsigned long long* mask;                       // [units][nq][words]
  int* counts;                                    // optional [units][nq]: keys kept (added to)
  long long k_stride_b, k_stride_h, k_stride_s;
  long long qp_unit_origin, mask_unit_origin;
  int unit_begin, q_heads, kv_group;              // kv head = h / kv_group
  int seq_len, num_pooled, words;
  int key_chunk;                                  // a multiple of max(Gk * Bk, 64)
  // 1: words no row can select are written as zeros (the mask users read). 0: they are left
  // unwritten, for the attention kernel, which reads a causal row's candidate words only.
  int exact_mask;
  float sm_scale;
  float gap[kMaxQHeads];                          // -ln(threshold) per q head
};

VECATTN_HOST_DEVICE constexpr int select_smem_bytes(int rows, int head_dim, int stages) {
  return rows * head_dim * 2 + stages * kSelectKeysPerStep * head_dim * 2;
}

// docs/semantics.md §5. Grid: x = tiles of BM query rows starting at row_begin, y = units. Sparse: a
// tile is one query block (BM = Pq) and reads its mask row; dense: keys [0, S) (causal: <= row).
struct AttnParams {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  long long q_stride_b, q_stride_h, q_stride_s;
  long long k_stride_b, k_stride_h, k_stride_s;
  long long v_stride_b, v_stride_h, v_stride_s;
  long long o_stride_b, o_stride_h, o_stride_s;
  const unsigned long long* mask;                 // sparse: [units][nq][words]
  long long mask_unit_origin;
  int unit_begin, q_heads, kv_group;
  int seq_len, words;
  int row_begin, row_end;                         // query rows this launch writes
  float sm_scale_log2;                            // 1/sqrt(D) * log2(e)
};

// docs/semantics.md §6, recall of sampled rows (calibration). Grid: x = groups of
// kRecallRowsPerCta entries of `rows`, y = units [unit_begin, unit_begin + gridDim.y). mask is a
// whole selection ([B, Hq, nq, words], unit u at u * nq * words); out[u * num_rows + n] is the
// recall of query row rows[n] of unit u (NaN for a row outside [0, S)).
constexpr int kRecallRowsPerCta = 8;
struct RecallParams {
  const void* q;                                  // [B, Hq, S, D]
  const void* k;                                  // [B, Hkv, S, D]
  const unsigned long long* mask;
  const int* rows;                                // [num_rows] query rows, any order
  float* out;                                     // [units][num_rows]
  long long q_stride_b, q_stride_h, q_stride_s;
  long long k_stride_b, k_stride_h, k_stride_s;
  int unit_begin, q_heads, kv_group;
  int seq_len, num_pooled, words, num_rows;
  int dense_prefix;                               // rows before it attend every visible key
  float sm_scale_log2;                            // 1/sqrt(D) * log2(e)
};

// Selected key indices a CTA compacts from its mask row at a time.
constexpr int kAttnListCapacity = 1024;

// Registers of the mma.sync attention kernel. A warp owns warp_rows query rows (16 or 32: one or
// two m16 row groups, which share every K and V fragment). Each row group holds, per thread, the
// fp32 S of a key tile (bn / 2) and O (head_dim / 2). Limits, as ptxas allocates them (0 spills):
// - S and O at most kAttnMaxAccRegs, which leaves 63 of the 255 for addresses, fragments in
//   flight and the softmax state; a sparse CTA's key schedule (mask row, list cursors) takes
//   kAttnSparseStateRegs of those more (32 rows x 64 keys at D = 128 spills there, not dense);
// - S at most kAttnMaxScoreRegs (32 rows x 128 keys spills even at D = 64).
// Q's A fragments (head_dim / 4 registers a row group) stay in registers where everything stays
// within kAttnMaxHeldRegs (every 16-row shape, up to D = 128 with 128 keys); otherwise they are
// reloaded from the Q tile at each k-step of Q.K^T, as FlashAttention-2 does at D = 128.
constexpr int kAttnMaxAccRegs = 192;
constexpr int kAttnSparseStateRegs = 16;
constexpr int kAttnMaxScoreRegs = 64;
constexpr int kAttnMaxHeldRegs = 160;
VECATTN_HOST_DEVICE constexpr int attn_score_regs(int warp_rows, int bn) { return warp_rows / 16 * bn / 2; }
// S and O, plus a sparse CTA's schedule state.
VECATTN_HOST_DEVICE constexpr int attn_acc_regs(int warp_rows, int bn, int head_dim, bool sparse) {
  return warp_rows / 16 * (bn + head_dim) / 2 + (sparse ? kAttnSparseStateRegs : 0);
}
VECATTN_HOST_DEVICE constexpr bool attn_q_in_regs(int warp_rows, int bn, int head_dim) {
  return attn_acc_regs(warp_rows, bn, head_dim, false) + warp_rows / 16 * head_dim / 4 <= kAttnMaxHeldRegs;
}

VECATTN_HOST_DEVICE constexpr int attn_smem_bytes(int bm, int bn, int head_dim, int stages) {
  return bm * head_dim * 2                        // Q tile
         + stages * 2 * bn * head_dim * 2         // K and V tiles
         + stages * bn * 4                        // key index of each tile row
         + kAttnListCapacity * 4                  // compacted selected keys
         + 64;                                    // scan scratch and list state
}

// ---- the Hopper (sm_90a) attention kernel: warp-specialized, wgmma, TMA ----

// A CUtensorMap (the copy engine's tensor descriptor), opaque here: 128 bytes, aligned as cuda.h aligns it.
struct alignas(128) TmaDescriptor {
  unsigned long long bits[16];
};

// AttnParams plus the copy engine's view of q, k and v as 4-D tensors (D, S, H, B), 128-byte
// swizzled boxes of 64 columns: q by the CTA's rows; k and v by single rows (gathered keys) and by
// whole tiles (contiguous key ranges).
struct AttnSm90Params {
  AttnParams a;
  TmaDescriptor q, k_rows, v_rows, k_tiles, v_tiles;
};
// 512 threads: two producer warpgroups (the key schedule, K/V rows by cp.async or the copy engine)
// and two consumer warpgroups (64 query rows each for one wgmma M). A CTA covers kAttnSm90Rows(Pq) query rows: a Pq = 128
// block or 128 dense rows, each consumer owning 64 of them; or a Pq = 64 block, whose key tiles
// the two consumers take in turn and merge at the end.
constexpr int kAttnSm90ProducerThreads = 256;
constexpr int kAttnSm90Threads = kAttnSm90ProducerThreads + 256;
VECATTN_HOST_DEVICE constexpr int attn_sm90_rows(int pq) { return pq == 64 ? 64 : 128; }

// Selected keys the Hopper kernel compacts at a time: as many as shared memory leaves room for, up
// to kAttnSm90MaxList. A refill costs a global load of the mask words and five named barriers in the
// producers' per-tile path whatever its size; at 27% kept, 1024 keys meant one every 15 tiles, and
// 4096 measured 11-13% faster at Pq 64 and 128 (bench/NOTES.md, v8). At Pq 64 the two loading
// groups share the list and compact it together (sm90_producer.cuh).
constexpr int kAttnSm90MaxList = 4096;
constexpr int kAttnSm90ScratchBytes = 64;  // the list's scan scratch: an int per producer warp, and one more
constexpr int kAttnSm90MaxSmem = 227 * 1024;

// Shared memory, in this order: Q tile, Stages x (K tile, V tile), key indices [Stages][BN],
// tile info [Stages], the compacted-key list (list_capacity keys), scan scratch, mbarriers (q_full, full[Stages],
// empty[Stages]); tiles 1024-byte aligned (the swizzle atom). The launch adds one atom of slack
// to align the dynamic base.
struct AttnSm90Layout {
  int q, kv, stage_bytes, idx, info, list, scratch, bars, bytes;
  int list_capacity;
};
VECATTN_HOST_DEVICE constexpr AttnSm90Layout attn_sm90_layout(int pq, int bn, int head_dim, int stages) {
  AttnSm90Layout l{};
  l.q = 0;
  l.kv = attn_sm90_rows(pq) * head_dim * 2;
  l.stage_bytes = 2 * bn * head_dim * 2;
  l.idx = l.kv + stages * l.stage_bytes;
  l.info = l.idx + stages * bn * 4;
  l.list = (l.info + stages * 4 + 15) / 16 * 16;
  // The rest after the list (scratch, barriers) and the launch's alignment slack.
  const int tail = kAttnSm90ScratchBytes + (1 + 2 * stages) * 8 + 1024;
  l.list_capacity = kAttnSm90MaxList;
  while (l.list_capacity > kAttnListCapacity && l.list + l.list_capacity * 4 + tail > kAttnSm90MaxSmem)
    l.list_capacity /= 2;
  l.scratch = l.list + l.list_capacity * 4;
  l.bars = l.scratch + kAttnSm90ScratchBytes;
  l.bytes = l.bars + (1 + 2 * stages) * 8;
  return l;
}
VECATTN_HOST_DEVICE constexpr int attn_sm90_smem_bytes(int pq, int bn, int head_dim, int stages) {
  return attn_sm90_layout(pq, bn, head_dim, stages).bytes + 1024;
}

// ---- the Hopper (sm_90a) select kernel: wgmma scores, K tiles by the copy engine ----

// SelectParams plus the copy engine's view of k (D, S, H, B): 128-byte swizzled boxes of 64 keys
// x 64 columns, one select step.
struct SelectSm90Params {
  TmaDescriptor k;
  SelectParams s;
};
// A CTA: one consumer warpgroup per 64 pooled rows, then one producer warp.
VECATTN_HOST_DEVICE constexpr int select_sm90_threads(int rows) { return rows / 64 * 128 + 32; }
// Shared memory, in this order: Stages K tiles (swizzle atoms), the pooled rows (the mma.sync
// fragment layout), full[Stages] and empty[Stages] mbarriers; plus one atom of slack to align the base.
VECATTN_HOST_DEVICE constexpr int select_sm90_smem_bytes(int rows, int head_dim, int stages) {
  return stages * kSelectKeysPerStep * head_dim * 2 + rows * head_dim * 2 + 2 * stages * 8 + 1024;
}

}  // namespace vecattn

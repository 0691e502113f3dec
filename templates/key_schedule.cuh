#pragma once
// Where an attention CTA's key tiles come from (docs/semantics.md §5.1), shared by the mma.sync
// and the wgmma main loops. A tile is a list of BN key indices (-1 = none); tiles come, in
// order, from the query block's mask row (compacted on the fly into a shared list), then,
// causal, the sink block and the diagonal block (the wgmma kernel takes those two first); dense
// attention walks one contiguous range. The schedule is run by a group of threads in lockstep
// (the whole CTA, or a loading group of a warp-specialized kernel): every thread of the group
// holds the same KeySchedule. Two groups may each run their own copy over the same row (the
// wgmma kernel at Pq 64): the schedule is deterministic, so both see the same tiles, and they may
// share the compacted list (next_tile's Refill group).
#include "params.h"
#include "tile.cuh"

namespace vecattn {

// All threads of the CTA.
template <int Threads> struct CtaGroup {
  static constexpr int kThreads = Threads;
  __device__ static __forceinline__ int rank() { return threadIdx.x; }
  __device__ static __forceinline__ void sync() { __syncthreads(); }
  __device__ static __forceinline__ int count(bool p) { return __syncthreads_count(p); }
};

// Threads [First, First + Threads) of the CTA, synchronized by named barrier Id alone, so the
// other warps never wait for them.
template <int Id, int Threads, int First> struct NamedGroup {
  static constexpr int kThreads = Threads;
  static_assert(Threads % 32 == 0 && Id > 0 && Id < 16, "a named barrier of whole warps, id 1..15");
  __device__ static __forceinline__ int rank() { return int(threadIdx.x) - First; }
  __device__ static __forceinline__ void sync() { asm volatile("bar.sync %0, %1;\n" ::"n"(Id), "n"(Threads) : "memory"); }
  __device__ static __forceinline__ int count(bool p) {
    int c;
    asm volatile(
        "{\n .reg .pred q;\n setp.ne.u32 q, %1, 0;\n bar.red.popc.u32 %0, %2, %3, q;\n}\n"
        : "=r"(c)
        : "r"(int(p)), "n"(Id), "n"(Threads)
        : "memory");
    return c;
  }
};

// Threads [0, Groups x Threads) as one or two groups of Threads, the second on its own named
// barrier (Id1). A thread finds its group at run time, so both groups run one copy of the code:
// where they also meet at a barrier of all of them (a key list they share), they reach it at the
// same instruction, as bar.sync requires of every thread it waits for. (Two instantiations, one
// per group, reached it from two; compute-sanitizer's synccheck reports that as divergence.)
template <int Groups, int Threads, int Id0, int Id1> struct SplitGroup {
  static_assert(Groups == 1 || Groups == 2, "one or two groups");
  static_assert(Id1 > 0 && Id1 < 16, "a named barrier, id 1..15");
  using First = NamedGroup<Id0, Threads, 0>;  // one group: exactly this
  static constexpr int kThreads = Threads;
  __device__ static __forceinline__ int index() { return Groups == 2 && int(threadIdx.x) >= Threads ? 1 : 0; }
  __device__ static __forceinline__ int rank() { return int(threadIdx.x) - index() * Threads; }
  __device__ static __forceinline__ void sync() {
    if constexpr (Groups == 1)
      First::sync();
    else
      asm volatile("bar.sync %0, %1;\n" ::"r"(index() ? Id1 : Id0), "n"(Threads) : "memory");
  }
  __device__ static __forceinline__ int count(bool p) {
    if constexpr (Groups == 1) {
      return First::count(p);
    } else {
      int c;
      asm volatile(
          "{\n .reg .pred q;\n setp.ne.u32 q, %1, 0;\n bar.red.popc.u32 %0, %2, %3, q;\n}\n"
          : "=r"(c)
          : "r"(int(p)), "r"(index() ? Id1 : Id0), "n"(Threads)
          : "memory");
      return c;
    }
  }
};

// Exclusive scan of one int per thread of the group; returns the total. scratch: warps ints.
template <class Group> __device__ __forceinline__ int group_exclusive_scan(int v, int* scratch, int& total) {
  constexpr int kWarps = Group::kThreads / 32;
  const int lane = Group::rank() & 31, warp = Group::rank() >> 5;
  int incl = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const int n = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += n;
  }
  if (lane == 31) scratch[warp] = incl;
  Group::sync();
  int before = 0;
  total = 0;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    const int t = scratch[w];
    if (w < warp) before += t;
    total += t;
  }
  Group::sync();  // scratch is reused by the next call
  return before + incl - v;
}

struct KeySchedule {
  enum Phase { kSelected, kSink, kDiagonal, kRange, kDone };
  int phase;
  int word, word_end;          // mask words still to compact
  int count, head;             // list[head, count) are compacted keys not yet handed out
  int next_key, end_key;       // the current contiguous range
  bool ranges_first;           // causal sink and diagonal before the selected keys

  // A sparse query block starting at row block_row0: its candidate words (causal: the words of
  // keys [Pq, block_row0), which are whole words because Pq % 64 == 0), then, causal, the sink
  // and diagonal blocks. RangesFirst puts those two first: their tiles need no mask, so a
  // warp-specialized producer has their copies in flight during its first refill.
  template <int Pq, bool Causal, bool RangesFirst = false>
  __device__ static KeySchedule sparse(int block_row0, int words, int seq_len) {
    KeySchedule ks{};
    ks.phase = kSelected;
    ks.word = Causal ? Pq / 64 : 0;
    ks.word_end = Causal ? max(ks.word, block_row0 / 64) : words;
    ks.ranges_first = Causal && RangesFirst;
    if (ks.ranges_first) {  // keys [0, Pq) either way: the sink block, or the first block's own diagonal
      ks.phase = block_row0 > 0 ? kSink : kDiagonal;
      ks.next_key = block_row0 > 0 ? 0 : block_row0;
      ks.end_key = block_row0 > 0 ? min(Pq, seq_len) : min(block_row0 + Pq, seq_len);
    }
    return ks;
  }
  // Keys [0, end) in order.
  __device__ static KeySchedule range(int end) {
    KeySchedule ks{};
    ks.phase = kRange;
    ks.next_key = 0;
    ks.end_key = end;
    return ks;
  }
};

// Refills the shared list (ListCapacity keys) from the mask row: words are taken whole, in order,
// while they fit. A pass reads one word a thread; once a pass has left the list under half full
// (a sparse row: few keys a word), the next ones read MaxWords consecutive words a thread, so a
// refill waits on memory fewer times. Dense rows stay at one word: every word read costs its
// thread serial key writes, and two a thread from the start measured 8% slower at 27% kept.
template <class Group, int BN, int ListCapacity, int MaxWords, typename Mask>
__device__ __forceinline__ void compact_selected(KeySchedule& ks, const Mask* mask_row, int* list, int* scratch) {
  constexpr int kThreads = Group::kThreads;
  constexpr int kWarps = kThreads / 32;
  static_assert(ListCapacity >= BN + 64 && ListCapacity >= 128 * MaxWords,
                "a pass must always take its first thread's words");
  const int tid = Group::rank();
  // Keep the keys not yet handed out (fewer than BN) at the front.
  const int rem = ks.count - ks.head;
  const int keep = tid < rem ? list[ks.head + tid] : 0;
  Group::sync();
  if (tid < rem) list[tid] = keep;
  ks.count = rem;
  ks.head = 0;
  int words = 1;  // this pass's words per thread
  while (ks.word < ks.word_end) {
    const int w0 = ks.word + tid * words;
    unsigned long long bits[MaxWords];
    int c = 0;
#pragma unroll
    for (int i = 0; i < MaxWords; ++i) {
      bits[i] = i < words && w0 + i < ks.word_end ? mask_row[w0 + i] : 0ull;
      c += __popcll(bits[i]);
    }
    int total;
    const int before = group_exclusive_scan<Group>(c, scratch, total);
    const bool fits = ks.count + before + c <= ListCapacity;  // true for a prefix of threads
    if (fits) {
      int pos = ks.count + before;
#pragma unroll
      for (int i = 0; i < MaxWords; ++i) {
        // Each thread writes its word's keys one at a time, and the slowest thread holds the
        // refill that the consumers wait for (most of a refill's time at 27% kept). As two 32-bit
        // chains the loop has no 64-bit arithmetic: 9 instructions a key instead of 14
        // (bench/NOTES.md, v16b).
        const int key0 = (w0 + i) * 64;
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          u32 x = u32(bits[i] >> (32 * half));
          while (x) {
            list[pos++] = key0 + 32 * half + __ffs(x) - 1;
            x &= x - 1;
          }
        }
      }
    }
    const int taken = Group::count(fits);
    if (taken == 0) break;  // the list is full: not even this pass's first words fit
    if (tid == taken - 1) scratch[kWarps] = before + c;
    Group::sync();
    ks.count += scratch[kWarps];
    ks.word = min(ks.word + taken * words, ks.word_end);
    Group::sync();
    if (taken < kThreads) break;  // the list is full
    words = ks.count < ListCapacity / 2 ? MaxWords : 1;
  }
}

// Writes the next tile's key indices to idx[0, BN); returns how many are real (0: no tile left).
// Pq is the query block's row count (its diagonal block and the sink block span Pq keys).
// write = false only steps over the tile (another group loads it): no indices and no barrier of
// its own, but a refill it triggers runs the refill's barriers, so every thread of the group calls.
// Refill: the threads that compact the list, Group itself or a larger group holding it (two loading
// groups sharing one list: both reach every refill at the same point of the schedule, having
// copied out every key they took before it).
template <class Group, int BN, int Pq, bool Causal, int ListCapacity = kAttnListCapacity, int MaxWords = 1,
          class Refill = Group>
__device__ __forceinline__ int next_tile(KeySchedule& ks, int* idx, const unsigned long long* mask_row, int* list,
                                         int* scratch, int block_row0, int seq_len, bool write = true) {
  static_assert(BN <= Group::kThreads, "one key per thread of the group");
  const int tid = Group::rank();
  while (true) {
    if (ks.phase == KeySchedule::kSelected) {
      const int avail = ks.count - ks.head;
      if (avail >= BN || (avail > 0 && ks.word >= ks.word_end)) {
        const int n = min(avail, BN);
        if (write) {
          if (tid < BN) idx[tid] = tid < n ? list[ks.head + tid] : -1;
          Group::sync();
        }
        ks.head += n;
        return n;
      }
      if (ks.word < ks.word_end) {
        compact_selected<Refill, BN, ListCapacity, MaxWords>(ks, mask_row, list, scratch);
        continue;
      }
      if (ks.ranges_first) return 0;  // the sink and diagonal came first (every later call lands here too)
      // Selected keys done; causal blocks then attend the sink block (unless they are it).
      if (Causal && block_row0 > 0) {
        ks.phase = KeySchedule::kSink;
        ks.next_key = 0;
        ks.end_key = min(Pq, seq_len);
      } else {
        ks.phase = Causal ? KeySchedule::kDiagonal : KeySchedule::kDone;
        ks.next_key = block_row0;
        ks.end_key = min(block_row0 + Pq, seq_len);
      }
      continue;
    }
    if (ks.phase == KeySchedule::kDone) return 0;
    if (ks.next_key < ks.end_key) {
      const int n = min(BN, ks.end_key - ks.next_key);
      if (write) {
        if (tid < BN) idx[tid] = tid < n ? ks.next_key + tid : -1;
        Group::sync();
      }
      ks.next_key += n;
      return n;
    }
    if (ks.phase == KeySchedule::kSink) {
      ks.phase = KeySchedule::kDiagonal;
      ks.next_key = block_row0;
      ks.end_key = min(block_row0 + Pq, seq_len);
    } else {
      ks.phase = ks.phase == KeySchedule::kDiagonal && ks.ranges_first ? KeySchedule::kSelected : KeySchedule::kDone;
    }
  }
}

}  // namespace vecattn

#!/usr/bin/env bash
# On the GPU machine: Nsight Compute on one launch of the sm90 attention kernel, dense (the first
# launch of vecattn-bench) and sparse (--skip-dense). Prints the sections that say what limits it.
# Usage: bash bench/ncu_attention.sh [bin-dir] [seq-len]
set -u
BIN=${1:-devbin}
S=${2:-16384}
OUT=${OUT:-/tmp/vecattn-out}
mkdir -p "$OUT"
export VECATTN_CACHE_DIR=$(mktemp -d) VECATTN_LOG_LEVEL=warn VECATTN_ATTENTION_PATH=${VECATTN_ATTENTION_PATH:-wgmma}
sections="--section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section SourceCounters"
for mode in dense sparse; do
  extra=""; [ $mode = sparse ] && extra="--skip-dense"
  echo "== ncu: $mode, S=$S"
  timeout 240 ncu --kernel-name regex:attn_sm90 --launch-count 1 $sections "$BIN/vecattn-bench" --input random \
    --seq-len "$S" --heads 32 --kv-heads 32 --thresholds 0.8 --recall-rows 0 --reps 1 $extra >"$OUT/ncu_$mode.txt" 2>&1
  echo "rc=$?"
  grep -E "Duration|Throughput|Pipe|Issue Slots|Warp Cycles Per|Stall|L2 Hit|Mem Busy|Max Bandwidth|Executed Ipc|No Eligible|Active Warps|Eligible Warps|Tensor" "$OUT/ncu_$mode.txt" | head -45
done

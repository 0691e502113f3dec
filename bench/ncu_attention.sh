#!/usr/bin/env bash
# On the GPU machine: Nsight Compute on one launch of the sm90 attention kernel, dense (the first
# launch of vecattn-bench) and sparse (--skip-dense). Prints the sections that say what limits it.
# SASS=1: the full set instead, saved as $OUT/ncu_<mode>.ncu-rep, with the per-SASS-line counts and
# stall samples exported to $OUT/ncu_<mode>_sass.csv (what each instruction of the loop costs).
# Usage: bash bench/ncu_attention.sh [bin-dir] [seq-len]   (MODES=dense|sparse|"dense sparse", PQ=64|128, THR=0.8)
set -u
BIN=${1:-devbin}
S=${2:-16384}
OUT=${OUT:-/tmp/vecattn-out}
mkdir -p "$OUT"
export VECATTN_CACHE_DIR=$(mktemp -d) VECATTN_LOG_LEVEL=warn VECATTN_ATTENTION_PATH=${VECATTN_ATTENTION_PATH:-wgmma}
sections="--section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section SourceCounters"
[ -n "${SASS:-}" ] && sections="--set full --import-source no"
for mode in ${MODES:-dense sparse}; do
  extra="--pq ${PQ:-64}"; [ $mode = sparse ] && extra="$extra --skip-dense"
  r="$OUT/ncu_${mode}${PQ:-}${THR:-}"
  report=""; [ -n "${SASS:-}" ] && report="-o $r"
  echo "== ncu: $mode, S=$S"
  timeout 400 ncu --kernel-name regex:attn_sm90 --launch-count 1 $sections $report "$BIN/vecattn-bench" --input random \
    --seq-len "$S" --heads 32 --kv-heads 32 --thresholds ${THR:-0.8} --recall-rows 0 --reps 1 $extra >"$r.txt" 2>&1
  echo "rc=$?"
  if [ -n "${SASS:-}" ]; then
    ncu --import "$r.ncu-rep" --print-details all >"$r.txt" 2>&1
    ncu --import "$r.ncu-rep" --page source --csv --print-source sass >"${r}_sass.csv" 2>&1
  fi
  grep -E "Duration|Throughput|Pipe|Issue Slots|Warp Cycles Per|Stall|L2 Hit|Mem Busy|Max Bandwidth|Executed Ipc|No Eligible|Active Warps|Eligible Warps|Tensor" "$r.txt" | head -45
done

#!/usr/bin/env bash
# On the GPU machine: Nsight Compute, full set, on one dense launch of the sm90 attention kernel
# (causal, Hq=32, D=128): what the consumers stall on, per SASS line, and the pipes' utilization.
# Usage: bash bench/ncu_dense.sh [bin-dir] [seq-len]
set -u
BIN=${1:-devbin}
S=${2:-16384}
OUT=${OUT:-/tmp/vecattn-out}
mkdir -p "$OUT"
export VECATTN_CACHE_DIR=$(mktemp -d) VECATTN_LOG_LEVEL=warn VECATTN_ATTENTION_PATH=wgmma
timeout 400 ncu --kernel-name regex:attn_sm90 --launch-count 1 --set full --import-source no \
  --print-details all -o "$OUT/dense" "$BIN/vecattn-bench" --input random --seq-len "$S" --heads 32 --kv-heads 32 \
  --thresholds 0.9 --recall-rows 0 --reps 1 >"$OUT/ncu_dense_run.txt" 2>&1
echo "rc=$?"
ncu --import "$OUT/dense.ncu-rep" --print-details all > "$OUT/ncu_dense.txt" 2>&1
ncu --import "$OUT/dense.ncu-rep" --page source --csv --print-source sass > "$OUT/ncu_dense_sass.csv" 2>&1
grep -E "Duration|Throughput|Pipe|Issue Slots|Warp Cycles Per|L2 Hit|Executed Ipc|No Eligible|Eligible Warps|Tensor|Bank" "$OUT/ncu_dense.txt" | head -60
wc -l "$OUT/ncu_dense_sass.csv"

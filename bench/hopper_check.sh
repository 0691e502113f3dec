#!/usr/bin/env bash
# On the GPU machine: the attention paths side by side. Correctness first (the [gpu] prefill and
# dense matrix on both paths, every command under a timeout so a hang costs minutes, not the
# lease), then vecattn-bench on random inputs per path and torch SDPA in the same run.
# Usage: bash bench/hopper_check.sh [bin-dir]   (SEQ, HEADS, REPS, CAUSAL, SKIP_TESTS override)
set -u
BIN=${1:-devbin}
OUT=${OUT:-/tmp/vecattn-out}
mkdir -p "$OUT"
export VECATTN_CACHE_DIR=$(mktemp -d) VECATTN_LOG_LEVEL=warn
SEQ=${SEQ:-32768,131072}
HEADS=${HEADS:-32}
REPS=${REPS:-5}
CAUSAL=${CAUSAL:-1}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
if [ -z "${SKIP_TESTS:-}" ]; then
  echo "== [gpu] prefill / dense / graph on both paths"
  timeout 400 "$BIN/vecattn_gpu_tests" "[prefill],[dense]" 2>&1 | tee "$OUT/gpu_attn.log" \
    | grep -E "path, |test cases|assertions|FAILED|attention path" | head -20
  echo "rc=${PIPESTATUS[0]}"
fi
echo "== torch SDPA"
timeout 200 python3 bench/peer_sdpa.py --seq-len "$SEQ" --heads "$HEADS" --causal "$CAUSAL" --reps "$REPS" \
  --csv "$OUT/peers.csv" 2>&1 | grep -v Warning
for path in ${PATHS:-wgmma mma}; do
  echo "== vecattn-bench, $path path"
  VECATTN_ATTENTION_PATH=$path timeout 300 "$BIN/vecattn-bench" --input random --seq-len "$SEQ" --heads "$HEADS" \
    --kv-heads "$HEADS" --causal "$CAUSAL" --thresholds ${THRESHOLDS:-0.8,0.9} --recall-rows 0 --reps "$REPS" \
    ${BENCH_FLAGS:-} --csv "$OUT/bench_$path.csv" 2>&1 | grep -v "^# config"
done

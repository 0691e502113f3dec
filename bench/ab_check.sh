#!/usr/bin/env bash
# On the GPU machine: builds of the kernels side by side in one run (the first before a change,
# the last after it), with torch SDPA, on random inputs at the operating points; correctness of
# the last build first.
# Usage: bash bench/ab_check.sh bin-dir... (SEQ, REPS, SKIP_TESTS, EXTRA override)
set -u
B=${!#}
OUT=${OUT:-/tmp/vecattn-out}
mkdir -p "$OUT"
export VECATTN_CACHE_DIR=$(mktemp -d) VECATTN_LOG_LEVEL=warn
SEQ=${SEQ:-32768,131072}
REPS=${REPS:-5}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
if [ -z "${SKIP_TESTS:-}" ]; then
  echo "== $B: [gpu] prefill / dense on both paths"
  timeout 300 "$B/vecattn_gpu_tests" "[prefill],[dense]" 2>&1 | tee "$OUT/gpu_attn.log" \
    | grep -E "path, |test cases|assertions|FAILED" | head -20
fi
echo "== torch SDPA, causal, Hq=32"
timeout 150 python3 bench/peer_sdpa.py --seq-len "$SEQ" --heads 32 --causal 1 --reps "$REPS" 2>&1 | grep -v "Warning\|^#"
F="^# config|S method"
for dir in "$@"; do
  which=$(basename "$dir")
  # fresh kernel cache per build: the builds share variant names but not kernel sources
  export VECATTN_CACHE_DIR=$(mktemp -d)
  echo "== $which ($dir): causal Pq 64 with dense"
  timeout 200 "$dir/vecattn-bench" --input random --seq-len "$SEQ" --thresholds 0.8,0.9 --recall-rows 0 \
    --reps "$REPS" --csv "$OUT/${which}_pq64.csv" 2>&1 | grep -Ev "$F"
  echo "== $which: causal Pq 128"
  timeout 150 "$dir/vecattn-bench" --input random --seq-len "$SEQ" --thresholds 0.8,0.9 --recall-rows 0 --pq 128 \
    --skip-dense --reps "$REPS" --csv "$OUT/${which}_pq128.csv" 2>&1 | grep -Ev "$F"
  ${EXTRA:-true} "$dir"
done

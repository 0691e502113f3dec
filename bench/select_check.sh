#!/usr/bin/env bash
# On the GPU machine: the selection phase, mma.sync and wgmma side by side. Correctness first (the
# [gpu] select/prefill matrix on both paths), then vecattn-bench --select-only per pinned select
# config at the shapes, and the previous build's prefill split as the anchor when its
# binary is given (OLD_BIN). Every command under a timeout; a short table last.
# Usage: bash bench/select_check.sh [bin-dir]   (REPS, SKIP_TESTS, OLD_BIN, CONFIGS override)
set -u
BIN=${1:-devbin}
OUT=${OUT:-/tmp/vecattn-out}
mkdir -p "$OUT"
export VECATTN_CACHE_DIR=$(mktemp -d) VECATTN_LOG_LEVEL=warn
REPS=${REPS:-10}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
if [ -z "${SKIP_TESTS:-}" ]; then
  echo "== [gpu] select / prefill matrix on both paths"
  timeout 420 "$BIN/vecattn_gpu_tests" "[prefill]" 2>&1 | tee "$OUT/gpu_prefill.log" \
    | grep -E "path, |test cases|assertions|FAILED|failed|error" | head -30
  echo "rc=${PIPESTATUS[0]}"
fi

# label | bench arguments
SHAPES_ALL=(
  "128K-causal-pq64|--seq-len 131072 --heads 32 --causal 1 --pq 64"
  "32K-causal-pq64|--seq-len 32768 --heads 32 --causal 1 --pq 64"
  "128K-causal-pq128|--seq-len 131072 --heads 32 --causal 1 --pq 128"
  "wan2.1-pq64|--seq-len 75600 --heads 40 --kv-heads 40 --causal 0 --pq 64"
  "hunyuan-pq64|--seq-len 118800 --heads 24 --kv-heads 24 --causal 0 --pq 64"
)
SHAPES=()
for s in "${SHAPES_ALL[@]}"; do [[ -z "${ONLY:-}" || "${s%%|*}" == *${ONLY}* ]] && SHAPES+=("$s"); done
CONFIGS=${CONFIGS:-"bq64-w4-s2 bq128-w8-s3 bq128-w8-s4-wgmma bq128-w8-s3-wgmma bq128-w8-s2-wgmma bq64-w4-s4-wgmma"}
: > "$OUT/select.txt"
for shape in "${SHAPES[@]}"; do
  label=${shape%%|*}
  args=${shape#*|}
  for cfg in $CONFIGS; do
    line=$(timeout 120 "$BIN/vecattn-bench" --input random --select-only --skip-dense --thresholds 0.9 \
      --reps "$REPS" --select-config "$cfg" $args 2>&1 | grep -E "^# select|rror" | head -3)
    echo "$label $cfg $line" | tee -a "$OUT/select.txt"
  done
done

if [ -n "${OLD_BIN:-}" ]; then
  echo "== anchor: prefill split (select with statistics), previous build vs this one, t=0.9"
  for shape in "${SHAPES[@]}"; do
    label=${shape%%|*}
    args=${shape#*|}
    for b in "$OLD_BIN" "$BIN"; do
      timeout 150 "$b/vecattn-bench" --input random --skip-dense --thresholds 0.9 --recall-rows 0 --reps 3 $args \
        2>&1 | grep -E "vecattn |rror" | sed "s|^|$label $b |"
    done
  done
fi

echo "== table: select ms (pool excluded) per shape and config"
awk '{ for (i = 1; i <= NF; ++i) if ($i == "select" && $(i + 2) == "ms") printf "%-20s %-20s %8s ms  %s\n", $1, $2, $(i + 1), $(i + 3) }' \
  "$OUT/select.txt" | sed 's/(//'

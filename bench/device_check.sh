#!/usr/bin/env bash
# Runs on the GPU machine over binaries built on the developer machine (carried in devbin/):
# the [gpu] tests, compute-sanitizer on them, and the cold / warm start of the kernels.
# Usage: bash bench/device_check.sh [bin-dir]
set -u
BIN=${1:-devbin}
OUT=${OUT:-/tmp/vecattn-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

echo "== [gpu] tests"
export VECATTN_CACHE_DIR=$(mktemp -d)
"$BIN/vecattn_gpu_tests" --durations yes 2>&1 | tee "$OUT/gpu_tests.log" | tail -12
gpu_rc=${PIPESTATUS[0]}

echo "== compute-sanitizer memcheck / racecheck (pool)"
for tool in memcheck racecheck; do
  compute-sanitizer --tool $tool --error-exitcode 9 "$BIN/vecattn_gpu_tests" "[pool]" >"$OUT/san_$tool.log" 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/san_$tool.log" | tail -1)"
done

echo "== cold start (empty cache, one NVRTC at a time) and warm start (a second process)"
export VECATTN_CACHE_DIR=$(mktemp -d)
export VECATTN_LOG_LEVEL=warn
ms() { echo $(( $(date +%s%N) / 1000000 )); }
s=$(ms); "$BIN/vecattn-tune" --threads 1 >"$OUT/cold.txt"; cold_rc=$?; e=$(ms)
echo "cold process: rc=$cold_rc $((e - s)) ms"
s=$(ms); "$BIN/vecattn-tune" >"$OUT/warm.txt"; warm_rc=$?; e=$(ms)
echo "warm process: rc=$warm_rc $((e - s)) ms"
echo "-- cold"; grep -E "variant|pool/pq64-d128-bf16-sm_90a\+w4|variants in" "$OUT/cold.txt"
echo "-- warm"; grep -E "variant|pool/pq64-d128-bf16-sm_90a\+w4|variants in" "$OUT/warm.txt"
echo "gpu tests rc=$gpu_rc"

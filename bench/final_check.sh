#!/usr/bin/env bash
# On the GPU machine, one call: the whole [gpu] suite, compute-sanitizer on a wgmma subset, the
# Python tests, then torch SDPA and vecattn-bench side by side at the operating points (random
# inputs, thresholds 0.8 and 0.9; causal 32K/128K, Pq 64 and 128; the Wan2.1 and HunyuanVideo
# shapes non-causal). Every step under a timeout; logs and CSVs under $OUT.
# Usage: bash bench/final_check.sh [bin-dir]   (SKIP_TESTS, SKIP_PYTHON, SKIP_MMA,
# SKIP_SELECT leave those parts out)
set -u
BIN=${1:-devbin}
OUT=${OUT:-/tmp/vecattn-out}
mkdir -p "$OUT"
export VECATTN_CACHE_DIR=$(mktemp -d) VECATTN_LOG_LEVEL=warn
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
if [ -z "${SKIP_TESTS:-}" ]; then
  echo "== [gpu] suite"
  timeout 360 "$BIN/vecattn_gpu_tests" 2>&1 | tee "$OUT/gpu_tests.log" | grep -E "path, |calls in|test cases|assertions|FAILED" | head
  echo "== compute-sanitizer (chunking + graph test, both paths)"
  for tool in memcheck racecheck synccheck; do
    timeout 150 compute-sanitizer --tool $tool "$BIN/vecattn_gpu_tests" "prefill: chunking invariance and CUDA-graph capture" \
      >"$OUT/san_$tool.log" 2>&1
    echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|test cases' "$OUT/san_$tool.log" | tr '\n' ' ')"
  done
fi
if [ -z "${SKIP_PYTHON:-}" ]; then
  echo "== python"
  VECATTN_LIB=$BIN/libvecattn.so timeout 150 python3 python/tests/test_vecattn.py 2>&1 | tee "$OUT/python.log" | grep -E "FAIL|passed"
fi
B="$BIN/vecattn-bench --input random --reps 7 --recall-rows 16"
F="^# config|S method"
peers() { timeout 150 python3 bench/peer_sdpa.py --reps 7 "$@" 2>&1 | grep -v "Warning\|^#\|backend"; }
echo "== causal, Hq=32, D=128: SDPA"; peers --seq-len 32768,131072 --heads 32 --causal 1 --csv "$OUT/peers_causal.csv"
echo "== causal, Pq=64"; timeout 200 $B --seq-len 32768,131072 --thresholds 0.8,0.9 --csv "$OUT/causal_pq64.csv" 2>&1 | grep -Ev "$F"
echo "== causal, Pq=128"; timeout 120 $B --seq-len 32768,131072 --thresholds 0.8,0.9 --pq 128 --skip-dense 2>&1 | grep -Ev "$F"
echo "== Wan2.1 (S=75600, H=40) non-causal: SDPA"; peers --seq-len 75600 --heads 40 --causal 0
timeout 150 $B --seq-len 75600 --heads 40 --kv-heads 40 --causal 0 --thresholds 0.8,0.9 --csv "$OUT/wan.csv" 2>&1 | grep -Ev "$F"
echo "== HunyuanVideo (S=118800, H=24) non-causal: SDPA"; peers --seq-len 118800 --heads 24 --causal 0
timeout 150 $B --seq-len 118800 --heads 24 --kv-heads 24 --causal 0 --thresholds 0.8,0.9 --csv "$OUT/hunyuan.csv" 2>&1 | grep -Ev "$F"
[ -n "${SKIP_MMA:-}" ] || { echo "== mma.sync path (what sm_80 runs), causal 32K"
VECATTN_ATTENTION_PATH=mma timeout 100 $BIN/vecattn-bench --input random --reps 7 --recall-rows 0 --seq-len 32768 \
  --thresholds 0.8,0.9 2>&1 | grep -Ev "$F"; }
[ -n "${SKIP_SELECT:-}" ] && exit 0
echo "== select alone (Runtime::select: pool + select, every mask word written), t=0.9"
for a in "--seq-len 32768,131072 --heads 32 --causal 1 --pq 64" "--seq-len 131072 --heads 32 --causal 1 --pq 128" \
         "--seq-len 75600 --heads 40 --kv-heads 40 --causal 0 --pq 64" "--seq-len 118800 --heads 24 --kv-heads 24 --causal 0 --pq 64"; do
  timeout 100 $BIN/vecattn-bench --input random --select-only --skip-dense --thresholds 0.9 --reps 10 $a 2>&1 | grep -E "^# select|rror"
done

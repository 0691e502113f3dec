#!/usr/bin/env bash
# On the GPU machine: the calibration tests, then vecattn-calibrate on synthetic dumps of a
# 28-layer x 28-head model (GQA 4 kv heads) at S=16K, timed, for a target sparsity and for a
# target recall, and one layer's thresholds run through vecattn-bench from the exported file.
# Usage: bash bench/calibrate_check.sh [bin-dir]
set -u
BIN=${1:-devbin}
OUT=${OUT:-/tmp/vecattn-out}
DUMPS=${DUMPS:-/tmp/vecattn-dumps}
mkdir -p "$OUT"
export VECATTN_CACHE_DIR=$(mktemp -d) VECATTN_LOG_LEVEL=warn
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== [calibration] tests"
timeout 300 "$BIN/vecattn_gpu_tests" "[calibration]" >"$OUT/calibration_tests.log" 2>&1
grep -E "warning:|recall kernel|target|FAILED|failed|passed" -A2 "$OUT/calibration_tests.log" | grep -vE "^--$" | head -40
for tool in memcheck racecheck; do
  timeout 200 compute-sanitizer --tool $tool --error-exitcode 9 "$BIN/vecattn_gpu_tests" \
    "the recall kernel equals the fp64 reference on the GPU's own selection" >"$OUT/san_$tool.log" 2>&1
  echo "$tool on the recall test: rc=$? $(grep -E 'ERROR SUMMARY' "$OUT/san_$tool.log" | tail -1)"
done
echo "== synthetic dumps"
start=$(date +%s)
timeout 300 python3 bench/synthetic_dumps.py "$DUMPS" --layers ${LAYERS:-28} --heads 28 --kv-heads 4 --seq-len 16384
echo "written in $(( $(date +%s) - start )) s: $(du -sh "$DUMPS" | cut -f1)"
inputs=""
for f in "$DUMPS"/layer*.safetensors; do inputs="$inputs --input $f"; done
for target in "--target-sparsity 0.75" "--target-recall 0.95"; do
  echo "== vecattn-calibrate $target"
  /usr/bin/time -f "wall %e s, max RSS %M KiB" timeout 400 "$BIN/vecattn-calibrate" --model synthetic-28x28 $inputs \
    $target --out "$OUT/thresholds_${target##* }.json" 2>"$OUT/calibrate_err.log" | tee "$OUT/calibrate_${target##* }.log" | tail -8
  tr '\r' '\n' <"$OUT/calibrate_err.log" | tail -3
done
echo "== vecattn-calibrate on .npy pairs: fp32 [H, S, D] q, fp16 [B, H, S, D] k (GQA), non-causal, Pq 128"
python3 - "$DUMPS" <<'PY'
import sys, numpy as np
rng = np.random.default_rng(0)
for i in range(2):
    u = rng.standard_normal(64); u /= np.linalg.norm(u)
    k = rng.standard_normal((1, 2, 3000, 64)) + rng.standard_normal((1, 2, 3000, 1)) * 2.0 * u
    q = rng.standard_normal((8, 3000, 64)) + 8.0 * u
    np.save(f"{sys.argv[1]}/q{i}.npy", q.astype(np.float32)); np.save(f"{sys.argv[1]}/k{i}.npy", k.astype(np.float16))
PY
timeout 120 "$BIN/vecattn-calibrate" --model npy-check --input "$DUMPS/q0.npy,$DUMPS/k0.npy" --input "$DUMPS/q1.npy,$DUMPS/k1.npy" \
  --first-layer 5 --causal 0 --pq 128 --bk 32 --gk 8 --rows 64 --target-sparsity 0.5 --dtype fp16 --print-heads \
  --out "$OUT/npy_check.json" 2>/dev/null | tail -6
echo "== vecattn-bench with layer 3's thresholds from the file"
timeout 120 "$BIN/vecattn-bench" --input random --seq-len 16384 --heads 28 --kv-heads 4 --reps 3 --skip-dense \
  --thresholds-file "$OUT/thresholds_0.75.json" --model synthetic-28x28 --layer 3 2>&1 | tail -4
if [ "${FULL:-0}" = 1 ]; then
  echo "== all [gpu] tests"
  timeout 420 "$BIN/vecattn_gpu_tests" >"$OUT/gpu_tests.log" 2>&1
  tail -3 "$OUT/gpu_tests.log"
fi

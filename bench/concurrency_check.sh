#!/usr/bin/env bash
# On the GPU machine: the concurrency stress tests on this build (devbin/) and, when present, on
# a build of the previous runtime (devbin/old/, its shared workspace) to show the race; then the
# whole [gpu] suite, the Python tests, and the cost of the stream-ordered workspace per call.
# Usage: bash bench/concurrency_check.sh [bin-dir]
set -u
BIN=${1:-devbin}
OUT=${OUT:-/tmp/vecattn-out}
mkdir -p "$OUT"
export VECATTN_CACHE_DIR=$(mktemp -d) VECATTN_LOG_LEVEL=warn
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
py_stress() {  # the Python streams and threads tests against the library in $1
  VECATTN_LIB=$1 python3 -c "
import sys; sys.path.insert(0, 'python/tests'); import test_vecattn as t
for name in ('test_two_streams_equal_calls_alone', 'test_two_threads_equal_calls_alone'):
    try:
        getattr(t, name)(); print('PASS', name)
    except AssertionError as e:
        print('FAIL', name, e)" 2>&1 | grep -E "PASS|FAIL"
}
if [ -x "$BIN/old/vecattn_gpu_tests" ]; then
  echo "== before: the previous runtime's shared workspace"
  "$BIN/old/vecattn_gpu_tests" "[stress]" 2>&1 \
    | tee "$OUT/old_stress.log" | grep -E "differ from the call alone|test cases"
  py_stress "$BIN/old/libvecattn.so"
fi
echo "== after"
"$BIN/vecattn_gpu_tests" "[concurrency]" 2>&1 | tee "$OUT/stress.log" | grep -E "differ from the call alone|test cases"
py_stress "$BIN/libvecattn.so"
echo "== all [gpu] tests"
"$BIN/vecattn_gpu_tests" 2>&1 | tee "$OUT/gpu_tests.log" | tail -3
echo "== python tests"
VECATTN_LIB=$BIN/libvecattn.so python3 python/tests/test_vecattn.py 2>&1 | tee "$OUT/python.log" | grep -E "FAIL|passed"
echo "== sanitizer on the graph-capture test"
for tool in memcheck synccheck; do
  compute-sanitizer --tool $tool --error-exitcode 9 "$BIN/vecattn_gpu_tests" \
    "prefill captured in a CUDA graph without a caller workspace" >"$OUT/san_$tool.log" 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY' "$OUT/san_$tool.log" | tail -1)"
done
echo "== workspace overhead per call (random inputs, causal, Hq=32, D=128, bf16, t=0.9)"
"$BIN/vecattn-bench" --input random --seq-len 8192,131072 --thresholds 0.9 --skip-dense --recall-rows 0 \
  --reps 30 --workspace-overhead 2>&1 | grep -E "^#|vecattn"

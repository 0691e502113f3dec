#!/usr/bin/env bash
# On the GPU machine: the shipped form. The installed-package examples (C, C++) run a prefill;
# the kernel bundle serves a prefill with libnvrtc made unreachable (VECATTN_NVRTC pointing
# nowhere), a variant outside it fails with a clear message, and the first call's latency from
# the bundle is compared with a first call that compiles. Every step under a timeout.
# Usage: bash bench/ship_check.sh [bin-dir]   (bin-dir holds prefill_c, prefill_cpp, libvecattn.so,
# vecattn-bench and vecattn-kernels.sqlite)
set -u
BIN=${1:-devbin}
export VECATTN_LOG_LEVEL=warn LD_LIBRARY_PATH=$BIN${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
BUNDLE=$BIN/vecattn-kernels.sqlite
first_call() {  # label, env..., command: wall seconds of a whole cold process (one prefill)
  local label=$1; shift
  local t0=$(date +%s%N)
  env "$@" >/tmp/first_call.log 2>&1
  local rc=$? ms=$((($(date +%s%N) - t0) / 1000000))
  printf "%-44s rc=%d %6d ms  %s\n" "$label" $rc $ms "$(tail -1 /tmp/first_call.log)"
}
echo "== examples against the installed package (bundle off, NVRTC on, fresh cache)"
first_call "prefill_c, compiles (NVRTC)" VECATTN_KERNEL_BUNDLE= VECATTN_CACHE_DIR=$(mktemp -d) timeout 120 $BIN/prefill_c
first_call "prefill_cpp, compiles (NVRTC)" VECATTN_KERNEL_BUNDLE= VECATTN_CACHE_DIR=$(mktemp -d) timeout 120 $BIN/prefill_cpp
echo "== the same from the kernel bundle, libnvrtc unreachable"
first_call "prefill_c, bundle, no NVRTC" VECATTN_KERNEL_BUNDLE=$BUNDLE VECATTN_NVRTC=/nonexistent VECATTN_CACHE_DIR=$(mktemp -d) timeout 120 $BIN/prefill_c
first_call "prefill_cpp, bundle, no NVRTC" VECATTN_KERNEL_BUNDLE=$BUNDLE VECATTN_NVRTC=/nonexistent VECATTN_CACHE_DIR=$(mktemp -d) timeout 120 $BIN/prefill_cpp
echo "== vecattn-bench from the bundle without NVRTC (bf16 and fp16, causal and not)"
for args in "--dtype bf16 --head-dim 128 --causal 1" "--dtype fp16 --head-dim 128 --causal 0 --pq 128 --bk 32 --gk 4"; do
  VECATTN_KERNEL_BUNDLE=$BUNDLE VECATTN_NVRTC=/nonexistent VECATTN_CACHE_DIR=$(mktemp -d) timeout 120 \
    $BIN/vecattn-bench --input random --seq-len 16384 --heads 16 --kv-heads 16 --thresholds 0.9 --reps 3 --recall-rows 0 $args \
    2>&1 | grep -E "dense|vecattn |rror"
done
if [ -n "${SWEEP:-}" ]; then
  echo "== every (dtype, Pq, Bk, Gk, causal) of a grid from the bundle without NVRTC: S 4100, 4 heads, dense too"
  ok=0; bad=0
  for dt in bf16 fp16; do for pq in 64 128; do for bk in 16 32 64; do for gk in 1 16 64; do for c in 1 0; do
    line=$(VECATTN_KERNEL_BUNDLE=$BUNDLE VECATTN_NVRTC=/nonexistent VECATTN_CACHE_DIR=$(mktemp -d) timeout 60 \
      $BIN/vecattn-bench --input random --seq-len 4100 --heads 4 --kv-heads 4 --thresholds 0.9 --reps 1 --recall-rows 0 \
      --dtype $dt --pq $pq --bk $bk --gk $gk --causal $c 2>&1 | grep -E "vecattn |rror")
    if echo "$line" | grep -q "^ *4100 vecattn"; then ok=$((ok + 1)); else bad=$((bad + 1)); echo "FAILED $dt pq$pq bk$bk gk$gk causal$c: $line"; fi
  done; done; done; done; done
  echo "grid from the bundle: $ok ran, $bad failed"
fi
echo "== a variant outside the bundle, without NVRTC: the error"
VECATTN_KERNEL_BUNDLE=$BUNDLE VECATTN_NVRTC=/nonexistent VECATTN_CACHE_DIR=$(mktemp -d) timeout 60 \
  $BIN/vecattn-bench --input random --seq-len 8192 --heads 4 --kv-heads 4 --thresholds 0.9 --reps 1 --skip-dense \
  --select-config bq192-w12-s3-wgmma 2>&1 | head -3
echo "== the Python package: the wheel built here (pip wheel ./python), installed offline"
WHEEL=$(ls $BIN/vecattn-*.whl 2>/dev/null | head -1)
if [ -n "$WHEEL" ]; then
  T=$(mktemp -d); t0=$(date +%s%N)
  timeout 120 pip install --no-deps --no-index --target $T "$WHEEL" >/tmp/pip.log 2>&1; echo "pip install rc=$? $((($(date +%s%N) - t0) / 1000000)) ms"
  PYTHONPATH=$T VECATTN_TEST_INSTALLED=1 VECATTN_CACHE_DIR=$(mktemp -d) python3 -c "import vecattn; print(vecattn.__file__, vecattn.version(), vecattn._OPS)"
  PYTHONPATH=$T VECATTN_TEST_INSTALLED=1 VECATTN_CACHE_DIR=$(mktemp -d) timeout 300 python3 python/tests/test_vecattn.py 2>&1 | grep -E "PASS|FAIL|passed"
fi

#!/usr/bin/env bash
# On the GPU machine: re-tunes the bf16 D=128 keys of both presets (Pq 64/128, Bk 16, Gk 16) on
# random Gaussian inputs at threshold 0.8 (~27% kept) over the shipped pretuned rows, exports the
# merged file to $OUT/sm_90a.json, tunes again at 0.9 (~7.5% kept) to compare the winners, then
# times the prefill at 128K with the new file against the one shipped in cache/pretuned (the
# fallback when VECATTN_PRETUNED_DIR holds none; per-key gains over the defaults are in the tables).
set -u
BIN=${1:-devbin}
OUT=${OUT:-/tmp/vecattn-out}
mkdir -p "$OUT"
export VECATTN_CACHE_DIR=$(mktemp -d) VECATTN_LOG_LEVEL=warn
K="--preset vlm,dit --pq 64,128 --bk 16 --gk 16 --head-dim 128 --dtype bf16 --input random --budget 40 --reps 9"
"$BIN/vecattn-tune" --db "$OUT/t08.sqlite" --import cache/pretuned/sm_90a.json >/dev/null
echo "== tune at t=0.8"
timeout 150 "$BIN/vecattn-tune" --db "$OUT/t08.sqlite" $K --threshold 0.8 2>/dev/null | tee "$OUT/tune_08.txt" | tail -16
"$BIN/vecattn-tune" --db "$OUT/t08.sqlite" --export "$OUT/sm_90a.json"
echo "== tune at t=0.9 (comparison only)"
timeout 100 "$BIN/vecattn-tune" --db "$OUT/t09.sqlite" $K --threshold 0.9 2>/dev/null | tee "$OUT/tune_09.txt" | tail -16
echo "== 128K causal prefill: new pretuned file, then the shipped one"
B="$BIN/vecattn-bench --input random --seq-len 131072 --thresholds 0.8,0.9 --recall-rows 0 --reps 5 --skip-dense"
VECATTN_PRETUNED_DIR=$OUT timeout 40 $B 2>&1 | grep -E "^ +131072|config lookup"
VECATTN_PRETUNED_DIR=/nonexistent timeout 40 $B 2>&1 | grep -E "^ +131072|config lookup"

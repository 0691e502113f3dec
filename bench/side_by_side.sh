#!/usr/bin/env bash
# On the GPU machine: torch SDPA (cuDNN, flash) and vecattn-bench on the same shapes in one run,
# so every ratio is measured side by side. Writes bench.csv, bench.json and bench.svg into $OUT
# (or ./bench-out).
# Usage: bash bench/side_by_side.sh [bin-dir] [extra vecattn-bench flags...]
set -euo pipefail
BIN=${1:-build/tools}
shift || true
OUT=${OUT:-bench-out}
mkdir -p "$OUT"
SEQ=${SEQ:-8192,16384,32768,65536,131072}
HEADS=${HEADS:-32}
python3 "$(dirname "$0")/peer_sdpa.py" --seq-len "$SEQ" --heads "$HEADS" --reps "${REPS:-7}" --csv "$OUT/peers.csv" \
  2> >(grep -v Warning >&2)
"$BIN/vecattn-bench" --seq-len "$SEQ" --heads "$HEADS" --kv-heads "$HEADS" --reps "${REPS:-7}" \
  --peers "$OUT/peers.csv" --csv "$OUT/bench.csv" --json "$OUT/bench.json" --svg "$OUT/bench.svg" "$@"

#!/usr/bin/env bash
# make bench: masklab against bench/reference_train.py (PyTorch eager, HF-style
# batches) on the same machine, on identical jobs (same initial weights, same
# examples in the same order, same label weights):
#   1. the default config;  2. the same with a 32k vocabulary;  3. MFU at d_model=512;
#   4. against TRL's SFTTrainer at the SmolLM-135M shape (bench/trl.sh; BENCH_TRL=0 skips it,
#      TRL_STEPS / TRL_ROUNDS / TRL_BATCH size it).
# Each side runs ROUNDS times, interleaved, and keeps its best tokens/s: a shared
# 2-core machine is noisy, and the best run is the least disturbed one.
# Ends with the ratio lines (bench/compare.py) and writes bench/results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
MASKLAB=${MASKLAB:-./build/masklab}
STEPS=${BENCH_STEPS:-20}
ROUNDS=${BENCH_ROUNDS:-3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

run_round() {  # config name, round, then masklab --set arguments
  local name=$1 round=$2; shift 2
  local dir="$WORK/$name/round$round"
  mkdir -p "$dir"
  "$MASKLAB" bench --steps "$STEPS" --warmup 3 --export "$dir/export" --json "$dir/masklab.json" "$@" | tail -n 2
  for strategy_dir in "$dir"/export/*/; do
    /usr/bin/python3 bench/reference_train.py "$strategy_dir" --out "$strategy_dir/reference.json" > /dev/null
  done
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $ROUNDS rounds of $STEPS steps"
for round in $(seq 1 "$ROUNDS"); do
  run_round default "$round"
  run_round vocab32k "$round" --set model.vocab_size=32768
done
mkdir -p "$WORK/d512"
"$MASKLAB" bench --steps 10 --warmup 2 --strategies completion_only,full --json "$WORK/d512/masklab.json" \
  --set model.d_model=512 --set model.n_heads=8 --set model.n_layers=4 --decode-tokens 0 | tail -n 1
[ "${BENCH_TRL:-1}" = 0 ] || MASKLAB="$MASKLAB" bench/trl.sh "$WORK"
/usr/bin/python3 bench/compare.py "$WORK" bench/results.json

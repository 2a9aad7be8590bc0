#!/usr/bin/env bash
# make bench, the TRL part: masklab against TRL's SFTTrainer (bench/trl_peer.py)
# at pretrained-model scale, on identical jobs: a SmolLM-135M-shaped
# LlamaForCausalLM (49,152-token vocabulary, random weights written by
# transformers: tests/python/hf_make_smollm_shape.py), batches of real-length
# prompt/completion examples (bench/make_trl_job.py), the same examples in the
# same order, the same label weights and learning rates (masklab bench --export).
# Each side runs TRL_ROUNDS times, interleaved, and keeps its best tokens/s.
#
# usage: bench/trl.sh WORK_DIR      (bench/run.sh calls it; bench/compare.py reads WORK_DIR/trl)
# TRL_STEPS timed steps after TRL_WARMUP untimed ones, TRL_BATCH examples a step,
# TRL_STRATEGIES the strategies, TRL_FLAGS bench/trl_peer.py's settings.
set -euo pipefail
cd "$(dirname "$0")/.."
MASKLAB=${MASKLAB:-./build/masklab}
STEPS=${TRL_STEPS:-4}
WARMUP=${TRL_WARMUP:-2}
ROUNDS=${TRL_ROUNDS:-2}
BATCH=${TRL_BATCH:-8}
STRATEGIES=${TRL_STRATEGIES:-completion_only full weighted:0.1}
# TRL's fastest setting here that keeps the job identical (docs/performance.md,
# "Against TRL's SFTTrainer"): padding-free batches. --compile measured slower:
# every step's new length recompiles the model.
TRL_FLAGS=${TRL_FLAGS---padding-free}
work="$1/trl"
python="$(scripts/python-env.sh bench)"
# The checkpoint is the same bytes every time (seeded); keep it across runs.
smol="${MASKLAB_CACHE:-$HOME/.cache/masklab}/smollm-135m-shape"
if [ ! -f "$smol/model.safetensors" ]; then
  "$python" tests/python/hf_make_smollm_shape.py "$smol.tmp" && rm -rf "$smol" && mv "$smol.tmp" "$smol"
fi
mkdir -p "$work"
"$python" bench/make_trl_job.py "$work/data"
echo "trl: SmolLM-135M shape, batch $BATCH of real-length examples, $ROUNDS rounds of $STEPS steps, TRL settings: ${TRL_FLAGS:-none}"
# One masklab process per strategy, as TRL runs one per strategy: each peak
# RSS is that strategy's alone, not the largest of a process that ran them all.
# data.pack_len 2048 (the model's positions) is masklab's counterpart of TRL's
# padding-free batches: a batch is one packed row, so neither side computes
# padding (rows of the longest example would be 18% padding here).
for round in $(seq 1 "$ROUNDS"); do
  dir="$work/round$round"
  mkdir -p "$dir"
  for spec in $STRATEGIES; do
    label=$(printf '%s' "$spec" | tr -c 'A-Za-z0-9.' '_')
    "$MASKLAB" bench --strategies "$spec" --steps "$STEPS" --warmup "$WARMUP" --decode-tokens 0 \
      --export "$dir/export" --json "$dir/masklab.$label.json" --set model.init_from="$smol" --set data.tokenizer=byte \
      --set data.train="$work/data/train.jsonl" --set data.eval="$work/data/eval.jsonl" \
      --set train.batch_size="$BATCH" --set data.pack_len=2048 --set train.lr=3e-4 --set train.warmup_steps=1 | tail -n 1
    # shellcheck disable=SC2086  # TRL_FLAGS is a list of flags
    "$python" bench/trl_peer.py "$dir/export/$label" $TRL_FLAGS --out "$dir/export/$label/trl.json" > /dev/null
  done
done

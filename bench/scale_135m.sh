#!/usr/bin/env bash
# Fine-tunes a SmolLM-135M-shaped LlamaForCausalLM (random weights written by
# transformers: tests/python/hf_make_smollm_shape.py) under every strategy on
# this machine, and prints tokens/s and peak RSS per strategy, with and
# without model.checkpoint_activations for completion_only.
#
# usage: bench/scale_135m.sh [WORK_DIR]   (default /tmp/masklab-135m; ~1 GB)
# Batch 8 of ~130-token prompt/completion examples, 6 steps, byte tokenizer
# (the checkpoint's 49,152-row vocabulary pads it), 2 threads.
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-/tmp/masklab-135m}"
mkdir -p "$work"
python="$(scripts/python-env.sh)"
[ -f "$work/smol/model.safetensors" ] || "$python" tests/python/hf_make_smollm_shape.py "$work/smol"
"$python" - "$work" <<'PY'
import json, random, sys
rng = random.Random(0)
words = "the of and to in is was for on that with as by at from his her an were are which this be or".split()
def text(n): return " ".join(rng.choice(words) for _ in range(n))
for name, n in (("train", 96), ("eval", 8)):
    with open(f"{sys.argv[1]}/{name}.jsonl", "w") as f:
        for _ in range(n):
            f.write(json.dumps({"prompt": text(14), "completion": " " + text(10)}) + "\n")
PY
printf '%-18s %-6s %10s %12s\n' strategy ckpt tokens/s peak_rss_MB
run() {
  local strategy="$1" ckpt="$2" out="$work/runs/${1//[:,]/_}_$2"
  rm -rf "$out"
  /usr/bin/time -f '%M' -o "$work/rss" ./build/masklab train --strategy "$strategy" --out "$out" \
    --set model.init_from="$work/smol" --set data.tokenizer=byte \
    --set data.train="$work/train.jsonl" --set data.eval="$work/eval.jsonl" \
    --set train.steps=6 --set train.batch_size=8 --set train.warmup_steps=1 --set train.lr=3e-4 \
    --set train.threads=2 --set train.eval_every=0 --set eval.samples=0 --set data.train_eval_size=4 \
    --set model.checkpoint_activations="$ckpt" > "$work/log" 2>&1 || { tail -3 "$work/log"; return 1; }
  local tps
  tps=$(python3 -c "import json;print(round(json.load(open('$out/metrics.json'))['tokens_per_second']))")
  printf '%-18s %-6s %10s %12s\n' "$strategy" "$ckpt" "$tps" "$(( $(cat "$work/rss") / 1024 ))"
}
for s in completion_only full "weighted:0.1" "wit:0.05,1" "scheduled:1,0" last_turn_only; do run "$s" false; done
run completion_only true
run full true

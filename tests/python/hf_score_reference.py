"""Recomputes `masklab score --tokens` output with transformers.

usage: hf_score_reference.py MODEL_DIR SCORE.jsonl

For every scored line: the per-label NLL of its ids under MODEL_DIR
(transformers, fp32, eager attention), and the prompt/completion sums from
the line's label roles. Prints one JSON object with the largest relative
differences and exits 1 when one exceeds 1e-4.
"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM

PROMPT = {"user", "system"}
COMPLETION = {"assistant", "eos"}


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-12)


def main(model_dir, score_path):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    worst_token = worst_sum = 0.0
    lines = 0
    for line in open(score_path):
        row = json.loads(line)
        if "ids" not in row:
            continue
        ids = torch.tensor([row["ids"]])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1].float()
        nll = -torch.log_softmax(logits, -1).gather(1, ids[0, 1:].unsqueeze(1)).squeeze(1)
        assert len(row["label_nll"]) == nll.numel(), "label count differs"
        for mine, ref in zip(row["label_nll"], nll.tolist()):
            worst_token = max(worst_token, rel(mine, ref))
        roles = row["label_roles"]
        prompt = sum(v for v, r in zip(nll.tolist(), roles) if r in PROMPT)
        completion = sum(v for v, r in zip(nll.tolist(), roles) if r in COMPLETION)
        assert row["prompt_tokens"] == sum(r in PROMPT for r in roles)
        assert row["completion_tokens"] == sum(r in COMPLETION for r in roles)
        worst_sum = max(worst_sum, rel(row["prompt_nll"], prompt), rel(row["completion_nll"], completion))
        lines += 1
    print(json.dumps({"lines": lines, "max_rel_token": worst_token, "max_rel_sum": worst_sum,
                      "architecture": model.config.architectures[0]}))
    return 0 if lines > 0 and worst_token <= 1e-4 and worst_sum <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))

"""The first training step's loss, recomputed with transformers.

usage: hf_train_loss.py MODEL_DIR SCORE.jsonl STRATEGY

SCORE.jsonl is `masklab score --tokens` of the training file (its ids and
label roles). STRATEGY completion_only: transformers' own loss of a padded
batch with labels=-100 outside the completion. weighted:L: per-token cross
entropy weighted L for prompt-side labels (system, user, template) and 1 for
completion labels (assistant, end marker), normalized by the weight sum.
Prints {"loss": ...}.
"""
import json
import sys

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

COMPLETION = {"assistant", "eos"}


def main(model_dir, score_path, strategy):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    model.eval()  # dropout is 0: train and eval modes agree
    rows = [json.loads(line) for line in open(score_path)]
    T = max(len(r["ids"]) for r in rows)
    ids = torch.zeros(len(rows), T, dtype=torch.long)
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    labels = torch.full((len(rows), T), -100, dtype=torch.long)
    weights = torch.zeros(len(rows), T - 1)
    lam = float(strategy.split(":")[1]) if strategy.startswith("weighted:") else 0.0
    for i, r in enumerate(rows):
        n = len(r["ids"])
        ids[i, :n] = torch.tensor(r["ids"])
        mask[i, :n] = 1
        for t, role in enumerate(r["label_roles"]):  # label t is token t + 1
            if role in COMPLETION:
                labels[i, t + 1] = r["ids"][t + 1]
            weights[i, t] = 1.0 if role in COMPLETION else lam
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
    if strategy == "completion_only":
        loss = out.loss.item()
    else:
        logits = out.logits[:, :-1].float()
        ce = F.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1), reduction="none")
        loss = ((ce * weights.reshape(-1)).sum() / weights.sum()).item()
    print(json.dumps({"loss": loss}))


if __name__ == "__main__":
    main(*sys.argv[1:4])

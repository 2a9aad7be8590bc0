"""Recomputes masklab's multiple-choice log-likelihoods with transformers.

usage: choice_loglik_reference.py MODEL_DIR SET.jsonl EVAL_EXAMPLES.jsonl SET_NAME

For each line of SET_NAME in EVAL_EXAMPLES.jsonl (wording 0), the choices of
the set's example are scored under MODEL_DIR (transformers, fp32, eager
attention) with the plain template rendered by hand: <bos> prompt "\\n=> "
choice, the end marker left out; the choice's log-probability is summed over
its tokens. Tokens come from the saved tokenizer.json (the `tokenizers`
library). Prints a JSON summary and exits 1 when a sum differs by more than
1e-4 (relative, floor 1), or when acc/acc_norm disagree with the argmaxes.
"""
import json
import sys

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM


def main(model_dir, set_path, examples_path, set_name):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    tok = Tokenizer.from_file(model_dir + "/tokenizer.json")
    bos = model.config.bos_token_id
    items = [json.loads(l) for l in open(set_path) if l.strip()]
    worst, checked, bad_pred = 0.0, 0, 0
    for line in open(examples_path):
        row = json.loads(line)
        if row["set"] != set_name or row["wording"] != 0:
            continue
        item = items[row["example"]]
        context = [bos] + tok.encode(item["prompt"] + "\n=> ", add_special_tokens=False).ids
        sums = []
        for choice in item["choices"]:
            cont = tok.encode(choice, add_special_tokens=False).ids
            ids = torch.tensor([context + cont])
            with torch.no_grad():
                logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
            sums.append(sum(logp[len(context) + j - 1, t].item() for j, t in enumerate(cont)))
        for mine, ref in zip(row["loglik"], sums):
            worst = max(worst, abs(mine - ref) / max(1.0, abs(ref)))
        raw = max(range(len(sums)), key=lambda c: (sums[c], -c))
        norm = max(range(len(sums)), key=lambda c: (sums[c] / len(item["choices"][c].encode()), -c))
        bad_pred += (row["values"]["acc"] != int(raw == item["answer"]))
        bad_pred += (row["values"]["acc_norm"] != int(norm == item["answer"]))
        checked += 1
    print(json.dumps({"items": checked, "max_rel": worst, "prediction_mismatches": bad_pred}))
    return 0 if checked > 0 and worst <= 1e-4 and bad_pred == 0 else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))

"""Greedy continuations by transformers' generate(do_sample=False).

usage: hf_generate_reference.py MODEL_DIR PROMPTS.json

PROMPTS.json: {"prompts": [[ids...], ...], "max_new_tokens": N}. Each prompt
is decoded alone (no padding), fp32, eager attention, with no EOS (exactly N
new tokens). Prints {"continuations": [[ids...], ...]}.
"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM, GenerationConfig


def main(model_dir, prompts_path):
    spec = json.load(open(prompts_path))
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    n = spec["max_new_tokens"]
    config = GenerationConfig(do_sample=False, max_new_tokens=n, min_new_tokens=n, eos_token_id=None,
                              pad_token_id=0, bos_token_id=None)
    out = []
    for prompt in spec["prompts"]:
        ids = torch.tensor([prompt])
        with torch.no_grad():
            generated = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
        out.append(generated[0, len(prompt):].tolist())
    print(json.dumps({"continuations": out}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

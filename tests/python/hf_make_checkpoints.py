"""Tiny random LLaMA-family checkpoints written by transformers' save_pretrained.

usage: hf_make_checkpoints.py OUT_DIR

OUT_DIR/<name>/ for each of:
  llama    LlamaForCausalLM, untied head, rope_scaling llama3, GQA 4/2, fp32
  qwen2    Qwen2ForCausalLM (q/k/v biases), tied, saved in bfloat16
  qwen3    Qwen3ForCausalLM (q/k norm), head_dim 32 != hidden/heads, untied
  mistral  MistralForCausalLM, rope_scaling linear, tied
  sharded  LlamaForCausalLM, tied, split into several safetensors shards
Weights are redrawn with a large spread (std 0.3, norms 1 +- 0.3, biases
nonzero) so that every part of the architecture moves the logits well above
the parity tolerance.
"""
import sys

import torch
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

COMMON = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5)


def spread(model, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if name.endswith("norm.weight") or "layernorm" in name:
                p.copy_(1 + 0.3 * noise)
            else:
                p.copy_(0.3 * noise)
    return model


def main(out):
    llama3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
              "original_max_position_embeddings": 32}
    made = {
        "llama": LlamaForCausalLM(LlamaConfig(vocab_size=320, tie_word_embeddings=False, rope_scaling=llama3,
                                              **COMMON)),
        "qwen2": Qwen2ForCausalLM(Qwen2Config(vocab_size=300, tie_word_embeddings=True, **COMMON)),
        "qwen3": Qwen3ForCausalLM(Qwen3Config(vocab_size=310, head_dim=32, tie_word_embeddings=False, **COMMON)),
        "mistral": MistralForCausalLM(MistralConfig(vocab_size=300, tie_word_embeddings=True, sliding_window=None,
                                                    rope_scaling={"rope_type": "linear", "factor": 2.0}, **COMMON)),
        "sharded": LlamaForCausalLM(LlamaConfig(vocab_size=300, tie_word_embeddings=True, rope_theta=500.0,
                                                **COMMON)),
    }
    for seed, (name, model) in enumerate(made.items()):
        spread(model, seed)
        if name == "qwen2":
            model = model.to(torch.bfloat16)
        kwargs = {"max_shard_size": "40KB"} if name == "sharded" else {}
        model.save_pretrained(f"{out}/{name}", **kwargs)


if __name__ == "__main__":
    main(sys.argv[1])

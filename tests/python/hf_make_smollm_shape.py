"""A random-weight LlamaForCausalLM of SmolLM-135M's shape, for timing runs.

usage: hf_make_smollm_shape.py OUT_DIR

hidden 576, 30 layers, 9 heads, 3 key/value heads, intermediate 1536, vocab
49152, tied embeddings, rope_theta 10000, max_position_embeddings 2048.
Random weights (transformers' init): no pretrained file is downloaded.
"""
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

config = LlamaConfig(hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                     intermediate_size=1536, vocab_size=49152, tie_word_embeddings=True, rope_theta=10000.0,
                     max_position_embeddings=2048, rms_norm_eps=1e-5)
torch.manual_seed(0)
LlamaForCausalLM(config).save_pretrained(sys.argv[1])

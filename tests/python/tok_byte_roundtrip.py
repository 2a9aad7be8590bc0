"""Loads the tokenizer folder masklab's byte tokenizer saved, with the
`tokenizers` library and with transformers, for tests/data/test_hf_tokenizer.cpp.

usage: tok_byte_roundtrip.py FOLDER OUT.jsonl

OUT's first line: {"bos", "eos", "pad", "vocab"} as transformers' AutoTokenizer
reads them; then one line per test string of tok_train_bpe.py (added-token
strings included) with the ids tokenizers.Tokenizer gives it.
"""
import json
import os
import sys

from tokenizers import Tokenizer
from transformers import AutoTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tok_train_bpe import test_strings  # noqa: E402

folder, out = sys.argv[1], sys.argv[2]
tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
auto = AutoTokenizer.from_pretrained(folder)
with open(out, "w", encoding="utf-8") as f:
    f.write(json.dumps({"bos": auto.bos_token_id, "eos": auto.eos_token_id, "pad": auto.pad_token_id,
                        "vocab": tok.get_vocab_size(with_added_tokens=True)}) + "\n")
    for s in test_strings(2200) + ["<bos>text<eos>", "a<pad>b"]:
        f.write(json.dumps({"text": s, "ids": tok.encode(s, add_special_tokens=False).ids}) + "\n")
print("ok")

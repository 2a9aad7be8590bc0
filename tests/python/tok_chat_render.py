"""Renders conversations with transformers' apply_chat_template (jinja2) for
tests/data/test_chat_template.cpp.

usage: tok_chat_render.py FOLDER...

Each FOLDER is a tokenizer folder written by tok_train_bpe.py, whose
tokenizer_config.json holds its family's chat template (tok_chat_templates.py).
Writes FOLDER/rendered.jsonl: one line per conversation the template accepts,
{"messages", "text", "ids"}, ids being the tokenizer's encoding of the
rendered text with no special tokens added around it.
"""
import json
import os
import sys

from transformers import AutoTokenizer

CONVERSATIONS = [
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 6*7?"},
     {"role": "assistant", "content": "42"}],
    [{"role": "system", "content": "Réponds en français 🤖."}, {"role": "user", "content": "Bonjour, ça va?"},
     {"role": "assistant", "content": "Oui, très bien!"}, {"role": "user", "content": "日本語は?"},
     {"role": "assistant", "content": "少し話せます。"}, {"role": "user", "content": "Count: 1 2 3"},
     {"role": "assistant", "content": "4 5 6\n7 8 9"}],
    [{"role": "user", "content": "Answer with a number."}, {"role": "assistant", "content": "42"}],
    [{"role": "user", "content": "reverse abc"}, {"role": "assistant", "content": "cba"},
     {"role": "user", "content": "and xyz?"}, {"role": "assistant", "content": "zyx"}],
]

for folder in sys.argv[1:]:
    tok = AutoTokenizer.from_pretrained(folder)
    with open(os.path.join(folder, "rendered.jsonl"), "w", encoding="utf-8") as f:
        for messages in CONVERSATIONS:
            try:
                text = tok.apply_chat_template(messages, tokenize=False)
            except Exception as e:  # the template rejects it (Mistral v0.1 has no system role)
                if "roles" not in str(e) and "system" not in str(e):
                    raise
                continue
            ids = tok.encode(text, add_special_tokens=False)
            f.write(json.dumps({"messages": messages, "text": text, "ids": ids}, ensure_ascii=False) + "\n")
print("ok")

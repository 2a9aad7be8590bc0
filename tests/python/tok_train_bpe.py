"""Reference tokenizers for tests/data/test_bpe_tokenizer.cpp.

usage: tok_train_bpe.py OUT_DIR [N_STRINGS]

Trains, with the `tokenizers` library on generated text, byte-level BPE
tokenizers in the Hugging Face folder layout, and a SentencePiece model with
python sentencepiece, then writes for each folder expected.jsonl: one line
per test string with the reference ids (added tokens matched, no special
tokens added around the text) and each token's byte offset in the string.

  gpt2/     ByteLevel(use_regex=True) (GPT-2's regex), merges in the "a b"
            string form, added tokens special and not, lstrip/rstrip
  llama3/   Split(Llama 3's regex, isolated) + ByteLevel(use_regex=False),
            ignore_merges
  qwen2/    NFC normalizer + Split(Qwen2's regex) + ByteLevel(use_regex=False),
            no bos token
  smollm/   Digits(individual_digits) + ByteLevel(use_regex=True)
  prefix_space/     ByteLevel(add_prefix_space=True)
  split_behaviors/  Split with every behavior (merged_with_next/previous,
                    contiguous, removed, invert), String and Regex patterns
  affixes/  BPE with continuing_subword_prefix "##" and end_of_word_suffix "</w>"
  spm/      tokenizer.model (SentencePiece BPE) + tokenizer_config.json whose
            eos_token is a user-defined piece
"""
import json
import os
import random
import sys

import sentencepiece as spm
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

WORDS = ("the quick brown fox jumps over lazy dog answer question because reverse count add "
         "number hello world don't it's we're they've I'm you'll he'd Python C++ lambda").split()
UNICODE = ["café", "cafe\u0301", "naïve", "nai\u0308ve", "Ångström", "A\u030angstro\u0308m", "über", "résumé",
           "日本語", "中文文本", "한국어", "\u1100\u1161\u11a8", "Ελληνικά", "русский", "עברית", "العربية", "हिन्दी",
           "ﬁ", "Ω", "\u212b", "e\u0301\u0323", "a\u0323\u0301", "ç", "c\u0327", "ñ", "n\u0303", "\u0f73", "x\u0338"]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇫🇷", "🤖", "1️⃣", "🧑🏿‍💻"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", " \n", "\t\t", "\r\n", "    ", "\u00a0", "\u3000", " \t \n"]
CODE = ["def f(x):\n    return x + 1\n", "int main() { return 0; }", "for (i = 0; i < 10; ++i)", "x = [1, 2, 3]",
        "{\"key\": \"value\"}", "a->b", "#include <vector>", "if x==y: pass", "s.split(',')", "$HOME/.cache"]
DIGITS = ["0", "7", "42", "123", "2024", "3.14159", "1,000,000", "12345678901234", "٣٤٥", "²"]
ADDED = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "</s>", "<mask>", "[CODE]", "<|tool|>",
         "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]


def fragment(rng, with_added):
    kind = rng.random()
    if kind < 0.30:
        return rng.choice(WORDS)
    if kind < 0.45:
        return rng.choice(UNICODE)
    if kind < 0.53:
        return rng.choice(EMOJI)
    if kind < 0.68:
        return rng.choice(SPACES)
    if kind < 0.78:
        return rng.choice(CODE)
    if kind < 0.90:
        return rng.choice(DIGITS)
    if with_added:
        return rng.choice(ADDED)
    return rng.choice("!?.,;:'\"-()[]")


def text(rng, with_added=True):
    parts = []
    for _ in range(rng.randint(1, 12)):
        parts.append(fragment(rng, with_added))
        if rng.random() < 0.6:
            parts.append(" ")
    return "".join(parts)


def test_strings(n):
    rng = random.Random(1234)
    fixed = ["", " ", "  leading", "trailing  ", "\n\n\n", "a\tb", "hello world", "<|im_start|>user\nhi<|im_end|>\n",
             "Answer: 42", "x <mask> y", "x<|tool|>   y", "emoji👨‍👩‍👧‍👦zwj", "cafe\u0301 vs café", "日本語テキスト",
             "1234567", "don't STOP", "  <|im_end|>  ", "[CODE] code [CODE]", "a\u0301\u0302\u0303",
             "<s>[INST] hi [/INST] ok </s>"]
    return fixed + [text(rng) for _ in range(n - len(fixed))]


def corpus():
    rng = random.Random(99)
    return [text(rng, with_added=False) for _ in range(6000)]


SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<s>", "</s>", "<|begin_of_text|>",
            "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]


def train(pre_tokenizer, normalizer=None, ignore_merges=False, prefix=None, suffix=None):
    affixes = {k: v for k, v in (("continuing_subword_prefix", prefix), ("end_of_word_suffix", suffix)) if v}
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges, **affixes))
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1200, min_frequency=2, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
                                  **affixes)
    tok.train_from_iterator(corpus(), trainer)
    tok.add_tokens([AddedToken("[CODE]", normalized=True, special=False),
                    AddedToken("<|tool|>", rstrip=True, normalized=False, special=False)])
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, normalized=False, special=True)])
    return tok


def write_folder(out, name, tok, config, legacy_merges=False, set_ignore_merges=None):
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "tokenizer.json")
    tok.save(path)
    data = json.load(open(path, encoding="utf-8"))
    if legacy_merges:
        data["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in data["model"]["merges"]]
    if set_ignore_merges is not None:
        data["model"]["ignore_merges"] = set_ignore_merges
    json.dump(data, open(path, "w", encoding="utf-8"), ensure_ascii=False)
    json.dump(config, open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8"), ensure_ascii=False)
    reference = Tokenizer.from_file(path)  # as saved, legacy merges included
    write_expected(folder, lambda s: reference.encode(s, add_special_tokens=False), strings)
    return folder


def byte_offsets(s, char_offsets):
    # Python offsets count characters; masklab's count UTF-8 bytes.
    return [len(s[:start].encode("utf-8")) for start, _ in char_offsets]


def write_expected(folder, encode, texts):
    with open(os.path.join(folder, "expected.jsonl"), "w", encoding="utf-8") as f:
        for s in texts:
            enc = encode(s)
            f.write(json.dumps({"text": s, "ids": enc.ids, "offsets": byte_offsets(s, enc.offsets)}) + "\n")


def train_spm(out):
    folder = os.path.join(out, "spm")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "corpus.txt"), "w", encoding="utf-8") as f:
        for line in corpus():
            f.write(line.replace("\n", " ").replace("\r", " ") + "\n")
    spm.SentencePieceTrainer.train(input=os.path.join(folder, "corpus.txt"),
                                   model_prefix=os.path.join(folder, "tokenizer"), vocab_size=800, model_type="bpe",
                                   byte_fallback=True, character_coverage=1.0, bos_id=1, eos_id=2, unk_id=0,
                                   pad_id=3, user_defined_symbols=["<|eot|>"], minloglevel=2)
    os.remove(os.path.join(folder, "corpus.txt"))
    os.remove(os.path.join(folder, "tokenizer.vocab"))
    sp = spm.SentencePieceProcessor(model_file=os.path.join(folder, "tokenizer.model"))
    config = {"bos_token": "<s>", "eos_token": {"content": "<|eot|>"}, "pad_token": "<pad>"}
    json.dump(config, open(os.path.join(folder, "tokenizer_config.json"), "w"))
    with open(os.path.join(folder, "expected.jsonl"), "w", encoding="utf-8") as f:
        for s in strings:
            f.write(json.dumps({"text": s, "ids": sp.encode(s)}) + "\n")
    json.dump({"bos": sp.piece_to_id("<s>"), "eos": sp.piece_to_id("<|eot|>"), "pad": sp.piece_to_id("<pad>")},
              open(os.path.join(folder, "specials.json"), "w"))


if __name__ == "__main__":
    out = sys.argv[1]
    strings = test_strings(int(sys.argv[2]) if len(sys.argv) > 2 else 2200)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from tok_chat_templates import TEMPLATES

    gpt2 = train(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
    write_folder(out, "gpt2", gpt2, {"bos_token": None, "eos_token": "<|endoftext|>",
                                     "chat_template": TEMPLATES["chatml"]}, legacy_merges=True)
    llama3 = train(pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
                                            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
                   ignore_merges=True)
    write_folder(out, "llama3", llama3, {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
                                         "chat_template": TEMPLATES["llama3"]}, set_ignore_merges=True)
    qwen2 = train(pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated"),
                                           pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
                  normalizer=normalizers.NFC())
    write_folder(out, "qwen2", qwen2, {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                                       "add_bos_token": False, "chat_template": TEMPLATES["qwen2"]})
    smollm = train(pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]))
    write_folder(out, "smollm", smollm, {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
                                         "chat_template": TEMPLATES["chatml"]})
    prefix_space = train(pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True))
    write_folder(out, "prefix_space", prefix_space, {"eos_token": "<|endoftext|>"})
    behaviors = train(pre_tokenizers.Sequence([
        pre_tokenizers.Split(" ", behavior="merged_with_next"),
        pre_tokenizers.Split(",", behavior="merged_with_previous"),
        pre_tokenizers.Split(Regex(r"\p{P}"), behavior="contiguous"),
        pre_tokenizers.Split(Regex(r"\d"), behavior="removed", invert=True),
        pre_tokenizers.Split(Regex(r"\t"), behavior="removed"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]))
    write_folder(out, "split_behaviors", behaviors, {"eos_token": "<|endoftext|>"})
    affixes = train(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), prefix="##", suffix="</w>")
    write_folder(out, "affixes", affixes, {"eos_token": "<|endoftext|>"})
    # Llama 2 and Mistral templates over a byte-level tokenizer with <s> and </s>.
    for family in ("llama2", "mistral"):
        write_folder(out, family, gpt2, {"bos_token": "<s>", "eos_token": "</s>",
                                         "chat_template": TEMPLATES[family]})
    train_spm(out)
    print("ok", len(strings), "strings")

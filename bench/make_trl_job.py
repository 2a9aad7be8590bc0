"""The data of the TRL comparison (bench/trl.sh): seeded prompt/completion
pairs of real lengths, prompt 10-40 words and completion 8-30, as JSONL.

usage: make_trl_job.py OUT_DIR [--train N] [--eval N] [--seed S] [--prompt-words LO,HI] [--completion-words LO,HI]
Writes OUT_DIR/train.jsonl and OUT_DIR/eval.jsonl ({"prompt", "completion"}).
"""
import argparse
import json
import os
import random

WORDS = ("the of and to in is was for on that with as by at from his her an were are which this be or had not "
         "but what all when there can more if some would will about their time people could other than then "
         "these only into its after first also water number way words write called long down day made part "
         "over sound little most very place years thing name good sentence great where help through much line "
         "right before mean same tell follow came want show around three small large spell answer read").split()


def text(rng, lo, hi):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--train", type=int, default=256)
    parser.add_argument("--eval", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prompt-words", default="10,40", help="LO,HI: words of a prompt")
    parser.add_argument("--completion-words", default="8,30", help="LO,HI: words of a completion")
    args = parser.parse_args()
    prompt = [int(x) for x in args.prompt_words.split(",")]
    completion = [int(x) for x in args.completion_words.split(",")]
    rng = random.Random(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    for name, n in (("train", args.train), ("eval", args.eval)):
        lines = [json.dumps({"prompt": text(rng, *prompt), "completion": " " + text(rng, *completion)}) for _ in range(n)]
        path = os.path.join(args.out_dir, f"{name}.jsonl")
        with open(path + ".tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Reads what bench/run.sh measured (masklab bench JSON and the reference's
JSON per strategy, for each configuration and round; each side keeps its
best round) and prints the ratio lines:

  ratio completion_only=X full=Y weighted=Z       (masklab tokens/s over the reference's)
  ratio@32k completion_only=X full=Y weighted=Z
  memory@32k completion_only masklab=A MB reference=B MB (A/B)
  mfu@512 completion_only=X full=Y
  ratio-trl completion_only=X full=Y weighted=Z   (masklab over TRL's SFTTrainer, 135M shape; bench/trl.sh)
  memory-trl completion_only masklab=A MB trl=B MB
  parity-trl completion_only=X full=Y weighted=Z  (largest relative per-step loss difference)

and writes bench/results.json. The TRL lines need WORK_DIR/trl (bench/trl.sh).

usage: compare.py WORK_DIR OUT_JSON
"""
import json
import os
import sys

NAMES = {"completion_only": "completion_only", "full": "full", "weighted:0.1": "weighted"}


def load(path):
    with open(path) as f:
        return json.load(f)


def label(spec):
    return "".join(c if c.isalnum() or c == "." else "_" for c in spec)


def best(runs):
    return max(runs, key=lambda r: r["tokens_per_second"])


def trl_lines(work, lines):
    """masklab against TRL's SFTTrainer (bench/trl.sh): best round of each
    side for tokens/s, peak RSS of those rounds, and the loss agreement of
    every round (each round is the same job)."""
    rounds = sorted(d for d in os.listdir(work) if d.startswith("round"))
    runs = [{"strategies": {spec: load(os.path.join(work, r, f"masklab.{label(spec)}.json"))["strategies"][spec]
                            for spec in NAMES}} for r in rounds]
    entry = {"rounds": len(rounds), "masklab": {}, "trl": {}, "ratio": {}}
    ratios, parity = [], []
    for spec, short in NAMES.items():
        pairs = [(run["strategies"][spec], load(os.path.join(work, r, "export", label(spec), "trl.json")))
                 for r, run in zip(rounds, runs)]
        mine, peer = best([m for m, _ in pairs]), best([p for _, p in pairs])
        worst = max(abs(a - b) / max(abs(b), 1e-12) for m, p in pairs for a, b in zip(m["losses"], p["losses"]))
        ratio = mine["tokens_per_second"] / peer["tokens_per_second"]
        entry["masklab"][spec], entry["trl"][spec] = mine, peer
        entry["ratio"][spec] = {"tokens_per_second": ratio, "max_relative_loss_difference": worst,
                                "peak_memory": mine["peak_memory_mb"] / max(peer["peak_memory_mb"], 1e-9)}
        ratios.append(f"{short}={ratio:.2f}")
        parity.append(f"{short}={worst:.1e}")
    lines.append("ratio-trl " + " ".join(ratios))
    mine, peer = entry["masklab"]["completion_only"], entry["trl"]["completion_only"]
    lines.append(f"memory-trl completion_only masklab={mine['peak_memory_mb']:.0f} MB trl={peer['peak_memory_mb']:.0f} MB "
                 f"({mine['peak_memory_mb'] / max(peer['peak_memory_mb'], 1e-9):.2f}x, peak RSS of the timed steps)")
    steps = len(pairs[0][0]["losses"])
    lines.append("parity-trl " + " ".join(parity) + f" (largest relative per-step loss difference, {steps} steps)")
    settings = pairs[0][1]["settings"]
    entry["trl_settings"] = settings
    return entry


def main():
    work, out_path = sys.argv[1], sys.argv[2]
    results = {"configs": {}}
    lines = []
    for config, prefix in (("default", "ratio"), ("vocab32k", "ratio@32k")):
        rounds = sorted(d for d in os.listdir(os.path.join(work, config)) if d.startswith("round"))
        runs = [load(os.path.join(work, config, r, "masklab.json")) for r in rounds]
        masklab = runs[0]
        masklab["strategies"] = {s: best([run["strategies"][s] for run in runs]) for s in runs[0]["strategies"]}
        entry = {"masklab": masklab, "rounds": len(rounds), "reference": {}, "ratio": {}}
        parts = []
        for spec, short in NAMES.items():
            ref = best([load(os.path.join(work, config, r, "export", label(spec), "reference.json")) for r in rounds])
            mine = masklab["strategies"][spec]
            ratio = mine["tokens_per_second"] / ref["tokens_per_second"]
            # Parity on the way: the same job must give the same losses.
            worst = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(mine["losses"], ref["losses"]))
            entry["reference"][spec] = ref
            entry["ratio"][spec] = {"tokens_per_second": ratio, "max_relative_loss_difference": worst,
                                    "memory": mine["step_memory_mb"] / max(ref["step_memory_mb"], 1e-9)}
            parts.append(f"{short}={ratio:.2f}")
        lines.append(f"{prefix} " + " ".join(parts))
        if config == "vocab32k":
            mine = masklab["strategies"]["completion_only"]
            ref = entry["reference"]["completion_only"]
            lines.append(f"memory@32k completion_only masklab={mine['step_memory_mb']:.0f} MB "
                         f"reference={ref['step_memory_mb']:.0f} MB "
                         f"({mine['step_memory_mb'] / max(ref['step_memory_mb'], 1e-9):.2f}x, training-step growth of peak RSS)")
        if config == "default" and all("decode" in run for run in runs):
            # Greedy decoding, best round of each way (the tokens were checked equal by masklab bench).
            cache = max(run["decode"]["cache_tokens_per_second"] for run in runs)
            nocache = max(run["decode"]["nocache_tokens_per_second"] for run in runs)
            decode = runs[0]["decode"]
            lines.append(f"decode tokens/s cache={cache:.0f} nocache={nocache:.0f} "
                         f"({decode['prompts']} prompts x {decode['new_tokens']} new tokens, greedy, {cache / nocache:.1f}x)")
        results["configs"][config] = entry
    mfu = load(os.path.join(work, "d512", "masklab.json"))
    results["configs"]["d512"] = {"masklab": mfu}
    lines.append("mfu@512 " + " ".join(f"{NAMES.get(s, s)}={100 * r['mfu']:.1f}%" for s, r in mfu["strategies"].items())
                 + f" (matmul peak {mfu['matmul_peak_flops'] / 1e9:.0f} GFLOP/s)")
    if os.path.isdir(os.path.join(work, "trl")):
        results["configs"]["trl"] = trl_lines(os.path.join(work, "trl"), lines)
    results["summary"] = lines
    with open(out_path, "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()

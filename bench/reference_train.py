#!/usr/bin/python3
"""The peer masklab is measured against: what a user would otherwise write.

A PyTorch eager training loop with the same architecture as masklab's
transformer, Hugging Face-style batches (pad to the longest example, labels
-100 where the loss is masked, full logits, F.cross_entropy), AdamW with the
same groups, schedule and clipping. It trains the exact job `masklab bench
--export DIR` wrote: the same initial weights (DIR/init.pt) and the same
examples in the same order with the same label weights
(DIR/<strategy>/batches.json).

usage: reference_train.py DIR/<strategy> [--out result.json]
Prints a JSON result: per-step losses, tokens/s, step time, peak memory.
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn.functional as F


def read_status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def reset_peak_rss():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


class RMSNorm(torch.nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Attention(torch.nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.qkv = torch.nn.Parameter(torch.empty(3 * d_model, d_model))
        self.proj = torch.nn.Parameter(torch.empty(d_model, d_model))
        self.n_heads = n_heads

    def forward(self, x, cos, sin, mask):
        B, T, C = x.shape
        H = self.n_heads
        q, k, v = F.linear(x, self.qkv).view(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(C // H)
        scores = scores.masked_fill(~mask, float("-inf"))
        y = torch.softmax(scores, -1) @ v
        return F.linear(y.transpose(1, 2).reshape(B, T, C), self.proj)


class Mlp(torch.nn.Module):
    def __init__(self, d_model, d_ff, swiglu):
        super().__init__()
        self.up = torch.nn.Parameter(torch.empty((2 if swiglu else 1) * d_ff, d_model))
        self.down = torch.nn.Parameter(torch.empty(d_model, d_ff))
        self.swiglu = swiglu

    def forward(self, x):
        h = F.linear(x, self.up)
        if self.swiglu:
            gate, value = h.chunk(2, -1)
            h = F.silu(gate) * value
        else:
            h = F.gelu(h)
        return F.linear(h, self.down)


class Block(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.norm1 = RMSNorm(m["d_model"])
        self.attn = Attention(m["d_model"], m["n_heads"])
        self.norm2 = RMSNorm(m["d_model"])
        self.mlp = Mlp(m["d_model"], m["d_ff"], m["mlp"] == "swiglu")

    def forward(self, x, cos, sin, mask):
        x = x + self.attn(self.norm1(x), cos, sin, mask)
        return x + self.mlp(self.norm2(x))


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)


class Transformer(torch.nn.Module):
    def __init__(self, m, vocab):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, m["d_model"])
        self.blocks = torch.nn.ModuleList([Block(m) for _ in range(m["n_layers"])])
        self.norm_f = RMSNorm(m["d_model"])
        self.lm_head = None if m["tie_embeddings"] else torch.nn.Parameter(torch.empty(vocab, m["d_model"]))
        D = m["d_model"] // m["n_heads"]
        inv_freq = m["rope_theta"] ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
        angles = torch.outer(torch.arange(m["max_seq_len"], dtype=torch.float64), inv_freq)
        self.cos, self.sin = angles.cos().float(), angles.sin().float()

    def forward(self, ids):
        B, T = ids.shape
        cos = self.cos[:T].view(1, 1, T, -1)
        sin = self.sin[:T].view(1, 1, T, -1)
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        x = self.embed(ids)
        for block in self.blocks:
            x = block(x, cos, sin, mask)
        x = self.norm_f(x)
        head = self.embed.weight if self.lm_head is None else self.lm_head
        return x @ head.t()  # (B, T, V): every position's logits, as HF models compute them


def lr_at(step, peak_lr_steps, lrs):
    return lrs[step]


def hf_batch(examples, pad_id):
    """Pad to the longest; labels -100 where the weight is 0."""
    T = max(len(e["ids"]) for e in examples) - 1
    ids = torch.full((len(examples), T), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), T), -100, dtype=torch.long)
    weights = torch.zeros(len(examples), T)
    for i, e in enumerate(examples):
        n = len(e["ids"]) - 1
        ids[i, :n] = torch.tensor(e["ids"][:n])
        w = torch.tensor(e["weights"][:n])
        target = torch.tensor(e["ids"][1:])
        labels[i, :n] = torch.where(w > 0, target, torch.full_like(target, -100))
        weights[i, :n] = w
    return ids, labels, weights


def loss_of(logits, labels, weights, normalization, step_denominator):
    V = logits.shape[-1]
    if normalization == "weight_sum" and bool(((weights == 0) | (weights == 1)).all()):
        # The plain HF loss: mean over the labels that are not -100.
        return F.cross_entropy(logits.view(-1, V), labels.view(-1), reduction="sum") / step_denominator
    nll = F.cross_entropy(logits.view(-1, V), labels.view(-1), reduction="none", ignore_index=-100)
    return (nll * weights.view(-1)).sum() / step_denominator


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("export_dir", help="DIR/<strategy> written by masklab bench --export")
    parser.add_argument("--out", help="write the JSON result here too")
    args = parser.parse_args()

    with open(os.path.join(args.export_dir, "batches.json")) as f:
        job = json.load(f)
    m, t = job["model"], job["train"]
    if job["normalization"] not in ("weight_sum", "token_count"):
        raise SystemExit("reference_train.py: only weight_sum and token_count normalization")
    torch.manual_seed(0)
    model = Transformer(m, job["vocab_size"])
    state = torch.load(os.path.join(os.path.dirname(args.export_dir.rstrip("/")), "init.pt"))
    own = dict(model.named_parameters())
    missing = set(own) ^ set(state)
    if missing:
        raise SystemExit(f"reference_train.py: parameter names differ: {sorted(missing)}")
    with torch.no_grad():
        for name, p in own.items():
            p.copy_(state[name])
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": t["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=1.0, betas=(t["beta1"], t["beta2"]), eps=t["eps"])

    losses, tokens, seconds = [], 0, 0.0
    baseline_kb = 0
    for step, s in enumerate(job["steps"]):
        if step == t["warmup_steps"]:
            reset_peak_rss()
            baseline_kb = read_status_kb("VmRSS:")
            start = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = s["lr"]
        examples = s["examples"]
        micro = t["batch_size"]
        if job["normalization"] == "weight_sum":
            denominator = sum(sum(e["weights"]) for e in examples)
        else:
            denominator = sum(sum(1 for w in e["weights"] if w > 0) for e in examples)
        opt.zero_grad()
        step_loss = 0.0
        for i in range(0, len(examples), micro):
            ids, labels, weights = hf_batch(examples[i:i + micro], job["pad_id"])
            loss = loss_of(model(ids), labels, weights, job["normalization"], max(denominator, 1e-30))
            loss.backward()
            step_loss += loss.item()
        if t["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), t["grad_clip"])
        opt.step()
        losses.append(step_loss)
        if step >= t["warmup_steps"]:
            tokens += sum(len(e["ids"]) - 1 for e in examples)
    seconds = time.perf_counter() - start
    timed = len(job["steps"]) - t["warmup_steps"]
    result = {
        "strategy": job["strategy"],
        "steps": timed,
        "step_seconds": seconds / timed,
        "tokens_per_second": tokens / seconds,
        "peak_memory_mb": read_status_kb("VmHWM:") / 1024.0,
        "memory_baseline_mb": baseline_kb / 1024.0,
        "step_memory_mb": (read_status_kb("VmHWM:") - baseline_kb) / 1024.0,
        "torch_threads": torch.get_num_threads(),
        "losses": losses,
    }
    text = json.dumps(result, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

"""TRL's SFTTrainer on the job `masklab bench --export DIR` wrote: the peer a
researcher would use instead of masklab.

The same Hugging Face checkpoint (the job's model.init_from), the same
examples in the same order (a SequentialSampler), the same batch size,
AdamW with the same betas, eps and weight decay on matrices only, the
job's per-step learning rates (a LambdaLR over them) and clipping. Each
strategy as TRL expresses it:
  completion_only  completion_only_loss=True with a completion_mask column
  full             the plain LM loss (no completion mask)
  weighted:L       a compute_loss override: per-token weights, normalized by
                   the step's weight sum (masklab's step denominator)

usage: trl_peer.py DIR/<strategy> [--model HF_DIR] [--out result.json]
                   [--padding-free] [--compile] [--gradient-checkpointing] [--threads N]
Run with the bench environment's python (scripts/python-env.sh bench).
Prints a JSON result: per-step losses (unrounded), tokens/s (the tokens of
the timed steps' examples, each counted len(ids) - 1 as masklab's bench
counts them), step time, peak RSS, and the settings TRL used.
"""
import argparse
import contextlib
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_train import read_status_kb, reset_peak_rss  # noqa: E402


def fail(message):
    print(f"trl_peer.py: {message}", file=sys.stderr)
    sys.exit(2)


def load_job(export_dir):
    with open(os.path.join(export_dir, "batches.json")) as f:
        job = json.load(f)
    t = job["train"]
    if t["grad_accum"] != 1:
        fail(f"{export_dir}: train.grad_accum={t['grad_accum']}; the peer runs one micro-batch a step")
    if job["normalization"] != "weight_sum":
        fail(f"{export_dir}: loss.normalization={job['normalization']}; the peer implements weight_sum")
    for step, s in enumerate(job["steps"]):
        if len(s["examples"]) != t["batch_size"]:
            fail(f"{export_dir}: step {step} has {len(s['examples'])} examples, batch_size is {t['batch_size']}")
    return job


def strategy_kind(job):
    """completion_only, full or weighted, checked against the exported weights."""
    weights = [w for s in job["steps"] for e in s["examples"] for w in e["weights"]]
    spec = job["strategy"]
    if spec == "full":
        if any(w != 1.0 for w in weights):
            fail("strategy full: some label weight is not 1; plain LM loss cannot express it")
        return "full"
    if spec == "completion_only":
        if any(w not in (0.0, 1.0) for w in weights):
            fail("strategy completion_only: a label weight is neither 0 nor 1")
        return "completion_only"
    if spec.startswith("weighted:"):
        return "weighted"
    fail(f"strategy {spec}: the peer runs completion_only, full and weighted:L")


def rows_of(job, kind):
    """One dataset row per example, in training order. The weight exported at
    label t belongs to token t + 1 (docs/design.md, invariant 2), so TRL's
    completion_mask, which marks input tokens, is the weights shifted right."""
    rows = []
    for s in job["steps"]:
        for e in s["examples"]:
            row = {"input_ids": e["ids"]}
            if kind == "completion_only":
                row["completion_mask"] = [0] + [1 if w > 0 else 0 for w in e["weights"]]
            elif kind == "weighted":
                row["loss_weights"] = [0.0] + e["weights"]
            rows.append(row)
    return rows


class WeightedCollator:
    """TRL's collator, plus the per-token weights laid out as its input_ids."""

    def __init__(self, base, padding_free):
        self.base, self.padding_free = base, padding_free

    def __call__(self, examples):
        weights = [torch.tensor(e.pop("loss_weights")) for e in examples]
        batch = self.base(examples)
        T = batch["input_ids"].shape[-1]
        if self.padding_free:
            flat = torch.cat(weights)
            out = torch.zeros(1, T)
            out[0, :flat.numel()] = flat
        else:
            out = torch.zeros(len(weights), T)
            for i, w in enumerate(weights):
                out[i, :w.numel()] = w
        batch["loss_weights"] = out
        return batch


def make_tokenizer(pad_id, vocab_size):
    """SFTTrainer needs a processing class for its pad id; the job is already
    token ids, so a word-level tokenizer whose only entry is the pad does."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    unk = 0 if pad_id != 0 else 1
    tok = Tokenizer(WordLevel({"<pad>": pad_id, "<unk>": unk}, unk_token="<unk>"))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                                   model_max_length=1 << 20)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("export_dir", help="DIR/<strategy> written by masklab bench --export")
    parser.add_argument("--model", help="the Hugging Face checkpoint (default: the job's model.init_from)")
    parser.add_argument("--out", help="write the JSON result here too")
    parser.add_argument("--padding-free", action="store_true", help="SFTConfig(padding_free=True)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (torch_compile=True)")
    parser.add_argument("--gradient-checkpointing", action="store_true",
                        help="SFTConfig(gradient_checkpointing=True), TRL's own default; off by default here, "
                             "as masklab's model.checkpoint_activations is")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: the job's train.threads)")
    args = parser.parse_args()

    job = load_job(args.export_dir)
    kind = strategy_kind(job)
    model_dir = args.model or job.get("init_from") or fail("the job has no model.init_from; give --model")
    t = job["train"]
    threads = args.threads or t.get("threads") or torch.get_num_threads()
    torch.set_num_threads(threads)

    import datasets
    import transformers
    import trl
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    if model.config.vocab_size != job["vocab_size"]:
        fail(f"{model_dir}: vocab_size {model.config.vocab_size}, the job's is {job['vocab_size']}")
    tokenizer = make_tokenizer(job["pad_id"], job["vocab_size"])
    steps = job["steps"]

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": t["weight_decay"]},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=1.0, betas=(t["beta1"], t["beta2"]), eps=t["eps"])
    lrs = [s["lr"] for s in steps]
    # Base lr 1, so the factor is the job's learning rate itself; the Trainer
    # steps the scheduler once after the last step too.
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: lrs[min(k, len(lrs) - 1)])

    config = SFTConfig(
        output_dir=os.path.join(args.export_dir, "trl"), max_steps=len(steps),
        per_device_train_batch_size=t["batch_size"], gradient_accumulation_steps=1,
        max_grad_norm=t["grad_clip"] if t["grad_clip"] > 0 else 1e30,
        completion_only_loss=(kind == "completion_only"), padding_free=args.padding_free,
        max_length=None, packing=False, dataset_num_proc=None,
        gradient_checkpointing=args.gradient_checkpointing,  # TRL defaults to True; the job is masklab's, without
        torch_compile=args.compile, use_cpu=True, bf16=False, fp16=False,
        train_sampling_strategy="sequential", shuffle_dataset=False,  # the job's order, not a shuffle
        remove_unused_columns=(kind != "weighted"),  # the weights column stays for the weighted loss
        report_to="none", save_strategy="no", logging_strategy="no",
        disable_tqdm=True, dataloader_num_workers=0, seed=0)

    step_losses = []

    class Peer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if kind != "weighted":  # TRL's own loss: the sum over labels that are not -100, over their count
                loss = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                            num_items_in_batch=num_items_in_batch)
                step_losses.append((loss[0] if return_outputs else loss).detach())
                return loss
            # The weighted loss as TRL's WIT proposal writes it: TRL's fused LM
            # head gives each label's log-probability (zero where the label is
            # -100); times the label's weight, over the step's weight sum.
            weights = inputs.pop("loss_weights")[..., 1:]  # (B, T-1): the weight of label t + 1
            outputs = model(**inputs, use_cache=False, fused_lm_head=True)
            loss = -(outputs.log_probs * weights).sum() / weights.sum().clamp_min(1e-30)
            step_losses.append(loss.detach())
            return (loss, outputs) if return_outputs else loss

    warmup = t["warmup_steps"]
    timing = {}

    class Clock(TrainerCallback):
        def on_step_begin(self, targs, state, control, **kw):
            if state.global_step == warmup:
                reset_peak_rss()
                timing["baseline_kb"] = read_status_kb("VmRSS:")
                timing["start"] = time.perf_counter()

        def on_step_end(self, targs, state, control, **kw):
            if state.global_step == len(steps):
                timing["seconds"] = time.perf_counter() - timing["start"]
                timing["peak_kb"] = read_status_kb("VmHWM:")

    trainer = Peer(model=model, args=config, train_dataset=datasets.Dataset.from_list(rows_of(job, kind)),
                   processing_class=tokenizer, optimizers=(optimizer, scheduler), callbacks=[Clock()])
    if kind == "weighted":
        # TRL's collator pads (or, padding-free, concatenates) input_ids and
        # labels; the weights follow the same layout. Set after construction:
        # SFTTrainer refuses a custom collator with padding_free.
        trainer.data_collator = WeightedCollator(trainer.data_collator, args.padding_free)
    with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its summary; stdout is the result
        trainer.train()

    losses = [float(l) for l in step_losses]
    if len(losses) != len(steps):
        fail(f"recorded {len(losses)} losses for {len(steps)} steps")
    timed = len(steps) - warmup
    tokens = sum(len(e["ids"]) - 1 for s in steps[warmup:] for e in s["examples"])
    result = {
        "strategy": job["strategy"],
        "steps": timed,
        "step_seconds": timing["seconds"] / timed,
        "tokens_per_second": tokens / timing["seconds"],
        "peak_memory_mb": timing["peak_kb"] / 1024.0,
        "memory_baseline_mb": timing["baseline_kb"] / 1024.0,
        "step_memory_mb": (timing["peak_kb"] - timing["baseline_kb"]) / 1024.0,
        "torch_threads": torch.get_num_threads(),
        "settings": {"trl": trl.__version__, "transformers": transformers.__version__, "torch": torch.__version__,
                     "attn_implementation": model.config._attn_implementation, "padding_free": args.padding_free,
                     "torch_compile": args.compile, "gradient_checkpointing": args.gradient_checkpointing,
                     "loss": {"completion_only": "completion_only_loss=True", "full": "LM loss",
                              "weighted": "compute_loss override"}[kind]},
        "losses": losses,
    }
    text = json.dumps(result, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

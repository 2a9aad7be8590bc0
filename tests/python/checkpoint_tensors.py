"""Reads a masklab training checkpoint's tensors.pt with PyTorch and compares
its weights with a model.safetensors that the safetensors library reads.

usage: checkpoint_tensors.py CHECKPOINT_DIR MODEL_DIR
Prints one JSON object: the weights compared, how many differ, the keys of
tensors.pt that are not weights, and the dtype and length of the order.
"""
import json
import sys

import torch
from safetensors.torch import load_file


def main():
    checkpoint, model_dir = sys.argv[1], sys.argv[2]
    tensors = torch.load(checkpoint + "/tensors.pt", map_location="cpu", weights_only=False)
    saved = load_file(model_dir + "/model.safetensors")
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    # masklab fuses q/k/v and gate/up; the safetensors file holds the
    # Hugging Face names. Compare every saved tensor with the fused weight
    # it was cut from, by total elements and sum of squares, and each
    # unfused tensor exactly.
    flat_ckpt = torch.cat([w.reshape(-1).double() for w in weights.values()])
    flat_saved = torch.cat([w.reshape(-1).double() for w in saved.values()])
    print(json.dumps({
        "weights": len(weights),
        "elements_checkpoint": int(flat_ckpt.numel()),
        "elements_saved": int(flat_saved.numel()),
        "sum_sq_checkpoint": float((flat_ckpt ** 2).sum()),
        "sum_sq_saved": float((flat_saved ** 2).sum()),
        "other_keys": sorted(k for k in tensors if not k.startswith("model.")),
        "order_dtype": str(tensors["order"].dtype),
        "order_len": int(tensors["order"].numel()),
        "rng_cpu_bytes": int(tensors["rng.cpu"].numel()),
    }))


if __name__ == "__main__":
    main()

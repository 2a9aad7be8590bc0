"""The python safetensors library on both sides of masklab's reader and writer.

usage: hf_safetensors_file.py write PATH   writes a file with F32, F16 and BF16 tensors
       hf_safetensors_file.py read PATH    prints {name: {dtype, shape, values}} of a file
"""
import json
import sys

import torch
from safetensors.torch import load_file, save_file


def main(mode, path):
    if mode == "write":
        save_file({"a.f32": torch.arange(6, dtype=torch.float32).reshape(2, 3) / 4,
                   "b.f16": torch.tensor([1.5, -2.25, 65504.0], dtype=torch.float16),
                   "c.bf16": torch.tensor([[0.5], [-3.0]], dtype=torch.bfloat16)},
                  path, metadata={"format": "pt"})
        return
    out = {}
    for name, t in load_file(path).items():
        out[name] = {"dtype": str(t.dtype), "shape": list(t.shape), "values": t.float().flatten().tolist()}
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

#!/usr/bin/python3
"""Independent reference for masklab's weighted loss: PyTorch's own
F.cross_entropy on full logits, weighted and summed.

usage: masked_loss_reference.py INPUT.pt OUTPUT.pt
INPUT.pt holds {hidden (N, C), head (V, C), targets (N), coeff (N)} as written
by the C++ test; OUTPUT.pt gets {loss, grad_hidden, grad_head}.
Run with /usr/bin/python3 (Debian's, which has python3-torch from apt); a
missing package is one line naming it, and exit status 1.
"""
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError as missing:
    sys.exit(f"masked_loss_reference: missing Debian package python3-{missing.name.split('.')[0]}: scripts/install-deps.sh installs it")


def main() -> None:
    data = torch.load(sys.argv[1])
    hidden = data["hidden"].double().requires_grad_(True)
    head = data["head"].double().requires_grad_(True)
    logits = hidden @ head.t()
    nll = F.cross_entropy(logits, data["targets"].long(), reduction="none")
    loss = (nll * data["coeff"].double()).sum()
    loss.backward()
    torch.save({"loss": loss.detach().float(), "grad_hidden": hidden.grad.float(),
                "grad_head": head.grad.float()}, sys.argv[2])


if __name__ == "__main__":
    main()

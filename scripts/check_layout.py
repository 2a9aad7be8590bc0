#!/usr/bin/env python3
"""Checks the folder rules of docs/design.md ("Folders"): every quoted
#include between source folders points down the dependency order, and
LibTorch-free folders include no LibTorch header. Standard library only;
run as `python3 scripts/check_layout.py [ROOT]`. Prints one line per
violation and exits 1 if there is any."""
import pathlib
import re
import sys

# Each folder and the folders it may include from (besides itself).
ALLOWED = {
    "harness/core": set(),
    "strategies": {"harness/core"},
    "reports": {"harness/core"},
    "harness/data": {"harness/core"},
    "harness/train": {"harness/core", "harness/data", "strategies"},
    "harness/sweep": {"harness/core", "harness/data", "harness/train", "strategies"},
    "harness/cli": {"harness/core", "harness/data", "harness/train", "harness/sweep", "strategies", "reports"},
    "fuzz": {"harness/core", "harness/data", "harness/sweep", "strategies"},
}
TORCH_FREE = {"harness/core", "harness/data", "harness/sweep", "reports", "fuzz"}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def folder_of(path: str):
    """The source folder a repository path belongs to, or None."""
    for folder in sorted(ALLOWED, key=len, reverse=True):
        if path == folder or path.startswith(folder + "/"):
            return folder
    return None


def violations(root: pathlib.Path):
    for folder in ALLOWED:
        for source in sorted((root / folder).glob("*.[ch]pp")):
            rel = source.relative_to(root).as_posix()
            for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
                match = INCLUDE.match(line)
                if not match:
                    continue
                bracket, target = match.groups()
                if bracket == "<" and target.startswith("torch/") and folder in TORCH_FREE:
                    yield f"{rel}:{number}: {folder} is LibTorch-free but includes <{target}>"
                if bracket != '"':
                    continue
                to = folder_of(target)
                if to is not None and to != folder and to not in ALLOWED[folder]:
                    yield f"{rel}:{number}: {folder} may not include {target} ({to} is not below it)"


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
    found = list(violations(root))
    for line in found:
        print(line)
    print(f"layout: {len(found)} violation(s) in {len(ALLOWED)} folders")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

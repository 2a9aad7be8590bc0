#!/usr/bin/env bash
# Builds (once) and prints the path of the Python environment that holds the
# pinned PyPI packages of scripts/requirements.txt: PyTorch, transformers,
# tokenizers, safetensors, sentencepiece. It lives outside the clone, under
# ${MASKLAB_CACHE:-~/.cache/masklab}/venv-<hash of requirements.txt>, so every
# clone and every CI run on this machine reuses it.
#
# usage: python-env.sh          build if missing, print the venv's python
#        python-env.sh --path   print the path only, build nothing
# The interpreter is the `python3` on PATH (a pyenv 3.11 here); Debian's
# /usr/bin/python3 stays the one for the scipy/pandas statistics checks.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
req="$here/requirements.txt"
hash="$(sha256sum "$req" | cut -c1-16)"
cache="${MASKLAB_CACHE:-$HOME/.cache/masklab}"
venv="$cache/venv-$hash"
if [ "${1:-}" = "--path" ]; then echo "$venv/bin/python"; exit 0; fi
# The marker is written last: a half-built environment (killed install) is
# never used, and is rebuilt from scratch.
if [ ! -f "$venv/.complete" ]; then
  echo "python-env: building $venv from scripts/requirements.txt" >&2
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"

#!/usr/bin/env bash
# Builds (once) and prints the path of a Python environment that holds pinned
# PyPI packages. It lives outside the clone, under
# ${MASKLAB_CACHE:-~/.cache/masklab}/venv-<hash of the requirements>, so every
# clone and every CI run on this machine reuses it.
#   tests (default)  scripts/requirements.txt: PyTorch, transformers, tokenizers,
#                    safetensors, sentencepiece (the tests' reference implementations)
#   bench            scripts/requirements-bench.txt: the same pins plus TRL,
#                    accelerate and datasets (bench/trl_peer.py)
#
# usage: python-env.sh [tests|bench]          build if missing, print the venv's python
#        python-env.sh --path [tests|bench]   print the path only, build nothing
# The interpreter is the `python3` on PATH (a pyenv 3.11 here); Debian's
# /usr/bin/python3 stays the one for the scipy/pandas statistics checks.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
path_only=false
if [ "${1:-}" = "--path" ]; then path_only=true; shift; fi
case "${1:-tests}" in
  tests) req="$here/requirements.txt" ;;
  bench) req="$here/requirements-bench.txt" ;;
  *) echo "python-env.sh: unknown environment '$1' (tests, bench)" >&2; exit 2 ;;
esac
# The key covers the files a requirements file includes with `-r`, so that a
# changed pin rebuilds every environment holding it; a file without `-r`
# lines hashes as itself.
included() { sed -n 's/^-r[[:space:]]*//p' "$1" | while read -r name; do cat "$(dirname "$1")/$name"; done; }
hash="$( { cat "$req"; included "$req"; } | sha256sum | cut -c1-16)"
cache="${MASKLAB_CACHE:-$HOME/.cache/masklab}"
venv="$cache/venv-$hash"
if $path_only; then echo "$venv/bin/python"; exit 0; fi
# The marker is written last: a half-built environment (killed install) is
# never used, and is rebuilt from scratch.
if [ ! -f "$venv/.complete" ]; then
  echo "python-env: building $venv from scripts/$(basename "$req")" >&2
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"

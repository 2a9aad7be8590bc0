#!/usr/bin/env bash
# Installs the Debian packages masklab builds, tests and benchmarks with.
# Idempotent: a package that is already installed is skipped, so a machine
# that has everything runs no apt command at all (and needs no root).
#
# usage: install-deps.sh [--test]
#   --test  also the packages only the slow tests use (chromium for the
#           report screenshot test, slurm-wlm and munge for the Slurm
#           array test) and the sanitizer build of `make asan` and `make fuzz`
#           (clang-14, libclang-rt-14-dev: ASan, UBSan, libFuzzer);
#           `make test` passes it. Tests never
#           install anything: a missing package fails its test with one line.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev libopenblas0-pthread libgloo-dev libjemalloc-dev
  libboost-program-options-dev libeigen3-dev libfmt-dev catch2
  nlohmann-json3-dev libyaml-cpp-dev libsentencepiece-dev libpcre2-dev libutf8proc-dev
  python3 python3-torch python3-scipy python3-pandas python3-numpy
)
test_packages=(chromium slurm-wlm munge clang-14 libclang-rt-14-dev)

for arg in "$@"; do
  case "$arg" in
    --test) packages+=("${test_packages[@]}") ;;
    *) echo "install-deps: unknown argument '$arg' (usage: install-deps.sh [--test])" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

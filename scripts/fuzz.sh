#!/usr/bin/env bash
# Runs the libFuzzer targets of fuzz/ (built by `make fuzz` into BUILD_DIR),
# two at a time, each for FUZZ_SECONDS from its seed corpus fuzz/corpus/<target>/.
# What a target adds goes to a scratch corpus under BUILD_DIR/fuzz-work/<target>/,
# which later runs start from too; the repository's corpus changes only when
# a minimized finding is added to it by hand. Prints per target: executions
# per second, corpus files and bytes, coverage (cov: edges, ft: features).
# Exits 1 when any target found a crash, a sanitizer report, an escaped
# exception, a timeout (-timeout=10 s per input), a leak or an out-of-memory
# (-rss_limit_mb); the input that did it is under BUILD_DIR/fuzz-work/<target>/.
#
# usage: scripts/fuzz.sh BUILD_DIR [TARGET...]   (FUZZ_SECONDS, default 60; FUZZ_JOBS, default 2)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:?usage: fuzz.sh BUILD_DIR [TARGET...]}" && pwd)"
shift
seconds="${FUZZ_SECONDS:-60}"
jobs="${FUZZ_JOBS:-2}"

# target  max_len  dictionary (fuzz/dict/)
targets_table="
fuzz_jsonl          4096  json
fuzz_config         2048  yaml
fuzz_sweep_spec     2048  yaml
fuzz_strategy_spec  128   strategy
fuzz_chat_template  2048  yaml
fuzz_data_cache     8192  -
fuzz_safetensors    4096  json
fuzz_tokenizer_json 16384 json
"

run_target() {  # target max_len dict
  local target="$1" max_len="$2" dict="$3" work="$build/fuzz-work/$1"
  rm -f "$work/status"
  mkdir -p "$work/corpus"
  local args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len"
              -print_final_stats=1 -artifact_prefix="$work/")
  [ "$dict" != - ] && args+=(-dict="$root/fuzz/dict/$dict.dict")
  # New inputs go to the first folder; the seeds are only read.
  local status=0
  (cd "$work" && "$build/fuzz/$target" "${args[@]}" corpus "$root/fuzz/corpus/$target") > "$work/log" 2>&1 || status=$?
  echo "$status" > "$work/status"
}

summary() {  # target status
  local target="$1" status="$2" work="$build/fuzz-work/$1"
  local done_line execs files bytes
  done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$work/log" | tail -1 || true)"
  [ -n "$done_line" ] || done_line="$(grep -E '^#[0-9]+[[:space:]]' "$work/log" | tail -1 || true)"
  execs="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -1)"
  files="$(find "$work/corpus" -type f | wc -l)"
  bytes="$(find "$work/corpus" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')"
  printf '%-20s %-5s exec/s %-6s corpus %5s files %8s bytes  %s\n' "$target" "$status" "${execs:-?}" \
    "$files" "$bytes" "$(grep -oE 'cov: [0-9]+ ft: [0-9]+' <<<"$done_line" || echo "cov: ? ft: ?")"
}

selected=()
while read -r target max_len dict; do
  [ -n "$target" ] || continue
  if (($# == 0)) || [[ " $* " == *" $target "* ]]; then selected+=("$target $max_len $dict"); fi
done <<<"$targets_table"
((${#selected[@]} > 0)) || { echo "fuzz.sh: no target named $*" >&2; exit 2; }

echo "fuzz: ${#selected[@]} targets, ${seconds} s each, $jobs at a time (logs: $build/fuzz-work/<target>/log)"
for entry in "${selected[@]}"; do
  read -r target max_len dict <<<"$entry"
  while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
  run_target "$target" "$max_len" "$dict" &
done
wait
failed=0
for entry in "${selected[@]}"; do
  read -r target _ <<<"$entry"
  if [ "$(cat "$build/fuzz-work/$target/status" 2>/dev/null)" = 0 ]; then
    summary "$target" ok
  else
    summary "$target" FAIL
    grep -m1 -E 'ERROR: |fuzz: |SUMMARY: ' "$build/fuzz-work/$target/log" | sed 's/^/    /' || true
    ls "$build/fuzz-work/$target"/{crash,leak,timeout,oom}-* 2>/dev/null | sed 's/^/    input: /' || true
    failed=1
  fi
done
exit "$failed"

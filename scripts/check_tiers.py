#!/usr/bin/python3
"""Checks that every Catch2 test case carries exactly one tier tag, [fast] or
[slow]. CTest registers the test cases per tier (tests/CMakeLists.txt), so a
case with no tier tag would never run and one with both would run twice.
Also that no name holds a ';': CTest's discovery splits a name there into
tests that match no case, and a filter that matches nothing passes.

usage: check_tiers.py TEST_BINARY

Asks the binary for its test names (all of them, then per tier) and compares.
Standard library only; run with /usr/bin/python3 (Debian's). Prints one line
per problem and exits 1 if there is any.
"""
import subprocess
import sys

TIERS = ("[fast]", "[slow]")


def names(binary: str, spec: str = None) -> set:
    command = [binary] + ([spec] if spec else []) + ["--list-test-names-only"]
    # --list-test-names-only exits with the number of tests, not 0.
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode < 0:
        sys.exit(f"tiers: {binary} died listing its tests (signal {-result.returncode})")
    return {line for line in result.stdout.splitlines() if line.strip()}


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit("usage: check_tiers.py TEST_BINARY")
    binary = sys.argv[1]
    every = names(binary)
    tiered = {tier: names(binary, tier) for tier in TIERS}
    problems = []
    for name in sorted(every):
        tags = [tier for tier in TIERS if name in tiered[tier]]
        if len(tags) != 1:
            problems.append(f"{name}: {' and '.join(tags) if tags else 'no tier tag'} (exactly one of {', '.join(TIERS)})")
        if ";" in name:
            problems.append(f"{name}: a ';' in a test name (CTest would split it into tests that run nothing)")
    for line in problems:
        print(line)
    counts = ", ".join(f"{len(tiered[tier])} {tier}" for tier in TIERS)
    print(f"tiers: {len(every)} test cases ({counts}), {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Renders a report with headless Chromium and checks that its charts drew:
# the page and one standalone figure must contain many coloured pixels in
# several palette colours (png_colours.py decodes the PNGs).
#
# usage: screenshot_test.sh REPORT_DIR SHOT_DIR
# Needs Debian's chromium, which `scripts/install-deps.sh --test` installs
# (`make test` runs it); installs nothing itself, and a missing chromium is
# one line naming the package. Prints "screenshot OK" when both images pass.
set -euo pipefail
report_dir=$(cd "$1" && pwd)
shot_dir=$2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$shot_dir"
shot_dir=$(cd "$shot_dir" && pwd)

if ! command -v chromium >/dev/null 2>&1; then
  echo "screenshot_test: missing Debian package chromium: scripts/install-deps.sh --test installs it"
  exit 1
fi

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT

# shot URL WIDTH,HEIGHT OUT.png
shot() {
  timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
    --user-data-dir="$profile" --window-size="$2" --screenshot="$3" "$1" >"$3.log" 2>&1 || {
    echo "chromium failed on $1:"; cat "$3.log"; exit 1; }
  [ -s "$3" ] || { echo "chromium wrote no $3:"; cat "$3.log"; exit 1; }
}

figure=$(ls "$report_dir"/figures/loss_curves*.svg "$report_dir"/figures/*.svg 2>/dev/null | head -n 1)
[ -n "$figure" ] || { echo "no figure in $report_dir/figures"; exit 1; }

shot "file://$report_dir/report.html" 1200,3000 "$shot_dir/report.png"
shot "file://$figure" 760,420 "$shot_dir/figure.png"

# The page: charts, badges and the weighted tokens; a figure: lines and bands in 3+ colours.
/usr/bin/python3 "$here/png_colours.py" "$shot_dir/report.png" 10000 4
/usr/bin/python3 "$here/png_colours.py" "$shot_dir/figure.png" 2000 3
echo "screenshot OK"

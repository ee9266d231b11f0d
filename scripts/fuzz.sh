#!/usr/bin/env bash
# Runs every fuzz target for a bounded time each (default 10s): scripts/fuzz.sh [duration]
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-10s}
grep -rl --include='*_test.go' '^func Fuzz' pkg services | xargs -n1 dirname | sort -u | while read -r dir; do
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //'); do
    echo "fuzz $dir $target ($t)"
    go test -run '^$' -fuzz "^$target\$" -fuzztime "$t" "./$dir"
  done
done

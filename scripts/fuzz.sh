#!/usr/bin/env bash
# Runs every fuzz target for a bounded budget each: scripts/fuzz.sh [budget]
# The default budget is a count of executions (300000x, a few seconds each
# here), not a duration: with a duration, Go 1.26's fuzz coordinator can fail
# a clean run with "context deadline exceeded" as the time runs out
# (go.dev/issue/75804, fixed in Go 1.27). A duration (30s) still works.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-300000x}
grep -rl --include='*_test.go' '^func Fuzz' pkg services | xargs -n1 dirname | sort -u | while read -r dir; do
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //'); do
    echo "fuzz $dir $target ($t)"
    go test -run '^$' -fuzz "^$target\$" -fuzztime "$t" "./$dir"
  done
done

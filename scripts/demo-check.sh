#!/usr/bin/env bash
# Runs the README's first command, `go run ./services/standalone -demo`, the
# way a new user would, waits until every demo entry settled, checks the
# catalog API lists them with the expected statuses, then stops it with
# Ctrl-C (SIGINT) and checks it exits cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
data=$(mktemp -d)
out="$data/demo.out"
trap 'kill -INT -- -"$pid" 2>/dev/null || true; rm -rf "$data"' EXIT

VEO4K_DATA_DIR="$data" setsid go run ./services/standalone -demo >"$out" 2>"$data/demo.err" &
pid=$!

for _ in $(seq 1 240); do
  grep -q 'entries settled' "$out" && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "demo-check: the standalone exited early"; cat "$out" "$data/demo.err"; exit 1
  fi
  sleep 0.5
done
cat "$out"
grep -q 'entries settled' "$out" || { echo "demo-check: the demo did not settle within 2 minutes"; cat "$data/demo.err"; exit 1; }
if grep -qE '^  ! |not accepted' "$out"; then echo "demo-check: a scenario ended unexpectedly"; exit 1; fi

list=$(curl -fsS 'http://127.0.0.1:8081/v1/videos?limit=100')
ready=$(grep -o '"status":"ready"' <<<"$list" | wc -l)
unavailable=$(grep -o '"status":"unavailable"' <<<"$list" | wc -l)
echo "demo-check: catalog API lists $ready ready and $unavailable unavailable entries"
[ "$ready" -eq 5 ] && [ "$unavailable" -eq 1 ] || { echo "demo-check: want 5 ready and 1 unavailable"; echo "$list"; exit 1; }
task=$(grep -o '"taskId":"demo-[0-9]*-ok"' <<<"$list" | head -1 | cut -d'"' -f4)
curl -fsS -o "$data/video.mp4" "http://127.0.0.1:8081/v1/videos/$task/files/video-0.mp4"
echo "demo-check: downloaded $(stat -c %s "$data/video.mp4") bytes of $task's video through the catalog API"

kill -INT -- -"$pid"
for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
if kill -0 "$pid" 2>/dev/null; then echo "demo-check: still running 30s after Ctrl-C"; exit 1; fi
# `go run` itself exits 1 after an interrupt whatever the program did, so
# judge the program by what it said.
grep -q '^veo4k stopped' "$out" || { echo "demo-check: no clean shutdown after Ctrl-C"; cat "$data/demo.err"; exit 1; }
echo "demo-check: stopped cleanly on Ctrl-C"

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

# Every catalog command of the README, against the demo's entries.
api=http://localhost:8081
list=$(curl -fsS "$api/v1/videos")
count() { grep -o "\"status\":\"$1\"" <<<"$2" | wc -l; }
echo "demo-check: catalog lists $(count ready "$list") ready, $(count unavailable "$list") unavailable, $(count failed "$list") failed"
[ "$(count ready "$list")" -eq 5 ] && [ "$(count unavailable "$list")" -eq 1 ] && [ "$(count failed "$list")" -eq 1 ] \
  || { echo "demo-check: want 5 ready, 1 unavailable, 1 failed"; echo "$list"; exit 1; }
page=$(curl -fsS "$api/v1/videos?status=ready&limit=2")
[ "$(count ready "$page")" -eq 2 ] && grep -q '"nextCursor":"[^"]' <<<"$page" || { echo "demo-check: status filter / paging"; echo "$page"; exit 1; }
cursor=$(grep -o '"nextCursor":"[^"]*"' <<<"$page" | cut -d'"' -f4)
next=$(curl -fsS "$api/v1/videos?status=ready&limit=2&cursor=$cursor")
[ "$(count ready "$next")" -eq 2 ] || { echo "demo-check: second page"; echo "$next"; exit 1; }
task=$(grep -o '"taskId":"demo-[0-9]*-ok"' <<<"$list" | head -1 | cut -d'"' -f4)
curl -fsS "$api/v1/videos/$task?index=0" | grep -q '"is4K":true' || { echo "demo-check: entry $task is not a 4K video"; exit 1; }
curl -fsS -o "$data/video.mp4" "$api/v1/videos/$task/files/video-0.mp4"
want=$(curl -fsS "$api/v1/videos/$task" | grep -o '"sha256":"[0-9a-f]*"' | head -1 | cut -d'"' -f4)
[ "$(sha256sum "$data/video.mp4" | cut -d' ' -f1)" = "$want" ] || { echo "demo-check: downloaded file does not match its catalogued SHA-256"; exit 1; }
curl -fsS -r 0-7 "$api/v1/videos/$task/files/video-0.mp4" | od -An -c | grep -q 'f   t   y   p' || { echo "demo-check: Range request"; exit 1; }
echo "demo-check: entry, file (SHA-256 matches the catalog) and Range request work"
dead=$(curl -fsS "$api/v1/deadletters")
expired=$(grep -o '"taskId":"demo-[0-9]*-expired"' <<<"$dead" | cut -d'"' -f4)
[ -n "$expired" ] || { echo "demo-check: the expired entry is not dead-lettered"; echo "$dead"; exit 1; }
curl -fsS -X POST "$api/v1/deadletters/$expired/replay?index=0" | grep -q replayed || { echo "demo-check: replay"; exit 1; }
echo "demo-check: $expired was dead-lettered and replayed"

kill -INT -- -"$pid"
for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
if kill -0 "$pid" 2>/dev/null; then echo "demo-check: still running 30s after Ctrl-C"; exit 1; fi
# `go run` itself exits 1 after an interrupt whatever the program did, so
# judge the program by what it said.
grep -q '^veo4k stopped' "$out" || { echo "demo-check: no clean shutdown after Ctrl-C"; cat "$data/demo.err"; exit 1; }
echo "demo-check: stopped cleanly on Ctrl-C"

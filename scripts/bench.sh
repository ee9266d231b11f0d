#!/usr/bin/env bash
# Benchmarks veo4k against its baselines, side by side, in one run on this
# machine, and prints a table (absolute figures, ratios, targets) followed by
# every command it ran. See README, "Performance".
#
#   scripts/bench.sh            # full run: about 6 minutes on 2 cores
#   scripts/bench.sh --quick    # seconds-long smoke run with tiny sizes (CI)
#   scripts/bench.sh -only ingress -rounds 5    # any flag of scripts/bench/run
#
# Needs Go, curl and taskset (util-linux); installs curl with apt-get if
# missing. Scratch files go to $BENCH_WORK (default /tmp/veo4k-bench); the
# output is also saved as $BENCH_WORK.results.md. The full run needs about
# 13 GiB free there at its peak (10,000 catalogued 1 MiB videos, or the 1 GiB
# and 4 GiB download files twice); each section deletes its bulky data when
# measured, and the run refuses to start without the room.
set -euo pipefail
cd "$(dirname "$0")/.."

args=()
for a in "$@"; do
  case "$a" in
    --quick) args+=(-quick) ;;
    *) args+=("$a") ;;
  esac
done

if ! command -v curl >/dev/null || ! command -v taskset >/dev/null; then
  apt-get update -qq && apt-get install -y -qq curl util-linux >/dev/null
fi

bin=.bin/bench
mkdir -p "$bin"
echo "building into $bin ..." >&2
go build -o "$bin/nats-server" github.com/nats-io/nats-server/v2
for s in ingress fetcher standalone providersim; do
  go build -o "$bin/$s" "./services/$s"
done
for t in noop load dl static pipeline run; do
  go build -o "$bin/$t" "./scripts/bench/$t"
done

work=${BENCH_WORK:-/tmp/veo4k-bench}
"$bin/run" -bin "$bin" -work "$work" "${args[@]}" | tee "$work.results.md"

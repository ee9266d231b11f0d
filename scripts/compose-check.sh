#!/usr/bin/env bash
# CI check of docker-compose.yml: brings the stack up with the offline images
# and two fetchers, sends callbacks through the provider simulator's control
# API, checks that the catalog API shows every entry ready with the exact
# bytes the simulator served, that a subscriber (pkg/events) saw exactly one
# VideoCataloged per entry, and tears everything down, on failure too.
#
#   scripts/images.sh && scripts/compose-check.sh
#
# Settings: VEO4K_NATS_IMAGE (default veo4k/nats:2.15.3-offline),
# VEO4K_IMAGE_PREFIX / VEO4K_IMAGE_TAG (veo4k/ / dev), CHECK_TASKS (6),
# CHECK_TIMEOUT seconds (180), COMPOSE (docker compose, else docker-compose).
# Host ports are ephemeral on 127.0.0.1, so the check runs next to anything.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

export VEO4K_NATS_IMAGE=${VEO4K_NATS_IMAGE:-veo4k/nats:2.15.3-offline}
export VEO4K_IMAGE_PREFIX=${VEO4K_IMAGE_PREFIX:-veo4k/}
export VEO4K_IMAGE_TAG=${VEO4K_IMAGE_TAG:-dev}
export VEO4K_INGRESS_PORT=127.0.0.1:
export VEO4K_NATS_PORT=127.0.0.1:
export VEO4K_NATS_MONITOR_PORT=127.0.0.1:
export VEO4K_FETCHER_PORTS=127.0.0.1:
export PROVIDERSIM_PORT=127.0.0.1:
tasks=${CHECK_TASKS:-6}
timeout=${CHECK_TIMEOUT:-180}

if [ -z "${COMPOSE:-}" ]; then
	if docker compose version >/dev/null 2>&1; then COMPOSE="docker compose"; else COMPOSE=docker-compose; fi
fi
project="veo4kcheck$$"
dc() { $COMPOSE -p "$project" -f docker-compose.yml "$@"; }

log() { printf '%s compose-check: %s\n' "$(date -u +%H:%M:%S)" "$*"; }
fail() {
	log "FAIL: $*"
	exit 1
}

cleanup() {
	rc=$?
	if [ $rc -ne 0 ]; then
		log "failed (exit $rc); service logs follow"
		dc ps || true
		dc logs --no-color --tail=80 || true
	fi
	dc down -v --remove-orphans >/dev/null 2>&1 || true
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for image in "$VEO4K_NATS_IMAGE" "${VEO4K_IMAGE_PREFIX}ingress:$VEO4K_IMAGE_TAG" \
	"${VEO4K_IMAGE_PREFIX}fetcher:$VEO4K_IMAGE_TAG" "${VEO4K_IMAGE_PREFIX}providersim:$VEO4K_IMAGE_TAG"; do
	docker image inspect "$image" >/dev/null 2>&1 || fail "image $image missing: run scripts/images.sh"
done

log "starting the stack ($COMPOSE, project $project, NATS image $VEO4K_NATS_IMAGE, 2 fetchers)"
dc up -d --scale fetcher=2

# hostport <service> <container port> [index]
hostport() { dc port --index="${3:-1}" "$1" "$2" | tail -n1 | tr -d '\r'; }

deadline=$((SECONDS + timeout))
wait_healthy() { # every long-running container of the project healthy
	local ids state unhealthy
	while :; do
		ids=$(dc ps -q nats ingress fetcher providersim)
		unhealthy=0
		for id in $ids; do
			state=$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id")
			case $state in healthy | running) ;; *) unhealthy=$((unhealthy + 1)) ;; esac
		done
		[ -n "$ids" ] && [ $unhealthy -eq 0 ] && return 0
		[ $SECONDS -lt $deadline ] || fail "containers not healthy in ${timeout}s"
		sleep 1
	done
}
wait_healthy
[ "$(dc ps -q fetcher | wc -l)" -eq 2 ] || fail "expected 2 fetcher containers"

sim="http://$(hostport providersim 9090)"
nats="nats://$(hostport nats 4222)"
fetchers=("http://$(hostport fetcher 8081 1)" "http://$(hostport fetcher 8081 2)")
log "up: providersim $sim, nats $nats, fetchers ${fetchers[*]}"

# Tasks: small videos, each callback sent twice (a duplicate the system must absorb).
ids=()
for i in $(seq 1 "$tasks"); do
	id="check-$$-$i"
	ids+=("$id")
	code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$sim/sim/tasks" -H 'Content-Type: application/json' \
		-d "{\"taskId\":\"$id\",\"videoBytes\":$((200000 + i * 1000)),\"duplicates\":2}")
	[ "$code" = 201 ] || fail "POST /sim/tasks for $id answered $code"
done
log "created $tasks tasks in the simulator"

# Every entry ready, as seen through either fetcher's catalog API.
for id in "${ids[@]}"; do
	n=0
	while :; do
		api=${fetchers[$((n % 2))]}
		status=$(curl -sS "$api/v1/videos/$id" | jq -r '.status // empty' 2>/dev/null || true)
		[ "$status" = ready ] && break
		case $status in failed | unavailable) fail "$id is $status: $(curl -sS "$api/v1/videos/$id")" ;; esac
		[ $SECONDS -lt $deadline ] || fail "$id not ready in ${timeout}s (status '${status}')"
		n=$((n + 1))
		sleep 0.5
	done
done
log "all $tasks entries ready"

# The stored bytes are the served bytes: compare SHA-256 with the simulator's.
for id in "${ids[@]}"; do
	task=$(curl -sS "$sim/sim/tasks/$id")
	entry=$(curl -sS "${fetchers[1]}/v1/videos/$id")
	for url in $(jq -r '.files[].url' <<<"$task"); do
		want=$(jq -r --arg u "$url" '.files[] | select(.url == $u) | .sha256' <<<"$task")
		name=$(jq -r --arg u "$url" '.files[] | select(.sourceUrl == $u) | .name' <<<"$entry")
		got=$(jq -r --arg u "$url" '.files[] | select(.sourceUrl == $u) | .sha256' <<<"$entry")
		[ -n "$want" ] && [ "$got" = "$want" ] || fail "$id $url: catalog sha256 '$got', simulator '$want'"
		served=$(curl -sS "${fetchers[0]}/v1/videos/$id/files/$name" | sha256sum | cut -d' ' -f1)
		[ "$served" = "$want" ] || fail "$id/$name: stored file sha256 $served, simulator $want"
	done
done
log "catalog and stored files match the simulator's SHA-256"

# One download per file, however many callbacks.
stats=$(curl -sS "$sim/sim/stats")
for id in "${ids[@]}"; do
	full=$(jq --arg id "$id" '[.files | to_entries[] | select(.key | startswith("/files/" + $id + "/")) | .value.full] | add // 0' <<<"$stats")
	nfiles=$(curl -sS "$sim/sim/tasks/$id" | jq '.files | length')
	[ "$full" -eq "$nfiles" ] || fail "$id: $full full downloads of $nfiles files"
done
log "exactly one download per file"

list=$(
	IFS=,
	echo "${ids[*]}"
)
go run ./deployments/eventwatch -nats "$nats" -ready "$list" -timeout "$((deadline - SECONDS > 10 ? deadline - SECONDS : 10))s"

# "docker compose up" alone shows the flow: the demo one-shot succeeded.
demo=$(dc ps -a -q demo)
[ -n "$demo" ] || fail "no demo container"
demo_rc=$(timeout "$((deadline - SECONDS > 10 ? deadline - SECONDS : 10))" docker wait "$demo") || fail "demo did not finish"
dc logs --no-color demo | tail -n 8
[ "$demo_rc" = 0 ] || fail "demo exited $demo_rc"
log "demo service succeeded"

log "PASS"

#!/usr/bin/env bash
# Runs the Docker-based system tests (deployments/systemtest, build tag
# "system") against locally built images, offline: the NATS image defaults to
# the one scripts/images.sh builds from source, and no reaper container is
# started (every test removes its own containers, networks and volumes).
#
#   scripts/system-test.sh                 # build the images, run every test
#   SKIP_IMAGES=1 scripts/system-test.sh -run TestDuplicateStorm
#
# Extra arguments go to "go test". Settings: VEO4K_NATS_IMAGE (default
# veo4k/nats:2.15.3-offline; nats:2.15.3 uses the official image),
# VEO4K_IMAGE_PREFIX, VEO4K_IMAGE_TAG, SKIP_IMAGES=1 to reuse built images.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

export VEO4K_NATS_IMAGE=${VEO4K_NATS_IMAGE:-veo4k/nats:2.15.3-offline}
export TESTCONTAINERS_RYUK_DISABLED=${TESTCONTAINERS_RYUK_DISABLED:-true}

if [ "${SKIP_IMAGES:-}" != 1 ]; then
	images=(ingress fetcher providersim)
	case $VEO4K_NATS_IMAGE in *-offline) images+=(nats) ;; esac
	scripts/images.sh "${images[@]}"
fi

exec go test -tags system ./deployments/systemtest/ -v -count=1 -timeout 40m "$@"

// Package systemtest proves veo4k's guarantees against the real container
// images: each test builds its own Docker networks of real containers (NATS
// with a volume, ingress, two fetchers sharing a data volume, the provider
// simulator), breaks something on purpose, and asserts on the catalog API,
// the stored files' SHA-256, the simulator's request counts and the events a
// pkg/events subscriber received.
//
// The tests sit behind the build tag "system" and need Docker and the images
// (scripts/images.sh):
//
//	TESTCONTAINERS_RYUK_DISABLED=true VEO4K_NATS_IMAGE=veo4k/nats:2.15.3-offline \
//	  go test -tags system ./deployments/systemtest/ -v -timeout 40m
//
// Images come from VEO4K_NATS_IMAGE (default nats:2.15.3), VEO4K_IMAGE_PREFIX
// (veo4k/) and VEO4K_IMAGE_TAG (dev). Containers publish their ports on
// 127.0.0.1 only; the tests talk to nothing else.
package systemtest

#!/usr/bin/env bash
# Builds veo4k's container images locally, without any registry: the static
# Go binaries are compiled on this machine (CGO_ENABLED=0), staged with a CA
# bundle into a build context, and copied into FROM scratch images.
#
#   scripts/images.sh                          # veo4k's images
#   VEO4K_NATS_OFFLINE=1 scripts/images.sh     # ... and the offline NATS image
#   scripts/images.sh ingress fetcher nats     # only these
#
# Images: ingress fetcher providersim standalone, and nats: the offline
# stand-in for the official nats:$VEO4K_NATS_VERSION image, built from the Go
# module github.com/nats-io/nats-server/v2 at that version, for machines that
# cannot pull it (built when named or with VEO4K_NATS_OFFLINE=1); compose and
# the system tests use it only when VEO4K_NATS_IMAGE names it.
#
# Settings (environment):
#   VEO4K_IMAGE_PREFIX   image name prefix            (default veo4k/)
#   VEO4K_IMAGE_TAG      tag of veo4k's own images    (default dev)
#   VEO4K_NATS_VERSION   nats-server version          (default 2.15.3)
#   VEO4K_NATS_OFFLINE_IMAGE  name of the offline NATS image
#                        (default ${VEO4K_IMAGE_PREFIX}nats:${VEO4K_NATS_VERSION}-offline;
#                        point VEO4K_NATS_IMAGE at it to use it)
#   VEO4K_NATS_OFFLINE   1: also build the offline NATS image (default 0)
#   VEO4K_CA_BUNDLE      CA bundle to copy into the images (default: the host's)
#   VEO4K_VERSION        the images' version label (default: git describe)
#
# Needs: Go (the version in go.mod) and Docker. Prints the image sizes.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

prefix=${VEO4K_IMAGE_PREFIX-veo4k/}
tag=${VEO4K_IMAGE_TAG:-dev}
nats_version=${VEO4K_NATS_VERSION:-2.15.3}
nats_image=${VEO4K_NATS_OFFLINE_IMAGE:-${prefix}nats:${nats_version}-offline}
version=${VEO4K_VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)

all=(ingress fetcher providersim standalone nats)
if [ $# -gt 0 ]; then
	targets=("$@")
else
	targets=(ingress fetcher providersim standalone)
	if [ "${VEO4K_NATS_OFFLINE:-0}" = 1 ]; then targets+=(nats); fi
fi
for t in "${targets[@]}"; do
	case " ${all[*]} " in *" $t "*) ;; *) echo "images.sh: unknown image $t (known: ${all[*]})" >&2; exit 2 ;; esac
done

# Build for the Docker engine's platform (linux/arm64 on Apple silicon, ...).
goos=linux
goarch=${GOARCH:-$(docker version --format '{{.Server.Arch}}' 2>/dev/null || go env GOARCH)}

ctx=$(mktemp -d "${TMPDIR:-/tmp}/veo4k-images.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/bin" "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/data" "$ctx/rootfs/tmp"

# CA certificates for https downloads: the host's bundle.
ca=${VEO4K_CA_BUNDLE:-}
if [ -z "$ca" ]; then
	for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/ca-bundle.pem /etc/ssl/cert.pem; do
		if [ -s "$f" ]; then ca=$f; break; fi
	done
fi
if [ -z "$ca" ] || [ ! -s "$ca" ]; then
	echo "images.sh: no CA bundle found; set VEO4K_CA_BUNDLE to a PEM file" >&2
	exit 1
fi
cp "$ca" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/data:/sbin/nologin\n' >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$ctx/rootfs/etc/group"

gobuild() { # gobuild <output> <package>
	CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath \
		-ldflags "-s -w" -o "$1" "$2"
}

dockerbuild() { # dockerbuild <image> <dockerfile> <context> [build args...]
	local image=$1 dockerfile=$2 context=$3
	shift 3
	# The legacy builder's deprecation banner is noise here.
	docker build -q -t "$image" -f "$dockerfile" "$@" "$context" 2>&1 \
		| grep -v -e 'DEPRECATED: The legacy builder' -e 'Install the buildx' -e 'docs.docker.com/go/buildx' -e '^ *$' || true
	docker image inspect "$image" >/dev/null
}

built=()
need_base=1
base_image="${prefix}base:${tag}"
for t in "${targets[@]}"; do
	if [ "$t" = nats ]; then
		echo "building $nats_image (nats-server v$nats_version from source)"
		natsctx="$ctx/nats"
		mkdir -p "$natsctx/gopath"
		# go install module@version builds exactly the upstream module graph.
		# A throwaway GOPATH receives the binary (cross-compiled ones land in
		# bin/<os>_<arch>/); the module cache stays the usual one.
		(cd "$natsctx" && env -u GOBIN GOPATH="$natsctx/gopath" GOMODCACHE="$(go env GOMODCACHE)" \
			GOFLAGS=-trimpath CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch \
			go install -ldflags "-s -w" "github.com/nats-io/nats-server/v2@v$nats_version")
		bin=$(find "$natsctx/gopath/bin" -type f -name nats-server | head -n1)
		cp "$bin" "$natsctx/nats-server"
		chmod -R u+w "$natsctx/gopath" && rm -rf "$natsctx/gopath"
		cp deployments/nats/nats-server.conf "$natsctx/"
		dockerbuild "$nats_image" deployments/nats/Dockerfile "$natsctx" --build-arg "NATS_VERSION=$nats_version"
		built+=("$nats_image")
		continue
	fi
	if [ $need_base = 1 ]; then
		# What every image shares (user, CA bundle, /data, probe, labels).
		gobuild "$ctx/bin/healthcheck" ./deployments/healthcheck
		dockerbuild "$base_image" deployments/base/Dockerfile "$ctx" \
			--build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "CREATED=$created"
		need_base=0
	fi
	image="${prefix}${t}:${tag}"
	echo "building $image"
	svcctx="$ctx/$t"
	mkdir -p "$svcctx/bin"
	gobuild "$svcctx/bin/$t" "./services/$t"
	if [ "$t" = providersim ]; then
		gobuild "$svcctx/bin/demo" ./deployments/demo
	fi
	dockerbuild "$image" "deployments/$t/Dockerfile" "$svcctx" --build-arg "BASE=$base_image"
	built+=("$image")
done

echo
printf '%-45s %10s\n' IMAGE SIZE
for image in "${built[@]}"; do
	bytes=$(docker image inspect --format '{{.Size}}' "$image")
	printf '%-45s %7.1f MB\n' "$image" "$(echo "$bytes" | awk '{print $1/1000000}')"
done

#!/usr/bin/env bash
# Regenerates the Go code of proto/ and lints the .proto files.
# Installs its pinned tools (buf, protoc-gen-go) into ./.bin from the Go module proxy.
# Usage: scripts/gen-proto.sh [--check]   (--check fails when the committed code is stale)
set -euo pipefail
cd "$(dirname "$0")/.."
BUF_VERSION=v1.75.0
PROTOC_GEN_GO_VERSION=v1.36.12   # keep equal to google.golang.org/protobuf in go.mod
export GOBIN="$PWD/.bin" PATH="$PWD/.bin:$PATH"
[ -x .bin/buf ] && .bin/buf --version | grep -qx "${BUF_VERSION#v}" || go install "github.com/bufbuild/buf/cmd/buf@$BUF_VERSION"
[ -x .bin/protoc-gen-go ] && .bin/protoc-gen-go --version | grep -q "${PROTOC_GEN_GO_VERSION}" || go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
(cd proto && buf lint && buf format --diff --exit-code && buf generate)
if [ "${1:-}" = "--check" ]; then
  if ! git diff --exit-code -- proto/ || [ -n "$(git status --porcelain -- proto/)" ]; then
    echo "gen-proto: the committed generated code differs from a fresh generation; run scripts/gen-proto.sh and commit" >&2
    exit 1
  fi
fi

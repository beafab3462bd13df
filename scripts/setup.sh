#!/usr/bin/env bash
# One-step set-up: npm dependencies, the build, and the binaries the tests need (cached, idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools.env
source scripts/tools.env
TOOLS_DIR="${DFN_TOOLS_DIR:-$DFN_TOOLS_DIR_DEFAULT}"

step() { printf '\n==> %s\n' "$*"; }

step "npm dependencies"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi

step "build (TypeScript → dist/)"
npm run build

command -v go >/dev/null || {
  echo "setup: Go is needed to build the test binaries (nats-server, Kubernetes, helm)" >&2
  exit 1
}

# go_tool NAME VERSION MODULE: go install MODULE@VERSION into $TOOLS_DIR/NAME-VERSION unless already there.
go_tool() {
  local name=$1 version=$2 module=$3 dir="$TOOLS_DIR/$1-$2"
  if [ -x "$dir/$name" ]; then
    echo "$name $version: cached at $dir/$name"
    return
  fi
  step "building $name $version from $module (first time only)"
  mkdir -p "$dir.tmp"
  GOBIN="$dir.tmp" GOFLAGS=-trimpath go install "$module@$version"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  echo "$name $version: built at $dir/$name"
}

step "test binaries in $TOOLS_DIR"
go_tool nats-server "$NATS_SERVER_VERSION" github.com/nats-io/nats-server/v2
"$TOOLS_DIR/nats-server-$NATS_SERVER_VERSION/nats-server" --version

step "Kubernetes control plane and helm (scripts/kube-tools.sh)"
bash scripts/kube-tools.sh

step "set-up complete"

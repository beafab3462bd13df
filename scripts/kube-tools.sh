#!/usr/bin/env bash
# Builds the Kubernetes binaries the tests and `dfn up` run: kube-apiserver, kube-controller-manager,
# kubectl and etcd (the version that Kubernetes release pins) from one wrapper Go module, and helm.
# Cached outside the work tree keyed by version; a binary is skipped when the cached one answers with the
# pinned version, or when DFN_KUBE_ASSETS / KUBEBUILDER_ASSETS points at a directory that already holds it
# (local/tools.ts resolves binaries the same way). Idempotent; prints its progress.
#   bash scripts/kube-tools.sh            (scripts/setup.sh runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools.env
source scripts/tools.env
TOOLS_DIR="${DFN_TOOLS_DIR:-$DFN_TOOLS_DIR_DEFAULT}"
KUBE_DIR="$TOOLS_DIR/kubernetes-$KUBERNETES_VERSION"
HELM_DIR="$TOOLS_DIR/helm-$HELM_VERSION"
# A fixed build date keeps the link inputs identical from one run to the next, so a rebuild with a warm Go
# cache is a cache hit (seconds) instead of a recompilation.
BUILD_DATE=2026-11-18T00:00:00Z

step() { printf '\n==> %s\n' "$*"; }

# version_ok BIN EXPECTED ARGS...: the binary exists and prints the expected version.
version_ok() {
  local bin=$1 expected=$2 out
  shift 2
  # Captured first: `grep -q` on a pipe may exit before the binary is done writing, and the SIGPIPE would
  # fail the pipeline under pipefail.
  [ -x "$bin" ] && out=$("$bin" "$@" 2>&1) && grep -qF -- "$expected" <<<"$out"
}

# The Go package of each binary, and how it prints its version.
package_of() {
  case $1 in
  etcd) echo go.etcd.io/etcd/server/v3 ;;
  *) echo "k8s.io/kubernetes/cmd/$1" ;;
  esac
}
version_args() { if [ "$1" = kubectl ]; then echo "version --client"; else echo --version; fi; }
cached_ok() {
  local expected=$KUBERNETES_VERSION
  [ "$1" = etcd ] && expected=${ETCD_VERSION#v}
  # shellcheck disable=SC2046
  version_ok "$KUBE_DIR/$1" "$expected" $(version_args "$1")
}

# with_heartbeat LOG CMD...: runs CMD with its output in LOG and prints a line every 30 s, so a build that
# is quiet for ten minutes still shows it is alive (and how far: `go build -v` names each compiled package).
with_heartbeat() {
  local log=$1 start=$SECONDS beat
  shift
  ("$@" >"$log" 2>&1) &
  local pid=$!
  (while sleep 30; do
    n=$(grep -cv '^go: ' "$log" 2>/dev/null || true)
    echo "    ... $((SECONDS - start)) s, ${n:-0} packages compiled"
  done) &
  beat=$!
  local status=0
  wait "$pid" || status=$?
  kill "$beat" 2>/dev/null || true
  wait "$beat" 2>/dev/null || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$log" >&2
    echo "kube-tools: failed (exit $status); full output in $log" >&2
  fi
  return "$status"
}

# ---- which binaries are needed -----------------------------------------------------------------------
assets="${DFN_KUBE_ASSETS:-${KUBEBUILDER_ASSETS:-}}"
build=()
for b in etcd kube-apiserver kube-controller-manager kubectl; do
  if [ -n "$assets" ] && [ -x "$assets/$b" ]; then
    # shellcheck disable=SC2046
    echo "$b: prebuilt in $assets ($("$assets/$b" $(version_args "$b") 2>&1 | head -1))"
  elif cached_ok "$b"; then
    echo "$b: cached in $KUBE_DIR"
  else
    build+=("$b")
  fi
done
if [ -n "$assets" ] && [ ${#build[@]} -gt 0 ]; then
  echo "kube-tools: $assets lacks ${build[*]} (envtest's assets have no kube-controller-manager); building them"
fi

# ---- the Kubernetes build ----------------------------------------------------------------------------
if [ ${#build[@]} -gt 0 ]; then
  step "building ${build[*]} (Kubernetes $KUBERNETES_VERSION, etcd $ETCD_VERSION; first time ~10-15 min on 2 cores, seconds with a warm Go cache)"
  src="$TOOLS_DIR/src/kubernetes-$KUBERNETES_VERSION"
  mkdir -p "$src"
  # Kubernetes' own go.mod replaces its staging modules with local paths, so `go install …@version`
  # refuses it; a wrapper module requires it and points each staging module at its published v0.x tag.
  gomod_file=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  staging_version="v0.${KUBERNETES_VERSION#v1.}" # v1.37.2 → v0.37.2
  staging=$(sed -n '/^require (/,/^)/p' "$gomod_file" | awk '$2 == "v0.0.0" { print $1 }')
  {
    echo "module dfn.dev/kubernetes-tools"
    echo
    echo "go 1.26.0"
    echo
    echo "godebug default=go1.26"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "replace ("
    for m in $staging; do echo "	$m => $m $staging_version"; done
    echo ")"
    echo
    # The tool block keeps every main package in the graph `go mod tidy` resolves.
    echo "tool ("
    for b in etcd kube-apiserver kube-controller-manager kubectl; do echo "	$(package_of "$b")"; done
    echo ")"
  } >"$src/go.mod"
  echo "wrapper module: $src/go.mod ($(echo "$staging" | wc -w) staging modules at $staging_version)"

  step "resolving modules (go mod tidy; first time ~1 min and ~600 MB of downloads)"
  (cd "$src" && go mod tidy)

  step "compiling ${build[*]} in one go build (peak memory ~2.5 GiB)"
  minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  ldf="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="$ldf -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldf="$ldf -X $pkg.gitTreeState=clean -X $pkg.gitCommit=$KUBERNETES_VERSION -X $pkg.buildDate=$BUILD_DATE"
  done
  packages=()
  for b in "${build[@]}"; do packages+=("$(package_of "$b")"); done
  out="$KUBE_DIR.tmp"
  rm -rf "$out" && mkdir -p "$out"
  start=$SECONDS
  # One package builds to its own name (`-o dir/` names it after the package: etcd's is `server`).
  (cd "$src" && with_heartbeat "$TOOLS_DIR/src/kubernetes-build.log" \
    env CGO_ENABLED=0 go build -v -trimpath -ldflags "$ldf" -o "$out/" "${packages[@]}")
  [ -e "$out/server" ] && mv "$out/server" "$out/etcd"
  mkdir -p "$KUBE_DIR"
  for b in "${build[@]}"; do mv -f "$out/$b" "$KUBE_DIR/$b"; done
  rm -rf "$out"
  echo "built ${build[*]} in $((SECONDS - start)) s into $KUBE_DIR"
  for b in "${build[@]}"; do
    cached_ok "$b" || {
      echo "kube-tools: $KUBE_DIR/$b does not report version $KUBERNETES_VERSION / $ETCD_VERSION" >&2
      exit 1
    }
  done
fi

# ---- helm ----------------------------------------------------------------------------------------------
if version_ok "$HELM_DIR/helm" "$HELM_VERSION" version --short; then
  echo "helm: cached in $HELM_DIR"
else
  step "building helm $HELM_VERSION (first time ~2-3 min, seconds with a warm Go cache)"
  rm -rf "$HELM_DIR.tmp" && mkdir -p "$HELM_DIR.tmp" "$TOOLS_DIR/src"
  major=${HELM_VERSION%%.*}
  # Without the -X, helm reports only its minor version (v4.3).
  with_heartbeat "$TOOLS_DIR/src/helm-build.log" \
    env GOBIN="$HELM_DIR.tmp" CGO_ENABLED=0 go install -v -trimpath \
    -ldflags "-s -w -X helm.sh/helm/$major/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/$major/cmd/helm@$HELM_VERSION"
  rm -rf "$HELM_DIR" && mv "$HELM_DIR.tmp" "$HELM_DIR"
  version_ok "$HELM_DIR/helm" "$HELM_VERSION" version --short || {
    echo "kube-tools: $HELM_DIR/helm does not report version $HELM_VERSION" >&2
    exit 1
  }
fi

kube_bin() { if [ -n "$assets" ] && [ -x "$assets/$1" ]; then echo "$assets/$1"; else echo "$KUBE_DIR/$1"; fi; }
echo "kubernetes: $("$(kube_bin kube-apiserver)" --version), $("$(kube_bin etcd)" --version | head -1), helm $("$HELM_DIR/helm" version --short)"

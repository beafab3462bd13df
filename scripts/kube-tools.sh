#!/usr/bin/env bash
# Builds the Kubernetes binaries the tests and `dfn up` run: kube-apiserver, kube-controller-manager,
# kubectl and etcd (the version that Kubernetes release pins) from one wrapper Go module, and helm.
# Cached outside the work tree keyed by version; skipped when the cached binaries answer with the pinned
# version, or when KUBEBUILDER_ASSETS / DFN_KUBE_ASSETS points at a directory that already holds them.
#   bash scripts/kube-tools.sh            (scripts/setup.sh runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools.env
source scripts/tools.env
TOOLS_DIR="${DFN_TOOLS_DIR:-$DFN_TOOLS_DIR_DEFAULT}"
KUBE_DIR="$TOOLS_DIR/kubernetes-$KUBERNETES_VERSION"
HELM_DIR="$TOOLS_DIR/helm-$HELM_VERSION"
# A fixed build date keeps a rebuild with a warm Go cache a cache hit instead of a relink.
BUILD_DATE=2026-11-18T00:00:00Z

step() { printf '\n==> %s\n' "$*"; }

# version_ok BIN EXPECTED ARGS...: the binary exists and prints the expected version.
version_ok() {
  local bin=$1 expected=$2
  shift 2
  [ -x "$bin" ] && "$bin" "$@" 2>&1 | grep -qF -- "$expected"
}

assets="${DFN_KUBE_ASSETS:-${KUBEBUILDER_ASSETS:-}}"
if [ -n "$assets" ]; then
  missing=()
  for b in kube-apiserver etcd kubectl; do [ -x "$assets/$b" ] || missing+=("$b"); done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "kubernetes: using prebuilt binaries in $assets (kube-controller-manager: ${assets}/kube-controller-manager$([ -x "$assets/kube-controller-manager" ] || echo ' missing: garbage collection and Deployments will not run'))"
    kube_prebuilt=1
  else
    echo "kubernetes: $assets lacks ${missing[*]}; building them instead" >&2
  fi
fi

if [ -z "${kube_prebuilt:-}" ]; then
  if version_ok "$KUBE_DIR/kube-apiserver" "$KUBERNETES_VERSION" --version &&
    version_ok "$KUBE_DIR/kube-controller-manager" "$KUBERNETES_VERSION" --version &&
    version_ok "$KUBE_DIR/kubectl" "$KUBERNETES_VERSION" version --client &&
    version_ok "$KUBE_DIR/etcd" "${ETCD_VERSION#v}" --version; then
    echo "kubernetes $KUBERNETES_VERSION: cached in $KUBE_DIR"
  else
    step "building kube-apiserver, kube-controller-manager, kubectl $KUBERNETES_VERSION and etcd $ETCD_VERSION (first time: ~10-15 min on 2 cores)"
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
      echo "tool ("
      echo "	go.etcd.io/etcd/server/v3"
      echo "	k8s.io/kubernetes/cmd/kube-apiserver"
      echo "	k8s.io/kubernetes/cmd/kube-controller-manager"
      echo "	k8s.io/kubernetes/cmd/kubectl"
      echo ")"
    } >"$src/go.mod"
    echo "wrapper module: $src/go.mod ($(echo "$staging" | wc -w) staging modules at $staging_version)"
    step "resolving modules (go mod tidy)"
    (cd "$src" && go mod tidy)
    step "compiling the four binaries in one go build (quiet for minutes; peak memory ~2.5 GiB)"
    minor=${KUBERNETES_VERSION#v1.}
    minor=${minor%%.*}
    ldf="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldf="$ldf -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
      ldf="$ldf -X $pkg.gitTreeState=clean -X $pkg.gitCommit=$KUBERNETES_VERSION -X $pkg.buildDate=$BUILD_DATE"
    done
    rm -rf "$KUBE_DIR.tmp" && mkdir -p "$KUBE_DIR.tmp"
    start=$(date +%s)
    (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldf" -o "$KUBE_DIR.tmp/" \
      go.etcd.io/etcd/server/v3 k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl)
    mv "$KUBE_DIR.tmp/server" "$KUBE_DIR.tmp/etcd"
    rm -rf "$KUBE_DIR" && mv "$KUBE_DIR.tmp" "$KUBE_DIR"
    echo "kubernetes $KUBERNETES_VERSION: built in $(($(date +%s) - start)) s at $KUBE_DIR"
  fi
  "$KUBE_DIR/kube-apiserver" --version
  "$KUBE_DIR/etcd" --version | head -1
fi

if version_ok "$HELM_DIR/helm" "$HELM_VERSION" version --short; then
  echo "helm $HELM_VERSION: cached at $HELM_DIR/helm"
else
  step "building helm $HELM_VERSION (first time: ~2-3 min)"
  rm -rf "$HELM_DIR.tmp" && mkdir -p "$HELM_DIR.tmp"
  major=${HELM_VERSION%%.*}
  GOBIN="$HELM_DIR.tmp" CGO_ENABLED=0 go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/$major/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/$major/cmd/helm@$HELM_VERSION"
  rm -rf "$HELM_DIR" && mv "$HELM_DIR.tmp" "$HELM_DIR"
fi
"$HELM_DIR/helm" version --short

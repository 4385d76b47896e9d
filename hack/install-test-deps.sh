#!/usr/bin/env bash
# Installs the servers the test suite runs for real, from Debian's packages, when missing:
# Prometheus (metric evidence; promtool backfills test series).
set -euo pipefail
need=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || need+=(prometheus)
if [[ ${#need[@]} -eq 0 ]]; then exit 0; fi
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
echo "[install-test-deps] installing ${need[*]} from Debian" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The packages start system services where an init system runs; tests start their own.
$SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true

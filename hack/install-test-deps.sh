#!/usr/bin/env bash
# Installs the servers the test suite runs for real, from Debian's packages, when missing:
# Prometheus (metric evidence; promtool backfills test series), Alertmanager (alert ingest),
# PostgreSQL (incident history) and Redis (events). Tests start their own instances on loopback.
set -euo pipefail
need=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v redis-server >/dev/null || need+=(redis-server)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
if [[ ${#need[@]} -eq 0 ]]; then exit 0; fi
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
echo "[install-test-deps] installing ${need[*]} from Debian" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The packages start system services where an init system runs; tests start their own.
for service in prometheus prometheus-alertmanager redis-server postgresql; do
  $SUDO systemctl disable --now "$service" >/dev/null 2>&1 || true
done

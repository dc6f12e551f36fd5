# Prometheus' Alertmanager for the alerting test: installed from Debian's packages when missing
# (as root). The test starts its own instance on loopback and stops it by PID.
# Source it, then: alertmanager_install.

# shellcheck source=debian.sh
source "$(dirname "${BASH_SOURCE[0]}")/debian.sh"

alertmanager_install() {
  debian_install prometheus-alertmanager prometheus-alertmanager || return 1
  # The package may start a service where an init system runs; the test uses its own.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus-alertmanager 2>/dev/null; then
    systemctl stop prometheus-alertmanager >&2 || true
  fi
}

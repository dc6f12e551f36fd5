# Prometheus for the tests: installed from Debian's packages when missing (as root). The test
# that needs it starts its own instance on loopback and stops it by PID.
# Source it, then: prometheus_install.

# shellcheck source=debian.sh
source "$(dirname "${BASH_SOURCE[0]}")/debian.sh"

prometheus_install() {
  debian_install prometheus prometheus promtool || return 1
  # The package may start a service where an init system runs; the tests use their own.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl stop prometheus >&2 || true
  fi
}

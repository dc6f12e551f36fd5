# Prometheus for the tests: installed from Debian's packages when missing (as root). The test
# that needs it starts its own instance on loopback and stops it by PID.
# Source it, then: prometheus_install.

prometheus_install() {
  command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "prometheus is not installed and installing it needs root" >&2
    return 1
  fi
  echo "installing prometheus (Debian package)…" >&2
  apt-get update -qq >&2 || return 1
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq prometheus >&2 || return 1
  # The package may start a service where an init system runs; the tests use their own.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl stop prometheus >&2 || true
  fi
}

# nginx for the tests: installed from Debian's packages when missing (as root). The test that
# needs it (TLS in front of two instances) starts its own on loopback ports and stops it by PID.
# Source it, then: nginx_install.

# shellcheck source=debian.sh
source "$(dirname "${BASH_SOURCE[0]}")/debian.sh"

nginx_install() {
  debian_install nginx-light nginx || return 1
  # The package may start a service where an init system runs; the tests use their own.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
    systemctl stop nginx >&2 || true
  fi
}

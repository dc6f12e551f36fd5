# Headless Chromium for the web UI's end-to-end tests: installed from Debian's packages when
# missing (as root). The test starts it through playwright-core and it exits with the test.
# Source it, then: chromium_install.

chromium_install() {
  command -v chromium >/dev/null 2>&1 && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "chromium is not installed and installing it needs root" >&2
    return 1
  fi
  echo "installing chromium (Debian package)…" >&2
  apt-get update -qq >&2 || return 1
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >&2 || return 1
}

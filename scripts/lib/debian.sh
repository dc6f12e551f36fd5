# Installs a Debian package when a command it provides is missing (as root); the services the
# tests and benchmarks use come this way.
# Source it, then: debian_install PACKAGE COMMAND… (or debian_install_package PACKAGE, for a
# package that provides no command of its own).

debian_install() {
  local package=$1 command missing=0
  shift
  for command in "$@"; do
    command -v "$command" >/dev/null 2>&1 || missing=1
  done
  [ "$missing" = 0 ] && return 0
  debian_install_package "$package"
}

debian_install_package() {
  local package=$1
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "$package is not installed and installing it needs root" >&2
    return 1
  fi
  echo "installing $package (Debian package)…" >&2
  apt-get update -qq >&2 || return 1
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$package" >&2
}

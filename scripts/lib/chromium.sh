# Headless Chromium for the web UI's end-to-end tests: installed from Debian's packages when
# missing (as root). The test starts it through playwright-core and it exits with the test.
# Source it, then: chromium_install.

# shellcheck source=debian.sh
source "$(dirname "${BASH_SOURCE[0]}")/debian.sh"

chromium_install() {
  debian_install chromium chromium
}

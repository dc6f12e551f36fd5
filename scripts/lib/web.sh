# The web UI: its npm packages (from package-lock.json), its build into web/dist (which the
# server embeds when it is compiled) and its unit tests.
# Source it, then: web_build, web_unit_tests.

web_build() {
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm not found: install Node.js (20 or later) to build the web UI" >&2
    return 1
  fi
  (
    cd web || exit 1
    # npm ci starts from the lock file every time; skip it when nothing changed since.
    if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
      npm ci --no-audit --no-fund --loglevel=error >&2 || exit 1
    fi
    npm run --silent build >&2
  )
}

web_unit_tests() {
  (cd web && npm test --silent)
}

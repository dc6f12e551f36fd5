# Python packages from PyPI that tests drive against MyMonit, in a private virtual environment
# under target/: the InfluxDB client libraries (`influxdb` 1.x and `influxdb-client` 2.x), and
# the sources MyMonit pulls from: a Flask-MonitoringDashboard 1.13 app (with the Flask,
# Werkzeug, SQLAlchemy and WTForms it was made for) and a `prometheus_client` service.
# Source it, then: python_clients_install (exports MYMONIT_TEST_PYTHON).

PYTHON_VENV=${PYTHON_VENV:-$PWD/target/test-python}

# shellcheck source=debian.sh
source "$(dirname "${BASH_SOURCE[0]}")/debian.sh"

python_clients_install() {
  if [ ! -x "$PYTHON_VENV/bin/python" ]; then
    debian_install python3 python3 || return 1
    if ! python3 -m venv "$PYTHON_VENV" >/dev/null 2>&1; then
      # Debian keeps venv's pip bootstrap in a package of its own.
      rm -rf "$PYTHON_VENV"
      debian_install_package python3-venv || return 1
      python3 -m venv "$PYTHON_VENV" || return 1
    fi
  fi
  "$PYTHON_VENV/bin/pip" install -q --disable-pip-version-check \
    "influxdb==5.3.2" "influxdb-client==1.49.0" \
    "Flask-MonitoringDashboard==1.13.0" "Flask==2.2.5" "Werkzeug==2.2.3" "SQLAlchemy==1.3.24" \
    "WTForms<3" "PyJWT==2.15.1" "prometheus_client==0.26.0" >&2 || return 1
  export MYMONIT_TEST_PYTHON="$PYTHON_VENV/bin/python"
}

# InfluxDB 1.6 (Debian's `influxdb`): the benchmarks' peer and the reference of the InfluxQL
# comparison test (which starts its own instances). influxdb_start runs a private instance on
# 127.0.0.1:$INFLUX_PORT with its data in a scratch directory.
# Source it, then: influxdb_start (exports BENCH_INFLUXDB_URL) and influxdb_stop.

INFLUX_PORT=${INFLUX_PORT:-18086}
INFLUX_DIR=${INFLUX_DIR:-$(mktemp -d /tmp/mymonit-influxdb.XXXXXX)}

# shellcheck source=debian.sh
source "$(dirname "${BASH_SOURCE[0]}")/debian.sh"

influxdb_install() {
  debian_install influxdb influxd
}

influxdb_start() {
  influxdb_install || return 1
  mkdir -p "$INFLUX_DIR"
  cat > "$INFLUX_DIR/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$((INFLUX_PORT + 1))"
[meta]
  dir = "$INFLUX_DIR/meta"
[data]
  dir = "$INFLUX_DIR/data"
  wal-dir = "$INFLUX_DIR/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$INFLUX_PORT"
  log-enabled = false
[monitor]
  store-enabled = false
CONF
  influxd -config "$INFLUX_DIR/influxdb.conf" > "$INFLUX_DIR/influxd.log" 2>&1 &
  echo $! > "$INFLUX_DIR/influxd.pid"
  local deadline=$((SECONDS + 60))
  until curl -sf "http://127.0.0.1:$INFLUX_PORT/ping" >/dev/null; do
    if ! kill -0 "$(cat "$INFLUX_DIR/influxd.pid")" 2>/dev/null || [ $SECONDS -gt $deadline ]; then
      echo "influxd did not start; its log:" >&2
      tail -20 "$INFLUX_DIR/influxd.log" >&2
      return 1
    fi
    sleep 0.2
  done
  export BENCH_INFLUXDB_URL="http://127.0.0.1:$INFLUX_PORT"
  echo "InfluxDB is up on 127.0.0.1:$INFLUX_PORT (pid $(cat "$INFLUX_DIR/influxd.pid"))" >&2
}

influxdb_stop() {
  [ -f "$INFLUX_DIR/influxd.pid" ] || return 0
  local pid
  pid=$(cat "$INFLUX_DIR/influxd.pid")
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  rm -rf "$INFLUX_DIR"
}

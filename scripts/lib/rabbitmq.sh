# RabbitMQ for the tests: installed from Debian's packages when missing, started as an
# isolated node on loopback with its data in a scratch directory, stopped by PID.
# Source it, then: rabbitmq_start (exports MYMONIT_TEST_AMQP_URL, and for its TLS listener on
# the next port MYMONIT_TEST_AMQPS_URL and MYMONIT_TEST_AMQPS_CA, the private CA that signed
# its certificate, and MYMONIT_TEST_AMQPS_CLIENT_CERT / _KEY, a client certificate for the
# EXTERNAL mechanism: its common name is a user without a password) and rabbitmq_stop (rabbitmq_halt stops it and keeps its data, for a
# restart).

RMQ_PORT=${RMQ_PORT:-5679}
RMQ_DIR=${RMQ_DIR:-$(mktemp -d /tmp/mymonit-rabbitmq.XXXXXX)}

# shellcheck source=debian.sh
source "$(dirname "${BASH_SOURCE[0]}")/debian.sh"
# shellcheck source=certificates.sh
source "$(dirname "${BASH_SOURCE[0]}")/certificates.sh"

rabbitmq_install() {
  debian_install rabbitmq-server /usr/lib/rabbitmq/bin/rabbitmq-server
}

# A private CA, the broker's certificate (for 127.0.0.1) and a client certificate, made once
# per data directory.
rabbitmq_certificates() {
  [ -f "$RMQ_DIR/tls/client.crt" ] && return 0
  test_certificates "$RMQ_DIR/tls" && test_client_certificate "$RMQ_DIR/tls" mymonit-client
}

rabbitmq_start() {
  rabbitmq_install || return 1
  export RABBITMQ_NODENAME="mymonit-test-$RMQ_PORT@localhost" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$RMQ_PORT \
    RABBITMQ_DIST_PORT=$((RMQ_PORT + 20000)) \
    RABBITMQ_MNESIA_BASE=$RMQ_DIR/mnesia RABBITMQ_LOG_BASE=$RMQ_DIR/log \
    RABBITMQ_PID_FILE=$RMQ_DIR/beam.pid \
    RABBITMQ_ENABLED_PLUGINS_FILE=$RMQ_DIR/enabled_plugins \
    RABBITMQ_CONFIG_FILE=$RMQ_DIR/rabbitmq.conf \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    ERL_EPMD_ADDRESS=127.0.0.1
  mkdir -p "$RMQ_DIR/mnesia" "$RMQ_DIR/log"
  echo "[rabbitmq_auth_mechanism_ssl]." > "$RMQ_DIR/enabled_plugins"
  rabbitmq_certificates || { echo "cannot make the broker's TLS certificate" >&2; return 1; }
  cat > "$RMQ_DIR/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$RMQ_PORT
listeners.ssl.default = 127.0.0.1:$((RMQ_PORT + 1))
ssl_options.cacertfile = $RMQ_DIR/tls/ca.crt
ssl_options.certfile = $RMQ_DIR/tls/server.crt
ssl_options.keyfile = $RMQ_DIR/tls/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
auth_mechanisms.1 = PLAIN
auth_mechanisms.2 = AMQPLAIN
auth_mechanisms.3 = EXTERNAL
ssl_cert_login_from = common_name
CONF
  # A plain command, so that $! is the server's own PID (not a subshell's).
  /usr/lib/rabbitmq/bin/rabbitmq-server > "$RMQ_DIR/server.out" 2>&1 &
  echo $! > "$RMQ_DIR/server.pid"
  if ! /usr/lib/rabbitmq/bin/rabbitmqctl wait --timeout 120 "$RABBITMQ_PID_FILE" > "$RMQ_DIR/wait.out" 2>&1; then
    echo "RabbitMQ did not start; its output:" >&2
    tail -n 30 "$RMQ_DIR/server.out" >&2
    return 1
  fi
  # The broker deletes its pid file while stopping: keep the PID to wait on.
  cp "$RABBITMQ_PID_FILE" "$RMQ_DIR/beam.keep"
  export MYMONIT_TEST_AMQP_URL="amqp://guest:guest@127.0.0.1:$RMQ_PORT/%2f"
  export MYMONIT_TEST_AMQPS_URL="amqps://guest:guest@127.0.0.1:$((RMQ_PORT + 1))/%2f"
  export MYMONIT_TEST_AMQPS_CA="$RMQ_DIR/tls/ca.crt"
  # The client certificate's common name, a user that signs in with the certificate alone.
  local ctl=/usr/lib/rabbitmq/bin/rabbitmqctl
  if ! "$ctl" list_users -q 2>/dev/null | grep -q '^mymonit-client'; then
    "$ctl" add_user mymonit-client "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" > /dev/null &&
      "$ctl" clear_password mymonit-client > /dev/null &&
      "$ctl" set_permissions -p / mymonit-client '.*' '.*' '.*' > /dev/null ||
      { echo "cannot create the broker's certificate user" >&2; return 1; }
  fi
  export MYMONIT_TEST_AMQPS_CLIENT_CERT="$RMQ_DIR/tls/client.crt"
  export MYMONIT_TEST_AMQPS_CLIENT_KEY="$RMQ_DIR/tls/client.key"
  echo "RabbitMQ is up on 127.0.0.1:$RMQ_PORT (pid $(cat "$RMQ_DIR/server.pid"))" >&2
}

# Stops the node and keeps its data, so that rabbitmq_start brings it back with its durable
# queues (a broker restart).
rabbitmq_halt() {
  [ -f "$RMQ_DIR/server.pid" ] || return 0
  local beam
  beam=$(cat "$RMQ_DIR/beam.keep" 2>/dev/null || true)
  kill -TERM "$(cat "$RMQ_DIR/server.pid")" 2>/dev/null || true
  if [ -n "$beam" ]; then
    for _ in $(seq 1 150); do kill -0 "$beam" 2>/dev/null || break; sleep 0.2; done
  fi
  wait "$(cat "$RMQ_DIR/server.pid")" 2>/dev/null || true
  # Erlang leaves its port mapper running; stop it when no other node uses it.
  if command -v epmd >/dev/null && ! epmd -names 2>/dev/null | grep -q '^name '; then
    epmd -kill >/dev/null 2>&1 || true
  fi
  rm -f "$RMQ_DIR/server.pid" "$RMQ_DIR/beam.keep"
}

# Stops the node and removes its data.
rabbitmq_stop() {
  rabbitmq_halt
  rm -rf "$RMQ_DIR"
}

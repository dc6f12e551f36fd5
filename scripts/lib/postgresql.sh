# PostgreSQL for the tests: installed from Debian's packages when missing, started as a
# throwaway cluster on loopback with its data in a scratch directory, stopped by PID.
# Source it, then: postgresql_start (exports MYMONIT_TEST_DATABASE_URL, a role allowed to
# create databases: each test makes its own; TLS is on, with MYMONIT_TEST_DATABASE_CA the
# private CA that signed the server's certificate) and postgresql_stop (postgresql_halt stops it and
# keeps its data, for a restart).

PG_PORT=${PG_PORT:-5437}
PG_DIR=${PG_DIR:-$(mktemp -d /tmp/mymonit-postgresql.XXXXXX)}

# shellcheck source=debian.sh
source "$(dirname "${BASH_SOURCE[0]}")/debian.sh"
# shellcheck source=certificates.sh
source "$(dirname "${BASH_SOURCE[0]}")/certificates.sh"

postgresql_bin() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$bin" ] && echo "$bin"
}

postgresql_install() {
  if [ -z "$(postgresql_bin)" ]; then
    debian_install postgresql /usr/bin/pg_lsclusters || return 1
  fi
  [ -n "$(postgresql_bin)" ]
}

# Starts (or, after postgresql_halt, restarts) the cluster.
postgresql_start() {
  postgresql_install || return 1
  local bin
  bin=$(postgresql_bin)
  mkdir -p "$PG_DIR" && chmod 755 "$PG_DIR"
  if [ ! -d "$PG_DIR/data" ]; then
    mkdir -p "$PG_DIR/sock"
    echo postgres > "$PG_DIR/pw"
    # initdb refuses to run as root: the cluster belongs to the postgres user.
    chown -R postgres:postgres "$PG_DIR"
    if ! runuser -u postgres -- "$bin/initdb" -D "$PG_DIR/data" -U postgres -E UTF8 \
        --locale=C.UTF-8 --auth-host=scram-sha-256 --auth-local=trust \
        --pwfile="$PG_DIR/pw" > "$PG_DIR/initdb.log" 2>&1; then
      echo "PostgreSQL: initdb failed; its output:" >&2
      tail -n 20 "$PG_DIR/initdb.log" >&2
      return 1
    fi
  fi
  # TLS for clients that ask (sslmode=verify-full), with a certificate of a private CA.
  local tls=$PG_DIR/tls
  if [ ! -f "$tls/server.crt" ]; then
    test_certificates "$tls" ||
      { echo "PostgreSQL: cannot make the TLS certificate" >&2; return 1; }
    chown -R postgres:postgres "$tls" && chmod 600 "$tls/server.key"
  fi
  # Durability settings off: a test cluster is thrown away, and fsync would dominate.
  if ! runuser -u postgres -- "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR/sock -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400 -c ssl=on -c ssl_cert_file=$tls/server.crt -c ssl_key_file=$tls/server.key" \
      > "$PG_DIR/start.out" 2>&1; then
    echo "PostgreSQL did not start; its log:" >&2
    tail -n 30 "$PG_DIR/server.log" >&2
    return 1
  fi
  head -n 1 "$PG_DIR/data/postmaster.pid" > "$PG_DIR/pg.pid"
  until "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; do sleep 0.2; done
  if ! runuser -u postgres -- psql -q -h "$PG_DIR/sock" -p "$PG_PORT" -d postgres -Atc \
      "select 1 from pg_roles where rolname = 'mymonit'" | grep -q 1; then
    runuser -u postgres -- psql -q -h "$PG_DIR/sock" -p "$PG_PORT" -d postgres -v ON_ERROR_STOP=1 \
      -c "create role mymonit login createdb password 'mymonit'" \
      -c "create database mymonit owner mymonit" > /dev/null
  fi
  export MYMONIT_TEST_DATABASE_URL="postgres://mymonit:mymonit@127.0.0.1:$PG_PORT/mymonit"
  export MYMONIT_TEST_DATABASE_CA="$tls/ca.crt"
  echo "PostgreSQL is up on 127.0.0.1:$PG_PORT (pid $(cat "$PG_DIR/pg.pid"))" >&2
}

# Stops the cluster (fast shutdown) and keeps its data.
postgresql_halt() {
  [ -f "$PG_DIR/pg.pid" ] || return 0
  local pid
  pid=$(cat "$PG_DIR/pg.pid")
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$PG_DIR/pg.pid"
}

# Stops the cluster and removes its data.
postgresql_stop() {
  postgresql_halt
  rm -rf "$PG_DIR"
}

#!/usr/bin/env bash
# QCP's main job, in one command, on a machine with nothing running:
#
#   scripts/demo.sh            [--mode Session|Smart] [--port PORT]
#
# It installs PostgreSQL 15 if it is missing, builds qcp (release), starts a throwaway
# PostgreSQL cluster, starts qcp in front of it, checks that a client gets through (psql and a
# short pgbench run), prints how to connect, and keeps qcp running until you press Ctrl-C or run
# the printed `qcp-ctrl ... quit`. Everything it started is stopped and removed on exit.
#
# QCP_DEMO_SECONDS=N stops the demo by itself after N seconds (for unattended runs).
# To put qcp in front of your own servers instead, see README.md: copy config-example.yaml,
# edit `servers` and `users`, and run `qcp --config FILE`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
# Where cargo puts the release binaries (CARGO_TARGET_DIR, if set, is relative to ROOT).
TARGET="${CARGO_TARGET_DIR:-target}"
[[ "$TARGET" == /* ]] || TARGET="$ROOT/$TARGET"
BIN="$TARGET/release"
CLUSTER="$ROOT/scripts/pg-cluster.sh"
MODE=Smart
PORT=8080
while [[ $# -gt 0 ]]; do
    case "$1" in
        --mode) MODE="$2"; shift 2 ;;
        --port) PORT="$2"; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "demo.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

TMP="$(mktemp -d /tmp/qcp-demo.XXXXXX)"
PG_DIR="$TMP/pg"
QCP_PID=""
PG_STARTED=0
cleanup() {
    set +e
    trap - EXIT INT TERM
    if [[ -n "$QCP_PID" ]] && kill -0 "$QCP_PID" 2>/dev/null; then
        "$BIN/qcp-ctrl" --socket "$TMP/qcp.sock" quit >/dev/null 2>&1 || kill -TERM "$QCP_PID"
        wait "$QCP_PID" 2>/dev/null
    fi
    (( PG_STARTED )) && bash "$CLUSTER" stop "$PG_DIR" >/dev/null 2>&1
    rm -rf "$TMP"
    echo "demo.sh: stopped qcp and the throwaway PostgreSQL, removed $TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "Checking prerequisites (PostgreSQL 15, cargo)"
bash "$CLUSTER" ensure
command -v cargo >/dev/null || { echo "demo.sh: cargo is required (https://rustup.rs)" >&2; exit 1; }

say "Building qcp (release)"
(cd "$ROOT" && cargo build --release --quiet --bin qcp --bin qcp-ctrl)

PG_PORT="$(bash "$CLUSTER" free-port 55432)"
say "Starting a throwaway PostgreSQL on 127.0.0.1:$PG_PORT"
bash "$CLUSTER" start "$PG_DIR" "$PG_PORT"
PG_STARTED=1

if ss -ltn 2>/dev/null | awk '{print $4}' | grep -q ":$PORT\$"; then
    OLD="$PORT"; PORT="$(bash "$CLUSTER" free-port "$PORT")"
    echo "demo.sh: port $OLD is busy, qcp will listen on $PORT"
fi

cat > "$TMP/qcp.yaml" <<YAML
# Written by scripts/demo.sh. Every setting is explained in config-example.yaml.
listening_address: 127.0.0.1:$PORT
relay_mode: $MODE
log_level: Info
log_output:
  file: $TMP/qcp.log
control_socket: $TMP/qcp.sock
arena:
  chunk_size: 64KB
  total_size: 64 MB
auth_method: scram-sha-256
servers:
  - address: 127.0.0.1:$PG_PORT
    pool_size: 10
users:
  - name: qcp_scram
    password: scram-pass
YAML

say "Starting qcp ($MODE mode) on 127.0.0.1:$PORT"
"$BIN/qcp" --check --config "$TMP/qcp.yaml" | sed 's/^/    /'
"$BIN/qcp" --config "$TMP/qcp.yaml" &
QCP_PID=$!
for _ in $(seq 1 100); do
    [[ -S "$TMP/qcp.sock" ]] && break
    kill -0 "$QCP_PID" 2>/dev/null || { echo "demo.sh: qcp exited; its log:" >&2; cat "$TMP/qcp.log" >&2; exit 1; }
    sleep 0.1
done

export PGPASSWORD=scram-pass
CONN="host=127.0.0.1 port=$PORT user=qcp_scram dbname=qcp_test sslmode=disable"
say "A client through qcp"
psql "$CONN" -c "SELECT 'hello through qcp' AS greeting, current_user, version()"
say "pgbench through qcp (5 s, 8 clients, pool of 10)"
pgbench -i -s 1 -q "host=127.0.0.1 port=$PG_PORT user=qcp_scram dbname=qcp_test" >/dev/null 2>&1
pgbench -n -S -c 8 -j 2 -T 5 "$CONN" 2>&1 | grep -E "clients|transactions actually|failed|latency average|tps"
say "qcp-ctrl status"
"$BIN/qcp-ctrl" --socket "$TMP/qcp.sock" status | sed 's/^/    /'

cat <<TEXT

qcp is running in front of a throwaway PostgreSQL. Connect with:

    PGPASSWORD=scram-pass psql "$CONN"

Watch it:   $BIN/qcp-ctrl --socket $TMP/qcp.sock status
Its log:    $TMP/qcp.log
Stop it:    $BIN/qcp-ctrl --socket $TMP/qcp.sock quit   (or Ctrl-C here)

To run qcp in front of your own servers: copy config-example.yaml, set servers and users,
then run: $BIN/qcp --config your-config.yaml
TEXT

if [[ -n "${QCP_DEMO_SECONDS:-}" ]]; then
    ( sleep "$QCP_DEMO_SECONDS"; "$BIN/qcp-ctrl" --socket "$TMP/qcp.sock" quit >/dev/null 2>&1 ) &
fi
wait "$QCP_PID"
STATUS=$?
QCP_PID=""
echo "demo.sh: qcp exited with status $STATUS"

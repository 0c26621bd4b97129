#!/usr/bin/env bash
# Regenerate the captured PostgreSQL 15 wire traffic in this directory.
#
#   qcp-codec/tests/data/capture.sh [OUTDIR]     (as root; OUTDIR defaults to this directory)
#
# Starts a private throwaway cluster with scripts/pg-cluster.sh, runs capture.py as a recording
# relay in front of it, and drives real clients (psql, pgbench) through the relay, one relay run per
# scenario. All clients use sslmode=disable gssencmode=disable, so every frontend stream starts
# with the StartupMessage (or, for a cancel connection, the CancelRequest). See README.md.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd "$HERE/../../.." && pwd -P)"
CLUSTER="$ROOT/scripts/pg-cluster.sh"
OUT="$(realpath -m -- "${1:-$HERE}")"

[[ "$(id -u)" == 0 ]] || { echo "capture.sh: must run as root" >&2; exit 1; }
command -v python3 >/dev/null || { echo "capture.sh: python3 is required" >&2; exit 1; }
bash "$CLUSTER" ensure

TMP="$(mktemp -d /tmp/qcp-capture.XXXXXX)"
PG_DIR="$TMP/pg"
STAGE="$TMP/out"
mkdir -p "$STAGE"
RELAY_PID=""
STARTED=0

cleanup() {
    local rc=$?
    set +e
    if [[ -n "$RELAY_PID" ]]; then
        kill -TERM "$RELAY_PID" 2>/dev/null
        wait "$RELAY_PID" 2>/dev/null
    fi
    (( STARTED )) && bash "$CLUSTER" stop "$PG_DIR"
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT="$(bash "$CLUSTER" free-port 55432)"
STARTED=1
bash "$CLUSTER" start "$PG_DIR" "$PORT"
eval "$(bash "$CLUSTER" env "$PG_DIR" "$PORT")"
PSQL="$QCP_TEST_PG_BINDIR/psql"
PGBENCH="$QCP_TEST_PG_BINDIR/pgbench"
[[ -x "$PSQL" ]] || PSQL="$(command -v psql)"
[[ -x "$PGBENCH" ]] || PGBENCH="$(command -v pgbench)"

# Client environment: no TLS/GSS negotiation, no psqlrc, stable messages.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS PGAPPNAME
export PGSSLMODE=disable PGGSSENCMODE=disable PGCONNECT_TIMEOUT=10 PGTZ=UTC PGCLIENTENCODING=UTF8
export LC_ALL=C.UTF-8 LANG=C.UTF-8 PSQLRC=/dev/null

RPORT=""
relay_start() {
    local name="$1" ready="$TMP/ready-$1"
    rm -f "$ready"
    python3 "$HERE/capture.py" --listen 127.0.0.1:0 --upstream "127.0.0.1:$PORT" \
        --out "$STAGE" --name "$name" --timeout 120 --ready-file "$ready" &
    RELAY_PID=$!
    local i
    for i in $(seq 1 100); do
        [[ -s "$ready" ]] && break
        kill -0 "$RELAY_PID" 2>/dev/null || { echo "capture.sh: relay died" >&2; exit 1; }
        sleep 0.05
    done
    [[ -s "$ready" ]] || { echo "capture.sh: relay did not come up" >&2; exit 1; }
    RPORT="$(cat "$ready")"
}

relay_stop() {
    # The client has exited, so its connections are closing; the relay drains them and exits.
    kill -TERM "$RELAY_PID"
    wait "$RELAY_PID" || true
    RELAY_PID=""
}

conninfo() { # conninfo USER [DBNAME] -> libpq connection string through the relay
    echo "host=127.0.0.1 port=$RPORT user=$1 dbname=${2:-qcp_test} sslmode=disable gssencmode=disable"
}

run_psql() { # run_psql USER PASSWORD [psql args...]   (through the relay)
    local user="$1" pass="$2"
    shift 2
    PGPASSWORD="$pass" timeout 60 "$PSQL" -X -v ON_ERROR_STOP=0 "$(conninfo "$user")" "$@"
}

direct_psql() { # superuser on the cluster's socket, not captured
    timeout 60 "$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PORT" -U postgres -d qcp_test "$@"
}

scenario() { echo; echo "=== capture: $*"; }

# --------------------------------------------------------------------------------------------
scenario "psql_scram: SCRAM login and a mixed simple-query session"
relay_start psql_scram
run_psql qcp_scram scram-pass <<'SQL' || true
DROP TABLE IF EXISTS cap_t;
CREATE TABLE cap_t (id int PRIMARY KEY, name text, score numeric, note text);
INSERT INTO cap_t VALUES (1, 'one', 1.5, NULL), (2, 'two', NULL, 'n2'), (3, NULL, 3, ''), (4, 'four', -4.25, 'n4');
SELECT * FROM cap_t ORDER BY id;
SELECT count(*), NULL::text AS nothing, ''::text AS empty FROM cap_t;
UPDATE cap_t SET score = 0 WHERE score IS NULL;
DELETE FROM cap_t WHERE id = 4;
SELECT 1 / 0;
SELECT * FROM no_such_table;
DO $$ BEGIN RAISE NOTICE 'hi'; END $$;
DO $$ BEGIN RAISE WARNING 'careful' USING DETAIL = 'a detail', HINT = 'a hint'; END $$;
LISTEN qcp_chan;
NOTIFY qcp_chan, 'payload-1';
SELECT pg_notify('qcp_chan', 'payload-2');
UNLISTEN qcp_chan;
SET application_name = 'qcp-capture';
SET TIME ZONE 'Europe/Paris';
BEGIN;
INSERT INTO cap_t VALUES (5, 'five', 5, NULL);
SELECT 1 / 0;
ROLLBACK;
BEGIN;
INSERT INTO cap_t VALUES (6, 'six', 6, 'n6');
COMMIT;
SELECT 1 AS a \; SELECT 'two' AS b \; SELECT NULL AS c;
SELECT repeat('x', 10000) AS big;
SELECT id, name FROM cap_t WHERE false;
;
SQL
relay_stop

# --------------------------------------------------------------------------------------------
scenario "pgbench -i -s 1 (direct, not captured)"
PGPASSWORD=scram-pass timeout 300 "$PGBENCH" -i -s 1 -q -h 127.0.0.1 -p "$PORT" -U qcp_scram qcp_test
for mode in simple extended prepared; do
    scenario "pgbench_$mode: pgbench -n -t 20 -c 1 -M $mode"
    relay_start "pgbench_$mode"
    PGPASSWORD=scram-pass timeout 120 "$PGBENCH" -n -t 20 -c 1 -M "$mode" \
        -h 127.0.0.1 -p "$RPORT" -U qcp_scram qcp_test
    relay_stop
done

# --------------------------------------------------------------------------------------------
direct_psql -c "DROP TABLE IF EXISTS cap_copy; CREATE TABLE cap_copy (id int, name text, note text);
    GRANT ALL ON cap_copy TO qcp_scram;"

scenario "copy_in: \\copy from stdin (CopyInResponse, CopyData, CopyDone)"
relay_start copy_in
printf '1\talpha\t\\N\n2\tbeta\tsecond row\n3\t\tempty name\n4\tdelta\t\\N\n' \
    | run_psql qcp_scram scram-pass -c '\copy cap_copy from pstdin'
relay_stop

scenario "copy_out: COPY TO STDOUT, text/csv/binary"
relay_start copy_out
run_psql qcp_scram scram-pass -c 'COPY cap_copy TO STDOUT' \
    -c 'COPY (SELECT * FROM cap_copy ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)' \
    -c 'COPY cap_copy TO STDOUT WITH (FORMAT binary)' >/dev/null
relay_stop

scenario "copy_fail: COPY FROM STDIN with bad data (ErrorResponse during copy-in)"
relay_start copy_fail
printf '5\tok\t\\N\nnot-a-number\tbad\t\\N\n6\tnever\t\\N\n' \
    | run_psql qcp_scram scram-pass -c '\copy cap_copy from pstdin' || true
relay_stop

# --------------------------------------------------------------------------------------------
scenario "cancel: SELECT pg_sleep(5) cancelled by SIGINT to psql (CancelRequest on connection 2)"
relay_start cancel
# No `timeout` wrapper here: it would forward the SIGINT to its whole process group, so psql
# would get it twice and send two CancelRequests. pg_sleep(5) bounds this psql anyway.
PGPASSWORD=scram-pass "$PSQL" -X "$(conninfo qcp_scram)" \
    -c "SELECT pg_sleep(5) AS qcp_cancel_me" >/dev/null 2>"$TMP/cancel.err" &
psql_pid=$!
# Wait until the query is really running on the server before interrupting psql.
for _ in $(seq 1 100); do
    n="$(direct_psql -At -c "SELECT count(*) FROM pg_stat_activity
        WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(5) AS qcp_cancel_me%'")"
    [[ "$n" -ge 1 ]] && break
    sleep 0.05
done
[[ "$n" -ge 1 ]] || { echo "capture.sh: the pg_sleep query never started" >&2; exit 1; }
kill -INT "$psql_pid"
wait "$psql_pid" || true
cat "$TMP/cancel.err" >&2
grep -q "canceling statement due to user request" "$TMP/cancel.err" \
    || { echo "capture.sh: the query was not cancelled" >&2; exit 1; }
relay_stop

# --------------------------------------------------------------------------------------------
scenario "md5_login: qcp_md5 (AuthenticationMD5Password)"
relay_start md5_login
run_psql qcp_md5 md5-pass -c 'SELECT current_user, current_database()'
relay_stop

scenario "plain_login: qcp_plain (AuthenticationCleartextPassword)"
relay_start plain_login
run_psql qcp_plain plain-pass -c 'SELECT current_user, current_database()'
relay_stop

scenario "trust_login: qcp_trust (AuthenticationOk straight away), second database"
relay_start trust_login
PGPASSWORD='' timeout 60 "$PSQL" -X "$(conninfo qcp_trust qcp_other)" -c 'SELECT current_user, current_database()'
relay_stop

scenario "auth_fail: qcp_scram with a wrong password (ErrorResponse during authentication)"
relay_start auth_fail
run_psql qcp_scram wrong-password -c 'SELECT 1' && { echo "capture.sh: login unexpectedly worked" >&2; exit 1; }
relay_stop

# --------------------------------------------------------------------------------------------
echo
echo "=== checking and installing the captures in $OUT"
python3 - "$STAGE" <<'PY'
import os, struct, sys
stage = sys.argv[1]
bad = []
for fn in sorted(os.listdir(stage)):
    data = open(os.path.join(stage, fn), "rb").read()
    if fn.endswith(".frontend.bin"):
        if len(data) < 8:
            bad.append(f"{fn}: too short ({len(data)} bytes)")
            continue
        length, code = struct.unpack(">ii", data[:8])
        if code not in (196608, 80877102):  # protocol 3.0 StartupMessage, CancelRequest
            bad.append(f"{fn}: first packet code {code}")
        pos = length
    else:
        pos = 0
    # The remainder must be a sequence of complete tagged messages.
    while pos < len(data):
        if pos + 5 > len(data):
            bad.append(f"{fn}: truncated header at {pos}")
            break
        (length,) = struct.unpack(">i", data[pos + 1:pos + 5])
        if length < 4 or pos + 1 + length > len(data):
            bad.append(f"{fn}: bad/truncated message {data[pos:pos+1]!r} len {length} at {pos}")
            break
        pos += 1 + length
if bad:
    print("\n".join(bad), file=sys.stderr)
    sys.exit(1)
PY
mkdir -p "$OUT"
find "$OUT" -maxdepth 1 -name '*-[0-9]*.frontend.bin' -delete
find "$OUT" -maxdepth 1 -name '*-[0-9]*.backend.bin' -delete
cp "$STAGE"/*.bin "$OUT"/
chmod 0644 "$OUT"/*.bin
ls -l "$OUT"/*.bin | awk '{printf "%8d  %s\n", $5, $NF}'
echo "total: $(cat "$OUT"/*.bin | wc -c) bytes"

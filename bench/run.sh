#!/usr/bin/env bash
# QCP benchmark (issue #6): qcp vs PgBouncer vs PostgreSQL directly, on this machine.
#
#   bench/run.sh                 full run (about 21 minutes; 23 with a PgBouncer 1.21+, which
#                                also runs the -M prepared cells), rewrites BENCHMARKS.md
#   BENCH_QUICK=1 bench/run.sh   a small subset (about 5 minutes), for checking the harness
#   PGBOUNCER_BIN=/path/to/pgbouncer bench/run.sh   compare with another PgBouncer build
#
# Must be run as root (PostgreSQL runs as the `postgres` OS user; PgBouncer as `postgres` too).
# It installs PostgreSQL 15, PgBouncer (unless PGBOUNCER_BIN is set) and strace from the Debian
# packages if they are missing, builds qcp (release), starts a throwaway PostgreSQL 15 cluster
# (scripts/pg-cluster.sh), its own PgBouncer (transaction pooling) and its own qcp (relay_mode
# Smart, worker_threads 1, the default), all on 127.0.0.1, with the same pool size and
# SCRAM-SHA-256 auth for both proxies (both are given the server's SCRAM secret of qcp_scram, so
# both log in to the server by SCRAM pass-through), and a second qcp ("qcp, 2 threads": the same
# config plus worker_threads: 2, its own port and control socket) for BENCH_QCP2_CELLS. The test
# cluster has ssl = on, so these proxies are told to talk clear text to it (qcp `tls: {mode:
# disable}`, PgBouncer `server_tls_sslmode = disable`): their rows are clear text on both sides.
# Unless BENCH_TLS_CELLS is "none", one more PgBouncer and qcp ("PgBouncer, TLS" and "qcp, TLS":
# the same configs, their own ports, logs and control socket) run with TLS on both sides:
# towards clients PgBouncer client_tls_sslmode = require and qcp client_tls mode require, with
# the cluster's certificate and key (an EC key, for `localhost`; copied for PgBouncer, which
# runs as postgres), and towards PostgreSQL PgBouncer server_tls_sslmode = require and qcp
# tls mode require (encrypted, the certificate not checked, on both proxies); pgbench and
# bench/pgclient.py (--tls) connect to them as sslmode=require does. Then:
#   1. pgbench, interleaved target by target, over BENCH_ROUNDS rounds:
#      -S with -M simple, extended, prepared at 1, 16, 64, 1000 clients; tpcb-like at 16;
#      direct at 1000 clients is n/a (max_connections = 400); PgBouncer -M prepared is n/a
#      unless it is 1.21 or later (Debian 12's is 1.18: no prepared statements in transaction
#      pooling); with 1.21+ it runs with max_prepared_statements = 200 (qcp's default
#      limits.max_prepared_statements);
#      per proxy: user and system CPU time (utime, stime from /proc/PID/stat, all threads) per
#      transaction, peak RSS (VmHWM); in BENCH_QCP2_CELLS (-S simple and extended at 64 clients)
#      the 2-thread qcp is one more target of the cell, interleaved and rotated with the others
#      in every round, so its CPU per transaction is compared with the 1-thread qcp's from the
#      same rounds (target: at most 1.10x); it is stopped after the timed runs;
#      in BENCH_TLS_CELLS (-S simple and extended at 16, simple at 64 clients) the two TLS
#      proxies are two more targets of the cell, interleaved and rotated the same way (pgbench
#      with sslmode=require; target: qcp's CPU per transaction at most 1.0x PgBouncer's, both
#      with TLS); after those runs pg_stat_ssl shows which server connections of each proxy
#      are encrypted (none for the clear-text ones, all for the TLS ones);
#   2. system calls per transaction, on the same proxies after the timed runs: for each of
#      BENCH_STRACE_CELLS and proxy, a separate pgbench run with -l (one log line per
#      transaction); once its clients are connected, `strace -f -c -p PID` (-f with -p attaches
#      every thread of PID) is attached to the proxy for BENCH_STRACE_SECONDS and detached;
#      calls / transactions pgbench completed in that window (bench/syscalls.py). Tracing
#      slows the proxy down, which is why the timed runs are not traced; the TLS proxies are
#      not traced;
#   3. on freshly started proxies: BENCH_IDLE_CLIENTS (10,000) idle, authenticated clients
#      held open (bench/pgclient.py), RSS growth per client; then BENCH_LOGIN_CLIENTS (1,000)
#      SCRAM logins, BENCH_LOGIN_CONCURRENCY (50) at a time, timed, once per round; the same for
#      the two TLS proxies with TLS clients (pgclient.py --tls: RSS growth per idle TLS client,
#      target at most 8 KB for qcp; TLS+SCRAM logins, target qcp no slower than PgBouncer);
#   4. bench/report.py writes BENCHMARKS.md (tables, targets met or missed, machine, raw data).
# Everything it started is stopped, and its temporary directory removed, on exit.
#
# PgBouncer with prepared statements: Debian's package (1.18) has none in transaction pooling.
# Build 1.21 or later from its source release (for example 1.25.2: ./configure --without-cares
# --without-pam --without-ldap && make, which needs libevent-dev, libssl-dev, pkg-config) and
# point PGBOUNCER_BIN at the binary: PGBOUNCER_BIN=/tmp/pgbouncer/pgbouncer bench/run.sh. It
# runs as the postgres user, so the binary must be readable and executable by postgres.
#
# Environment (defaults in brackets):
#   BENCH_SECONDS [6]           pgbench -T per cell and target (+clients/125 s for the
#                               connection phase, which pgbench leaves out of its TPS)
#   BENCH_ROUNDS [3]            rounds of the whole pgbench matrix (and of the login timing)
#   BENCH_QUICK [0]             1: 4 s cells, 1 round, a subset of cells (with S:simple:64 for
#                               the 2-thread qcp; TLS in S:simple:16 S:extended:16), 2,000 idle
#                               clients, strace on S:simple:16 S:extended:16 S:prepared:16 only
#   BENCH_CELLS                 override the cells: space-separated WORKLOAD:MODE:CLIENTS,
#                               WORKLOAD = S or tpcb, MODE = simple|extended|prepared,
#                               e.g. "S:simple:16 S:extended:16"; "none" skips pgbench
#   BENCH_STRACE_CELLS          cells of the system-call runs, same form [every -S cell of
#                               BENCH_CELLS]; "none" skips them
#   BENCH_STRACE_SECONDS [3]    how long strace stays attached in each of those runs
#   BENCH_QCP2_CELLS [S:simple:64 S:extended:64]   cells (of BENCH_CELLS) in which the second
#                               qcp, worker_threads: 2, also runs; "none" does not start it
#   BENCH_TLS_CELLS [S:simple:16 S:extended:16 S:simple:64]   cells (of BENCH_CELLS) in which
#                               the TLS PgBouncer and qcp also run; "none" does not start them
#                               (and leaves out the TLS memory and login tests too)
#   BENCH_POOL_SIZE [20]        pool size of every proxy (qcp pool_size, PgBouncer default_pool_size)
#   BENCH_SCALE [10]            pgbench -i -s
#   BENCH_IDLE_CLIENTS [10000]  idle clients per proxy (0 skips the memory and login tests)
#   BENCH_LOGIN_CLIENTS [1000]  BENCH_LOGIN_CONCURRENCY [50]
#   BENCH_QCP_CHUNK_SIZE [16KB] BENCH_QCP_CHUNKS [4096]   qcp's arena
#   BENCH_OUT [BENCHMARKS.md at the repo root]  where the report goes
#   BENCH_QUIET_WAIT [120]      before each run, wait at most this long for other processes
#                               (not qcp, PgBouncer, PostgreSQL, pgbench) to stop using the CPU;
#                               a run during which they used over 5% of the machine is repeated
#                               once, and flagged in the raw data if it was disturbed again
#   BENCH_KEEP [0]              1: keep the temporary directory (logs, raw data) and print it
#   PGBOUNCER_BIN               the PgBouncer binary to run [pgbouncer on PATH, installed from
#                               the Debian package if missing]; 1.21+ also runs -M prepared
#   QCP_BIN_DIR                 use qcp/qcp-ctrl from this directory instead of building;
#                               otherwise `cargo build --release` into CARGO_TARGET_DIR [ROOT/target]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
BENCH="$ROOT/bench"
CLUSTER="$ROOT/scripts/pg-cluster.sh"

BENCH_QUICK="${BENCH_QUICK:-0}"
if [[ "$BENCH_QUICK" == 1 ]]; then
    BENCH_SECONDS="${BENCH_SECONDS:-4}"
    BENCH_ROUNDS="${BENCH_ROUNDS:-1}"
    BENCH_CELLS="${BENCH_CELLS:-S:simple:1 S:simple:16 S:extended:16 S:prepared:16 S:simple:64 S:simple:1000 tpcb:simple:16}"
    BENCH_IDLE_CLIENTS="${BENCH_IDLE_CLIENTS:-2000}"
    BENCH_STRACE_CELLS="${BENCH_STRACE_CELLS:-S:simple:16 S:extended:16 S:prepared:16}"
    BENCH_TLS_CELLS="${BENCH_TLS_CELLS:-S:simple:16 S:extended:16}"
fi
BENCH_SECONDS="${BENCH_SECONDS:-6}"
BENCH_ROUNDS="${BENCH_ROUNDS:-3}"
DEFAULT_CELLS=""
for m in simple extended prepared; do
    for c in 1 16 64 1000; do DEFAULT_CELLS+="S:$m:$c "; done
done
DEFAULT_CELLS+="tpcb:simple:16"
BENCH_CELLS="${BENCH_CELLS:-$DEFAULT_CELLS}"
if [[ -z "${BENCH_STRACE_CELLS:-}" ]]; then
    BENCH_STRACE_CELLS=""
    if [[ "$BENCH_CELLS" != none ]]; then
        for cell in $BENCH_CELLS; do [[ "$cell" == S:* ]] && BENCH_STRACE_CELLS+="$cell "; done
    fi
    BENCH_STRACE_CELLS="${BENCH_STRACE_CELLS% }"
    [[ -n "$BENCH_STRACE_CELLS" ]] || BENCH_STRACE_CELLS=none
fi
BENCH_STRACE_SECONDS="${BENCH_STRACE_SECONDS:-3}"
BENCH_QCP2_CELLS="${BENCH_QCP2_CELLS:-S:simple:64 S:extended:64}"
# The 2-thread qcp runs only in those of its cells that are in BENCH_CELLS.
QCP2_RUN=""
if [[ "$BENCH_CELLS" != none && "$BENCH_QCP2_CELLS" != none ]]; then
    for cell in $BENCH_QCP2_CELLS; do
        [[ " $BENCH_CELLS " == *" $cell "* ]] && QCP2_RUN+="$cell "
    done
fi
QCP2_RUN="${QCP2_RUN% }"
BENCH_TLS_CELLS="${BENCH_TLS_CELLS:-S:simple:16 S:extended:16 S:simple:64}"
# The TLS proxies run unless BENCH_TLS_CELLS is "none"; in pgbench only in those of its cells
# that are in BENCH_CELLS.
TLS_ON=0
[[ "$BENCH_TLS_CELLS" != none ]] && TLS_ON=1
TLS_RUN=""
if [[ "$BENCH_CELLS" != none ]] && (( TLS_ON )); then
    for cell in $BENCH_TLS_CELLS; do
        [[ " $BENCH_CELLS " == *" $cell "* ]] && TLS_RUN+="$cell "
    done
fi
TLS_RUN="${TLS_RUN% }"
BENCH_POOL_SIZE="${BENCH_POOL_SIZE:-20}"
BENCH_SCALE="${BENCH_SCALE:-10}"
BENCH_IDLE_CLIENTS="${BENCH_IDLE_CLIENTS:-10000}"
BENCH_LOGIN_CLIENTS="${BENCH_LOGIN_CLIENTS:-1000}"
BENCH_LOGIN_CONCURRENCY="${BENCH_LOGIN_CONCURRENCY:-50}"
BENCH_QCP_CHUNK_SIZE="${BENCH_QCP_CHUNK_SIZE:-16KB}"
BENCH_QCP_CHUNKS="${BENCH_QCP_CHUNKS:-4096}"
BENCH_OUT="${BENCH_OUT:-$ROOT/BENCHMARKS.md}"
BENCH_KEEP="${BENCH_KEEP:-0}"
BENCH_QUIET_WAIT="${BENCH_QUIET_WAIT:-120}"

die() { echo "bench/run.sh: error: $*" >&2; exit 1; }
say() { printf '\n==> %s\n' "$*" >&2; }
note() { echo "bench/run.sh: $*" >&2; }

for v in BENCH_QUIET_WAIT BENCH_SECONDS BENCH_STRACE_SECONDS BENCH_ROUNDS BENCH_POOL_SIZE BENCH_SCALE BENCH_IDLE_CLIENTS \
    BENCH_LOGIN_CLIENTS BENCH_LOGIN_CONCURRENCY BENCH_QCP_CHUNKS; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
(( BENCH_SECONDS >= 1 && BENCH_SECONDS <= 300 )) || die "BENCH_SECONDS must be 1..300"
(( BENCH_STRACE_SECONDS >= 1 && BENCH_STRACE_SECONDS <= 60 )) || die "BENCH_STRACE_SECONDS must be 1..60"
(( BENCH_ROUNDS >= 1 && BENCH_ROUNDS <= 10 )) || die "BENCH_ROUNDS must be 1..10"
(( BENCH_IDLE_CLIENTS <= 15000 )) || die "BENCH_IDLE_CLIENTS must be at most 15000"
(( BENCH_LOGIN_CLIENTS >= 1 && BENCH_LOGIN_CLIENTS <= 10000 )) || die "BENCH_LOGIN_CLIENTS must be 1..10000"
[[ "$(id -u)" == 0 ]] || die "must be run as root (PostgreSQL and PgBouncer run as the postgres user)"

# 10,000 clients: this shell, pgbench, the client script and both proxies inherit this.
NOFILE_WANT=$(( BENCH_IDLE_CLIENTS + 2000 ))
(( NOFILE_WANT < 4096 )) && NOFILE_WANT=4096
ulimit -n "$NOFILE_WANT" 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
if (( $(ulimit -n) < BENCH_IDLE_CLIENTS + 100 )); then
    die "open files limit $(ulimit -n) (hard $(ulimit -Hn)) is too low for $BENCH_IDLE_CLIENTS idle clients; lower BENCH_IDLE_CLIENTS"
fi

# ---------------------------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------------------------
say "Prerequisites: PostgreSQL 15, PgBouncer, strace, python3, qcp"
bash "$CLUSTER" ensure
command -v python3 >/dev/null || die "python3 is required"
command -v setpriv >/dev/null || die "setpriv (util-linux) is required"
APT_UPDATED=0
apt_install() { # apt_install PACKAGE: from the Debian packages, once
    export DEBIAN_FRONTEND=noninteractive
    if (( ! APT_UPDATED )); then
        apt-get update -qq >/dev/null || die "apt-get update failed"
        APT_UPDATED=1
    fi
    apt-get install -y -qq --no-install-recommends "$1" >/dev/null || die "apt-get install $1 failed"
}
if [[ -n "${PGBOUNCER_BIN:-}" ]]; then
    [[ -f "$PGBOUNCER_BIN" && -x "$PGBOUNCER_BIN" ]] || die "PGBOUNCER_BIN=$PGBOUNCER_BIN is not an executable file"
    PGBOUNCER="$(cd "$(dirname "$PGBOUNCER_BIN")" && pwd -P)/$(basename "$PGBOUNCER_BIN")"
else
    if ! command -v pgbouncer >/dev/null; then
        note "installing pgbouncer (Debian package); it is not started as a service, we run our own"
        apt_install pgbouncer
    fi
    PGBOUNCER="$(command -v pgbouncer)"
fi
PGB_VERSION="$("$PGBOUNCER" --version 2>/dev/null | head -n1)" || true
[[ "$PGB_VERSION" =~ ([0-9]+)\.([0-9]+) ]] || die "could not read the version of $PGBOUNCER (got '$PGB_VERSION')"
PGB_MAJOR="${BASH_REMATCH[1]}" PGB_MINOR="${BASH_REMATCH[2]}"
PGB_SHORT="$PGB_MAJOR.$PGB_MINOR"
# PgBouncer 1.21 added prepared statements in transaction pooling (max_prepared_statements).
PGB_PREPARED=0
PGB_MAX_PREPARED=200   # qcp's default limits.max_prepared_statements
(( PGB_MAJOR > 1 || (PGB_MAJOR == 1 && PGB_MINOR >= 21) )) && PGB_PREPARED=1
if [[ "$BENCH_STRACE_CELLS" != none ]] && ! command -v strace >/dev/null; then
    note "installing strace (Debian package), for the system-call counts"
    apt_install strace
fi

QCP_PREBUILT=0
if [[ -n "${QCP_BIN_DIR:-}" ]]; then
    QCP_BIN_DIR="$(cd "$QCP_BIN_DIR" && pwd -P)"
    QCP_PREBUILT=1
else
    command -v cargo >/dev/null || die "cargo is required (or set QCP_BIN_DIR)"
    note "building qcp (release) into ${CARGO_TARGET_DIR:-$ROOT/target}"
    (cd "$ROOT" && cargo build --release --quiet --bin qcp --bin qcp-ctrl)
    QCP_BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/release"
fi
QCP="$QCP_BIN_DIR/qcp"
QCP_CTRL="$QCP_BIN_DIR/qcp-ctrl"
[[ -x "$QCP" && -x "$QCP_CTRL" ]] || die "qcp or qcp-ctrl not found in $QCP_BIN_DIR"

# ---------------------------------------------------------------------------------------------
# Processes and cleanup
# ---------------------------------------------------------------------------------------------
CLK_TCK="$(getconf CLK_TCK)"
NCPU="$(nproc)"
WORK="$(mktemp -d /tmp/qcp-bench.XXXXXX)"
chmod 0755 "$WORK"
PG_DIR="$WORK/pg"
PGB_DIR="$WORK/pgbouncer"
PGB_TLS_DIR="$WORK/pgbouncer-tls"
TLS_DIR="$WORK/tls"   # copies of the cluster's certificate and key, for both TLS proxies
QCP_PID=""
QCP2_PID=""       # the second qcp (worker_threads: 2), while the timed runs of its cells last
QCP_TLS_PID=""    # the TLS proxies, unless BENCH_TLS_CELLS is "none"
PGB_PID=""
PGB_TLS_PID=""
WATCH_PID=""
TRACE_PID=""      # strace and the pgbench of the traced run under way, if any
TRACE_BENCH_PID=""
PG_STARTED=0

stop_qcp_pid() { # stop_qcp_pid PID NAME: quit through $WORK/NAME.sock, else SIGTERM, else SIGKILL
    local pid="$1" name="$2"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        timeout 20 "$QCP_CTRL" --socket "$WORK/$name.sock" quit >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}
stop_qcp() { stop_qcp_pid "$QCP_PID" qcp; QCP_PID=""; }
stop_qcp2() { stop_qcp_pid "$QCP2_PID" qcp2; QCP2_PID=""; }
stop_qcp_tls() { stop_qcp_pid "$QCP_TLS_PID" qcp-tls; QCP_TLS_PID=""; }
stop_pgb_pid() { # stop_pgb_pid PID
    local pid="$1"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -INT "$pid" 2>/dev/null || true   # SIGINT: safe shutdown
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}
stop_pgbouncer() { stop_pgb_pid "$PGB_PID"; PGB_PID=""; }
stop_pgbouncer_tls() { stop_pgb_pid "$PGB_TLS_PID"; PGB_TLS_PID=""; }
cleanup() {
    set +e
    trap - EXIT INT TERM
    if [[ -n "$TRACE_PID" ]]; then kill -INT "$TRACE_PID" 2>/dev/null; wait "$TRACE_PID" 2>/dev/null; fi
    if [[ -n "$TRACE_BENCH_PID" ]]; then kill "$TRACE_BENCH_PID" 2>/dev/null; wait "$TRACE_BENCH_PID" 2>/dev/null; fi
    stop_qcp
    stop_qcp2
    stop_qcp_tls
    stop_pgbouncer
    stop_pgbouncer_tls
    (( PG_STARTED )) && bash "$CLUSTER" stop "$PG_DIR" >/dev/null 2>&1
    [[ -n "$WATCH_PID" ]] && kill "$WATCH_PID" 2>/dev/null && wait "$WATCH_PID" 2>/dev/null
    if [[ "$BENCH_KEEP" == 1 ]]; then
        note "kept $WORK (logs, raw results)"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# CPU used by other processes on the machine (a compiler, say) skews every number: count it,
# wait for a quiet machine before each run, and repeat a run it disturbed (bench/cpuwatch.py).
python3 "$BENCH/cpuwatch.py" "$WORK/foreign" "$$" --max-seconds 7200 &
WATCH_PID=$!
foreign_ticks() { # total foreign ticks, or those of the last 2 s with "recent"
    local total recent
    read -r total recent <"$WORK/foreign" 2>/dev/null || { echo 0; return; }
    if [[ "${1:-}" == recent ]]; then echo "${recent:-0}"; else echo "${total:-0}"; fi
}
wait_quiet() { # at most BENCH_QUIET_WAIT s until others used < 5% of a core for 2 s
    local waited=0 limit="$BENCH_QUIET_WAIT" quiet_max=$(( CLK_TCK / 10 ))
    while (( $(foreign_ticks recent) > quiet_max && waited < limit )); do
        (( waited == 0 )) && note "other processes are using the CPU; waiting up to ${limit} s for a quiet machine"
        sleep 1; waited=$(( waited + 1 ))
    done
}

wait_port() {
    local port="$1" pid="$2" what="$3" log="$4"
    for _ in $(seq 1 150); do
        if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$log" >&2 || true
            die "$what exited at start"
        fi
        sleep 0.1
    done
    tail -n 30 "$log" >&2 || true
    die "$what is not listening on 127.0.0.1:$port after 15 s"
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------
PG_PORT="$(bash "$CLUSTER" free-port 55440)"
say "PostgreSQL 15 on 127.0.0.1:$PG_PORT (scale $BENCH_SCALE)"
bash "$CLUSTER" start "$PG_DIR" "$PG_PORT"
PG_STARTED=1
eval "$(bash "$CLUSTER" env "$PG_DIR" "$PG_PORT")"
PG_BINDIR="$QCP_TEST_PG_BINDIR"
export PGPASSWORD=scram-pass
PG_CONN="host=127.0.0.1 port=$PG_PORT user=qcp_scram dbname=qcp_test sslmode=disable"
pgbench -i -q -s "$BENCH_SCALE" "$PG_CONN" >"$WORK/pgbench-init.log" 2>&1 \
    || { cat "$WORK/pgbench-init.log" >&2; die "pgbench -i failed"; }
psql_super() {
    (cd / && runuser -u postgres -- "$PG_BINDIR/psql" -X -q -At -h "$PG_DIR" -p "$PG_PORT" -U postgres -d postgres "$@")
}
SECRET="$(psql_super -c "SELECT rolpassword FROM pg_authid WHERE rolname = 'qcp_scram'")"
[[ "$SECRET" == SCRAM-SHA-256\$* ]] || die "could not read qcp_scram's SCRAM secret"
PG_MAX_CONN="$(psql_super -c "SHOW max_connections")"

# ---------------------------------------------------------------------------------------------
# PgBouncer and qcp
# ---------------------------------------------------------------------------------------------
PGB_PORT="$(bash "$CLUSTER" free-port 56440)"
QCP_PORT="$(bash "$CLUSTER" free-port $(( PGB_PORT + 1 )))"
QCP2_PORT="$(bash "$CLUSTER" free-port $(( QCP_PORT + 1 )))"
PGB_TLS_PORT="$(bash "$CLUSTER" free-port $(( QCP2_PORT + 1 )))"
QCP_TLS_PORT="$(bash "$CLUSTER" free-port $(( PGB_TLS_PORT + 1 )))"
MAX_CLIENTS=$(( BENCH_IDLE_CLIENTS + 2000 ))

# Both TLS proxies show clients the cluster's own certificate (for `localhost`) and key: the
# same key type and size on both, so their handshakes cost the same. PgBouncer runs as
# postgres: the copies are postgres's, the key readable by it alone (qcp runs as root).
if (( TLS_ON )); then
    mkdir -p "$TLS_DIR"
    cp "$PG_DIR/tls/server.crt" "$PG_DIR/tls/server.key" "$TLS_DIR/" \
        || die "could not copy the cluster's TLS certificate and key from $PG_DIR/tls"
    chown -R postgres:postgres "$TLS_DIR"
    chmod 0700 "$TLS_DIR"
    chmod 0600 "$TLS_DIR/server.key"
fi

# pgbouncer_ini DIR PORT [tls]: PgBouncer's config, everything in DIR.
pgbouncer_ini() {
    cat <<INI
; Written by bench/run.sh.
[databases]
qcp_test = host=127.0.0.1 port=$PG_PORT dbname=qcp_test

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $2
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $1/userlist.txt
pool_mode = transaction
default_pool_size = $BENCH_POOL_SIZE
max_client_conn = $MAX_CLIENTS
logfile = $1/pgbouncer.log
pidfile = $1/pgbouncer.pid
log_connections = 0
log_disconnections = 0
INI
    if [[ "${3:-}" == tls ]]; then
        cat <<INI
; TLS on both sides: clients must use it; to the server encrypted, its certificate not checked.
client_tls_sslmode = require
client_tls_cert_file = $TLS_DIR/server.crt
client_tls_key_file = $TLS_DIR/server.key
server_tls_sslmode = require
INI
    else
        cat <<INI
; The test cluster has ssl = on; these rows measure clear text on both sides.
server_tls_sslmode = disable
INI
    fi
    if (( PGB_PREPARED )); then
        echo "max_prepared_statements = $PGB_MAX_PREPARED"
    fi
}
PGB_DIRS=("$PGB_DIR")
(( TLS_ON )) && PGB_DIRS+=("$PGB_TLS_DIR")
for d in "${PGB_DIRS[@]}"; do
    mkdir -p "$d"
    printf '"qcp_scram" "%s"\n' "$SECRET" >"$d/userlist.txt"
done
pgbouncer_ini "$PGB_DIR" "$PGB_PORT" >"$PGB_DIR/pgbouncer.ini"
if (( TLS_ON )); then
    pgbouncer_ini "$PGB_TLS_DIR" "$PGB_TLS_PORT" tls >"$PGB_TLS_DIR/pgbouncer.ini"
fi
for d in "${PGB_DIRS[@]}"; do
    chown -R postgres:postgres "$d"
    chmod 0600 "$d/userlist.txt"
done

# run_pgbouncer DIR: start PgBouncer with DIR/pgbouncer.ini in the background.
run_pgbouncer() {
    # PgBouncer refuses to run as root: run it as postgres; setpriv execs, so $! is its pid.
    setpriv --reuid=postgres --regid=postgres --init-groups -- \
        "$PGBOUNCER" -q "$1/pgbouncer.ini" </dev/null >>"$1/stdout.log" 2>&1 &
}
start_pgbouncer() {
    run_pgbouncer "$PGB_DIR"
    PGB_PID=$!
    wait_port "$PGB_PORT" "$PGB_PID" PgBouncer "$PGB_DIR/pgbouncer.log"
}
start_pgbouncer_tls() {
    run_pgbouncer "$PGB_TLS_DIR"
    PGB_TLS_PID=$!
    wait_port "$PGB_TLS_PORT" "$PGB_TLS_PID" "PgBouncer (TLS)" "$PGB_TLS_DIR/pgbouncer.log"
}

# qcp_yaml PORT NAME [tls]: qcp's config, logging to $WORK/NAME.log, control socket
# $WORK/NAME.sock; with "tls", TLS on both sides, else clear text on both.
qcp_yaml() {
    local server_tls="    # The test cluster has ssl = on; these rows measure clear text on both sides.
    tls: {mode: disable}"
    if [[ "${3:-}" == tls ]]; then
        server_tls="    # TLS to the server: encrypted, its certificate not checked (as PgBouncer's require).
    tls: {mode: require}"
    fi
    cat <<YAML
# Written by bench/run.sh. Every setting is explained in config-example.yaml.
listening_address: 127.0.0.1:$1
relay_mode: Smart
log_level: Warn
log_output:
  file: $WORK/$2.log
control_socket: $WORK/$2.sock
arena:
  chunk_size: $BENCH_QCP_CHUNK_SIZE
  chunks_count: $BENCH_QCP_CHUNKS
auth_method: scram-sha-256
servers:
  - address: 127.0.0.1:$PG_PORT
    pool_size: $BENCH_POOL_SIZE
$server_tls
users:
  - name: qcp_scram
    password: "$SECRET"
limits:
  max_client_connections: $MAX_CLIENTS
YAML
    if [[ "${3:-}" == tls ]]; then
        cat <<YAML
# TLS towards clients: clients must use it.
client_tls:
  mode: require
  cert: $TLS_DIR/server.crt
  key: $TLS_DIR/server.key
YAML
    fi
}
qcp_yaml "$QCP_PORT" qcp >"$WORK/qcp.yaml"
# The 2-thread qcp: the same config, its own port, log and control socket, worker_threads: 2.
{ qcp_yaml "$QCP2_PORT" qcp2; echo "worker_threads: 2"; } >"$WORK/qcp2.yaml"
# The TLS qcp: the same config, its own port, log and control socket, TLS on both sides.
QCP_CONFIGS=(qcp qcp2)
if (( TLS_ON )); then
    qcp_yaml "$QCP_TLS_PORT" qcp-tls tls >"$WORK/qcp-tls.yaml"
    QCP_CONFIGS+=(qcp-tls)
fi
for f in "${QCP_CONFIGS[@]}"; do
    "$QCP" --check --config "$WORK/$f.yaml" >"$WORK/$f-check.txt" 2>&1 \
        || { cat "$WORK/$f-check.txt" >&2; die "qcp --check rejected the bench config $f.yaml"; }
done
QCP_ARENA_BYTES="$(python3 - "$BENCH_QCP_CHUNK_SIZE" "$BENCH_QCP_CHUNKS" <<'PY'
import re, sys
m = re.fullmatch(r"\s*([0-9.]+)\s*([KMG]?B)?\s*", sys.argv[1], re.I)
mult = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}[(m.group(2) or "B").upper()]
print(int(float(m.group(1)) * mult) * int(sys.argv[2]))
PY
)"

start_qcp() {
    "$QCP" --config "$WORK/qcp.yaml" </dev/null >>"$WORK/qcp.stdout" 2>&1 &
    QCP_PID=$!
    wait_port "$QCP_PORT" "$QCP_PID" qcp "$WORK/qcp.log"
}
start_qcp2() {
    "$QCP" --config "$WORK/qcp2.yaml" </dev/null >>"$WORK/qcp2.stdout" 2>&1 &
    QCP2_PID=$!
    wait_port "$QCP2_PORT" "$QCP2_PID" "qcp (2 threads)" "$WORK/qcp2.log"
}
start_qcp_tls() {
    "$QCP" --config "$WORK/qcp-tls.yaml" </dev/null >>"$WORK/qcp-tls.stdout" 2>&1 &
    QCP_TLS_PID=$!
    wait_port "$QCP_TLS_PORT" "$QCP_TLS_PID" "qcp (TLS)" "$WORK/qcp-tls.log"
}

say "PgBouncer on 127.0.0.1:$PGB_PORT, qcp (Smart) on 127.0.0.1:$QCP_PORT, pool size $BENCH_POOL_SIZE each"
start_pgbouncer
start_qcp
if [[ -n "$QCP2_RUN" ]]; then
    say "qcp (Smart, worker_threads: 2) on 127.0.0.1:$QCP2_PORT, for $QCP2_RUN"
    start_qcp2
fi
if (( TLS_ON )); then
    say "TLS on both sides: PgBouncer on 127.0.0.1:$PGB_TLS_PORT, qcp (Smart) on 127.0.0.1:$QCP_TLS_PORT, for ${TLS_RUN:-no pgbench cell} and the TLS memory and login tests"
    start_pgbouncer_tls
    start_qcp_tls
fi

# ---------------------------------------------------------------------------------------------
# pgbench
# ---------------------------------------------------------------------------------------------
cpu_ticks() { # "utime stime" of a process, all threads, in clock ticks
    local rest
    rest="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo 0 0; return; }
    rest="${rest##*) }"
    # shellcheck disable=SC2086
    set -- $rest
    echo "${12} ${13}"
}
proc_kb() { # proc_kb PID VmHWM|VmRSS
    awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}
port_of() {
    case "$1" in
        direct) echo "$PG_PORT" ;; pgbouncer) echo "$PGB_PORT" ;; qcp) echo "$QCP_PORT" ;; qcp2) echo "$QCP2_PORT" ;;
        pgbouncer_tls) echo "$PGB_TLS_PORT" ;; qcp_tls) echo "$QCP_TLS_PORT" ;;
    esac
}
pid_of() {
    case "$1" in
        pgbouncer) echo "$PGB_PID" ;; qcp) echo "$QCP_PID" ;; qcp2) echo "$QCP2_PID" ;;
        pgbouncer_tls) echo "$PGB_TLS_PID" ;; qcp_tls) echo "$QCP_TLS_PID" ;; *) echo "" ;;
    esac
}
# sslmode_of TARGET: how pgbench connects: TLS to the TLS proxies, clear text to the others.
sslmode_of() { case "$1" in *_tls) echo require ;; *) echo disable ;; esac; }
# tls_flag TARGET: bench/pgclient.py's option for it.
tls_flag() { case "$1" in *_tls) echo --tls ;; esac; }

RAW="$WORK/pgbench.tsv"
printf 'round\tworkload\tmode\tclients\ttarget\ttps\tlatency_ms\ttxns\tfailed\taborted\tcpu_ticks\texit\tforeign_pct\tnote\tutime_ticks\tstime_ticks\n' >"$RAW"

# run_cell ROUND WORKLOAD MODE CLIENTS TARGET: one pgbench run, one line in $RAW.
run_cell() {
    local round="$1" wl="$2" mode="$3" clients="$4" target="$5"
    local port pid jobs out rc u0 s0 u1 s1 cpu ut st tps lat txns failed aborted noteline
    local -a args
    if [[ "$target" == direct ]] && (( clients > PG_MAX_CONN - 5 )); then
        printf '%s\t%s\t%s\t%s\t%s\t\t\t\t\t\t\tna\t\tn/a: max_connections = %s\n' \
            "$round" "$wl" "$mode" "$clients" "$target" "$PG_MAX_CONN" >>"$RAW"
        return
    fi
    if [[ "$target" == pgbouncer* && "$mode" == prepared ]] && (( ! PGB_PREPARED )); then
        printf '%s\t%s\t%s\t%s\t%s\t\t\t\t\t\t\tna\t\tn/a: PgBouncer %s has no prepared statements in transaction pooling (1.21+ has: set PGBOUNCER_BIN)\n' \
            "$round" "$wl" "$mode" "$clients" "$target" "$PGB_SHORT" >>"$RAW"
        return
    fi
    port="$(port_of "$target")"
    pid="$(pid_of "$target")"
    jobs=2; (( clients < 2 )) && jobs=1
    # pgbench counts its connection phase (about 6 s for 1,000 SCRAM logins here) in -T but
    # not in its TPS: give many clients that much more time, so every cell measures about
    # BENCH_SECONDS of traffic.
    args=(-n -M "$mode" -c "$clients" -j "$jobs" -T "$(( BENCH_SECONDS + clients / 125 ))")
    [[ "$wl" == S ]] && args+=(-S)
    out="$WORK/pgbench-$round-$wl-$mode-$clients-$target.log"
    local attempt f0 foreign_pct t0 wall
    for attempt in 1 2; do
        wait_quiet
        f0="$(foreign_ticks)"
        u0=0 s0=0; [[ -n "$pid" ]] && read -r u0 s0 <<<"$(cpu_ticks "$pid")"
        rc=0
        t0="$(date +%s%N)"
        timeout -k 5 $(( BENCH_SECONDS + 120 )) pgbench "${args[@]}" \
            "host=127.0.0.1 port=$port user=qcp_scram dbname=qcp_test sslmode=$(sslmode_of "$target")" >"$out" 2>&1 || rc=$?
        wall=$(( ($(date +%s%N) - t0) / 1000000 ))   # ms
        cpu="" ut="" st=""
        if [[ -n "$pid" ]]; then
            read -r u1 s1 <<<"$(cpu_ticks "$pid")"
            ut=$(( u1 - u0 )); st=$(( s1 - s0 )); cpu=$(( ut + st ))
        fi
        sleep 0.6   # let cpuwatch take one more sample
        # Foreign CPU as a percentage of the machine's capacity over the run.
        foreign_pct=$(( ( $(foreign_ticks) - f0 ) * 1000 * 100 / (CLK_TCK * (wall + 1) * NCPU) ))
        (( foreign_pct <= 5 )) && break
        (( attempt == 1 )) && note "others used ${foreign_pct}% of the CPU during this run: repeating it"
    done
    tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out" | head -n1)"
    lat="$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$out" | head -n1)"
    txns="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out" | head -n1)"
    failed="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out" | head -n1)"
    aborted="$(grep -c -E 'aborted in command|connection to server .* failed|could not connect' "$out" || true)"
    noteline="$(grep -m1 -E 'error|ERROR|FATAL' "$out" | tr '\t' ' ' | cut -c1-200 || true)"
    (( rc == 124 || rc == 137 )) && noteline="pgbench timed out; $noteline"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$wl" "$mode" "$clients" "$target" \
        "${tps:-0}" "${lat:-}" "${txns:-0}" "${failed:-0}" "${aborted:-0}" "$cpu" "$rc" "$foreign_pct" "$noteline" \
        "$ut" "$st" >>"$RAW"
    printf '    round %s %-5s %-8s %4s clients %-13s tps %10s  lat %8s ms  errors %s%s\n' "$round" "$wl" "$mode" \
        "$clients" "$target" "${tps:-0}" "${lat:--}" "$(( ${failed:-0} + ${aborted:-0} ))" \
        "$( (( rc != 0 )) && echo "  (exit $rc)")$( (( foreign_pct > 5 )) && echo "  (others used ${foreign_pct}% CPU)")" >&2
}

# server_tls_check TARGET: which of the proxy's open server connections are encrypted, from
# pg_stat_ssl (the backends whose client port is one of the proxy's sockets to PostgreSQL), as
# one JSON object: {"conns": N, "tls": M, "params": {"TLSv1.3 TLS_AES_256_GCM_SHA384": M}}.
server_tls_check() {
    local pid ports
    pid="$(pid_of "$1")"
    ports="$(ss -Htnp state established "( dport = :$PG_PORT )" 2>/dev/null \
        | awk -v p="pid=$pid," 'index($0, p) { n = split($3, a, ":"); printf "%s%s", (c++ ? "," : ""), a[n] }')"
    if [[ -z "$pid" || -z "$ports" ]]; then echo '{"conns": 0, "tls": 0, "params": {}}'; return; fi
    psql_super -c "SELECT json_build_object('conns', count(*), 'tls', count(*) FILTER (WHERE s.ssl),
            'params', (SELECT coalesce(json_object_agg(p, n), '{}') FROM (
                SELECT s2.version || ' ' || s2.cipher AS p, count(*) AS n
                FROM pg_stat_activity a2 JOIN pg_stat_ssl s2 USING (pid)
                WHERE a2.client_port IN ($ports) AND s2.ssl GROUP BY 1) x))
        FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.client_port IN ($ports)" \
        || echo '{"error": "pg_stat_ssl query failed"}'
}

TARGETS=(direct pgbouncer qcp)
TLS_TARGETS=(pgbouncer_tls qcp_tls)
PGB_HWM="" QCP_HWM="" QCP2_HWM="" PGB_TLS_HWM="" QCP_TLS_HWM=""
MEM="$WORK/memory.jsonl"   # also gets the server_tls_check lines
: >"$MEM"
if [[ "$BENCH_CELLS" != none ]]; then
    read -r -a CELLS <<<"$BENCH_CELLS"
    for cell in "${CELLS[@]}"; do
        [[ "$cell" =~ ^(S|tpcb):(simple|extended|prepared):[0-9]+$ ]] || die "bad cell '$cell' in BENCH_CELLS"
        c="${cell##*:}"; (( c >= 1 && c <= 1000 )) || die "clients must be 1..1000 in '$cell'"
    done
    if (( TLS_ON )); then
        for cell in $BENCH_TLS_CELLS; do
            [[ "$cell" =~ ^(S|tpcb):(simple|extended|prepared):[0-9]+$ ]] || die "bad cell '$cell' in BENCH_TLS_CELLS"
        done
        [[ -n "$TLS_RUN" ]] || note "no cell of BENCH_TLS_CELLS ($BENCH_TLS_CELLS) is in BENCH_CELLS: no TLS pgbench rows"
    fi
    say "Warm-up (3 s per target)"
    WARM=("${TARGETS[@]}")
    [[ -n "$QCP2_RUN" ]] && WARM+=(qcp2)
    [[ -n "$TLS_RUN" ]] && WARM+=("${TLS_TARGETS[@]}")
    for t in "${WARM[@]}"; do
        timeout 60 pgbench -n -S -c 16 -j 2 -T 3 \
            "host=127.0.0.1 port=$(port_of "$t") user=qcp_scram dbname=qcp_test sslmode=$(sslmode_of "$t")" >/dev/null 2>&1 \
            || note "warm-up against $t failed"
    done
    say "pgbench: ${#CELLS[@]} cells x ${#TARGETS[@]} targets (+ qcp with 2 threads in ${QCP2_RUN:-none}; + PgBouncer and qcp with TLS in ${TLS_RUN:-none}) x $BENCH_ROUNDS rounds, ${BENCH_SECONDS} s each"
    for (( r = 1; r <= BENCH_ROUNDS; r++ )); do
        for cell in "${CELLS[@]}"; do
            IFS=: read -r wl mode clients <<<"$cell"
            CT=("${TARGETS[@]}")
            [[ " $QCP2_RUN " == *" $cell "* ]] && CT+=(qcp2)
            [[ " $TLS_RUN " == *" $cell "* ]] && CT+=("${TLS_TARGETS[@]}")
            # Rotate the order of the targets from round to round.
            for (( i = 0; i < ${#CT[@]}; i++ )); do
                run_cell "$r" "$wl" "$mode" "$clients" "${CT[$(( (i + r - 1) % ${#CT[@]} ))]}"
            done
        done
    done
    PGB_HWM="$(proc_kb "$PGB_PID" VmHWM)"
    QCP_HWM="$(proc_kb "$QCP_PID" VmHWM)"
    [[ -n "$QCP2_PID" ]] && QCP2_HWM="$(proc_kb "$QCP2_PID" VmHWM)"
    if [[ -n "$TLS_RUN" ]]; then
        PGB_TLS_HWM="$(proc_kb "$PGB_TLS_PID" VmHWM)"
        QCP_TLS_HWM="$(proc_kb "$QCP_TLS_PID" VmHWM)"
    fi
fi
# Which side is encrypted: after a short pgbench run (so each proxy has server connections
# open, whatever its idle timeout did since its last cell), pg_stat_ssl for each proxy's.
CHECK=(pgbouncer qcp)
[[ -n "$QCP2_PID" ]] && CHECK+=(qcp2)
(( TLS_ON )) && CHECK+=("${TLS_TARGETS[@]}")
say "Server-side TLS of each proxy (pg_stat_ssl)"
for t in "${CHECK[@]}"; do
    timeout 60 pgbench -n -S -c 4 -j 1 -t 50 \
        "host=127.0.0.1 port=$(port_of "$t") user=qcp_scram dbname=qcp_test sslmode=$(sslmode_of "$t")" >/dev/null 2>&1 \
        || note "pgbench against $t (for the server-side TLS check) failed"
    res="$(server_tls_check "$t")"
    note "$t: server connections $res"
    echo "{\"test\": \"server_tls\", \"target\": \"$t\", \"result\": $res}" >>"$MEM"
done
# The 2-thread qcp is only for the timed runs of its cells.
stop_qcp2

# ---------------------------------------------------------------------------------------------
# System calls per transaction: separate, traced pgbench runs
# ---------------------------------------------------------------------------------------------
SYS="$WORK/syscalls.jsonl"
: >"$SYS"

# trace_cell WORKLOAD MODE CLIENTS TARGET: one pgbench run with -l; once its clients are
# connected and logged in, strace counts the proxy's system calls (all threads) for
# BENCH_STRACE_SECONDS; one line in $SYS.
trace_cell() {
    local wl="$1" mode="$2" clients="$3" target="$4"
    local port pid jobs dir bpid spid t0 t1 rc n ended_early=false res
    local -a args
    if [[ "$target" == pgbouncer && "$mode" == prepared ]] && (( ! PGB_PREPARED )); then return 0; fi
    port="$(port_of "$target")"
    pid="$(pid_of "$target")"
    dir="$WORK/strace-$wl-$mode-$clients-$target"
    mkdir -p "$dir"
    jobs=2; (( clients < 2 )) && jobs=1
    # Connection phase (clients/125 s, as above) + 1 s for the last logins + the traced window
    # + 2 s, so pgbench is still running when strace detaches.
    args=(-n -M "$mode" -c "$clients" -j "$jobs" -T "$(( clients / 125 + 1 + BENCH_STRACE_SECONDS + 2 ))"
        -l "--log-prefix=$dir/txn")
    [[ "$wl" == S ]] && args+=(-S)
    wait_quiet
    timeout -k 5 $(( BENCH_STRACE_SECONDS + clients / 125 + 120 )) pgbench "${args[@]}" \
        "host=127.0.0.1 port=$port user=qcp_scram dbname=qcp_test sslmode=disable" >"$dir/pgbench.log" 2>&1 &
    bpid=$!
    TRACE_BENCH_PID=$bpid
    # Until CLIENTS connections to the proxy are established (at most 60 s), then 1 s more:
    # pgbench logs its clients in one after another, so at most the last ones are still at it.
    for _ in $(seq 1 600); do
        n="$(ss -Htn state established "( sport = :$port )" 2>/dev/null | wc -l)"
        (( n >= clients )) && break
        kill -0 "$bpid" 2>/dev/null || break
        sleep 0.1
    done
    sleep 1
    if ! kill -0 "$bpid" 2>/dev/null; then
        wait "$bpid" || true
        TRACE_BENCH_PID=""
        note "strace $wl $mode $clients $target: pgbench ended before its clients were connected"
        echo "{\"workload\": \"$wl\", \"mode\": \"$mode\", \"clients\": $clients, \"target\": \"$target\", \"result\": {\"error\": \"pgbench ended before tracing\"}}" >>"$SYS"
        return 0
    fi
    t0="$(date +%s.%N)"
    strace -f -c -o "$dir/strace.txt" -p "$pid" 2>"$dir/strace.err" &
    spid=$!
    TRACE_PID=$spid
    sleep "$BENCH_STRACE_SECONDS"
    t1="$(date +%s.%N)"
    kill -0 "$bpid" 2>/dev/null || ended_early=true
    kill -INT "$spid" 2>/dev/null || true
    wait "$spid" || true
    TRACE_PID=""
    rc=0
    wait "$bpid" || rc=$?
    TRACE_BENCH_PID=""
    res="$(python3 "$BENCH/syscalls.py" --label "$(printf '%-5s %-8s %4s clients %-9s' "$wl" "$mode" "$clients" "$target")" \
        "$dir/strace.txt" "$t0" "$t1" "$dir"/txn.*)" \
        || res='{"error": "could not read the strace summary"}'
    echo "{\"workload\": \"$wl\", \"mode\": \"$mode\", \"clients\": $clients, \"target\": \"$target\", \"pgbench_exit\": $rc, \"ended_early\": $ended_early, \"result\": $res}" >>"$SYS"
}

if [[ "$BENCH_STRACE_CELLS" != none ]]; then
    read -r -a TCELLS <<<"$BENCH_STRACE_CELLS"
    for cell in "${TCELLS[@]}"; do
        [[ "$cell" =~ ^(S|tpcb):(simple|extended|prepared):[0-9]+$ ]] || die "bad cell '$cell' in BENCH_STRACE_CELLS"
        c="${cell##*:}"; (( c >= 1 && c <= 1000 )) || die "clients must be 1..1000 in '$cell'"
    done
    say "System calls: ${#TCELLS[@]} cells x 2 proxies, strace attached for ${BENCH_STRACE_SECONDS} s each"
    for cell in "${TCELLS[@]}"; do
        IFS=: read -r wl mode clients <<<"$cell"
        for t in pgbouncer qcp; do
            trace_cell "$wl" "$mode" "$clients" "$t"
        done
    done
fi

# ---------------------------------------------------------------------------------------------
# Idle clients and SCRAM logins, on freshly started proxies
# ---------------------------------------------------------------------------------------------
if (( BENCH_IDLE_CLIENTS > 0 )); then
    MEM_TARGETS=(pgbouncer qcp)
    (( TLS_ON )) && MEM_TARGETS+=("${TLS_TARGETS[@]}")
    say "Restarting the proxies for the memory test"
    stop_qcp; stop_pgbouncer
    start_pgbouncer
    start_qcp
    if (( TLS_ON )); then
        stop_qcp_tls; stop_pgbouncer_tls
        start_pgbouncer_tls
        start_qcp_tls
    fi
    for t in "${MEM_TARGETS[@]}"; do
        # One login first, so the first server connection (both proxies open one) is in "before".
        # shellcheck disable=SC2046
        python3 "$BENCH/pgclient.py" logins --port "$(port_of "$t")" --clients 1 --timeout 30 $(tls_flag "$t") >/dev/null
        sleep 1
        say "$BENCH_IDLE_CLIENTS idle SCRAM clients against $t$([[ -n "$(tls_flag "$t")" ]] && echo ", over TLS")"
        wait_quiet
        # shellcheck disable=SC2046
        res="$(python3 "$BENCH/pgclient.py" idle --port "$(port_of "$t")" --clients "$BENCH_IDLE_CLIENTS" \
            --concurrency 100 --pid "$(pid_of "$t")" --settle 3 --timeout 300 $(tls_flag "$t"))" \
            || res='{"ok": 0, "error": "client failed"}'
        echo "$res" >&2
        echo "{\"test\": \"idle\", \"target\": \"$t\", \"result\": $res}" >>"$MEM"
        sleep 2
    done
    # Logins, the proxies of a pair (clear text, then TLS) in turn, their order swapped every round.
    PAIRS=("pgbouncer qcp")
    (( TLS_ON )) && PAIRS+=("pgbouncer_tls qcp_tls")
    for (( r = 1; r <= BENCH_ROUNDS; r++ )); do
        for pair in "${PAIRS[@]}"; do
            read -r -a P <<<"$pair"
            (( r % 2 == 0 )) && P=("${P[1]}" "${P[0]}")
            for t in "${P[@]}"; do
                wait_quiet
                # shellcheck disable=SC2046
                res="$(python3 "$BENCH/pgclient.py" logins --port "$(port_of "$t")" --clients "$BENCH_LOGIN_CLIENTS" \
                    --concurrency "$BENCH_LOGIN_CONCURRENCY" --pid "$(pid_of "$t")" --timeout 300 $(tls_flag "$t"))" \
                    || res='{"ok": 0, "error": "client failed"}'
                note "round $r: $BENCH_LOGIN_CLIENTS logins against $t: $res"
                echo "{\"test\": \"logins\", \"round\": $r, \"target\": \"$t\", \"result\": $res}" >>"$MEM"
            done
        done
    done
fi

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
say "Writing $BENCH_OUT"
QCP_REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if (( QCP_PREBUILT )); then
    QCP_REV="$QCP_REV (prebuilt binary from QCP_BIN_DIR, built $(date -u -r "$QCP" '+%Y-%m-%d %H:%M UTC'))"
elif [[ -n "$(git -C "$ROOT" status --porcelain -- qcp-core qcp-codec qcp-bin Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
    QCP_REV="$QCP_REV (+ uncommitted changes)"
fi
BENCH_PG_VERSION="$("$PG_BINDIR/postgres" --version)" \
BENCH_PGB_VERSION="$PGB_VERSION" BENCH_PGB_BIN="$PGBOUNCER" \
BENCH_PGB_PREPARED="$PGB_PREPARED" BENCH_PGB_MAX_PREPARED="$PGB_MAX_PREPARED" \
BENCH_STRACE_CELLS="$BENCH_STRACE_CELLS" BENCH_STRACE_SECONDS="$BENCH_STRACE_SECONDS" \
BENCH_QCP_VERSION="$("$QCP" --version) at $QCP_REV" \
BENCH_PGBENCH_VERSION="$(pgbench --version)" \
BENCH_CLK_TCK="$CLK_TCK" BENCH_PGB_HWM="$PGB_HWM" BENCH_QCP_HWM="$QCP_HWM" \
BENCH_QCP2_CELLS="${QCP2_RUN:-none}" BENCH_QCP2_HWM="$QCP2_HWM" \
BENCH_TLS="$TLS_ON" BENCH_TLS_CELLS="${TLS_RUN:-none}" \
BENCH_PGB_TLS_HWM="$PGB_TLS_HWM" BENCH_QCP_TLS_HWM="$QCP_TLS_HWM" \
BENCH_QCP_ARENA_BYTES="$QCP_ARENA_BYTES" BENCH_PG_MAX_CONN="$PG_MAX_CONN" \
BENCH_SECONDS="$BENCH_SECONDS" BENCH_ROUNDS="$BENCH_ROUNDS" BENCH_QUICK="$BENCH_QUICK" \
BENCH_POOL_SIZE="$BENCH_POOL_SIZE" BENCH_SCALE="$BENCH_SCALE" \
BENCH_QCP_CHUNK_SIZE="$BENCH_QCP_CHUNK_SIZE" BENCH_QCP_CHUNKS="$BENCH_QCP_CHUNKS" \
BENCH_LOGIN_CONCURRENCY="$BENCH_LOGIN_CONCURRENCY" \
    python3 "$BENCH/report.py" "$RAW" "$MEM" "$BENCH_OUT" "$SYS"
note "done: $BENCH_OUT"

#!/usr/bin/env bash
# Start/stop a throwaway PostgreSQL 15 cluster for QCP's tests.
#
#   scripts/pg-cluster.sh start DIR PORT   initdb DIR if empty, (re)write config, start, create roles/dbs
#   scripts/pg-cluster.sh stop  DIR        pg_ctl stop -m fast (tolerates an already stopped cluster)
#   scripts/pg-cluster.sh env   DIR PORT   print the QCP_TEST_PG_* `export` lines
#   scripts/pg-cluster.sh free-port [FROM] print the first TCP port >= FROM (default 54329) with no listener
#   scripts/pg-cluster.sh ensure           install PostgreSQL 15 server+client if missing (apt-get)
#
# Must be run as root (it runs the server as the `postgres` OS user). Works from any working
# directory and concurrently for different DIR/PORT pairs.
#
# Contract used by the Rust tests (keep in sync with README / tests):
#   superuser postgres / qcp-super-pass
#   qcp_scram / scram-pass  (SCRAM-stored, hba scram-sha-256)  owner of qcp_test and qcp_other
#   qcp_md5   / md5-pass    (md5-stored,   hba md5)
#   qcp_plain / plain-pass  (SCRAM-stored, hba password = cleartext)
#   qcp_trust / no password (hba trust)
#   pg_hba: local all postgres trust; the same methods for the test users over TCP (127.0.0.1/32)
#   and over the Unix socket in DIR (DIR/.s.PGSQL.PORT, QCP_TEST_PG_SOCKET_DIR); everything else
#   scram-sha-256.
#   TLS: ssl = on (clear text is accepted too), with a certificate for the name `localhost` only
#   (not for 127.0.0.1), signed by a test CA made on the first start: DIR/tls/ca.crt
#   (QCP_TEST_PG_CA).
set -euo pipefail

SCRIPT_PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")"
PG_MAJOR=15
START_WAIT_SECS=30

# Client-side libpq variables from the caller's environment must not redirect our own psql calls.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE PGSERVICE PGSERVICEFILE \
    PGOPTIONS PGSSLMODE PGREQUIRESSL PGGSSENCMODE PGTARGETSESSIONATTRS PGDATA PGAPPNAME 2>/dev/null || true

die() { echo "pg-cluster.sh: error: $*" >&2; exit 1; }
note() { echo "pg-cluster.sh: $*" >&2; }

usage() {
    sed -n '2,9p' "$SCRIPT_PATH" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

abspath() {
    # Absolute path without requiring existence; does not resolve symlinks of missing parts.
    case "$1" in
        /*) realpath -m -- "$1" ;;
        *) realpath -m -- "$PWD/$1" ;;
    esac
}

check_port() {
    [[ "$1" =~ ^[0-9]+$ ]] && (( $1 >= 1 && $1 <= 65535 )) || die "invalid port: '$1'"
}

# ---------------------------------------------------------------------------------------------
# Locating / installing PostgreSQL 15
# ---------------------------------------------------------------------------------------------
is_pg15_bindir() {
    local d="$1"
    [[ -x "$d/pg_ctl" && -x "$d/initdb" && -x "$d/postgres" ]] || return 1
    "$d/postgres" --version 2>/dev/null | grep -Eq "PostgreSQL\)? ${PG_MAJOR}\." || return 1
}

find_bindir() {
    local d p
    for d in "${QCP_PG_BINDIR:-}" "/usr/lib/postgresql/${PG_MAJOR}/bin" /usr/local/bin /usr/local/pgsql/bin; do
        [[ -n "$d" ]] || continue
        if is_pg15_bindir "$d"; then
            # Prefer the real directory (symlinks in /usr/local/bin point into the Debian dir).
            p="$(dirname "$(readlink -f "$d/pg_ctl")")"
            if is_pg15_bindir "$p"; then echo "$p"; else echo "$d"; fi
            return 0
        fi
    done
    p="$(command -v pg_ctl 2>/dev/null || true)"
    if [[ -n "$p" ]]; then
        d="$(dirname "$(readlink -f "$p")")"
        if is_pg15_bindir "$d"; then echo "$d"; return 0; fi
    fi
    return 1
}

ensure_installed() {
    local missing=0
    find_bindir >/dev/null || missing=1
    command -v psql >/dev/null 2>&1 || missing=1
    command -v pgbench >/dev/null 2>&1 || missing=1
    if (( missing )); then
        [[ "$(id -u)" == 0 ]] || die "PostgreSQL ${PG_MAJOR} is missing and we are not root to install it"
        command -v apt-get >/dev/null 2>&1 || die "PostgreSQL ${PG_MAJOR} is missing and apt-get is unavailable"
        # Serialise concurrent installers (dpkg has its own lock, but would fail rather than wait).
        exec 9>/var/lock/qcp-pg-install.lock
        flock -w 900 9 || die "timed out waiting for the install lock"
        if ! find_bindir >/dev/null || ! command -v psql >/dev/null 2>&1 || ! command -v pgbench >/dev/null 2>&1; then
            note "installing postgresql-${PG_MAJOR} and postgresql-client-${PG_MAJOR} with apt-get"
            # Do not let the Debian package create and start its own 'main' cluster on 5432.
            mkdir -p /etc/postgresql-common/createcluster.d
            if [[ ! -e /etc/postgresql-common/createcluster.d/00-qcp-no-main.conf ]]; then
                echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/00-qcp-no-main.conf
            fi
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq >/dev/null || die "apt-get update failed"
            apt-get install -y -qq --no-install-recommends \
                "postgresql-${PG_MAJOR}" "postgresql-client-${PG_MAJOR}" >/dev/null \
                || die "apt-get install postgresql-${PG_MAJOR} failed"
        fi
        exec 9>&-
    fi
    find_bindir >/dev/null || die "PostgreSQL ${PG_MAJOR} server binaries not found even after install"
    id -u postgres >/dev/null 2>&1 || die "OS user 'postgres' does not exist"
}

pgtool() {
    # Path of a client tool: prefer the server's bindir, then PATH.
    local t="$1"
    if [[ -x "$BINDIR/$t" ]]; then echo "$BINDIR/$t"; return; fi
    command -v "$t" 2>/dev/null || die "$t not found"
}

as_pg() {
    # Run as the postgres OS user from a directory it can read (tools call getcwd()).
    (cd / && runuser -u postgres -- "$@")
}

# ---------------------------------------------------------------------------------------------
# Data directory preparation
# ---------------------------------------------------------------------------------------------
under_temp_root() {
    local d="$1" t
    for t in /tmp /var/tmp /dev/shm "${TMPDIR:-/tmp}"; do
        t="$(realpath -m -- "$t")"
        [[ "$d" == "$t"/?* ]] && return 0
    done
    return 1
}

prepare_dir() {
    # Make DIR exist, owned by postgres, and reachable by postgres. Missing ancestors are created
    # and given to postgres. If the nearest existing ancestor is a root-only directory (typically a
    # `mktemp -d` of the caller) it is handed to postgres too, but only inside a temp root or when
    # it is empty, so that we never chown something like a home directory.
    local dir="$1" parent anc
    local -a created=()
    parent="$(dirname "$dir")"
    anc="$parent"
    while [[ ! -d "$anc" ]]; do
        created+=("$anc")
        anc="$(dirname "$anc")"
    done
    if ! runuser -u postgres -- test -x "$anc"; then
        # Walk from / down to $anc and fix the first directories postgres cannot enter.
        local cur="" part
        local -a parts
        IFS=/ read -r -a parts <<<"${anc#/}"
        for part in "${parts[@]}"; do
            cur="$cur/$part"
            runuser -u postgres -- test -x "$cur" && continue
            if under_temp_root "$cur" || [[ -z "$(ls -A "$cur")" ]]; then
                chown postgres:postgres "$cur"
            else
                die "user postgres cannot enter $cur; use a DIR that postgres can reach (e.g. under /tmp)"
            fi
        done
    fi
    if (( ${#created[@]} )); then
        mkdir -p "$parent"
        chown postgres:postgres "${created[@]}"
    fi
    mkdir -p "$dir"
    chown postgres:postgres "$dir"
    chmod 0700 "$dir"
    runuser -u postgres -- test -w "$dir" || die "user postgres cannot write $dir"
}

write_tls() {
    # A test CA and a server certificate for `localhost`, made once per data directory.
    local tls="$1/tls"
    [[ -f "$tls/server.crt" && -f "$tls/ca.crt" ]] && return 0
    command -v openssl >/dev/null 2>&1 || die "openssl is needed to make the test certificates (apt-get install openssl)"
    mkdir -p "$tls"
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -days 3650 -subj "/CN=qcp test CA" \
        -keyout "$tls/ca.key" -out "$tls/ca.crt" >/dev/null 2>&1 || die "making the test CA failed"
    openssl req "${ec[@]}" -subj "/CN=localhost" \
        -keyout "$tls/server.key" -out "$tls/server.csr" >/dev/null 2>&1 || die "making the server key failed"
    printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' >"$tls/server.ext"
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial \
        -days 3650 -extfile "$tls/server.ext" -out "$tls/server.crt" >/dev/null 2>&1 || die "signing the server certificate failed"
    chown -R postgres:postgres "$tls"
    chmod 0700 "$tls"
    chmod 0600 "$tls/server.key" "$tls/ca.key"
    chmod 0644 "$tls/ca.crt" "$tls/server.crt"
}

write_config() {
    local dir="$1" port="$2"
    local conf="$dir/qcp-cluster.conf"
    write_tls "$dir"
    cat >"$conf" <<EOF
# Written by scripts/pg-cluster.sh on every start; do not edit.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
password_encryption = 'scram-sha-256'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 400
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
ssl = on
ssl_cert_file = '$dir/tls/server.crt'
ssl_key_file = '$dir/tls/server.key'
EOF
    chown postgres:postgres "$conf"
    if ! grep -q "^include_if_exists = 'qcp-cluster.conf'" "$dir/postgresql.conf"; then
        printf "\n# QCP test settings\ninclude_if_exists = 'qcp-cluster.conf'\n" >>"$dir/postgresql.conf"
    fi
    cat >"$dir/pg_hba.conf" <<'EOF'
# Written by scripts/pg-cluster.sh on every start; do not edit.
# TYPE  DATABASE  USER       ADDRESS        METHOD
local   all       postgres                  trust
local   all       qcp_trust                 trust
local   all       qcp_md5                   md5
local   all       qcp_plain                 password
local   all       all                       scram-sha-256
host    all       qcp_trust  127.0.0.1/32   trust
host    all       qcp_md5    127.0.0.1/32   md5
host    all       qcp_plain  127.0.0.1/32   password
host    all       all        127.0.0.1/32   scram-sha-256
EOF
    chown postgres:postgres "$dir/pg_hba.conf"
    chmod 0600 "$dir/pg_hba.conf"
}

is_running() {
    local dir="$1"
    [[ -f "$dir/postmaster.pid" ]] || return 1
    as_pg "$BINDIR/pg_ctl" -D "$dir" status >/dev/null 2>&1
}

running_port() {
    # Port of a running postmaster (line 4 of postmaster.pid).
    sed -n '4p' "$1/postmaster.pid" 2>/dev/null || true
}

setup_sql() {
    cat <<'SQL'
\set ON_ERROR_STOP 1
ALTER ROLE postgres WITH PASSWORD 'qcp-super-pass';
DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['qcp_scram', 'qcp_md5', 'qcp_plain', 'qcp_trust'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I LOGIN', r);
    END IF;
  END LOOP;
END
$$;
SET password_encryption = 'scram-sha-256';
ALTER ROLE qcp_scram WITH LOGIN NOSUPERUSER PASSWORD 'scram-pass';
ALTER ROLE qcp_plain WITH LOGIN NOSUPERUSER PASSWORD 'plain-pass';
SET password_encryption = 'md5';
ALTER ROLE qcp_md5 WITH LOGIN NOSUPERUSER PASSWORD 'md5-pass';
RESET password_encryption;
ALTER ROLE qcp_trust WITH LOGIN NOSUPERUSER PASSWORD NULL;
SELECT 'CREATE DATABASE qcp_test OWNER qcp_scram'
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'qcp_test') \gexec
SELECT 'CREATE DATABASE qcp_other OWNER qcp_scram'
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'qcp_other') \gexec
GRANT ALL ON DATABASE qcp_test  TO qcp_scram, qcp_md5, qcp_plain, qcp_trust;
GRANT ALL ON DATABASE qcp_other TO qcp_scram, qcp_md5, qcp_plain, qcp_trust;
\connect qcp_test
GRANT ALL ON SCHEMA public TO qcp_scram, qcp_md5, qcp_plain, qcp_trust;
ALTER DEFAULT PRIVILEGES FOR ROLE qcp_scram, qcp_md5, qcp_plain, qcp_trust IN SCHEMA public
  GRANT ALL ON TABLES TO qcp_scram, qcp_md5, qcp_plain, qcp_trust;
ALTER DEFAULT PRIVILEGES FOR ROLE qcp_scram, qcp_md5, qcp_plain, qcp_trust IN SCHEMA public
  GRANT ALL ON SEQUENCES TO qcp_scram, qcp_md5, qcp_plain, qcp_trust;
\connect qcp_other
GRANT ALL ON SCHEMA public TO qcp_scram, qcp_md5, qcp_plain, qcp_trust;
SQL
}

# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------
cmd_start() {
    local dir="$1" port="$2" rport
    check_port "$port"
    dir="$(abspath "$dir")"
    # Unix socket paths are limited to 107 bytes.
    local sock="$dir/.s.PGSQL.$port"
    (( ${#sock} <= 100 )) || die "DIR too long for a unix socket path ($sock); use a shorter DIR"

    ensure_installed
    BINDIR="$(find_bindir)"
    prepare_dir "$dir"

    if [[ ! -f "$dir/PG_VERSION" ]]; then
        if [[ -n "$(ls -A "$dir")" ]]; then
            die "$dir is neither empty nor a PostgreSQL data directory"
        fi
        note "initdb $dir"
        local initdb_out
        if ! initdb_out="$(as_pg "$BINDIR/initdb" -D "$dir" -U postgres -E UTF8 --locale=C \
            --auth-local=trust --auth-host=scram-sha-256 --no-sync 2>&1)"; then
            echo "$initdb_out" >&2
            die "initdb failed"
        fi
    fi

    if is_running "$dir"; then
        rport="$(running_port "$dir")"
        if [[ "$rport" != "$port" ]]; then
            die "cluster in $dir is already running on port $rport (asked for $port)"
        fi
        note "cluster in $dir already running on port $port; reloading config"
        write_config "$dir" "$port"
        as_pg "$BINDIR/pg_ctl" -D "$dir" reload >/dev/null
    else
        write_config "$dir" "$port"
        note "starting PostgreSQL in $dir on 127.0.0.1:$port"
        if ! as_pg "$BINDIR/pg_ctl" -D "$dir" -l "$dir/postgres.log" -w -t "$START_WAIT_SECS" start >/dev/null; then
            echo "---- tail of $dir/postgres.log ----" >&2
            tail -n 30 "$dir/postgres.log" >&2 || true
            # Do not leave a half-started postmaster behind.
            as_pg "$BINDIR/pg_ctl" -D "$dir" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
            die "PostgreSQL failed to start on port $port"
        fi
    fi

    local isready deadline
    isready="$(pgtool pg_isready)"
    deadline=$(( SECONDS + START_WAIT_SECS ))
    until "$isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 2; do
        if (( SECONDS >= deadline )); then
            tail -n 30 "$dir/postgres.log" >&2 || true
            die "PostgreSQL on 127.0.0.1:$port not ready after ${START_WAIT_SECS}s"
        fi
        sleep 0.2
    done
    until "$isready" -q -h "$dir" -p "$port" -U postgres -d postgres -t 2; do
        (( SECONDS < deadline )) || die "PostgreSQL socket in $dir not ready after ${START_WAIT_SECS}s"
        sleep 0.2
    done

    local out
    if ! out="$(setup_sql | as_pg "$(pgtool psql)" -X -q -h "$dir" -p "$port" -U postgres -d postgres 2>&1)"; then
        echo "$out" >&2
        die "creating roles/databases failed"
    fi
    note "ready: 127.0.0.1:$port (data $dir)"
}

cmd_stop() {
    local dir
    dir="$(abspath "$1")"
    if [[ ! -d "$dir" ]]; then
        note "$dir does not exist; nothing to stop"
        return 0
    fi
    if ! BINDIR="$(find_bindir)"; then
        note "PostgreSQL binaries not found; nothing to stop"
        return 0
    fi
    if ! is_running "$dir"; then
        note "cluster in $dir is not running"
        return 0
    fi
    if ! as_pg "$BINDIR/pg_ctl" -D "$dir" -m fast -w -t 60 stop >/dev/null 2>&1; then
        if is_running "$dir"; then
            note "fast shutdown did not finish; using immediate"
            as_pg "$BINDIR/pg_ctl" -D "$dir" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
        fi
    fi
    if is_running "$dir"; then
        die "cluster in $dir is still running"
    fi
    note "stopped cluster in $dir"
}

cmd_env() {
    local dir="$1" port="$2" bindir
    check_port "$port"
    dir="$(abspath "$dir")"
    bindir="$(find_bindir)" || die "PostgreSQL ${PG_MAJOR} binaries not found (run: $SCRIPT_PATH ensure)"
    printf 'export QCP_TEST_PG_ADDR=%q\n' "127.0.0.1:$port"
    printf 'export QCP_TEST_PG_DATA=%q\n' "$dir"
    # unix_socket_directories (see write_config): the server's socket is DIR/.s.PGSQL.PORT.
    printf 'export QCP_TEST_PG_SOCKET_DIR=%q\n' "$dir"
    printf 'export QCP_TEST_PG_SUPERUSER=%q\n' "postgres"
    printf 'export QCP_TEST_PG_SUPERPASS=%q\n' "qcp-super-pass"
    printf 'export QCP_TEST_PG_BINDIR=%q\n' "$bindir"
    printf 'export QCP_TEST_PG_CLUSTER_SCRIPT=%q\n' "$SCRIPT_PATH"
    printf 'export QCP_TEST_PG_CA=%q\n' "$dir/tls/ca.crt"
}

port_in_use() {
    # True if something accepts TCP connections on 127.0.0.1:$1.
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

cmd_free_port() {
    local p="${1:-54329}" last
    check_port "$p"
    last=$(( p + 200 ))
    while (( p <= last && p <= 65535 )); do
        if ! port_in_use "$p"; then echo "$p"; return 0; fi
        p=$(( p + 1 ))
    done
    die "no free port found in $1..$last"
}

[[ $# -ge 1 ]] || usage
cmd="$1"; shift
case "$cmd" in
    start) [[ $# -eq 2 ]] || usage; [[ "$(id -u)" == 0 ]] || die "must run as root"; cmd_start "$@" ;;
    stop) [[ $# -eq 1 ]] || usage; [[ "$(id -u)" == 0 ]] || die "must run as root"; cmd_stop "$@" ;;
    env) [[ $# -eq 2 ]] || usage; cmd_env "$@" ;;
    free-port) [[ $# -le 1 ]] || usage; cmd_free_port "$@" ;;
    ensure) [[ $# -eq 0 ]] || usage; ensure_installed; BINDIR="$(find_bindir)"; note "PostgreSQL ${PG_MAJOR} in $BINDIR" ;;
    -h|--help|help) usage ;;
    *) usage ;;
esac

#!/usr/bin/env bash
# QCP's one test command: run it from anywhere, with no arguments.
#
#   scripts/test.sh
#
# 1. checks/installs prerequisites (PostgreSQL 15 server + client via apt-get if missing; cargo;
#    promtool, unpacked from Debian's prometheus package under target/tools, if it can be had)
# 2. starts a shared throwaway PostgreSQL 15 cluster (port 54329, or the next free one) and exports
#    the QCP_TEST_PG_* variables from `scripts/pg-cluster.sh env`
# 3. cargo fmt --check, cargo clippy -D warnings, cargo nextest run (or cargo test) + doctests
# 4. fuzz/run.sh with a short budget, if it exists and QCP_SKIP_FUZZ is not set
# The cluster is always stopped and its temp dir removed on exit. Every step runs even if an
# earlier cargo step failed (set QCP_FAIL_FAST=1 to stop at the first failure); the exit status is
# non-zero if any step failed.
#
# Environment knobs: QCP_TEST_PG_PORT (first port to try, default 54329), QCP_CI_FUZZ_SECONDS
# (default 10), QCP_SKIP_FUZZ (set => skip fuzzing), QCP_FAIL_FAST, QCP_KEEP_TMP (keep the temp
# dir with the cluster's data and log).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
CLUSTER="$ROOT/scripts/pg-cluster.sh"

header() {
    printf '\n==================================================================\n'
    printf '==== [%s] %s\n' "$(date '+%H:%M:%S')" "$*"
    printf '==================================================================\n'
}

die() { echo "test.sh: error: $*" >&2; exit 1; }

# ------------------------------------------------------------------------------------------------
TMP=""
PG_DIR=""
PG_STARTED=0
FAILED=()
PASSED=()

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    if (( PG_STARTED )); then
        header "stop PostgreSQL cluster"
        if (( rc != 0 )) && [[ -f "$PG_DIR/postgres.log" ]]; then
            echo "---- last lines of $PG_DIR/postgres.log ----"
            tail -n 40 "$PG_DIR/postgres.log"
            echo "--------------------------------------------"
        fi
        bash "$CLUSTER" stop "$PG_DIR"
    fi
    if [[ -n "$TMP" && -d "$TMP" ]]; then
        if [[ -n "${QCP_KEEP_TMP:-}" ]]; then
            echo "test.sh: keeping $TMP"
        else
            rm -rf "$TMP"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Run one step; record the outcome. Returns 0 so that later steps still run, unless fail-fast.
step() {
    local name="$1"; shift
    header "$name: $*"
    local start=$SECONDS rc=0
    "$@" || rc=$?
    if (( rc == 0 )); then
        PASSED+=("$name")
        echo "---- $name: ok ($(( SECONDS - start ))s)"
    else
        FAILED+=("$name")
        echo "---- $name: FAILED with exit code $rc ($(( SECONDS - start ))s)"
        if [[ -n "${QCP_FAIL_FAST:-}" ]]; then
            die "stopping at the first failure ($name)"
        fi
    fi
}

# ------------------------------------------------------------------------------------------------
header "prerequisites"
[[ "$(id -u)" == 0 ]] || die "must run as root (the PostgreSQL cluster is run as user postgres via runuser)"
if ! command -v cargo >/dev/null 2>&1; then
    for d in "${CARGO_HOME:-}/bin" "${HOME:-/root}/.cargo/bin" /root/.cargo/bin; do
        if [[ -x "$d/cargo" ]]; then export PATH="$d:$PATH"; break; fi
    done
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found (install a Rust toolchain with rustup)"
cargo fmt --version >/dev/null 2>&1 || die "rustfmt missing (rustup component add rustfmt)"
cargo clippy --version >/dev/null 2>&1 || die "clippy missing (rustup component add clippy)"
bash "$CLUSTER" ensure
for t in psql pgbench; do
    command -v "$t" >/dev/null 2>&1 || die "$t not found after installing PostgreSQL"
done
# promtool (from Debian's prometheus package) checks the /metrics text in the tests; only the
# binary is needed, so the package is unpacked under target/ rather than installed (no
# service, no web assets). Without it the tests check the format with a parser alone.
PROMTOOL_DIR="$ROOT/target/tools/prometheus"
if ! command -v promtool >/dev/null 2>&1; then
    if [[ ! -x "$PROMTOOL_DIR/usr/bin/promtool" ]]; then
        fetch_promtool() {
            local dl
            dl="$(mktemp -d)"
            ( cd "$dl" && { apt-get download prometheus >/dev/null 2>&1 \
                  || { apt-get update -qq >/dev/null 2>&1 && apt-get download prometheus >/dev/null 2>&1; }; } \
              && mkdir -p "$PROMTOOL_DIR" && dpkg-deb -x prometheus_*.deb "$PROMTOOL_DIR" )
            local rc=$?
            rm -rf "$dl"
            return $rc
        }
        fetch_promtool || echo "test.sh: promtool is not available; /metrics is checked with a parser only"
    fi
    if [[ -x "$PROMTOOL_DIR/usr/bin/promtool" ]]; then export PATH="$PROMTOOL_DIR/usr/bin:$PATH"; fi
fi
command -v promtool >/dev/null 2>&1 && echo "promtool: $(promtool --version 2>&1 | head -n1)"
HAVE_NEXTEST=0
if cargo nextest --version >/dev/null 2>&1; then HAVE_NEXTEST=1; fi
echo "cargo:    $(cargo --version)"
echo "rustc:    $(rustc --version 2>/dev/null || echo '?')"
(( HAVE_NEXTEST )) && echo "nextest:  $(cargo nextest --version 2>/dev/null | head -n1)"

# ------------------------------------------------------------------------------------------------
header "start shared PostgreSQL cluster"
TMP="$(mktemp -d /tmp/qcp-test.XXXXXX)"
PG_DIR="$TMP/pg"
port="${QCP_TEST_PG_PORT:-54329}"
attempt=0
while :; do
    attempt=$(( attempt + 1 ))
    port="$(bash "$CLUSTER" free-port "$port")"
    PG_STARTED=1 # from here on, cleanup must try to stop it
    if out="$(bash "$CLUSTER" start "$PG_DIR" "$port" 2>&1)"; then
        echo "$out"
        break
    fi
    echo "$out"
    # Someone took the port between the check and the bind: try the next one.
    if (( attempt < 10 )) && grep -q "Address already in use" <<<"$out"; then
        port=$(( port + 1 ))
        continue
    fi
    die "could not start the PostgreSQL cluster"
done
eval "$(bash "$CLUSTER" env "$PG_DIR" "$port")"
env | grep '^QCP_TEST_PG_' | sort
echo "server: $("$QCP_TEST_PG_BINDIR/postgres" --version)"

export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

# ------------------------------------------------------------------------------------------------
step "fmt" cargo fmt --all -- --check
step "clippy" cargo clippy --workspace --all-targets -- -D warnings
if (( HAVE_NEXTEST )); then
    nextest_args=(run --workspace)
    # nextest fails on "no tests to run" by default, unlike cargo test; keep cargo test's semantics.
    if cargo nextest run --help 2>/dev/null | grep -q -- '--no-tests'; then
        nextest_args+=(--no-tests=warn)
    fi
    step "tests (nextest)" cargo nextest "${nextest_args[@]}"
    step "doctests" cargo test --workspace --doc
else
    step "tests" cargo test --workspace
fi

if [[ -e fuzz/run.sh ]]; then
    if [[ -z "${QCP_SKIP_FUZZ+set}" ]]; then
        fuzz_cmd=(fuzz/run.sh)
        [[ -x fuzz/run.sh ]] || fuzz_cmd=(bash fuzz/run.sh)
        step "fuzz (${QCP_CI_FUZZ_SECONDS:-10}s)" env FUZZ_SECONDS="${QCP_CI_FUZZ_SECONDS:-10}" "${fuzz_cmd[@]}"
    else
        header "fuzz: skipped (QCP_SKIP_FUZZ is set)"
    fi
else
    header "fuzz: skipped (no fuzz/run.sh)"
fi

# ------------------------------------------------------------------------------------------------
header "summary"
echo "ok:     ${PASSED[*]:-(none)}"
echo "failed: ${FAILED[*]:-(none)}"
if (( ${#FAILED[@]} )); then
    echo "test.sh: FAILED"
    exit 1
fi
echo "test.sh: all steps succeeded"

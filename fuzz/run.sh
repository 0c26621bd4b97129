#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for FUZZ_SECONDS seconds each and reports executions.
#
#   fuzz/run.sh                          # every target, 60 s each
#   FUZZ_SECONDS=20 fuzz/run.sh          # what CI runs (scripts/test.sh)
#   fuzz/run.sh roundtrip split_frames   # only these targets
#
# - Works from any directory, as root or not; needs cargo and a C++ compiler (libfuzzer-sys
#   builds libFuzzer). Installs cargo-fuzz from crates.io (`cargo install cargo-fuzz --locked`)
#   if `cargo fuzz` is missing.
# - Uses the stable toolchain with RUSTC_BOOTSTRAP=1 (cargo-fuzz passes unstable -Z flags).
# - The committed corpus fuzz/corpus/<target>/ is only read: new inputs go to a scratch
#   directory that is deleted at the end (set FUZZ_KEEP=DIR to keep them in DIR/<target>/).
# - Exits non-zero if any target crashes, times out or runs out of memory, after running the
#   others; prints the path of each crash artifact (under fuzz/artifacts/<target>/, with the
#   libFuzzer log beside it) and the command that reproduces it.
#
# Environment: FUZZ_SECONDS (default 60), FUZZ_SANITIZER (none | address; default none: the
# codec is forbid(unsafe_code), and the properties checked are panics, which libFuzzer catches
# without a sanitizer at twice the speed), FUZZ_MAX_LEN (default 4096), FUZZ_KEEP.
set -euo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(dirname "$FUZZ_DIR")"
cd "$ROOT"

die() { echo "fuzz/run.sh: error: $*" >&2; exit 2; }

SECS="${FUZZ_SECONDS:-60}"
[[ "$SECS" =~ ^[1-9][0-9]*$ ]] || die "FUZZ_SECONDS must be a positive integer, not '$SECS'"
SANITIZER="${FUZZ_SANITIZER:-none}"
MAX_LEN="${FUZZ_MAX_LEN:-4096}"

if ! command -v cargo >/dev/null 2>&1; then
    for d in "${CARGO_HOME:-}/bin" "${HOME:-/root}/.cargo/bin" /root/.cargo/bin; do
        if [[ -x "$d/cargo" ]]; then export PATH="$d:$PATH"; break; fi
    done
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found"

# Targets: the arguments, or every fuzz_targets/*.rs.
TARGETS=("$@")
if (( ${#TARGETS[@]} == 0 )); then
    for f in "$FUZZ_DIR"/fuzz_targets/*.rs; do
        TARGETS+=("$(basename "$f" .rs)")
    done
fi
for t in "${TARGETS[@]}"; do
    [[ -f "$FUZZ_DIR/fuzz_targets/$t.rs" ]] || die "no such target: $t"
    [[ -d "$FUZZ_DIR/corpus/$t" ]] || die "no seed corpus: fuzz/corpus/$t (see fuzz/make-corpus.sh)"
done

start=$SECONDS
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked --quiet || die "could not install cargo-fuzz"
fi
echo "fuzz/run.sh: $(cargo fuzz --version), $(rustc --version)"

export RUSTC_BOOTSTRAP=1
# The same flags for build and run, so that run does not rebuild. The target dir is pinned so
# that a CARGO_TARGET_DIR in the environment (shared with the root workspace) is not used for
# these instrumented builds.
FLAGS=(--fuzz-dir "$FUZZ_DIR" --target-dir "$FUZZ_DIR/target" --sanitizer "$SANITIZER"
       --debug-assertions)

echo "fuzz/run.sh: building ${#TARGETS[@]} targets"
build_start=$SECONDS
if (( ${#TARGETS[@]} == 1 )); then
    cargo fuzz build "${FLAGS[@]}" "${TARGETS[0]}"
else
    cargo fuzz build "${FLAGS[@]}"
fi
echo "fuzz/run.sh: built in $(( SECONDS - build_start ))s"

SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/qcp-fuzz.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT

declare -A EXECS STATUS
failed=0
for t in "${TARGETS[@]}"; do
    new="$SCRATCH/corpus/$t"
    log="$SCRATCH/$t.log"
    mkdir -p "$new"
    echo "fuzz/run.sh: $t for ${SECS}s"
    rc=0
    # The first corpus directory receives new inputs; the committed one is only read.
    cargo fuzz run "${FLAGS[@]}" "$t" "$new" "$FUZZ_DIR/corpus/$t" -- \
        -max_total_time="$SECS" -max_len="$MAX_LEN" -timeout=30 -print_final_stats=1 \
        >"$log" 2>&1 || rc=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n1)"
    if [[ -z "$execs" ]]; then
        execs="$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$log" | tail -n1)"
    fi
    EXECS[$t]="${execs:-?}"
    if (( rc == 0 )); then
        STATUS[$t]="ok"
        grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n1 || true
    else
        failed=1
        STATUS[$t]="FAILED (exit $rc)"
        echo "---- $t: FAILED with exit code $rc; last lines of its log:"
        tail -n 60 "$log"
        echo "----"
        mkdir -p "$FUZZ_DIR/artifacts/$t"
        cp "$log" "$FUZZ_DIR/artifacts/$t/run.log"
        artifacts="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log")"
        if [[ -n "$artifacts" ]]; then
            while IFS= read -r a; do
                echo "fuzz/run.sh: $t crash artifact: $a"
                echo "fuzz/run.sh:   reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run ${FLAGS[*]} $t $a"
            done <<<"$artifacts"
        else
            echo "fuzz/run.sh: $t failed without writing an artifact (build or setup error?)"
        fi
        echo "fuzz/run.sh: $t log kept in fuzz/artifacts/$t/run.log"
    fi
    if [[ -n "${FUZZ_KEEP:-}" ]]; then
        mkdir -p "$FUZZ_KEEP/$t"
        cp -n "$new"/* "$FUZZ_KEEP/$t/" 2>/dev/null || true
    fi
done

echo
echo "fuzz/run.sh: executions per target (${SECS}s each, sanitizer $SANITIZER):"
for t in "${TARGETS[@]}"; do
    printf '  %-16s %12s  %s\n' "$t" "${EXECS[$t]}" "${STATUS[$t]}"
done
echo "fuzz/run.sh: total time $(( SECONDS - start ))s"
if (( failed )); then
    echo "fuzz/run.sh: FAILED"
    exit 1
fi
echo "fuzz/run.sh: no crashes"

#!/usr/bin/env bash
# Regenerates the committed seed corpus fuzz/corpus/<target>/ from the captured sessions in
# qcp-codec/tests/data/ (see qcp-codec/examples/fuzz_corpus.rs for how seeds are chosen).
# Deterministic: the same captures give the same files. Run from anywhere:
#
#   fuzz/make-corpus.sh
#
# Only the generated files (cap-*, syn-*) are replaced; other files in the corpus are kept.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
cargo run --quiet -p qcp-codec --example fuzz_corpus -- qcp-codec/tests/data fuzz/corpus

//! Replays the committed fuzz seed corpus through the fuzz entry points on the stable
//! toolchain, so `cargo test` checks the properties the fuzzers check on every seed.
//!
//! Every file of `fuzz/corpus/<target>/` (see `fuzz/make-corpus.sh`) goes through the
//! `qcp_codec::fuzzing` function that `fuzz/fuzz_targets/<target>.rs` calls, whole and cut short
//! at every length (a relay sees every prefix of a stream). Fails if a corpus directory is
//! missing or empty, or if the codec's targets, their corpus directories and the table below
//! disagree. (The targets that call `qcp_core::fuzzing` are replayed by qcp-core's tests.)

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use qcp_codec::fuzzing;

/// A fuzz target and the function its one line calls.
struct Target {
    name: &'static str,
    /// The name of `run` in `qcp_codec::fuzzing`, as the target's source spells it.
    call: &'static str,
    run: fn(&[u8]),
}

const TARGETS: &[Target] = &[
    Target {
        name: "decode_startup",
        call: "fuzz_startup",
        run: fuzzing::fuzz_startup,
    },
    Target {
        name: "decode_frontend",
        call: "fuzz_frontend",
        run: fuzzing::fuzz_frontend,
    },
    Target {
        name: "decode_backend",
        call: "fuzz_backend",
        run: fuzzing::fuzz_backend,
    },
    Target {
        name: "split_frames",
        call: "fuzz_frames",
        run: fuzzing::fuzz_frames,
    },
    Target {
        name: "roundtrip",
        call: "fuzz_roundtrip",
        run: fuzzing::fuzz_roundtrip,
    },
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The entries of `dir` that `keep` accepts, sorted.
fn entries(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| keep(path))
        .collect();
    paths.sort();
    paths
}

/// File names without their extension.
fn stems(paths: &[PathBuf]) -> BTreeSet<String> {
    paths
        .iter()
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn targets_corpus_and_table_agree() {
    let table: BTreeSet<String> = TARGETS.iter().map(|t| t.name.to_owned()).collect();
    let sources = stems(&entries(&fuzz_dir().join("fuzz_targets"), |p| {
        p.extension().is_some_and(|e| e == "rs")
            && std::fs::read_to_string(p).is_ok_and(|s| s.contains("qcp_codec::fuzzing::"))
    }));
    let corpora = stems(&entries(&fuzz_dir().join("corpus"), Path::is_dir));
    assert_eq!(
        sources, table,
        "fuzz/fuzz_targets/*.rs calling qcp_codec::fuzzing vs this test's table"
    );
    assert!(
        table.is_subset(&corpora),
        "every target in this test's table has fuzz/corpus/<target>/: {corpora:?}"
    );
    // Each target is the one-line call this table says.
    for Target { name, call, .. } in TARGETS {
        let path = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let source = std::fs::read_to_string(&path).unwrap();
        assert!(
            source.contains(&format!("qcp_codec::fuzzing::{call}(data)")),
            "{} does not call qcp_codec::fuzzing::{call}",
            path.display()
        );
    }
}

/// Runs `f` on `input`, naming the seed and prefix length if it panics.
fn replay(target: &str, seed: &Path, f: fn(&[u8]), input: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| f(input))).is_err() {
        panic!(
            "{target}: {} (first {} bytes) fails; reproduce with `cargo fuzz run {target} {}`",
            seed.display(),
            input.len(),
            seed.display()
        );
    }
}

fn replay_target(target: &str) {
    let f = TARGETS.iter().find(|t| t.name == target).unwrap().run;
    let dir = fuzz_dir().join("corpus").join(target);
    let seeds = entries(&dir, Path::is_file);
    assert!(!seeds.is_empty(), "{} has no seeds", dir.display());
    let mut bytes = 0;
    for seed in &seeds {
        let data = std::fs::read(seed).unwrap();
        bytes += data.len();
        replay(target, seed, f, &data);
        for cut in 0..data.len() {
            replay(target, seed, f, &data[..cut]);
        }
    }
    assert!(bytes > 0, "{}: only empty seeds", dir.display());
}

#[test]
fn decode_startup_corpus() {
    replay_target("decode_startup");
}

#[test]
fn decode_frontend_corpus() {
    replay_target("decode_frontend");
}

#[test]
fn decode_backend_corpus() {
    replay_target("decode_backend");
}

#[test]
fn split_frames_corpus() {
    replay_target("split_frames");
}

#[test]
fn roundtrip_corpus() {
    replay_target("roundtrip");
}

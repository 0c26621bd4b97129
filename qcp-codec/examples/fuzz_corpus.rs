//! Cuts the fuzz seed corpus `fuzz/corpus/<target>/` out of the captured sessions in
//! `tests/data/` (run through `fuzz/make-corpus.sh`).
//!
//! ```text
//! cargo run -p qcp-codec --example fuzz_corpus -- [DATA_DIR [CORPUS_DIR]]
//! ```
//!
//! Seeds are single messages (a few distinct ones of each kind) and short exchanges (a client
//! batch up to its Sync or Query, a server reply up to its ReadyForQuery), at most 1 KiB each,
//! chosen deterministically so that regenerating from the same captures gives the same files.
//! Files this tool writes are named `cap-*` (cut from a capture) or `syn-*` (built with
//! `encode::*` for packets the captures lack); it replaces those and leaves any other file in
//! the corpus (e.g. a minimized crash added by hand) alone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use qcp_codec::auth::Authentication;
use qcp_codec::{encode, BackendMessage, Limits, ProtocolVersion, StartupPacket, Tag};

/// Largest seed, in bytes.
const MAX_SEED: usize = 1024;
/// Distinct single messages kept per kind.
const PER_KIND: usize = 2;
/// Distinct exchanges kept per direction.
const SEQUENCES: usize = 16;

/// Fuzz targets and their corpus directories.
const TARGETS: [&str; 5] = [
    "decode_startup",
    "decode_frontend",
    "decode_backend",
    "split_frames",
    "roundtrip",
];

/// The mode byte `fuzzing::fuzz_roundtrip` reads first.
const MODE_STARTUP: u8 = 0;
const MODE_FRONTEND: u8 = 1;
const MODE_BACKEND: u8 = 2;

/// Both streams of one captured connection.
struct Capture {
    name: String,
    frontend: Vec<u8>,
    backend: Vec<u8>,
}

/// One piece of a capture: where it comes from and its bytes.
#[derive(Clone)]
struct Piece {
    name: String,
    bytes: Vec<u8>,
}

/// A tagged message cut from a stream.
struct Message<'a> {
    tag: Tag,
    /// Byte offset in its stream.
    offset: usize,
    bytes: &'a [u8],
    /// What makes two messages with the same tag different kinds (the request code of an
    /// Authentication message), for choosing seeds.
    kind: String,
}

fn main() -> ExitCode {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let data_dir = args
        .first()
        .map_or_else(|| manifest.join("tests/data"), PathBuf::from);
    let corpus_dir = args
        .get(1)
        .map_or_else(|| manifest.join("../fuzz/corpus"), PathBuf::from);
    match run(&data_dir, &corpus_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fuzz_corpus: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(data_dir: &Path, corpus_dir: &Path) -> Result<(), String> {
    let captures = load(data_dir)?;
    if captures.is_empty() {
        return Err(format!("no captures in {}", data_dir.display()));
    }
    let mut startup = Vec::new();
    let mut frontend = Vec::new();
    let mut backend = Vec::new();
    for Capture {
        name,
        frontend: fe,
        backend: be,
    } in &captures
    {
        let (packets, rest_at) = split_startup(name, fe)?;
        startup.extend(packets);
        let be = split_tagged(name, be, 0, true)?;
        let mut fe = split_tagged(name, fe, rest_at, false)?;
        // A 'p' body's layout is set by the Authentication request it answers.
        let mut replies = be.iter().filter_map(|m| match m.kind.as_str() {
            "3" | "5" => Some("Password"),
            "10" => Some("SaslInitial"),
            "11" => Some("Sasl"),
            _ => None,
        });
        for m in fe.iter_mut().filter(|m| m.tag == Tag::PASSWORD) {
            m.kind = replies.next().unwrap_or("Unexpected").to_owned();
        }
        frontend.push((name.as_str(), fe));
        backend.push((name.as_str(), be));
    }
    let startup = dedup(startup);
    let synthetic = synthetic_startup()?;

    let fe_messages = single_messages("fe", &frontend);
    let be_messages = single_messages("be", &backend);
    let fe_sequences = exchanges("fe", &frontend, |t| {
        [
            Tag::SYNC,
            Tag::QUERY,
            Tag::COPY_DONE,
            Tag::COPY_FAIL,
            Tag::TERMINATE,
        ]
        .contains(&t)
    });
    let be_sequences = exchanges("be", &backend, |t| t == Tag::READY_FOR_QUERY);

    let mut seeds: BTreeMap<&str, Vec<Piece>> = BTreeMap::new();
    seeds.insert(
        "decode_startup",
        startup.iter().chain(&synthetic).cloned().collect(),
    );
    seeds.insert(
        "decode_frontend",
        fe_messages.iter().chain(&fe_sequences).cloned().collect(),
    );
    seeds.insert(
        "decode_backend",
        be_messages.iter().chain(&be_sequences).cloned().collect(),
    );
    // Framing is direction-blind: whole exchanges of both sides, and some cut short.
    let mut frames: Vec<Piece> = fe_sequences.iter().take(6).cloned().collect();
    frames.extend(be_sequences.iter().take(6).cloned());
    for p in fe_sequences
        .iter()
        .take(2)
        .chain(be_sequences.iter().take(2))
    {
        let cut = p.bytes.len().saturating_sub(3).max(1);
        frames.push(Piece {
            name: format!("{}-cut{cut}", p.name),
            bytes: p.bytes[..cut].to_vec(),
        });
    }
    seeds.insert("split_frames", frames);
    let mut roundtrip = Vec::new();
    for (mode, pieces) in [
        (
            MODE_STARTUP,
            startup.iter().chain(&synthetic).collect::<Vec<_>>(),
        ),
        (MODE_FRONTEND, fe_sequences.iter().collect()),
        (MODE_BACKEND, be_sequences.iter().collect()),
    ] {
        for p in pieces {
            let mut bytes = vec![mode];
            bytes.extend_from_slice(&p.bytes);
            roundtrip.push(Piece {
                name: p.name.clone(),
                bytes,
            });
        }
    }
    seeds.insert("roundtrip", roundtrip);

    for target in TARGETS {
        let pieces = seeds.get(target).map(Vec::as_slice).unwrap_or_default();
        write_target(&corpus_dir.join(target), pieces)?;
    }
    Ok(())
}

/// Every capture pair, sorted by name.
fn load(dir: &Path) -> Result<Vec<Capture>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names = BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        if let Some(name) = entry
            .file_name()
            .to_str()
            .and_then(|f| f.strip_suffix(".frontend.bin"))
        {
            names.insert(name.to_owned());
        }
    }
    names
        .into_iter()
        .map(|name| {
            let read = |suffix: &str| {
                let path = dir.join(format!("{name}.{suffix}.bin"));
                std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
            };
            Ok(Capture {
                frontend: read("frontend")?,
                backend: read("backend")?,
                name,
            })
        })
        .collect()
}

/// The untagged packets a frontend stream starts with, and where its tagged part begins.
fn split_startup(name: &str, stream: &[u8]) -> Result<(Vec<Piece>, usize), String> {
    let mut packets = Vec::new();
    let mut offset = 0;
    while offset < stream.len() {
        let rest = &stream[offset..];
        let (packet, used) = StartupPacket::decode(rest, &Limits::default())
            .map_err(|e| format!("{name}.frontend @{offset}: {e}"))?
            .ok_or_else(|| format!("{name}.frontend @{offset}: incomplete startup packet"))?;
        packets.push(Piece {
            name: format!("cap-startup-{name}-{offset:05}"),
            bytes: rest[..used].to_vec(),
        });
        offset += used;
        if matches!(packet, StartupPacket::Startup(_) | StartupPacket::Cancel(_)) {
            break;
        }
    }
    Ok((packets, offset))
}

/// The tagged messages of `stream` from `offset` on, each decoded to check it.
fn split_tagged<'a>(
    name: &str,
    stream: &'a [u8],
    mut offset: usize,
    backend: bool,
) -> Result<Vec<Message<'a>>, String> {
    let limits = Limits::default();
    let mut out = Vec::new();
    while offset < stream.len() {
        let rest = &stream[offset..];
        let err = |e: String| format!("{name} @{offset}: {e}");
        let (tag, kind, used) = if backend {
            let (msg, used) = BackendMessage::decode(rest, &limits)
                .map_err(|e| err(e.to_string()))?
                .ok_or_else(|| err("incomplete message".into()))?;
            let kind = match msg {
                BackendMessage::Authentication(a) => auth_kind(&a),
                _ => String::new(),
            };
            (msg.tag(), kind, used)
        } else {
            let (msg, used) = qcp_codec::FrontendMessage::decode(rest, &limits)
                .map_err(|e| err(e.to_string()))?
                .ok_or_else(|| err("incomplete message".into()))?;
            (msg.tag(), String::new(), used)
        };
        out.push(Message {
            tag,
            offset,
            bytes: &rest[..used],
            kind,
        });
        offset += used;
    }
    Ok(out)
}

fn auth_kind(a: &Authentication<'_>) -> String {
    format!("{}", a.code())
}

/// A file-name-safe name for a tag: its message name, else its hex value.
fn tag_name(tag: Tag, backend: bool) -> String {
    let name = if backend {
        tag.backend_name()
    } else {
        tag.frontend_name()
    };
    name.map_or_else(|| format!("x{:02x}", tag.0), str::to_owned)
}

/// Up to [`PER_KIND`] distinct messages of every kind (tag, plus the request code of an
/// Authentication or the layout of a `'p'` body), in capture order.
fn single_messages(dir: &str, streams: &[(&str, Vec<Message<'_>>)]) -> Vec<Piece> {
    let backend = dir == "be";
    let mut per_kind: BTreeMap<(u8, String), usize> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (name, messages) in streams {
        for m in messages {
            let count = per_kind.entry((m.tag.0, m.kind.clone())).or_default();
            if *count >= PER_KIND || m.bytes.len() > MAX_SEED || !seen.insert(m.bytes) {
                continue;
            }
            *count += 1;
            out.push(Piece {
                name: format!(
                    "cap-{dir}-msg-{}{}{}-{name}-{:05}",
                    tag_name(m.tag, backend),
                    if m.kind.is_empty() { "" } else { "-" },
                    m.kind,
                    m.offset
                ),
                bytes: m.bytes.to_vec(),
            });
        }
    }
    out
}

/// Up to [`SEQUENCES`] exchanges (runs of at least two messages, ending where `ends` says),
/// each with a different shape (tag sequence, repeats collapsed): first those that bring a
/// tag no earlier pick has, then the others, each in capture order.
fn exchanges(
    dir: &str,
    streams: &[(&str, Vec<Message<'_>>)],
    ends: impl Fn(Tag) -> bool,
) -> Vec<Piece> {
    let mut shapes = BTreeSet::new();
    let mut candidates = Vec::new();
    for (name, messages) in streams {
        let mut start = 0;
        for (i, m) in messages.iter().enumerate() {
            if !ends(m.tag) {
                continue;
            }
            let run = &messages[start..=i];
            start = i + 1;
            let mut shape: Vec<u8> = run.iter().map(|m| m.tag.0).collect();
            shape.dedup();
            let bytes: Vec<u8> = run.iter().flat_map(|m| m.bytes.iter().copied()).collect();
            if run.len() >= 2 && bytes.len() <= MAX_SEED && shapes.insert(shape.clone()) {
                let piece = Piece {
                    name: format!("cap-{dir}-seq-{name}-{:05}", run[0].offset),
                    bytes,
                };
                candidates.push((shape, piece));
            }
        }
    }
    let mut covered = BTreeSet::new();
    let (mut novel, mut others) = (Vec::new(), Vec::new());
    for (shape, piece) in candidates {
        if shape.iter().any(|t| !covered.contains(t)) {
            covered.extend(shape);
            novel.push(piece);
        } else {
            others.push(piece);
        }
    }
    novel.into_iter().chain(others).take(SEQUENCES).collect()
}

/// Startup packets the captures do not hold (every client there ran without TLS and on
/// protocol 3.0).
fn synthetic_startup() -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut add = |name: &str, f: &dyn Fn(&mut Vec<u8>) -> Result<(), qcp_codec::EncodeError>| {
        let mut bytes = Vec::new();
        f(&mut bytes).map_err(|e| format!("{name}: {e}"))?;
        pieces.push(Piece {
            name: format!("syn-startup-{name}"),
            bytes,
        });
        Ok::<(), String>(())
    };
    add("ssl_request", &|o| {
        encode::ssl_request(o);
        Ok(())
    })?;
    add("gss_enc_request", &|o| {
        encode::gss_enc_request(o);
        Ok(())
    })?;
    add("cancel_request_3_2", &|o| {
        encode::cancel_request(o, 4242, &[0xa5; 32])
    })?;
    add("startup_3_2", &|o| {
        encode::startup(
            o,
            ProtocolVersion::V3_2,
            &[
                ("user", "alice"),
                ("database", "app"),
                ("options", "-c search_path=s"),
                ("_pq_.command_tag", "on"),
            ],
        )
    })?;
    Ok(pieces)
}

/// Drops pieces whose bytes an earlier one already has.
fn dedup(pieces: Vec<Piece>) -> Vec<Piece> {
    let mut seen = BTreeSet::new();
    pieces
        .into_iter()
        .filter(|p| seen.insert(p.bytes.clone()))
        .collect()
}

/// Replaces the `cap-*` / `syn-*` files of one target's corpus with `pieces`.
fn write_target(dir: &Path, pieces: &[Piece]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        if file_name.starts_with("cap-") || file_name.starts_with("syn-") {
            std::fs::remove_file(entry.path()).map_err(|e| format!("{file_name}: {e}"))?;
        }
    }
    let mut total = 0;
    for p in pieces {
        let path = dir.join(&p.name);
        std::fs::write(&path, &p.bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        total += p.bytes.len();
    }
    println!("{}: {} seeds, {total} bytes", dir.display(), pieces.len());
    Ok(())
}

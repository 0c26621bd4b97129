//! Throughput of the codec on realistic streams, next to `postgres-protocol` (the parser behind
//! tokio-postgres) on the same backend bytes.
//!
//! ```text
//! cargo bench -p qcp-codec --bench codec -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Streams (all generated here, deterministically, except `captured`):
//!
//! - backend `accounts`: `SELECT * FROM pgbench_accounts` returning 10 000 rows (4 columns:
//!   int, int, int, char(84)), text format, then CommandComplete and ReadyForQuery.
//! - backend `wide`: 10 000 rows of 12 mixed columns (ints, names, e-mails, timestamps,
//!   numerics, booleans, UUIDs, nullable notes; about one value in ten is NULL).
//! - backend `small`: a login then 2 000 pgbench TPC-B transactions in extended mode as the
//!   server answers them: ParseComplete, BindComplete, NoData/RowDescription, a one-column
//!   DataRow, CommandComplete, ReadyForQuery; a NoticeResponse every 100 transactions.
//! - frontend `pgbench`: the client side of 2 000 such transactions (Parse, Bind, Describe,
//!   Execute, Sync per statement).
//! - frontend `captured`: the tagged part (after the StartupMessage) of the captured
//!   `tests/data/pgbench_{simple,extended,prepared}-2.frontend.bin` sessions, concatenated.
//! - backend `cols_N`, only with `QCP_BENCH_COLUMNS=1` in the environment: 2 000 rows of N
//!   short integer columns, N from 1 to 64, to find where postgres-protocol (which does not
//!   look at the columns when it parses a DataRow) catches up with our validating decode.
//!
//! Per stream, criterion reports MB/s (`Throughput::Bytes`) for:
//!
//! - `framing`: [`split_frames`], headers only;
//! - `decode`: [`BackendMessage::decode`] / [`FrontendMessage::decode`] of every message, i.e.
//!   every message turned into its typed form (bodies validated in full), each message handed
//!   to `black_box` by reference;
//! - `decode_read`: the same, then every DataRow value (backend) or Bind parameter, query text
//!   and CopyData (frontend) is read;
//! - `pgproto_parse` (backend only): `postgres_protocol::message::backend::Message::parse` of
//!   every message, from a `BytesMut` cloned outside the timed region, each message handed to
//!   `black_box` by reference then dropped;
//! - `pgproto_read`: the same, then every DataRow value read through `DataRowBody::ranges()`.
//!
//! The clock is criterion's wall time; `QCP_BENCH_CLOCK=cpu` measures the benchmarking thread's
//! CPU time instead, which keeps time spent descheduled out of the figures when other work
//! shares the cores.
//!
//! After criterion's own report, a summary table gives MB/s and messages/s for each, read from
//! criterion's estimates of this run, and the ratios the targets are about.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BatchSize, Criterion, Throughput};
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::Message as PgMessage;
use qcp_codec::fields::FieldDescription;
use qcp_codec::frontend::Target;
use qcp_codec::{
    encode, split_frames, BackendMessage, FrontendMessage, Limits, StartupPacket, TransactionStatus,
};

// ---------------------------------------------------------------------------------------------
// Deterministic data
// ---------------------------------------------------------------------------------------------

/// A small xorshift generator: the streams must be the same at every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.below((hi - lo + 1) as u64) as i64)
    }

    fn word(&mut self, min: usize, max: usize) -> String {
        const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
        let len = min + self.below((max - min + 1) as u64) as usize;
        (0..len)
            .map(|_| char::from(LETTERS[self.below(26) as usize]))
            .collect()
    }
}

fn column(
    name: &'static str,
    type_oid: u32,
    type_size: i16,
    type_modifier: i32,
) -> FieldDescription<'static> {
    FieldDescription {
        name: name.as_bytes(),
        table_oid: 16_397,
        column_id: 1,
        type_oid,
        type_size,
        type_modifier,
        format: 0,
    }
}

fn row(out: &mut Vec<u8>, values: &[Option<&str>]) {
    let values: Vec<Option<&[u8]>> = values.iter().map(|v| v.map(str::as_bytes)).collect();
    encode::data_row(out, &values).unwrap();
}

/// `SELECT * FROM pgbench_accounts LIMIT 10000` after some pgbench runs, in text format.
fn backend_accounts(rows: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rng = Rng(0x5eed_acc0_u64);
    encode::row_description(
        &mut out,
        &[
            column("aid", 23, 4, -1),
            column("bid", 23, 4, -1),
            column("abalance", 23, 4, -1),
            column("filler", 1042, -1, 88),
        ],
    )
    .unwrap();
    let filler = " ".repeat(84);
    for aid in 1..=rows {
        let bid = (aid - 1) / 100_000 + 1;
        let abalance = if rng.below(4) == 0 {
            rng.range(-9_999, 9_999)
        } else {
            0
        };
        row(
            &mut out,
            &[
                Some(&aid.to_string()),
                Some(&bid.to_string()),
                Some(&abalance.to_string()),
                Some(&filler),
            ],
        );
    }
    encode::command_complete(&mut out, format!("SELECT {rows}")).unwrap();
    encode::ready_for_query(&mut out, TransactionStatus::Idle);
    out
}

/// A wider, mixed result set: 12 columns, some NULLs, variable sizes.
fn backend_wide(rows: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    encode::row_description(
        &mut out,
        &[
            column("id", 20, 8, -1),
            column("customer_id", 23, 4, -1),
            column("name", 25, -1, -1),
            column("email", 1043, -1, 259),
            column("created_at", 1184, 8, -1),
            column("updated_at", 1184, 8, -1),
            column("amount", 1700, -1, 655_366),
            column("status", 25, -1, -1),
            column("active", 16, 1, -1),
            column("notes", 25, -1, -1),
            column("token", 2950, 16, -1),
            column("country", 1042, -1, 6),
        ],
    )
    .unwrap();
    const STATUS: [&str; 4] = ["pending", "paid", "shipped", "cancelled"];
    for id in 1..=rows {
        let id = (1_000_000 + id).to_string();
        let customer = rng.range(1, 250_000).to_string();
        let name = format!("{} {}", rng.word(3, 9), rng.word(4, 12));
        let email = format!("{}.{}@example.com", rng.word(3, 8), rng.word(3, 10));
        let ts = |rng: &mut Rng| {
            format!(
                "2024-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00",
                rng.range(1, 12),
                rng.range(1, 28),
                rng.range(0, 23),
                rng.range(0, 59),
                rng.range(0, 59),
                rng.range(0, 999_999)
            )
        };
        let created = ts(&mut rng);
        let updated = (rng.below(3) != 0).then(|| ts(&mut rng));
        let amount = format!("{}.{:02}", rng.range(0, 99_999), rng.range(0, 99));
        let status = STATUS[rng.below(4) as usize];
        let active = if rng.below(2) == 0 { "t" } else { "f" };
        let notes = (rng.below(5) == 0).then(|| {
            let words = rng.range(3, 15);
            (0..words)
                .map(|_| rng.word(2, 9))
                .collect::<Vec<_>>()
                .join(" ")
        });
        let token = format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            rng.next() as u32,
            rng.next() as u16,
            rng.below(0x1000),
            0x8000 | rng.below(0x4000),
            rng.next() & 0xffff_ffff_ffff
        );
        let country = ["fr", "de", "us", "jp", "br"][rng.below(5) as usize];
        let country = (rng.below(20) != 0).then_some(country);
        row(
            &mut out,
            &[
                Some(&id),
                Some(&customer),
                Some(&name),
                Some(&email),
                Some(&created),
                updated.as_deref(),
                Some(&amount),
                Some(status),
                Some(active),
                notes.as_deref(),
                Some(&token),
                country,
            ],
        );
    }
    encode::command_complete(&mut out, format!("SELECT {rows}")).unwrap();
    encode::ready_for_query(&mut out, TransactionStatus::Idle);
    out
}

/// The login, then `tx` pgbench TPC-B transactions in extended mode, as the server answers.
fn backend_small(tx: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rng = Rng(0xbe9c_4a11);
    encode::authentication_ok(&mut out);
    for (name, value) in [
        ("application_name", "pgbench"),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("default_transaction_read_only", "off"),
        ("in_hot_standby", "off"),
        ("integer_datetimes", "on"),
        ("IntervalStyle", "postgres"),
        ("is_superuser", "off"),
        ("server_encoding", "UTF8"),
        ("server_version", "15.20 (Debian 15.20-1)"),
        ("session_authorization", "qcp_scram"),
        ("standard_conforming_strings", "on"),
        ("TimeZone", "UTC"),
    ] {
        encode::parameter_status(&mut out, name, value).unwrap();
    }
    encode::backend_key_data(&mut out, 4242, &0x1234_5678_u32.to_be_bytes()).unwrap();
    encode::ready_for_query(&mut out, TransactionStatus::Idle);
    let statement = |out: &mut Vec<u8>, tag: &str, status| {
        encode::parse_complete(out);
        encode::bind_complete(out);
        encode::no_data(out);
        encode::command_complete(out, tag).unwrap();
        encode::ready_for_query(out, status);
    };
    for i in 0..tx {
        use TransactionStatus::{Idle, InTransaction};
        statement(&mut out, "BEGIN", InTransaction);
        statement(&mut out, "UPDATE 1", InTransaction);
        encode::parse_complete(&mut out);
        encode::bind_complete(&mut out);
        encode::row_description(&mut out, &[column("abalance", 23, 4, -1)]).unwrap();
        row(&mut out, &[Some(&rng.range(-50_000, 50_000).to_string())]);
        encode::command_complete(&mut out, "SELECT 1").unwrap();
        encode::ready_for_query(&mut out, InTransaction);
        statement(&mut out, "UPDATE 1", InTransaction);
        statement(&mut out, "UPDATE 1", InTransaction);
        statement(&mut out, "INSERT 0 1", InTransaction);
        if i % 100 == 99 {
            encode::notice_response(
                &mut out,
                &[
                    (b'S', b"WARNING"),
                    (b'V', b"WARNING"),
                    (b'C', b"25001"),
                    (b'M', b"there is already a transaction in progress"),
                    (b'F', b"xact.c"),
                    (b'L', b"3734"),
                    (b'R', b"BeginTransactionBlock"),
                ],
            )
            .unwrap();
        }
        statement(&mut out, "COMMIT", Idle);
    }
    out
}

/// `rows` rows of `columns` short integers (1 to 5 digits).
fn backend_columns(columns: usize, rows: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let values: Vec<String> = (0..columns)
        .map(|i| ((i * 7_919) % 100_000).to_string())
        .collect();
    let values: Vec<Option<&str>> = values.iter().map(|v| Some(v.as_str())).collect();
    for _ in 0..rows {
        row(&mut out, &values);
    }
    out
}

/// The client side of `tx` pgbench TPC-B transactions in extended mode (`-M extended`).
fn frontend_pgbench(tx: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rng = Rng(0xf00d_cafe);
    let stmt = |out: &mut Vec<u8>, sql: &str, params: &[&str]| {
        let params: Vec<Option<&[u8]>> = params.iter().map(|p| Some(p.as_bytes())).collect();
        encode::parse(&mut *out, "", sql, &[]).unwrap();
        encode::bind(&mut *out, "", "", &[], &params, &[]).unwrap();
        encode::describe(&mut *out, Target::Portal, "").unwrap();
        encode::execute(&mut *out, "", 0).unwrap();
        encode::sync(out);
    };
    for _ in 0..tx {
        let aid = rng.range(1, 100_000).to_string();
        let bid = "1";
        let tid = rng.range(1, 10).to_string();
        let delta = rng.range(-5_000, 5_000).to_string();
        stmt(&mut out, "BEGIN;", &[]);
        stmt(
            &mut out,
            "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;",
            &[&delta, &aid],
        );
        stmt(
            &mut out,
            "SELECT abalance FROM pgbench_accounts WHERE aid = $1;",
            &[&aid],
        );
        stmt(
            &mut out,
            "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2;",
            &[&delta, &tid],
        );
        stmt(
            &mut out,
            "UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2;",
            &[&delta, bid],
        );
        stmt(
            &mut out,
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);",
            &[&tid, bid, &aid, &delta],
        );
        stmt(&mut out, "END;", &[]);
    }
    out
}

/// The tagged part of the captured pgbench sessions, concatenated; `None` if the files are
/// not there.
fn frontend_captured() -> Option<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut out = Vec::new();
    for mode in ["simple", "extended", "prepared"] {
        let data = std::fs::read(dir.join(format!("pgbench_{mode}-2.frontend.bin"))).ok()?;
        let (packet, used) = StartupPacket::decode(&data, &Limits::default()).ok()??;
        assert!(matches!(packet, StartupPacket::Startup(_)));
        out.extend_from_slice(&data[used..]);
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// The measured loops
// ---------------------------------------------------------------------------------------------

fn frame(buf: &[u8]) -> usize {
    let (bytes, frames) = split_frames(buf, &Limits::default()).unwrap();
    debug_assert_eq!(bytes, buf.len());
    frames
}

fn backend_decode(buf: &[u8]) -> usize {
    let limits = Limits::default();
    let mut rest = buf;
    let mut n = 0;
    while let Some((msg, used)) = BackendMessage::decode(rest, &limits).unwrap() {
        black_box(&msg);
        rest = &rest[used..];
        n += 1;
    }
    n
}

fn backend_decode_read(buf: &[u8]) -> usize {
    let limits = Limits::default();
    let mut rest = buf;
    let mut sum = 0;
    while let Some((msg, used)) = BackendMessage::decode(rest, &limits).unwrap() {
        if let BackendMessage::DataRow(row) = msg {
            for value in row.values() {
                sum += value.map_or(1, <[u8]>::len);
            }
        } else {
            black_box(&msg);
        }
        rest = &rest[used..];
    }
    sum
}

fn pgproto_parse(mut buf: BytesMut) -> usize {
    let mut n = 0;
    while let Some(msg) = PgMessage::parse(&mut buf).unwrap() {
        black_box(&msg);
        n += 1;
    }
    n
}

fn pgproto_parse_read(mut buf: BytesMut) -> usize {
    let mut sum = 0;
    while let Some(msg) = PgMessage::parse(&mut buf).unwrap() {
        if let PgMessage::DataRow(row) = msg {
            let storage = row.buffer();
            let mut ranges = row.ranges();
            while let Some(range) = ranges.next().unwrap() {
                sum += range.map_or(1, |r| storage[r].len());
            }
        } else {
            black_box(&msg);
        }
    }
    sum
}

fn frontend_decode(buf: &[u8]) -> usize {
    let limits = Limits::default();
    let mut rest = buf;
    let mut n = 0;
    while let Some((msg, used)) = FrontendMessage::decode(rest, &limits).unwrap() {
        black_box(&msg);
        rest = &rest[used..];
        n += 1;
    }
    n
}

fn frontend_decode_read(buf: &[u8]) -> usize {
    let limits = Limits::default();
    let mut rest = buf;
    let mut sum = 0;
    while let Some((msg, used)) = FrontendMessage::decode(rest, &limits).unwrap() {
        match msg {
            FrontendMessage::Bind(b) => {
                for value in b.params() {
                    sum += value.map_or(1, <[u8]>::len);
                }
            }
            FrontendMessage::Parse(p) => sum += p.query().len(),
            FrontendMessage::Query(q) => sum += q.sql().len(),
            FrontendMessage::CopyData(d) => sum += d.data().len(),
            other => {
                black_box(&other);
            }
        }
        rest = &rest[used..];
    }
    sum
}

// ---------------------------------------------------------------------------------------------
// Benchmarks and summary
// ---------------------------------------------------------------------------------------------

/// One measured stream: its name, bytes and message count.
struct Stream {
    group: String,
    bytes: Vec<u8>,
    messages: usize,
}

impl Stream {
    fn new(group: &str, bytes: Vec<u8>) -> Self {
        let messages = frame(&bytes);
        Self {
            group: group.to_owned(),
            bytes,
            messages,
        }
    }
}

const BACKEND_FNS: [&str; 5] = [
    "framing",
    "decode",
    "decode_read",
    "pgproto_parse",
    "pgproto_read",
];
const FRONTEND_FNS: [&str; 3] = ["framing", "decode", "decode_read"];

fn bench_backend<M: Measurement>(c: &mut Criterion<M>, s: &Stream) {
    // Both parsers must agree on the stream before their speed means anything.
    assert_eq!(backend_decode(&s.bytes), s.messages);
    assert_eq!(pgproto_parse(BytesMut::from(&s.bytes[..])), s.messages);
    assert_eq!(
        backend_decode_read(&s.bytes),
        pgproto_parse_read(BytesMut::from(&s.bytes[..]))
    );

    let mut g = c.benchmark_group(&s.group);
    g.throughput(Throughput::Bytes(s.bytes.len() as u64));
    let buf = &s.bytes[..];
    g.bench_function("framing", |b| b.iter(|| frame(black_box(buf))));
    g.bench_function("decode", |b| b.iter(|| backend_decode(black_box(buf))));
    g.bench_function("decode_read", |b| {
        b.iter(|| backend_decode_read(black_box(buf)))
    });
    let pg = BytesMut::from(buf);
    g.bench_function("pgproto_parse", |b| {
        b.iter_batched(|| pg.clone(), pgproto_parse, BatchSize::LargeInput)
    });
    g.bench_function("pgproto_read", |b| {
        b.iter_batched(|| pg.clone(), pgproto_parse_read, BatchSize::LargeInput)
    });
    g.finish();
}

fn bench_frontend<M: Measurement>(c: &mut Criterion<M>, s: &Stream) {
    assert_eq!(frontend_decode(&s.bytes), s.messages);
    let mut g = c.benchmark_group(&s.group);
    g.throughput(Throughput::Bytes(s.bytes.len() as u64));
    let buf = &s.bytes[..];
    g.bench_function("framing", |b| b.iter(|| frame(black_box(buf))));
    g.bench_function("decode", |b| b.iter(|| frontend_decode(black_box(buf))));
    g.bench_function("decode_read", |b| {
        b.iter(|| frontend_decode_read(black_box(buf)))
    });
    g.finish();
}

/// CPU time of the benchmarking thread (`CLOCK_THREAD_CPUTIME_ID`), for `QCP_BENCH_CLOCK=cpu`:
/// on a machine shared with other work, time the thread spends descheduled is not counted.
/// (Cache and memory-bandwidth interference still is.) Printed like wall time.
struct ThreadCpuTime {
    wall: WallTime,
}

impl Measurement for ThreadCpuTime {
    type Intermediate = cpu_time::ThreadTime;
    type Value = Duration;

    fn start(&self) -> Self::Intermediate {
        cpu_time::ThreadTime::now()
    }
    fn end(&self, start: Self::Intermediate) -> Self::Value {
        start.elapsed()
    }
    fn add(&self, a: &Self::Value, b: &Self::Value) -> Self::Value {
        *a + *b
    }
    fn zero(&self) -> Self::Value {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Self::Value) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}

fn run<M: Measurement>(mut c: Criterion<M>, backend: &[Stream], frontend: &[Stream]) {
    for s in backend {
        bench_backend(&mut c, s);
    }
    for s in frontend {
        bench_frontend(&mut c, s);
    }
    c.final_summary();
}

/// Where criterion writes its results: `$CRITERION_HOME`, else `<target>/criterion`, the
/// target directory found from this executable's path (`<target>/release/deps/codec-*`).
fn criterion_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(PathBuf::from(home));
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(target).join("criterion"));
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.join("criterion"))
}

/// Criterion's mean time per iteration of `group/function`, if this run measured it.
fn mean_ns(dir: &Path, group: &str, function: &str, since: SystemTime) -> Option<f64> {
    let path = dir.join(group).join(function).join("new/estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None; // Left over from an earlier run (e.g. filtered out of this one).
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

fn summary(streams: &[(&Stream, &[&str])], since: SystemTime, clock: &str) {
    let Some(dir) = criterion_dir() else {
        return;
    };
    println!();
    println!("Summary (criterion means of this run, {clock}; MB = 10^6 bytes)");
    println!(
        "{:<20} {:>9} {:>7} {:<14} {:>10} {:>12}",
        "stream", "bytes", "msgs", "function", "MB/s", "Mmsgs/s"
    );
    for (s, fns) in streams {
        let mut rate = std::collections::HashMap::new();
        for f in *fns {
            let Some(ns) = mean_ns(&dir, &s.group, f, since) else {
                continue;
            };
            let secs = ns * 1e-9;
            let mbps = s.bytes.len() as f64 / secs / 1e6;
            rate.insert(*f, mbps);
            println!(
                "{:<20} {:>9} {:>7} {:<14} {:>10.1} {:>12.2}",
                s.group,
                s.bytes.len(),
                s.messages,
                f,
                mbps,
                s.messages as f64 / secs / 1e6
            );
        }
        let ratio = |a: &str, b: &str| Some(rate.get(a)? / rate.get(b)?);
        if let Some(r) = ratio("decode", "pgproto_parse") {
            println!(
                "{:<20} decode / pgproto_parse      = {r:.2}x (target >= 1.5x)",
                s.group
            );
        }
        if let Some(r) = ratio("decode_read", "pgproto_read") {
            println!("{:<20} decode_read / pgproto_read  = {r:.2}x", s.group);
        }
        if let Some(r) = ratio("framing", "decode") {
            println!(
                "{:<20} framing / decode            = {r:.2}x (target >= 5x)",
                s.group
            );
        }
    }
}

fn main() {
    let since = SystemTime::now() - Duration::from_secs(1);
    let mut backend = vec![
        Stream::new("backend_accounts", backend_accounts(10_000)),
        Stream::new("backend_wide", backend_wide(10_000)),
        Stream::new("backend_small", backend_small(2_000)),
    ];
    if std::env::var_os("QCP_BENCH_COLUMNS").is_some_and(|v| v == "1") {
        for n in [1, 4, 8, 12, 16, 24, 32, 48, 64] {
            backend.push(Stream::new(
                &format!("backend_cols_{n:02}"),
                backend_columns(n, 2_000),
            ));
        }
    }
    let mut frontend = vec![Stream::new("frontend_pgbench", frontend_pgbench(2_000))];
    if let Some(captured) = frontend_captured() {
        frontend.push(Stream::new("frontend_captured", captured));
    }

    let cpu = std::env::var("QCP_BENCH_CLOCK").is_ok_and(|v| v == "cpu");
    if cpu {
        let measurement = ThreadCpuTime { wall: WallTime };
        let c = Criterion::default().with_measurement(measurement);
        run(c.configure_from_args(), &backend, &frontend);
    } else {
        run(
            Criterion::default().configure_from_args(),
            &backend,
            &frontend,
        );
    }

    let mut all: Vec<(&Stream, &[&str])> = Vec::new();
    all.extend(backend.iter().map(|s| (s, &BACKEND_FNS[..])));
    all.extend(frontend.iter().map(|s| (s, &FRONTEND_FNS[..])));
    summary(
        &all,
        since,
        if cpu { "thread CPU time" } else { "wall time" },
    );
}

//! The relay's per-message cost in Smart mode, through the deterministic session harness (no
//! sockets: the figures are the session's own work plus the harness's copies).
//!
//! ```text
//! cargo bench -p qcp-core --features fuzzing --bench relay -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! - `session/query`: a simple Query and its answer (CommandComplete, ReadyForQuery), the
//!   Query text scanned for changes of name resolution;
//! - `session/bind`: Bind, Execute, Sync of a prepared statement and the answers;
//! - `session/parse_shared`: Parse of a text the backend has (renamed to a Close, the scope
//!   key looked up in the registry), Bind, Execute, Sync;
//! - `scan/*`: `relay::scope::changes_resolution` alone on texts of several sizes.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use qcp_codec::{encode, TransactionStatus};
use qcp_core::relay::scope::changes_resolution;
use qcp_core::relay::session::harness::{cat, done, msg, query, Harness};

const SELECT: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = 48213";

fn parse(name: &str, sql: &str) -> Vec<u8> {
    msg(|o| encode::parse(o, name, sql, &[]).unwrap())
}

fn run_once() -> Vec<u8> {
    cat(&[
        &msg(|o| encode::bind(o, "", "s1", &[], &[], &[]).unwrap()),
        &msg(|o| encode::execute(o, "", 0).unwrap()),
        &msg(encode::sync),
    ])
}

fn answer_run() -> Vec<u8> {
    cat(&[
        &msg(encode::bind_complete),
        &done("SELECT 1", TransactionStatus::Idle),
    ])
}

fn session(c: &mut Criterion) {
    let mut group = c.benchmark_group("session");
    group.throughput(Throughput::Elements(1));

    let mut h = Harness::smart();
    let request = query(SELECT);
    let answer = done("SELECT 1", TransactionStatus::Idle);
    group.bench_function("query", |b| {
        b.iter(|| {
            h.client(&request);
            h.server(&answer);
            black_box(h.take_server());
            black_box(h.take_client());
        })
    });

    let mut h = Harness::smart();
    h.client(&cat(&[&parse("s1", SELECT), &msg(encode::sync)]));
    h.take_server();
    h.server(&cat(&[
        &msg(encode::parse_complete),
        &msg(|o| encode::ready_for_query(o, TransactionStatus::Idle)),
    ]));
    h.take_client();
    let request = run_once();
    let answer = answer_run();
    group.bench_function("bind", |b| {
        b.iter(|| {
            h.client(&request);
            h.server(&answer);
            black_box(h.take_server());
            black_box(h.take_client());
        })
    });

    // A second name for the same text, closed again after each run: the Parse goes out as
    // the harmless Close, the Close as well.
    let request = cat(&[
        &parse("s2", SELECT),
        &msg(|o| encode::bind(o, "", "s2", &[], &[], &[]).unwrap()),
        &msg(|o| encode::execute(o, "", 0).unwrap()),
        &msg(|o| encode::close(o, qcp_codec::frontend::Target::Statement, b"s2").unwrap()),
        &msg(encode::sync),
    ]);
    let answer = cat(&[
        &msg(encode::close_complete),
        &msg(encode::bind_complete),
        &msg(|o| encode::command_complete(o, "SELECT 1").unwrap()),
        &msg(encode::close_complete),
        &msg(|o| encode::ready_for_query(o, TransactionStatus::Idle)),
    ]);
    group.bench_function("parse_shared", |b| {
        b.iter(|| {
            h.client(&request);
            h.server(&answer);
            black_box(h.take_server());
            black_box(h.take_client());
        })
    });
    group.finish();
}

fn scan(c: &mut Criterion) {
    let orm = "SELECT \"users\".\"id\", \"users\".\"email\", \"users\".\"created_at\", \
               \"users\".\"updated_at\", \"users\".\"account_id\" FROM \"users\" \
               INNER JOIN \"memberships\" ON \"memberships\".\"user_id\" = \"users\".\"id\" \
               WHERE \"memberships\".\"account_id\" = $1 AND \"users\".\"deleted_at\" IS NULL \
               ORDER BY \"users\".\"created_at\" DESC LIMIT $2"
        .repeat(4);
    let insert = format!(
        "INSERT INTO t (a, b, c) VALUES {}",
        vec!["(1, 'some text', now())"; 2500].join(", ")
    );
    let mut group = c.benchmark_group("scan");
    for (name, sql) in [
        ("pgbench_select", SELECT.to_owned()),
        ("orm_2k", orm),
        ("insert_60k", insert),
    ] {
        group.throughput(Throughput::Bytes(sql.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| black_box(changes_resolution(black_box(sql.as_bytes()))))
        });
    }
    group.finish();
}

criterion_group!(benches, session, scan);
criterion_main!(benches);

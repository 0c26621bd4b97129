use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use prometheus_parse::{LineInfo, Sample, Scrape as Parsed, Value};

use super::*;
use crate::arena::ArenaStats;
use crate::stats::{ClientState, ClientView, PoolCounters};

/// Observations of the first pool's histograms, µs.
const XACT_US: [u64; 5] = [40, 50, 200, 3_000_000, 90_000_000];
const QUERY_US: [u64; 3] = [10, 120, 7_000];
const WAIT_US: [u64; 2] = [1_500, 2_000_000];

fn client(id: u64, database: &str) -> ClientView {
    ClientView {
        id,
        pid: 1,
        user: "alice".into(),
        database: database.into(),
        state: ClientState::Active,
        addr: "127.0.0.1".into(),
        port: 5000,
        local_addr: "127.0.0.1".into(),
        local_port: 6432,
        connect_time: SystemTime::UNIX_EPOCH,
        request_time: SystemTime::UNIX_EPOCH,
        wait: Duration::ZERO,
        link: None,
        tls: String::new(),
        application_name: String::new(),
        prepared_statements: 0,
    }
}

/// Two pools (the first with observations in every histogram), logins, errors, an arena.
fn snapshot() -> Snapshot {
    let counters = PoolCounters::new(2);
    let relay = counters.shard(Some(0));
    relay.add(Counter::Xacts, 5);
    relay.add(Counter::Queries, 9);
    relay.add(Counter::Received, 4096);
    relay.add(Counter::Sent, 1 << 20);
    relay.add(Counter::WaitTime, 2_001_500);
    relay.add(Counter::ServerAssignments, 6);
    relay.add(Counter::ClientParses, 8);
    relay.add(Counter::ServerParses, 3);
    relay.add(Counter::Binds, 12);
    relay.add(Counter::StatementHits, 5);
    relay.add(Counter::Evictions, 1);
    counters.add(Counter::ServerConnects, 2);
    counters.add(Counter::ServerConnectFailures, 1);
    for (i, us) in XACT_US.into_iter().enumerate() {
        // Spread over the shards: the totals must add them up.
        counters.shard(Some(i % 2)).xact_time.observe(us);
    }
    for us in QUERY_US {
        relay.query_time.observe(us);
    }
    for us in WAIT_US {
        counters.shard(None).wait_time.observe(us);
    }
    let first = PoolView {
        database: "app".into(),
        user: "alice".into(),
        cl_active: 3,
        cl_waiting: 2,
        sv_active: 3,
        sv_idle: 1,
        sv_used: 2,
        sv_login: 1,
        max_wait: Duration::from_millis(1500),
        totals: counters.totals(),
        averages: Default::default(),
    };

    let mut totals = crate::stats::Totals::default();
    totals.set(Counter::Xacts, 70);
    totals.set(Counter::Queries, 71);
    let second = PoolView {
        database: "reports".into(),
        user: "bob".into(),
        cl_active: 1,
        sv_idle: 4,
        totals,
        ..Default::default()
    };

    Snapshot {
        version: "0.1.0".into(),
        pool_mode: "transaction".into(),
        uptime: Duration::from_millis(90_250),
        pools: vec![first, second],
        clients: vec![client(1, "app"), client(2, "app"), client(3, "reports")],
        login_clients: 4,
        arena: ArenaView {
            stats: ArenaStats {
                chunk_size: 16384,
                chunks_count: 64,
                in_use: 10,
                peak: 20,
                acquisitions: 1000,
                exhausted: 7,
                waiting: 2,
            },
            reserved: 4,
            exhaustions: 3,
        },
        logins: vec![(LoginOutcome::Ok, 40), (LoginOutcome::BadPassword, 2)],
        errors: vec![("08P01".into(), 1), ("53300".into(), 6)],
        ..Default::default()
    }
}

/// Checks the text line by line (every line a HELP, a TYPE or a sample with a number; each
/// family declared once, with its samples right after it) and parses it.
fn parse(text: &str) -> Parsed {
    let mut families: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        match LineInfo::parse(line) {
            LineInfo::Doc { metric_name, .. } => {
                assert!(
                    !families.contains(metric_name),
                    "HELP for {metric_name} after its family: {line}"
                );
            }
            LineInfo::Type {
                metric_alias,
                metric_name,
                sample_type,
            } => {
                let family = metric_alias.unwrap_or(metric_name);
                assert!(families.insert(family.clone()), "{family} declared twice");
                current = Some((family, format!("{sample_type:?}")));
            }
            LineInfo::Sample {
                metric_name, value, ..
            } => {
                let (family, kind) = current.as_ref().expect("a sample before any TYPE");
                let belongs = if kind == "Histogram" {
                    ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| metric_name.strip_suffix(s) == Some(family.as_str()))
                } else {
                    metric_name == family
                };
                assert!(
                    belongs,
                    "{metric_name} outside its family ({family}): {line}"
                );
                assert!(value.parse::<f64>().is_ok(), "not a number: {line}");
            }
            LineInfo::Empty | LineInfo::Ignored => panic!("not Prometheus text: {line:?}"),
        }
    }
    assert!(text.ends_with('\n'));
    Parsed::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses")
}

fn matches(sample: &Sample, name: &str, labels: &[(&str, &str)]) -> bool {
    sample.metric == name
        && labels.len() == sample.labels.len()
        && labels.iter().all(|(k, v)| sample.labels.get(k) == Some(*v))
}

/// The one sample of `name` with exactly `labels`.
fn sample<'a>(parsed: &'a Parsed, name: &str, labels: &[(&str, &str)]) -> &'a Sample {
    let found: Vec<&Sample> = parsed
        .samples
        .iter()
        .filter(|s| matches(s, name, labels))
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    found[0]
}

/// The value of a counter, gauge (or histogram's `_sum`, `_count`, parsed as untyped).
fn value(parsed: &Parsed, name: &str, labels: &[(&str, &str)]) -> f64 {
    match sample(parsed, name, labels).value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        ref other => panic!("{name}: not a number: {other:?}"),
    }
}

/// A histogram's buckets: (le, cumulative count).
fn buckets(parsed: &Parsed, name: &str, labels: &[(&str, &str)]) -> Vec<(f64, f64)> {
    match &sample(parsed, name, labels).value {
        Value::Histogram(counts) => counts.iter().map(|c| (c.less_than, c.count)).collect(),
        other => panic!("{name}: not a histogram: {other:?}"),
    }
}

const APP: [(&str, &str); 2] = [("database", "app"), ("user", "alice")];
const REPORTS: [(&str, &str); 2] = [("database", "reports"), ("user", "bob")];

#[test]
fn counters_and_gauges_carry_the_snapshot_values() {
    let snapshot = snapshot();
    let parsed = parse(&render(&snapshot));
    let app = &snapshot.pools[0].totals;

    assert_eq!(value(&parsed, "qcp_pool_transactions_total", &APP), 5.0);
    assert_eq!(
        value(&parsed, "qcp_pool_transactions_total", &APP),
        app.get(Counter::Xacts) as f64
    );
    assert_eq!(
        value(&parsed, "qcp_pool_transactions_total", &REPORTS),
        70.0
    );
    assert_eq!(value(&parsed, "qcp_pool_queries_total", &REPORTS), 71.0);
    let per_pool = [
        ("qcp_pool_queries_total", 9.0),
        ("qcp_pool_received_bytes_total", 4096.0),
        ("qcp_pool_sent_bytes_total", 1048576.0),
        ("qcp_pool_server_assignments_total", 6.0),
        ("qcp_pool_server_connections_opened_total", 2.0),
        ("qcp_pool_server_connections_failed_total", 1.0),
        ("qcp_pool_prepared_client_parses_total", 8.0),
        ("qcp_pool_prepared_server_parses_total", 3.0),
        ("qcp_pool_prepared_binds_total", 12.0),
        ("qcp_pool_prepared_hits_total", 5.0),
        ("qcp_pool_prepared_evictions_total", 1.0),
        // µs become seconds.
        ("qcp_pool_wait_seconds_total", 2.0015),
        ("qcp_pool_max_wait_seconds", 1.5),
    ];
    for (name, expected) in per_pool {
        assert_eq!(value(&parsed, name, &APP), expected, "{name}");
    }
    assert_eq!(
        value(&parsed, "qcp_pool_prepared_hits_total", &REPORTS),
        0.0
    );

    let state = |labels: [(&'static str, &'static str); 2], s: &'static str| {
        let [db, user] = labels;
        [db, user, ("state", s)]
    };
    assert_eq!(
        value(&parsed, "qcp_pool_clients", &state(APP, "active")),
        3.0
    );
    assert_eq!(
        value(&parsed, "qcp_pool_clients", &state(APP, "waiting")),
        2.0
    );
    assert_eq!(
        value(&parsed, "qcp_pool_servers", &state(APP, "active")),
        3.0
    );
    assert_eq!(value(&parsed, "qcp_pool_servers", &state(APP, "idle")), 1.0);
    assert_eq!(value(&parsed, "qcp_pool_servers", &state(APP, "used")), 2.0);
    assert_eq!(
        value(&parsed, "qcp_pool_servers", &state(APP, "login")),
        1.0
    );
    assert_eq!(
        value(&parsed, "qcp_pool_servers", &state(REPORTS, "idle")),
        4.0
    );
    assert_eq!(
        value(&parsed, "qcp_pool_clients", &state(REPORTS, "waiting")),
        0.0
    );

    let instance = [
        ("qcp_clients_logged_in", 3.0),
        ("qcp_clients_logging_in", 4.0),
        ("qcp_arena_chunks", 64.0),
        ("qcp_arena_chunks_used", 10.0),
        ("qcp_arena_chunks_free", 54.0),
        ("qcp_arena_chunks_reserved", 4.0),
        ("qcp_arena_chunk_size_bytes", 16384.0),
        ("qcp_arena_waiting", 2.0),
        ("qcp_arena_waits_total", 7.0),
        ("qcp_arena_exhaustions_total", 3.0),
        ("qcp_uptime_seconds", 90.25),
        ("qcp_shutting_down", 0.0),
    ];
    for (name, expected) in instance {
        assert_eq!(value(&parsed, name, &[]), expected, "{name}");
    }
    assert_eq!(
        value(&parsed, "qcp_build_info", &[("version", "0.1.0")]),
        1.0
    );
}

#[test]
fn every_login_outcome_is_shown_and_errors_by_sqlstate() {
    let parsed = parse(&render(&snapshot()));
    for outcome in LoginOutcome::ALL {
        let expected = match outcome {
            LoginOutcome::Ok => 40.0,
            LoginOutcome::BadPassword => 2.0,
            _ => 0.0,
        };
        assert_eq!(
            value(
                &parsed,
                "qcp_logins_total",
                &[("outcome", outcome.as_str())]
            ),
            expected,
            "{outcome:?}"
        );
    }
    assert_eq!(
        value(&parsed, "qcp_client_errors_total", &[("sqlstate", "53300")]),
        6.0
    );
    assert_eq!(
        value(&parsed, "qcp_client_errors_total", &[("sqlstate", "08P01")]),
        1.0
    );
    let errors = parsed
        .samples
        .iter()
        .filter(|s| s.metric == "qcp_client_errors_total")
        .count();
    assert_eq!(errors, 2);
}

#[test]
fn histograms_are_cumulative_in_seconds_and_add_up() {
    let snapshot = snapshot();
    let parsed = parse(&render(&snapshot));
    let families = [
        ("qcp_pool_transaction_duration_seconds", &XACT_US[..]),
        ("qcp_pool_query_duration_seconds", &QUERY_US[..]),
        ("qcp_pool_wait_duration_seconds", &WAIT_US[..]),
    ];
    for (name, observations) in families {
        let app = buckets(&parsed, name, &APP);
        assert_eq!(app.len(), BUCKET_BOUNDS_US.len() + 1, "{name}");
        // Bounds: the µs bounds in seconds, then +Inf.
        for ((le, _), us) in app.iter().zip(BUCKET_BOUNDS_US) {
            assert_eq!(*le, us as f64 / 1e6, "{name}");
        }
        assert_eq!(app.last().unwrap().0, f64::INFINITY);
        // Cumulative: each bucket counts the observations at or below its bound.
        for (le, count) in &app {
            let expected = observations
                .iter()
                .filter(|&&us| us as f64 / 1e6 <= *le)
                .count();
            assert_eq!(*count, expected as f64, "{name} le={le}");
        }
        assert!(app.windows(2).all(|w| w[0].1 <= w[1].1), "{name}");
        let n = observations.len() as f64;
        assert_eq!(app.last().unwrap().1, n, "{name} +Inf");
        assert_eq!(value(&parsed, &format!("{name}_count"), &APP), n, "{name}");
        let sum_us: u64 = observations.iter().sum();
        let sum = value(&parsed, &format!("{name}_sum"), &APP);
        assert!((sum - sum_us as f64 / 1e6).abs() < 1e-9, "{name}: {sum}");

        // The other pool observed nothing.
        let empty = buckets(&parsed, name, &REPORTS);
        assert!(empty.iter().all(|(_, c)| *c == 0.0), "{name}");
        assert_eq!(value(&parsed, &format!("{name}_count"), &REPORTS), 0.0);
    }
    // Spot checks against the text itself: 50 µs is at or below the first bound (5e-05 s),
    // 90 s only in +Inf.
    let text = render(&snapshot);
    assert!(text.contains(
        "qcp_pool_transaction_duration_seconds_bucket{database=\"app\",user=\"alice\",le=\"5e-05\"} 2\n"
    ));
    assert!(text.contains(
        "qcp_pool_transaction_duration_seconds_bucket{database=\"app\",user=\"alice\",le=\"60\"} 4\n"
    ));
    assert!(text.contains(
        "qcp_pool_transaction_duration_seconds_bucket{database=\"app\",user=\"alice\",le=\"+Inf\"} 5\n"
    ));
}

#[test]
fn an_empty_snapshot_renders_valid_text() {
    let text = render(&Snapshot::default());
    let parsed = parse(&text);
    assert_eq!(value(&parsed, "qcp_clients_logged_in", &[]), 0.0);
    assert!(text.contains("# TYPE qcp_pool_transactions_total counter\n"));
    assert!(!parsed
        .samples
        .iter()
        .any(|s| s.metric.starts_with("qcp_pool_")));
    promtool_check(&text);
}

#[test]
fn label_values_are_escaped() {
    let mut snapshot = snapshot();
    snapshot.pools[1].database = "we\"ird\\db\nname".into();
    let text = render(&snapshot);
    assert!(
        text.contains(
            "qcp_pool_transactions_total{database=\"we\\\"ird\\\\db\\nname\",user=\"bob\"} 70\n"
        ),
        "{text}"
    );
    promtool_check(&text);
}

/// Every family rendered is in the README's metrics tables with the same type, and nothing
/// more is there.
#[test]
fn docs_list_every_metric() {
    let docs = include_str!("../../../README.md");
    let mut documented = BTreeMap::new();
    for line in docs.lines().filter(|l| l.starts_with("| `qcp_")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_owned();
        let kind = cells[2].to_owned();
        assert!(documented.insert(name, kind).is_none(), "twice: {line}");
    }
    let text = render(&snapshot());
    let mut rendered = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            rendered.insert(name.to_owned(), kind.to_owned());
        }
    }
    assert_eq!(documented, rendered);
}

#[test]
fn help_texts_are_written_for_every_family() {
    let text = render(&snapshot());
    let helps: Vec<&str> = text.lines().filter(|l| l.starts_with("# HELP ")).collect();
    let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!(helps.len(), types);
    for help in helps {
        let text = help.splitn(4, ' ').nth(3).unwrap_or("");
        assert!(text.len() > 10 && text.ends_with('.'), "{help}");
    }
}

#[test]
fn promtool_accepts_the_text_when_installed() {
    promtool_check(&render(&snapshot()));
}

/// `promtool check metrics` (format and lint) when promtool is on PATH; skipped otherwise.
fn promtool_check(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("promtool not on PATH: check skipped");
            return;
        }
        Err(error) => panic!("promtool: {error}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool check metrics: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

//! The console against PgBouncer 1.25's tables and against a hand-built snapshot, through
//! the wire encoding (decoded back with qcp-codec) and the text rendering.
//!
//! - `tables.rs`: every table's columns against PgBouncer's, and the figures in them;
//! - `wire.rs`: whole answers decoded with qcp-codec, roles, `table()`, the greeting.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::arena::ArenaStats;
use crate::stats::{
    ArenaView, ClientState, ClientView, ConfigItem, Counter, DatabaseView, MemRow, PoolView,
    PreparedView, ServerState, ServerView, Totals, UserView,
};

mod tables;
mod wire;

/// PgBouncer 1.25.2's columns and row names, read from its source.
const FIXTURE: &str = include_str!("../pgbouncer_1_25_columns.txt");

fn totals(pairs: &[(Counter, u64)]) -> Totals {
    let mut t = Totals::default();
    for &(c, v) in pairs {
        t.set(c, v);
    }
    t
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn client(id: u64, state: ClientState, link: Option<u64>, wait: Duration) -> ClientView {
    ClientView {
        id,
        pid: 1000 + id as i32,
        user: "alice".into(),
        database: "app".into(),
        state,
        addr: "10.0.0.7".into(),
        port: 50_000 + id as u16,
        local_addr: "10.0.0.1".into(),
        local_port: 6432,
        connect_time: at(1_796_413_731),
        request_time: at(1_796_413_791),
        wait,
        link,
        tls: String::new(),
        application_name: format!("job{id}"),
        prepared_statements: id,
    }
}

fn server(id: u64, state: ServerState, link: Option<u64>) -> ServerView {
    ServerView {
        id,
        user: "alice".into(),
        database: "app".into(),
        state,
        addr: "db.internal".into(),
        port: 5432,
        local_addr: "10.0.0.1".into(),
        local_port: 40_000 + id as u16,
        connect_time: at(1_796_413_000),
        request_time: at(1_796_413_700),
        link,
        remote_pid: 70_000 + id as i32,
        tls: "TLSv1.3/TLS_AES_256_GCM_SHA384".into(),
        application_name: "job".into(),
        prepared_statements: 2,
    }
}

/// Two pools of `app` (alice, bob), one of `billing`, three clients (linked, idle,
/// waiting), two servers, and a little of everything else.
fn sample() -> Snapshot {
    let app_alice = PoolView {
        database: "app".into(),
        user: "alice".into(),
        cl_active: 2,
        cl_waiting: 1,
        sv_active: 1,
        sv_idle: 1,
        sv_used: 2,
        sv_login: 1,
        max_wait: Duration::from_micros(3_250_000),
        totals: totals(&[
            (Counter::ServerAssignments, 10),
            (Counter::Xacts, 100),
            (Counter::Queries, 300),
            (Counter::Received, 4_000),
            (Counter::Sent, 9_000),
            (Counter::XactTime, 50_000),
            (Counter::QueryTime, 30_000),
            (Counter::WaitTime, 700),
            (Counter::ClientParses, 5),
            (Counter::ServerParses, 2),
            (Counter::Binds, 40),
        ]),
        averages: totals(&[
            (Counter::Xacts, 30),
            (Counter::XactTime, 100),
            (Counter::Queries, 10),
            (Counter::QueryTime, 1_000),
            (Counter::Received, 500),
        ]),
    };
    let app_bob = PoolView {
        database: "app".into(),
        user: "bob".into(),
        cl_active: 1,
        totals: totals(&[
            (Counter::ServerAssignments, 1),
            (Counter::Xacts, 20),
            (Counter::Queries, 60),
            (Counter::Received, 1_000),
            (Counter::Sent, 1_000),
            (Counter::XactTime, 10_000),
            (Counter::Binds, 2),
        ]),
        averages: totals(&[
            (Counter::Xacts, 10),
            (Counter::XactTime, 500),
            (Counter::Received, 250),
            // Less than one query per second: no weight, and no effect on app's average.
            (Counter::QueryTime, 9_999),
        ]),
        ..PoolView::default()
    };
    // Sorted before "app" by name, listed after it: the tables sort by database.
    let billing = PoolView {
        database: "billing".into(),
        user: "carol".into(),
        totals: totals(&[(Counter::Xacts, 7), (Counter::XactTime, 70)]),
        // Every rate rounds to zero: the plain mean of non-zero times is shown.
        averages: totals(&[(Counter::XactTime, 40)]),
        ..PoolView::default()
    };
    Snapshot {
        version: "9.8.7".into(),
        pool_mode: "transaction".into(),
        uptime: Duration::from_secs(3_600),
        shutting_down: false,
        pools: vec![app_alice, app_bob, billing],
        clients: vec![
            client(0x1a, ClientState::Active, Some(0x2b), Duration::ZERO),
            client(0x1b, ClientState::Active, None, Duration::ZERO),
            client(
                0x1c,
                ClientState::Waiting,
                None,
                Duration::from_micros(3_250_000),
            ),
        ],
        servers: vec![
            server(0x2b, ServerState::Active, Some(0x1a)),
            server(0x2c, ServerState::Idle, None),
        ],
        databases: vec![DatabaseView {
            name: "app".into(),
            host: "db.internal".into(),
            port: 5432,
            database: "app_prod".into(),
            pool_size: 20,
            server_lifetime: 3_600,
            current_connections: 2,
            current_client_connections: 3,
        }],
        users: vec![UserView {
            name: "alice".into(),
            current_connections: 2,
            current_client_connections: 3,
        }],
        login_clients: 4,
        arena: ArenaView {
            stats: ArenaStats {
                chunk_size: 65_536,
                chunks_count: 64,
                in_use: 10,
                peak: 40,
                acquisitions: 1_000,
                exhausted: 3,
                waiting: 1,
            },
            reserved: 8,
            exhaustions: 2,
        },
        logins: Vec::new(),
        errors: Vec::new(),
        config: vec![ConfigItem {
            key: "timeouts.query_wait".into(),
            value: "10s".into(),
            default: "120s".into(),
            changeable: true,
        }],
        prepared: vec![PreparedView {
            database: "app".into(),
            user: "alice".into(),
            name: "qcp_1".into(),
            query: "SELECT $1".into(),
        }],
        memory: vec![MemRow {
            name: "client".into(),
            size: 900,
            used: 3,
            free: 0,
            memtotal: 2_700,
        }],
    }
}

fn show(item: Item) -> ResultSet {
    show::table(item, &sample())
}

/// The value of `name` in `row`, as text (numbers in decimal, NULL as "NULL").
fn cell(set: &ResultSet, row: usize, name: &str) -> String {
    match set.get(row, name) {
        Some(Value::Text(t)) => t.clone(),
        Some(Value::Int(n)) => n.to_string(),
        Some(Value::Null) => "NULL".into(),
        None => panic!("no column {name} in row {row} of {set:?}"),
    }
}

/// PgBouncer's type letter for a kind ('T' timestamps are text too).
fn matches_letter(kind: Kind, letter: char) -> bool {
    matches!(
        (kind, letter),
        (Kind::Text, 's' | 'T') | (Kind::Int4, 'i') | (Kind::Int8, 'q') | (Kind::Numeric, 'N')
    )
}

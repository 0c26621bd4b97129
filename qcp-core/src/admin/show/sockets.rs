//! SHOW CLIENTS and SHOW SERVERS: one row per connection, with PgBouncer's columns (the
//! two tables share them, as in PgBouncer).
//!
//! PgBouncer's `ptr` and `link` are memory addresses that tie a client to its server
//! connection. qcp writes the connection's id in hex instead (`0x1a`): clients and
//! servers are numbered separately, so a `ptr` is unique within its own table, and a
//! client's `link` is always a server's `ptr` (and the other way round), which is what
//! tools join on.

use std::time::Duration;

use crate::admin::resultset::{Column, ResultSet, Unit, Value};
use crate::admin::timestamp::format_utc;
use crate::stats::{ClientState, ServerState, Snapshot};

/// The columns of SHOW CLIENTS and SHOW SERVERS.
const SOCKETS: [Column; 21] = [
    Column::text("type"),
    Column::text("user"),
    Column::text("database"),
    Column::text("replication"),
    Column::text("state"),
    Column::text("addr"),
    Column::int4("port"),
    Column::text("local_addr"),
    Column::int4("local_port"),
    Column::text("connect_time"),
    Column::text("request_time"),
    Column::int4("wait").unit(Unit::Seconds),
    Column::int4("wait_us").unit(Unit::Micros),
    Column::int4("close_needed"),
    Column::text("ptr"),
    Column::text("link"),
    Column::int4("remote_pid"),
    Column::text("tls"),
    Column::text("application_name"),
    Column::int4("prepared_statements"),
    Column::int4("id"),
];

/// The fields one row needs, from a client or a server connection.
struct Row<'a> {
    kind: &'static str,
    user: &'a str,
    database: &'a str,
    state: &'static str,
    linked: Option<u64>,
    addr: &'a str,
    port: u16,
    local_addr: &'a str,
    local_port: u16,
    connect_time: String,
    request_time: String,
    wait: Duration,
    id: u64,
    remote_pid: i32,
    tls: &'a str,
    application_name: &'a str,
    prepared_statements: u64,
}

impl Row<'_> {
    fn values(self) -> Vec<Value> {
        // PgBouncer calls an active connection that is linked to nothing "idle".
        let state = if self.linked.is_none() && self.state == "active" {
            "idle"
        } else {
            self.state
        };
        vec![
            Value::text(self.kind),
            Value::text(self.user),
            Value::text(self.database),
            // qcp does not pool replication connections.
            Value::text("none"),
            Value::text(state),
            Value::text(self.addr),
            Value::count(u64::from(self.port)),
            Value::text(self.local_addr),
            Value::count(u64::from(self.local_port)),
            Value::Text(self.connect_time),
            Value::Text(self.request_time),
            Value::count(self.wait.as_secs()),
            Value::count(u64::from(self.wait.subsec_micros())),
            // A connection to be closed is closed at once rather than flagged.
            Value::Int(0),
            Value::Text(ptr(self.id)),
            Value::Text(self.linked.map(ptr).unwrap_or_default()),
            Value::Int(i64::from(self.remote_pid)),
            Value::text(self.tls),
            Value::text(self.application_name),
            Value::count(self.prepared_statements),
            Value::count(self.id),
        ]
    }
}

/// A connection's `ptr`: its id in hex.
fn ptr(id: u64) -> String {
    format!("{id:#x}")
}

pub(super) fn clients(snapshot: &Snapshot) -> ResultSet {
    let mut set = ResultSet::new(&SOCKETS);
    for c in &snapshot.clients {
        let row = Row {
            kind: "C",
            user: &c.user,
            database: &c.database,
            state: match c.state {
                ClientState::Active => "active",
                ClientState::Waiting => "waiting",
            },
            linked: c.link,
            addr: &c.addr,
            port: c.port,
            local_addr: &c.local_addr,
            local_port: c.local_port,
            connect_time: format_utc(c.connect_time),
            request_time: format_utc(c.request_time),
            wait: c.wait,
            id: c.id,
            // PgBouncer shows a client's process id only for a Unix-domain socket peer;
            // the snapshot does not carry it.
            remote_pid: 0,
            tls: &c.tls,
            application_name: &c.application_name,
            prepared_statements: c.prepared_statements,
        };
        set.push(row.values());
    }
    set
}

pub(super) fn servers(snapshot: &Snapshot) -> ResultSet {
    let mut set = ResultSet::new(&SOCKETS);
    for s in &snapshot.servers {
        let row = Row {
            kind: "S",
            user: &s.user,
            database: &s.database,
            state: match s.state {
                ServerState::Active => "active",
                ServerState::Idle => "idle",
            },
            linked: s.link,
            addr: &s.addr,
            port: s.port,
            local_addr: &s.local_addr,
            local_port: s.local_port,
            connect_time: format_utc(s.connect_time),
            request_time: format_utc(s.request_time),
            // A server connection never waits for anything the way a client does.
            wait: Duration::ZERO,
            id: s.id,
            remote_pid: s.remote_pid,
            tls: &s.tls,
            application_name: &s.application_name,
            prepared_statements: s.prepared_statements,
        };
        set.push(row.values());
    }
    set
}

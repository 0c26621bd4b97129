//! SHOW POOLS, DATABASES, USERS and LISTS: what qcp serves and how busy it is.

use crate::admin::resultset::{Column, ResultSet, Unit, Value};
use crate::stats::Snapshot;

/// SHOW POOLS: one row per (database, user).
const POOLS: [Column; 17] = [
    Column::text("database"),
    Column::text("user"),
    Column::int4("cl_active"),
    Column::int4("cl_waiting"),
    Column::int4("cl_active_cancel_req"),
    Column::int4("cl_waiting_cancel_req"),
    Column::int4("sv_active"),
    Column::int4("sv_active_cancel"),
    Column::int4("sv_being_canceled"),
    Column::int4("sv_idle"),
    Column::int4("sv_used"),
    Column::int4("sv_tested"),
    Column::int4("sv_login"),
    Column::int4("maxwait").unit(Unit::Seconds),
    Column::int4("maxwait_us").unit(Unit::Micros),
    Column::text("pool_mode"),
    Column::text("load_balance_hosts"),
];

pub(super) fn pools(snapshot: &Snapshot) -> ResultSet {
    let mut set = ResultSet::new(&POOLS);
    for pool in &snapshot.pools {
        set.push(vec![
            Value::text(&pool.database),
            Value::text(&pool.user),
            Value::count(pool.cl_active),
            Value::count(pool.cl_waiting),
            // Cancel requests are forwarded at once, never queued in a pool.
            Value::Int(0),
            Value::Int(0),
            Value::count(pool.sv_active),
            Value::Int(0),
            Value::Int(0),
            Value::count(pool.sv_idle),
            // Out of the pool and linked to nobody: being synced, reset or closed.
            Value::count(pool.sv_used),
            // qcp tests no connection before use (the relay thread heard it if it spoke).
            Value::Int(0),
            Value::count(pool.sv_login),
            // The longest wait, split as PgBouncer does: whole seconds, then the
            // microseconds beyond them.
            Value::count(pool.max_wait.as_secs()),
            Value::count(u64::from(pool.max_wait.subsec_micros())),
            Value::text(&snapshot.pool_mode),
            // One host per server: no load balancing to describe.
            Value::Null,
        ]);
    }
    set
}

/// SHOW DATABASES: one row per database a server serves.
const DATABASES: [Column; 17] = [
    Column::text("name"),
    Column::text("host"),
    Column::int4("port"),
    Column::text("database"),
    Column::text("force_user"),
    Column::int4("pool_size"),
    Column::int4("min_pool_size"),
    Column::int4("reserve_pool_size"),
    Column::int4("server_lifetime").unit(Unit::Seconds),
    Column::text("pool_mode"),
    Column::text("load_balance_hosts"),
    Column::int4("max_connections"),
    Column::int4("current_connections"),
    Column::int4("max_client_connections"),
    Column::int4("current_client_connections"),
    Column::int4("paused"),
    Column::int4("disabled"),
];

pub(super) fn databases(snapshot: &Snapshot) -> ResultSet {
    let mut set = ResultSet::new(&DATABASES);
    for db in &snapshot.databases {
        set.push(vec![
            Value::text(&db.name),
            Value::text(&db.host),
            Value::count(u64::from(db.port)),
            Value::text(&db.database),
            // qcp logs in to servers as the client's user: no forced user.
            Value::Null,
            Value::count(db.pool_size),
            // No minimum or reserve pools: PgBouncer shows 0 when they are not set.
            Value::Int(0),
            Value::Int(0),
            Value::count(db.server_lifetime),
            Value::text(&snapshot.pool_mode),
            Value::Null,
            // 0 is PgBouncer's "no limit".
            Value::Int(0),
            Value::count(db.current_connections),
            Value::Int(0),
            Value::count(db.current_client_connections),
            // PAUSE and DISABLE are not implemented yet.
            Value::Int(0),
            Value::Int(0),
        ]);
    }
    set
}

/// SHOW USERS: one row per configured user.
const USERS: [Column; 8] = [
    Column::text("name"),
    Column::text("pool_size"),
    Column::text("reserve_pool_size"),
    Column::text("pool_mode"),
    Column::int4("max_user_connections"),
    Column::int4("current_connections"),
    Column::int4("max_user_client_connections"),
    Column::int4("current_client_connections"),
];

pub(super) fn users(snapshot: &Snapshot) -> ResultSet {
    let mut set = ResultSet::new(&USERS);
    for user in &snapshot.users {
        set.push(vec![
            Value::text(&user.name),
            // PgBouncer writes these two as text, empty when the user has no setting of
            // its own; qcp has no per-user pool sizes.
            Value::text(""),
            Value::text(""),
            // No per-user pool mode: NULL, as PgBouncer shows for one that inherits.
            Value::Null,
            Value::Int(0),
            Value::count(user.current_connections),
            Value::Int(0),
            Value::count(user.current_client_connections),
        ]);
    }
    set
}

/// SHOW LISTS: counts of qcp's objects, one per row.
const LISTS: [Column; 2] = [Column::text("list"), Column::int4("items")];

pub(super) fn lists(snapshot: &Snapshot) -> ResultSet {
    let count = |n: usize| Value::size(n);
    let rows = [
        ("databases", count(snapshot.databases.len())),
        ("users", count(snapshot.users.len())),
        // No peers (PgBouncer's cancel-request forwarding between processes).
        ("peers", Value::Int(0)),
        ("pools", count(snapshot.pools.len())),
        ("peer_pools", Value::Int(0)),
        // PgBouncer keeps freed client and server objects for reuse; qcp does not.
        ("free_clients", Value::Int(0)),
        ("used_clients", count(snapshot.clients.len())),
        ("login_clients", Value::count(snapshot.login_clients)),
        ("free_servers", Value::Int(0)),
        ("used_servers", count(snapshot.servers.len())),
        // No DNS cache of qcp's own.
        ("dns_names", Value::Int(0)),
        ("dns_zones", Value::Int(0)),
        ("dns_queries", Value::Int(0)),
        ("dns_pending", Value::Int(0)),
    ];
    let mut set = ResultSet::new(&LISTS);
    for (name, items) in rows {
        set.push(vec![Value::text(name), items]);
    }
    set
}

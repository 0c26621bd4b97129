//! Fills a [`Snapshot`] from the running instance: pools, clients, server connections,
//! counters and settings, each read under its own short lock (never two at once), so the
//! hot path waits at most for one copy.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::clients::{CancelTarget, ClientHandle};
use super::io::Remote;
use super::shared::Shared;
use crate::config::{Config, RelayMode};
use crate::pool::PoolKey;
use crate::stats::{
    ArenaView, ClientState, ClientView, ConfigItem, DatabaseView, LoginOutcome, MemRow, PoolView,
    PreparedView, ServerState, ServerView, Snapshot, UserView,
};

/// Everything the console, `qcp-ctrl show` and `/metrics` show, as of now.
pub fn take(shared: &Shared) -> Snapshot {
    let now = Instant::now();
    let now_us = shared.micros_now();
    let clients = shared.clients.all();
    let mut pools = shared.pools();
    pools.sort_by(|a, b| key_order(a.pool.key(), b.pool.key()));

    // Clients, and the server connections they hold.
    let mut client_views = Vec::with_capacity(clients.len());
    let mut servers = Vec::new();
    let mut per_pool: HashMap<(&str, &str), (u64, u64, u64)> = HashMap::new();
    for handle in &clients {
        let target = handle.target();
        let waiting = handle.is_waiting();
        let counts = per_pool
            .entry((&handle.info.database, &handle.info.user))
            .or_default();
        if waiting {
            counts.1 += 1;
        } else {
            counts.0 += 1;
        }
        if let Some(target) = &target {
            counts.2 += 1;
            servers.push(server_view(
                shared,
                target,
                ServerState::Active,
                Some(handle.id),
            ));
        }
        client_views.push(client_view(shared, handle, target.as_deref(), now_us));
    }
    client_views.sort_by_key(|c| c.id);

    let mut pool_views = Vec::with_capacity(pools.len());
    let mut prepared = Vec::new();
    for entry in &pools {
        let key = entry.pool.key();
        let stats = entry.pool.stats();
        let (cl_active, cl_waiting, sv_active) = per_pool
            .get(&(key.database.as_str(), key.user.as_str()))
            .copied()
            .unwrap_or_default();
        let idle = entry
            .pool
            .idle_view(|conn| server_view(shared, &conn.io.cancel, ServerState::Idle, None));
        servers.extend(idle);
        let sv_idle = u64::from(stats.idle);
        let sv_login = entry.opening.load(Relaxed);
        pool_views.push(PoolView {
            database: key.database.clone(),
            user: key.user.clone(),
            cl_active,
            cl_waiting,
            sv_active,
            sv_idle,
            sv_used: u64::from(stats.open).saturating_sub(sv_idle + sv_active + sv_login),
            sv_login,
            max_wait: entry.pool.oldest_wait(now).unwrap_or_default(),
            totals: entry.counters.totals(),
            averages: shared.averages.get(key),
        });
        for statement in entry.statements.live_statements() {
            let definition = statement.definition();
            let query = definition.split(|&b| b == 0).next().unwrap_or_default();
            prepared.push(PreparedView {
                database: key.database.clone(),
                user: key.user.clone(),
                name: String::from_utf8_lossy(statement.name()).into_owned(),
                query: String::from_utf8_lossy(query).into_owned(),
            });
        }
    }
    servers.sort_by_key(|s| s.id);

    let config = shared.config();
    let arena = shared.arena.stats();
    let errors = shared
        .stats
        .errors
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(code, n)| (code.clone(), *n))
        .collect();
    let logins = LoginOutcome::ALL
        .iter()
        .zip(&shared.stats.login_outcomes)
        .map(|(outcome, n)| (*outcome, n.load(Relaxed)))
        .collect();
    Snapshot {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        pool_mode: pool_mode(config.relay_mode).to_owned(),
        uptime: now.saturating_duration_since(shared.started),
        shutting_down: shared.is_shutting_down(),
        databases: databases(&config, &pool_views),
        users: users(&config, &pool_views),
        login_clients: shared.stats.logging_in.load(Relaxed),
        memory: memory(client_views.len(), servers.len()),
        arena: ArenaView {
            reserved: shared.arena.reserved() as u64,
            exhaustions: shared.stats.arena_timeouts.load(Relaxed),
            stats: arena,
        },
        logins,
        errors,
        config: config_items(&config),
        prepared,
        pools: pool_views,
        clients: client_views,
        servers,
    }
}

/// PgBouncer's name for a relay mode.
pub fn pool_mode(mode: RelayMode) -> &'static str {
    match mode {
        RelayMode::Session => "session",
        RelayMode::Smart => "transaction",
    }
}

fn key_order(a: &PoolKey, b: &PoolKey) -> std::cmp::Ordering {
    (&a.database, &a.user).cmp(&(&b.database, &b.user))
}

fn client_view(
    shared: &Shared,
    handle: &ClientHandle,
    target: Option<&CancelTarget>,
    now_us: u64,
) -> ClientView {
    let info = &handle.info;
    let waiting_since = handle.waiting_since.load(Relaxed);
    let waiting = handle.is_waiting() && waiting_since != 0;
    let request_at = handle.request_at.load(Relaxed);
    ClientView {
        id: handle.id,
        pid: handle.pid,
        user: info.user.clone(),
        database: info.database.clone(),
        state: if waiting {
            ClientState::Waiting
        } else {
            ClientState::Active
        },
        addr: info.peer.0.clone(),
        port: info.peer.1,
        local_addr: info.local.0.clone(),
        local_port: info.local.1,
        connect_time: info.connected,
        request_time: if request_at == 0 {
            info.connected
        } else {
            shared.wall_clock(request_at)
        },
        wait: if waiting {
            Duration::from_micros(now_us.saturating_sub(waiting_since))
        } else {
            Duration::ZERO
        },
        link: target.map(|t| t.info.id),
        tls: info.tls.clone(),
        application_name: info.application_name.clone(),
        prepared_statements: u64::from(handle.prepared.load(Relaxed)),
    }
}

fn server_view(
    shared: &Shared,
    target: &Arc<CancelTarget>,
    state: ServerState,
    link: Option<u64>,
) -> ServerView {
    let info = &target.info;
    let (addr, port) = remote_end(&target.address);
    let linked_at = info.linked_at.load(Relaxed);
    ServerView {
        id: info.id,
        user: info.user.clone(),
        database: info.database.clone(),
        state,
        addr,
        port,
        local_addr: info.local.0.clone(),
        local_port: info.local.1,
        connect_time: info.connected,
        request_time: if linked_at == 0 {
            info.connected
        } else {
            shared.wall_clock(linked_at)
        },
        link,
        remote_pid: target.pid,
        tls: info.tls.clone(),
        application_name: String::new(),
        prepared_statements: u64::from(info.prepared.load(Relaxed)),
    }
}

/// A server's host and port: a Unix-domain socket shows as its directory and the port in
/// its `.s.PGSQL.PORT` name, as PgBouncer shows one.
fn remote_end(remote: &Remote) -> (String, u16) {
    match remote {
        Remote::Tcp(address) => (address.ip().to_string(), address.port()),
        Remote::Unix(path) => {
            let dir = path
                .parent()
                .map_or_else(String::new, |d| d.display().to_string());
            let port = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(".s.PGSQL."))
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            (dir, port)
        }
    }
}

/// One row per configured server and database it names; a server that serves every
/// database has a `*` row, and a row for each database its pools use.
fn databases(config: &Config, pools: &[PoolView]) -> Vec<DatabaseView> {
    let mut rows = Vec::new();
    for server in &config.servers {
        let (host, port) = server_host_port(&server.address);
        let mut names: Vec<String> = server.databases.clone();
        if names.is_empty() {
            names.push("*".to_owned());
            let mut used: Vec<String> = pools
                .iter()
                .map(|p| p.database.clone())
                .filter(|d| !config.servers.iter().any(|s| s.databases.contains(d)))
                .collect();
            used.dedup();
            names.extend(used);
        }
        for name in names {
            let of_db = pools.iter().filter(|p| p.database == name);
            let (connections, clients) = of_db.fold((0, 0), |(s, c), p| {
                (
                    s + p.sv_active + p.sv_idle + p.sv_used + p.sv_login,
                    c + p.cl_active + p.cl_waiting,
                )
            });
            rows.push(DatabaseView {
                database: if name == "*" {
                    String::new()
                } else {
                    name.clone()
                },
                name,
                host: host.clone(),
                port,
                pool_size: u64::from(server.pool_size),
                server_lifetime: config.timeouts.server_lifetime.as_secs(),
                current_connections: connections,
                current_client_connections: clients,
            });
        }
    }
    rows.sort_by(|a, b| (&a.name, &a.host, a.port).cmp(&(&b.name, &b.host, b.port)));
    rows
}

/// `host:port` or a Unix socket (`DIR:PORT` or the socket file) as host and port.
fn server_host_port(address: &str) -> (String, u16) {
    match crate::config::Endpoint::parse(address, false) {
        Ok(crate::config::Endpoint::Unix(path)) => remote_end(&Remote::Unix(path)),
        _ => match address.rsplit_once(':') {
            Some((host, port)) => (
                host.trim_matches(|c| c == '[' || c == ']').to_owned(),
                port.parse().unwrap_or(0),
            ),
            None => (address.to_owned(), 0),
        },
    }
}

fn users(config: &Config, pools: &[PoolView]) -> Vec<UserView> {
    let mut names: Vec<String> = config.users.iter().map(|u| u.name.clone()).collect();
    // Under `trust` users need not be configured: show those with pools too.
    for pool in pools {
        if !names.contains(&pool.user) {
            names.push(pool.user.clone());
        }
    }
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let of_user = pools.iter().filter(|p| p.user == name);
            let (connections, clients) = of_user.fold((0, 0), |(s, c), p| {
                (
                    s + p.sv_active + p.sv_idle + p.sv_used + p.sv_login,
                    c + p.cl_active + p.cl_waiting,
                )
            });
            UserView {
                name,
                current_connections: connections,
                current_client_connections: clients,
            }
        })
        .collect()
}

/// SHOW CONFIG: the effective settings as `qcp --check` prints them, each with its default
/// and whether a reload can change it.
fn config_items(config: &Config) -> Vec<ConfigItem> {
    let defaults: HashMap<String, String> = lines(&Config::default().describe()).collect();
    let mut items: Vec<ConfigItem> = lines(&config.describe())
        .map(|(key, value)| ConfigItem {
            default: defaults.get(&key).cloned().unwrap_or_default(),
            changeable: crate::config::reloadable(&key),
            key,
            value,
        })
        .collect();
    items.sort_by(|a, b| a.key.cmp(&b.key));
    items
}

fn lines(text: &str) -> impl Iterator<Item = (String, String)> + '_ {
    text.lines().filter_map(|line| {
        let (key, value) = line.split_once(": ")?;
        Some((key.to_owned(), value.to_owned()))
    })
}

/// SHOW MEM beyond the arena: what each client and server connection costs qcp.
fn memory(clients: usize, servers: usize) -> Vec<MemRow> {
    let client = (std::mem::size_of::<super::engine::ClientState>()
        + std::mem::size_of::<ClientHandle>()) as u64;
    let server = std::mem::size_of::<super::server::ServerConn>() as u64;
    vec![
        MemRow {
            name: "client".to_owned(),
            size: client,
            used: clients as u64,
            free: 0,
            memtotal: client * clients as u64,
        },
        MemRow {
            name: "server".to_owned(),
            size: server,
            used: servers as u64,
            free: 0,
            memtotal: server * servers as u64,
        },
    ]
}

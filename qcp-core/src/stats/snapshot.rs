//! A point-in-time copy of everything the admin console, `qcp-ctrl show` and `/metrics`
//! show. The driver fills it (`driver/snapshot.rs`); renderers only read it, so no lock is
//! held while a table or a scrape is written.

use std::time::{Duration, SystemTime};

use super::counters::Totals;
use crate::arena::ArenaStats;

/// Everything the renderers show.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// qcp's version (`CARGO_PKG_VERSION`).
    pub version: String,
    /// `session` or `transaction`: PgBouncer's name for qcp's `relay_mode` (Session, Smart).
    pub pool_mode: String,
    /// How long the instance has run.
    pub uptime: Duration,
    /// A shutdown has begun.
    pub shutting_down: bool,
    /// The pools created so far, sorted by (database, user).
    pub pools: Vec<PoolView>,
    /// Logged-in clients, sorted by id.
    pub clients: Vec<ClientView>,
    /// Server connections (in use and idle), sorted by id.
    pub servers: Vec<ServerView>,
    /// Databases: one row per configured server and database it serves.
    pub databases: Vec<DatabaseView>,
    /// Configured users, sorted by name.
    pub users: Vec<UserView>,
    /// Clients in the middle of logging in.
    pub login_clients: u64,
    /// The traffic memory.
    pub arena: ArenaView,
    /// Logins since start-up, by outcome.
    pub logins: Vec<(LoginOutcome, u64)>,
    /// Errors qcp itself sent to clients since start-up, by SQLSTATE, sorted.
    pub errors: Vec<(String, u64)>,
    /// Effective settings, sorted by key.
    pub config: Vec<ConfigItem>,
    /// Named prepared statements known per pool (Smart mode), sorted.
    pub prepared: Vec<PreparedView>,
    /// Other memory, as SHOW MEM lists it.
    pub memory: Vec<MemRow>,
}

/// One pool: (database, user).
#[derive(Clone, Debug, Default)]
pub struct PoolView {
    /// Database name as clients asked for it.
    pub database: String,
    /// User name.
    pub user: String,
    /// Logged-in clients not waiting (linked to a server connection, or idle).
    pub cl_active: u64,
    /// Clients queued for a server connection.
    pub cl_waiting: u64,
    /// Server connections linked to clients.
    pub sv_active: u64,
    /// Server connections idle in the pool.
    pub sv_idle: u64,
    /// Server connections out of the pool but linked to nobody: being brought in line with
    /// a client's parameters, reset after a Session-mode client, or closed.
    pub sv_used: u64,
    /// Server connections being opened or logged in.
    pub sv_login: u64,
    /// How long the longest-waiting client has waited (zero when none waits).
    pub max_wait: Duration,
    /// Counters since start-up.
    pub totals: Totals,
    /// PgBouncer's averages over the last `stats_period` (see `stats::averages`).
    pub averages: Totals,
}

/// A client's state, as SHOW CLIENTS names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientState {
    /// Logged in, linked to a server connection or idle.
    #[default]
    Active,
    /// Queued for a server connection.
    Waiting,
}

/// One logged-in client.
#[derive(Clone, Debug)]
pub struct ClientView {
    /// qcp's id for the client (unique for the life of the process).
    pub id: u64,
    /// The process id qcp gave it in BackendKeyData.
    pub pid: i32,
    /// User.
    pub user: String,
    /// Database.
    pub database: String,
    /// Active or waiting.
    pub state: ClientState,
    /// Its address (an IP, or `unix` for a Unix-domain socket).
    pub addr: String,
    /// Its port (0 for a Unix-domain socket).
    pub port: u16,
    /// qcp's address it connected to.
    pub local_addr: String,
    /// qcp's port it connected to.
    pub local_port: u16,
    /// When it connected.
    pub connect_time: SystemTime,
    /// When it last sent a request.
    pub request_time: SystemTime,
    /// How long it has waited for a server connection (zero unless waiting).
    pub wait: Duration,
    /// Id of the server connection it is linked to.
    pub link: Option<u64>,
    /// TLS version and cipher, empty in clear text.
    pub tls: String,
    /// Its `application_name`.
    pub application_name: String,
    /// Named prepared statements it has (Smart mode).
    pub prepared_statements: u64,
}

/// A server connection's state, as SHOW SERVERS names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ServerState {
    /// Linked to a client.
    #[default]
    Active,
    /// Idle in the pool.
    Idle,
}

/// One server connection.
#[derive(Clone, Debug)]
pub struct ServerView {
    /// qcp's id for the connection (unique for the life of the process).
    pub id: u64,
    /// User it is logged in as.
    pub user: String,
    /// Database.
    pub database: String,
    /// Active or idle.
    pub state: ServerState,
    /// The server's address (host, or the socket's directory).
    pub addr: String,
    /// The server's port.
    pub port: u16,
    /// qcp's end of the connection.
    pub local_addr: String,
    /// qcp's port.
    pub local_port: u16,
    /// When it was opened.
    pub connect_time: SystemTime,
    /// When it was last handed to a client (or opened).
    pub request_time: SystemTime,
    /// Id of the client it is linked to.
    pub link: Option<u64>,
    /// The backend's process id.
    pub remote_pid: i32,
    /// TLS version and cipher, empty in clear text.
    pub tls: String,
    /// `application_name` set on the server.
    pub application_name: String,
    /// Named prepared statements prepared on it (Smart mode).
    pub prepared_statements: u64,
}

/// One database a server serves.
#[derive(Clone, Debug, Default)]
pub struct DatabaseView {
    /// Name clients use (`*` for a server that serves every database).
    pub name: String,
    /// The server's host (or the socket's directory).
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// The database name on the server.
    pub database: String,
    /// `servers[].pool_size`.
    pub pool_size: u64,
    /// `timeouts.server_lifetime`, seconds.
    pub server_lifetime: u64,
    /// Server connections open to it for this database.
    pub current_connections: u64,
    /// Logged-in clients of this database.
    pub current_client_connections: u64,
}

/// One configured user.
#[derive(Clone, Debug, Default)]
pub struct UserView {
    /// Name.
    pub name: String,
    /// Server connections open for it.
    pub current_connections: u64,
    /// Its logged-in clients.
    pub current_client_connections: u64,
}

/// The arena.
#[derive(Clone, Debug)]
pub struct ArenaView {
    /// Counters from the arena itself.
    pub stats: ArenaStats,
    /// Chunks kept for clients that hold a server connection.
    pub reserved: u64,
    /// Requests that found no chunk within `timeouts.query_wait` (the client got 53200).
    pub exhaustions: u64,
}

impl Default for ArenaView {
    fn default() -> Self {
        ArenaView {
            stats: ArenaStats {
                chunk_size: 0,
                chunks_count: 0,
                in_use: 0,
                peak: 0,
                acquisitions: 0,
                exhausted: 0,
                waiting: 0,
            },
            reserved: 0,
            exhaustions: 0,
        }
    }
}

/// How a login ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LoginOutcome {
    /// Logged in.
    Ok,
    /// Wrong password (or unknown user).
    BadPassword,
    /// No server serves the database.
    UnknownDatabase,
    /// `limits.max_client_connections`, login slots, or shutdown.
    TooMany,
    /// The client broke the protocol or left during the login.
    Protocol,
    /// TLS was required, failed, or the server side refused.
    Other,
}

impl LoginOutcome {
    /// Every outcome, in order.
    pub const ALL: [LoginOutcome; 6] = [
        LoginOutcome::Ok,
        LoginOutcome::BadPassword,
        LoginOutcome::UnknownDatabase,
        LoginOutcome::TooMany,
        LoginOutcome::Protocol,
        LoginOutcome::Other,
    ];

    /// The label value used in `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginOutcome::Ok => "ok",
            LoginOutcome::BadPassword => "bad_password",
            LoginOutcome::UnknownDatabase => "unknown_database",
            LoginOutcome::TooMany => "too_many",
            LoginOutcome::Protocol => "protocol",
            LoginOutcome::Other => "other",
        }
    }
}

/// One setting, as SHOW CONFIG lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigItem {
    /// The setting's name as in the YAML file (nested keys joined with `.`).
    pub key: String,
    /// Its effective value.
    pub value: String,
    /// Its default.
    pub default: String,
    /// True if a reload can change it while qcp runs.
    pub changeable: bool,
}

/// One named prepared statement a pool's clients use.
#[derive(Clone, Debug, Default)]
pub struct PreparedView {
    /// Database.
    pub database: String,
    /// User.
    pub user: String,
    /// The name qcp gives it on servers.
    pub name: String,
    /// Its query text.
    pub query: String,
}

/// One row of SHOW MEM: a kind of object and its memory.
#[derive(Clone, Debug, Default)]
pub struct MemRow {
    /// What it is.
    pub name: String,
    /// Bytes of one.
    pub size: u64,
    /// How many are in use.
    pub used: u64,
    /// How many are free (allocated, not in use).
    pub free: u64,
    /// Bytes allocated in all.
    pub memtotal: u64,
}

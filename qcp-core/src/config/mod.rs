//! Configuration: the YAML file given with `qcp --config FILE`, its defaults and its validation.
//!
//! [`Config::load`] reads a file, [`Config::from_yaml`] parses text; both apply the defaults,
//! check every setting and return a [`ConfigError`] that names the setting, the line (where the
//! YAML parser knows it), what is wrong and how to fix it. [`Config::describe`] prints the
//! effective settings for `qcp --check`. `config-example.yaml` at the top of the repository
//! documents every key.
//!
//! Sizes (`arena`, `limits.max_message_size`) take a `B`, `KB`, `MB` or `GB` suffix, and these
//! units are binary, as in PostgreSQL's own memory settings: 1 KB = 1024 B, 1 MB = 1024 KB,
//! 1 GB = 1024 MB. Decimals are allowed (`3.1 GB`); the result is rounded down to whole bytes.
//! Durations (`timeouts`) are seconds (`30`, `0.5`) or a number with a unit (`500ms`, `30s`,
//! `5min`, `1h`).
//!
//! Layout: `load.rs` is the only code that knows about YAML (swap the parser there), `raw.rs`
//! holds the serde shapes of the file, `validate.rs` turns them into a [`Config`],
//! `size.rs` parses and prints sizes and durations, `locate.rs` finds a setting's line, `address.rs` reads addresses (`host:port` or a Unix socket),
//! `error.rs` holds [`ConfigError`] and `describe.rs` prints the effective settings, `admin.rs` checks the console's and the
//! metrics' settings, `reload.rs` says what a reload changes and what needs a restart.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::level_filters::LevelFilter;

use crate::auth::Secret;

mod address;
mod admin;
mod auth_query;
mod describe;
mod error;
mod load;
mod locate;
mod raw;
mod reload;
mod size;
mod tls;
mod validate;

pub use address::{socket_file_name, Endpoint, DEFAULT_UNIX_SOCKET_MODE, MAX_SOCKET_PATH};
pub use admin::{
    is_console_database, CONSOLE_DATABASE, CONSOLE_DATABASE_ALIAS, DEFAULT_STATS_PERIOD,
};
pub use auth_query::{AuthQuery, DEFAULT_AUTH_CACHE_TTL, DEFAULT_AUTH_QUERY};
pub use error::{ConfigError, ConfigErrorKind};
pub use reload::{reloadable, ReloadPlan, RESTART_ONLY};
pub use size::{format_duration, format_size, parse_duration, parse_size};
pub use tls::{ClientTls, ClientTlsMode, ServerTls, ServerTlsMode};

/// Default `listening_address`, as the specification gives it.
pub const DEFAULT_LISTENING_ADDRESS: &str = "0.0.0.0:8080";
/// Default `worker_threads`: like PgBouncer, one thread serves every client, which avoids
/// handing work between threads (the cost that dominates a pooler's CPU on small machines).
pub const DEFAULT_WORKER_THREADS: usize = 1;
/// Largest accepted `worker_threads`.
pub const MAX_WORKER_THREADS: usize = 1024;
/// Default `control_socket`.
pub const DEFAULT_CONTROL_SOCKET: &str = "/tmp/qcp.sock";
/// Default `arena.chunk_size`: 65 KB, room for a 64 KB message plus its header.
pub const DEFAULT_CHUNK_SIZE: usize = 66_560;
/// Default `arena.chunks_count` (with the default chunk size, a 65 MB arena).
pub const DEFAULT_CHUNKS_COUNT: usize = 1024;
/// Smallest accepted `arena.chunk_size`: a message header plus a small message.
pub const MIN_CHUNK_SIZE: usize = 1024;
/// Largest accepted arena (chunk_size × chunks_count): 1 TB.
pub const MAX_ARENA_SIZE: u64 = 1 << 40;
/// Default `servers[].pool_size`.
pub const DEFAULT_POOL_SIZE: u32 = 20;
/// Default `limits.max_client_connections`.
pub const DEFAULT_MAX_CLIENT_CONNECTIONS: usize = 10_000;
/// Default `limits.max_message_size`: 1 GB, PostgreSQL's own limit on one field.
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 1 << 30;
/// Default `limits.max_prepared_statements` (PgBouncer's default too).
pub const DEFAULT_MAX_PREPARED_STATEMENTS: usize = 200;
/// Smallest accepted `limits.max_message_size`.
pub const MIN_MAX_MESSAGE_SIZE: u32 = 1024;
/// Largest accepted `limits.max_message_size`: a message length is a signed 32-bit integer.
pub const MAX_MAX_MESSAGE_SIZE: u32 = i32::MAX as u32;
/// Longest accepted timeout: 365 days (use 0 to disable a timeout instead).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Every setting of a running qcp, defaults applied and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where qcp accepts clients, as written: `host:port`, or a Unix socket (`DIR:PORT` for
    /// `DIR/.s.PGSQL.PORT`, or the socket file's absolute path); see [`Endpoint::parse`].
    pub listening_address: String,
    /// Permission bits of the listening Unix socket (unused for TCP). Default 0777.
    pub unix_socket_mode: u32,
    /// When a client's server connection goes back to the pool.
    pub relay_mode: RelayMode,
    /// The most detailed log level written.
    pub log_level: LevelFilter,
    /// Where the log goes.
    pub log_output: LogOutput,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// The memory allocated once at start-up.
    pub arena: ArenaConfig,
    /// The PostgreSQL servers; never empty in a loaded configuration.
    pub servers: Vec<ServerConfig>,
    /// The users who may connect; names are unique.
    pub users: Vec<UserConfig>,
    /// How clients prove who they are.
    pub auth_method: AuthMethod,
    /// The Unix socket `qcp-ctrl` talks to.
    pub control_socket: PathBuf,
    /// Time limits.
    pub timeouts: Timeouts,
    /// Caps on clients and message sizes.
    pub limits: Limits,
    /// Threads that run client tasks.
    pub worker_threads: usize,
    /// TLS between clients and qcp.
    pub client_tls: ClientTls,
    /// Users who may use the admin console fully.
    pub admin_users: Vec<String>,
    /// Users who may run the console's SHOW commands.
    pub stats_users: Vec<String>,
    /// Where `/metrics` is served (`None`: off).
    pub metrics_address: Option<std::net::SocketAddr>,
    /// The period of the console's `avg_*` figures. Default 60 s.
    pub stats_period: Duration,
    /// Access rules in pg_hba.conf syntax (`None`: every client may try `auth_method`).
    pub hba_file: Option<PathBuf>,
    /// Credentials from the database for users not in `users` (`None`: off).
    pub auth_query: Option<AuthQuery>,
}

/// `relay_mode`: when a server connection given to a client returns to the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RelayMode {
    /// The client keeps its server connection until it disconnects.
    #[default]
    Session,
    /// The server connection returns to the pool whenever the server reports
    /// ReadyForQuery with status Idle (`'I'`).
    Smart,
}

/// `log_output`: where log lines are written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LogOutput {
    /// Standard output.
    #[default]
    Stdout,
    /// Standard error.
    Stderr,
    /// Appended to this file.
    File(PathBuf),
}

/// `log_format`: how log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, message and fields), for log collectors.
    Json,
}

impl LogFormat {
    /// The spelling used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// `arena`: fixed-size chunks allocated once at start-up.
///
/// INVARIANT (after loading): `chunk_size >= MIN_CHUNK_SIZE`, `chunks_count >= 1` and
/// `chunk_size * chunks_count <= MAX_ARENA_SIZE` without overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArenaConfig {
    /// Bytes in one chunk.
    pub chunk_size: usize,
    /// Number of chunks.
    pub chunks_count: usize,
}

impl ArenaConfig {
    /// Total bytes of the arena: `chunk_size * chunks_count` (saturating).
    pub fn total_size(&self) -> u64 {
        (self.chunk_size as u64).saturating_mul(self.chunks_count as u64)
    }
}

impl Default for ArenaConfig {
    fn default() -> Self {
        ArenaConfig {
            chunk_size: DEFAULT_CHUNK_SIZE,
            chunks_count: DEFAULT_CHUNKS_COUNT,
        }
    }
}

/// One entry of `servers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// As written: `host:port` (the host is a name, an IPv4 address or a bracketed IPv6
    /// address), or the server's Unix socket (`DIR:PORT` for `DIR/.s.PGSQL.PORT`, or the
    /// socket file's absolute path); see [`Endpoint::parse`].
    pub address: String,
    /// The most server connections for one database/user pair on this server (at least 1).
    pub pool_size: u32,
    /// Databases this server serves; empty means every database.
    pub databases: Vec<String>,
    /// TLS to this server.
    pub tls: ServerTls,
}

impl ServerConfig {
    /// Whether this server serves `database` (true for every database when the list is empty).
    pub fn serves(&self, database: &str) -> bool {
        self.databases.is_empty() || self.databases.iter().any(|d| d == database)
    }
}

/// One entry of `users`.
#[derive(Clone, PartialEq, Eq)]
pub struct UserConfig {
    /// The PostgreSQL user name.
    pub name: String,
    /// The password text exactly as written in the file (plaintext or a stored secret).
    pub password: Option<String>,
    /// `password` parsed; `Some` whenever `password` is.
    pub secret: Option<Secret>,
}

impl fmt::Debug for UserConfig {
    /// Never prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserConfig")
            .field("name", &self.name)
            .field("password", &self.secret.as_ref().map(Secret::kind))
            .finish()
    }
}

/// `auth_method`: how clients authenticate to qcp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMethod {
    /// `scram-sha-256`: SASL SCRAM-SHA-256, as PostgreSQL's default.
    #[default]
    ScramSha256,
    /// `md5`: PostgreSQL's md5 challenge.
    Md5,
    /// `trust`: no password is asked.
    Trust,
}

impl AuthMethod {
    /// The spelling used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ScramSha256 => "scram-sha-256",
            AuthMethod::Md5 => "md5",
            AuthMethod::Trust => "trust",
        }
    }
}

/// `timeouts`. A zero duration disables the timeout (see each field for what that means).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Longest wait for a server connection (or an arena chunk) before the client gets an
    /// error; 0 waits forever. PgBouncer's `query_wait_timeout`. Default 120 s.
    pub query_wait: Duration,
    /// Longest time to open and log in a server connection; 0 = no limit. Default 15 s.
    pub server_connect: Duration,
    /// Longest time a client may take to log in; 0 = no limit. Default 60 s.
    pub client_login: Duration,
    /// A server connection idle in the pool longer than this is closed; 0 = never. Default 600 s.
    pub server_idle: Duration,
    /// A server connection older than this is closed when it next returns to the pool;
    /// 0 = no limit. Default 3600 s.
    pub server_lifetime: Duration,
    /// Grace period after `qcp-ctrl quit` before remaining clients are cut off;
    /// 0 = cut them off at once. Default 30 s.
    pub shutdown: Duration,
    /// Longest time spent forwarding a client's cancel request to a server; 0 = no limit.
    /// Default 10 s.
    pub cancel_wait: Duration,
    /// Wait before connecting again to a server that refused a connection or a login;
    /// 0 = retry at once. Default 15 s.
    pub server_login_retry: Duration,
}

impl Timeouts {
    /// `None` for a disabled (zero) timeout, else the duration: `Timeouts::limit(t.query_wait)`.
    pub fn limit(value: Duration) -> Option<Duration> {
        (!value.is_zero()).then_some(value)
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            query_wait: Duration::from_secs(120),
            server_connect: Duration::from_secs(15),
            client_login: Duration::from_secs(60),
            server_idle: Duration::from_secs(600),
            server_lifetime: Duration::from_secs(3600),
            shutdown: Duration::from_secs(30),
            cancel_wait: Duration::from_secs(10),
            server_login_retry: Duration::from_secs(15),
        }
    }
}

/// `limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most clients connected at once, logins in progress included; more are refused.
    /// Default 10000.
    pub max_client_connections: usize,
    /// Largest message qcp relays, as the length in its header; a longer one closes the
    /// connection with an error. Default 1 GB.
    pub max_message_size: u32,
    /// Smart mode: most named prepared statements kept on one server connection; the least
    /// recently used is closed to make room. Default 200.
    pub max_prepared_statements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_client_connections: DEFAULT_MAX_CLIENT_CONNECTIONS,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_prepared_statements: DEFAULT_MAX_PREPARED_STATEMENTS,
        }
    }
}

impl Default for Config {
    /// Every default; `servers` and `users` are empty (a loaded config has at least one server).
    fn default() -> Self {
        Config {
            listening_address: DEFAULT_LISTENING_ADDRESS.to_owned(),
            unix_socket_mode: DEFAULT_UNIX_SOCKET_MODE,
            relay_mode: RelayMode::default(),
            log_level: LevelFilter::INFO,
            log_output: LogOutput::default(),
            log_format: LogFormat::default(),
            arena: ArenaConfig::default(),
            servers: Vec::new(),
            users: Vec::new(),
            auth_method: AuthMethod::default(),
            control_socket: PathBuf::from(DEFAULT_CONTROL_SOCKET),
            worker_threads: DEFAULT_WORKER_THREADS,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            client_tls: ClientTls::default(),
            admin_users: Vec::new(),
            stats_users: Vec::new(),
            metrics_address: None,
            stats_period: DEFAULT_STATS_PERIOD,
            hba_file: None,
            auth_query: None,
        }
    }
}

impl Config {
    /// Reads, parses and checks the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::io(&origin, &e))?;
        Config::from_yaml(&text, &origin)
    }

    /// The control socket a configuration file names (the default if it names none), read
    /// without checking the rest of the file: `qcp-ctrl --config FILE reload` must reach
    /// the running qcp even when the file it was edited into is invalid, so that qcp says
    /// what is wrong (and logs it). `None` if the file cannot be read or is not YAML.
    pub fn control_socket_in(path: &Path) -> Option<PathBuf> {
        let text = std::fs::read_to_string(path).ok()?;
        load::control_socket_in(&text)
    }

    /// Parses and checks configuration text; `origin` (usually the file name) is used in
    /// error messages.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        load::from_yaml(text, origin)
    }

    /// Reads and parses `hba_file` (at start-up, by `qcp --check`, and on SIGHUP); `None`
    /// when it is not set.
    pub fn load_hba(&self) -> Result<Option<crate::auth::hba::HbaRules>, String> {
        let Some(path) = &self.hba_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read {}: {e}; check the path and its permissions",
                path.display()
            )
        })?;
        crate::auth::hba::HbaRules::parse(&text)
            .map(Some)
            .map_err(|e| format!("{} {e}", path.display()))
    }

    /// The effective settings, one `setting: value` per line, sizes in human units.
    /// Passwords are never printed, only their form ("plaintext", "md5 hash", "SCRAM secret").
    pub fn describe(&self) -> String {
        describe::describe(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config-example.yaml");
        let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.relay_mode, RelayMode::Session);
        assert_eq!(c.servers.len(), 1);
        assert_eq!(c.servers[0].address, "127.0.0.1:5432");
        assert_eq!(c.users.len(), 1);
        // Apart from the server and the user, the example shows the defaults.
        let defaults = Config {
            servers: c.servers.clone(),
            users: c.users.clone(),
            ..Config::default()
        };
        assert_eq!(c, defaults);
    }
}

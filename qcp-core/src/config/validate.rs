//! Turns the parsed file ([`RawConfig`]) into a [`Config`]: applies defaults and checks the
//! values serde cannot (ranges, addresses, settings that contradict each other).

use std::collections::HashMap;
use std::path::Path;

use tracing::level_filters::LevelFilter;

use crate::auth::Secret;

use super::address::{Endpoint, DEFAULT_UNIX_SOCKET_MODE, MAX_SOCKET_PATH};
use super::admin;
use super::raw::RawLogFormat;
use super::raw::{RawArena, RawAuthMethod, RawConfig, RawLimits, RawLogOutput, RawRelayMode};
use super::raw::{RawServer, RawTimeouts, RawUser};
use super::size::format_size;
use super::{
    ArenaConfig, AuthMethod, Config, Limits, LogFormat, LogOutput, RelayMode, ServerConfig,
};
use super::{Timeouts, UserConfig};
use super::{DEFAULT_CHUNKS_COUNT, DEFAULT_CHUNK_SIZE, DEFAULT_CONTROL_SOCKET};
use super::{DEFAULT_LISTENING_ADDRESS, DEFAULT_POOL_SIZE, MAX_ARENA_SIZE, MAX_MAX_MESSAGE_SIZE};
use super::{DEFAULT_WORKER_THREADS, MAX_WORKER_THREADS};
use super::{MIN_CHUNK_SIZE, MIN_MAX_MESSAGE_SIZE};

/// A setting that is wrong: which, what is wrong, how to fix it (a sentence).
#[derive(Debug)]
pub(super) struct Invalid {
    pub setting: String,
    pub message: String,
    pub fix: String,
}

pub(super) fn invalid(
    setting: impl Into<String>,
    message: impl Into<String>,
    fix: impl Into<String>,
) -> Invalid {
    Invalid {
        setting: setting.into(),
        message: message.into(),
        fix: fix.into(),
    }
}

/// Applies defaults and checks every setting; the first problem found is returned.
pub(super) fn build(raw: RawConfig) -> Result<Config, Invalid> {
    let defaults = Config::default();
    let listening_address = raw
        .listening_address
        .unwrap_or_else(|| DEFAULT_LISTENING_ADDRESS.to_owned());
    endpoint(&listening_address, true).map_err(|(message, fix)| {
        invalid(
            "listening_address",
            message,
            fix.unwrap_or_else(|| {
                "Write an address with a port, like `0.0.0.0:8080`, or a Unix socket: a \
                 directory and a port, like `/var/run/qcp:6432` (the socket \
                 `/var/run/qcp/.s.PGSQL.6432`, which `psql -h /var/run/qcp -p 6432` reaches), \
                 or the socket file itself."
                    .to_owned()
            }),
        )
    })?;
    let control_socket = control_socket(raw.control_socket)?;
    if Endpoint::parse(&listening_address, true) == Ok(Endpoint::Unix(control_socket.clone())) {
        return Err(invalid(
            "listening_address",
            format!("`{listening_address}` is also the control socket (`control_socket`)"),
            "Give clients and qcp-ctrl different sockets, like `/var/run/qcp:6432` for clients \
             and `/var/run/qcp/ctrl.sock` for qcp-ctrl.",
        ));
    }
    let auth_method = match raw.auth_method {
        None => defaults.auth_method,
        Some(RawAuthMethod::ScramSha256) => AuthMethod::ScramSha256,
        Some(RawAuthMethod::Md5) => AuthMethod::Md5,
        Some(RawAuthMethod::Trust) => AuthMethod::Trust,
    };
    // Checked in the order of the fields below, so the first mistake in the file is reported.
    let log_output = log_output(raw.log_output)?;
    let arena = arena(raw.arena)?;
    let servers = servers(raw.servers.unwrap_or_default())?;
    let users = users(raw.users.unwrap_or_default(), auth_method)?;
    let admin_users = admin::console_users("admin_users", raw.admin_users, &users, auth_method)?;
    let stats_users = admin::console_users("stats_users", raw.stats_users, &users, auth_method)?;
    let auth_query = super::auth_query::auth_query(
        raw.auth_user,
        raw.auth_query,
        raw.auth_dbname,
        raw.auth_cache_ttl,
        &users,
    )?;
    Ok(Config {
        listening_address,
        unix_socket_mode: raw
            .unix_socket_mode
            .map_or(DEFAULT_UNIX_SOCKET_MODE, |m| m.0),
        relay_mode: match raw.relay_mode {
            None => defaults.relay_mode,
            Some(RawRelayMode::Session) => RelayMode::Session,
            Some(RawRelayMode::Smart) => RelayMode::Smart,
        },
        log_level: raw.log_level.map_or(LevelFilter::INFO, |l| l.0),
        log_output,
        log_format: match raw.log_format {
            None | Some(RawLogFormat::Text) => LogFormat::Text,
            Some(RawLogFormat::Json) => LogFormat::Json,
        },
        arena,
        servers,
        users,
        auth_method,
        control_socket,
        timeouts: timeouts(raw.timeouts.unwrap_or_default()),
        limits: limits(raw.limits.unwrap_or_default())?,
        worker_threads: worker_threads(raw.worker_threads)?,
        client_tls: super::tls::client_tls(raw.client_tls)?,
        admin_users,
        stats_users,
        metrics_address: admin::metrics_address(raw.metrics_address)?,
        stats_period: admin::stats_period(raw.stats_period)?,
        auth_query,
        hba_file: match raw.hba_file {
            Some(path) if path.as_os_str().is_empty() => {
                return Err(invalid(
                    "hba_file",
                    "the file name is empty",
                    "Write the path of a file in pg_hba.conf syntax, or leave the setting out.",
                ))
            }
            other => other,
        },
    })
}

fn log_output(raw: Option<RawLogOutput>) -> Result<LogOutput, Invalid> {
    Ok(match raw {
        None | Some(RawLogOutput::Stdout) => LogOutput::Stdout,
        Some(RawLogOutput::Stderr) => LogOutput::Stderr,
        Some(RawLogOutput::File(path)) if path.as_os_str().is_empty() => {
            return Err(invalid(
                "log_output.file",
                "the log file name is empty",
                "Write a path, like `file: /tmp/qcp.log`, or use `stdout` or `stderr`.",
            ))
        }
        Some(RawLogOutput::File(path)) => LogOutput::File(path),
    })
}

fn arena(raw: Option<RawArena>) -> Result<ArenaConfig, Invalid> {
    let raw = raw.unwrap_or_default();
    let chunk_size = raw.chunk_size.map_or(DEFAULT_CHUNK_SIZE as u64, |s| s.0);
    if chunk_size < MIN_CHUNK_SIZE as u64 {
        return Err(invalid(
            "arena.chunk_size",
            format!(
                "a chunk of {chunk_size} B is too small: a chunk must hold at least a message \
                 header plus a small message"
            ),
            format!("Use at least {MIN_CHUNK_SIZE}; 66560 (65 KB) is the usual size."),
        ));
    }
    let (chunks_count, count_setting) = match (raw.chunks_count, raw.total_size) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "arena",
                "both `chunks_count` and `total_size` are set",
                "Keep only one: `chunks_count` gives the number of chunks, `total_size` the \
                 total memory (divided into chunks of `chunk_size`).",
            ))
        }
        (Some(0), None) => {
            return Err(invalid(
                "arena.chunks_count",
                "0 chunks leave qcp no memory to relay messages",
                "Write a number of at least 1, like `1024`.",
            ))
        }
        (Some(count), None) => (count, "arena.chunks_count"),
        (None, Some(total)) if total.0 < chunk_size => {
            return Err(invalid(
                "arena.total_size",
                format!(
                    "{} is less than one chunk of {}",
                    format_size(total.0),
                    format_size(chunk_size)
                ),
                "Raise `total_size` to at least `chunk_size`, or lower `chunk_size`.",
            ))
        }
        (None, Some(total)) => (total.0 / chunk_size, "arena.total_size"),
        (None, None) => (DEFAULT_CHUNKS_COUNT as u64, "arena.chunk_size"),
    };
    let total = chunk_size
        .checked_mul(chunks_count)
        .filter(|&t| t <= MAX_ARENA_SIZE);
    let sizes = total.and_then(|_| {
        Some(ArenaConfig {
            chunk_size: usize::try_from(chunk_size).ok()?,
            chunks_count: usize::try_from(chunks_count).ok()?,
        })
    });
    sizes.ok_or_else(|| {
        invalid(
            count_setting,
            format!(
                "the arena would take {chunks_count} chunks of {}, more than the {} qcp accepts \
                 (it allocates the whole arena at start-up)",
                format_size(chunk_size),
                format_size(MAX_ARENA_SIZE)
            ),
            "Lower `chunks_count`, `total_size` or `chunk_size`; the arena must fit in memory.",
        )
    })
}

fn servers(raw: Vec<RawServer>) -> Result<Vec<ServerConfig>, Invalid> {
    if raw.is_empty() {
        return Err(invalid(
            "servers",
            "no servers are configured",
            "Add at least one PostgreSQL server, like `servers: [{address: \"127.0.0.1:5432\"}]`.",
        ));
    }
    let mut seen: HashMap<Endpoint, usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (n, server) in raw.into_iter().enumerate() {
        let at = endpoint(&server.address, false).map_err(|(message, fix)| {
            invalid(
                format!("servers[{n}].address"),
                message,
                fix.unwrap_or_else(|| {
                    "Write `host:port`, like `127.0.0.1:5432`, or the server's Unix socket: its \
                     directory and port, like `/var/run/postgresql:5432` (libpq's \
                     `host=/var/run/postgresql port=5432`), or the socket file itself."
                        .to_owned()
                }),
            )
        })?;
        // `/run/pg:5432` and `/run/pg/.s.PGSQL.5432` are the same server.
        if let Some(first) = seen.insert(at.clone(), n) {
            return Err(invalid(
                format!("servers[{n}].address"),
                format!("`{}` is also servers[{first}]", server.address),
                "List each server once, with all the databases it serves.",
            ));
        }
        let pool_size = server.pool_size.unwrap_or(DEFAULT_POOL_SIZE);
        if pool_size == 0 {
            return Err(invalid(
                format!("servers[{n}].pool_size"),
                "a pool of 0 connections could never serve a client",
                format!("Write at least 1 (the default is {DEFAULT_POOL_SIZE})."),
            ));
        }
        let databases = server.databases.unwrap_or_default();
        if let Some(d) = databases.iter().position(|name| name.trim().is_empty()) {
            return Err(invalid(
                format!("servers[{n}].databases[{d}]"),
                "the database name is empty",
                "Write the database's name, or leave `databases` out to serve every database.",
            ));
        }
        let tls = super::tls::server_tls(n, server.tls, &at)?;
        out.push(ServerConfig {
            address: server.address,
            pool_size,
            databases,
            tls,
        });
    }
    Ok(out)
}

/// `address` read by [`Endpoint::parse`]; an absolute path that is an existing directory is
/// refused with its own fix (libpq takes `host=DIR` for a socket directory, and qcp needs the
/// port with it). The error is (what is wrong, the fix if it is not the general one).
fn endpoint(address: &str, listening: bool) -> Result<Endpoint, (String, Option<String>)> {
    let at = Endpoint::parse(address, listening).map_err(|message| (message, None))?;
    if let Endpoint::Unix(path) = &at {
        if path.as_os_str() == address && path.is_dir() {
            let (port, example) = if listening {
                (6432, format!("then `psql -h {address} -p 6432` connects"))
            } else {
                (5432, format!("as libpq's `host={address} port=5432`"))
            };
            return Err((
                format!("`{address}` is a directory, not a socket"),
                Some(format!(
                    "Add the port, like `{address}:{port}` for the socket \
                     `{}` ({example}).",
                    path.join(super::socket_file_name(port)).display()
                )),
            ));
        }
    }
    Ok(at)
}

fn users(raw: Vec<RawUser>, method: AuthMethod) -> Result<Vec<UserConfig>, Invalid> {
    if raw.is_empty() && method != AuthMethod::Trust {
        return Err(invalid(
            "users",
            format!(
                "no users are configured, so nobody can log in with {}",
                method.as_str()
            ),
            "Add users, each `- name: NAME` with `password: PASSWORD`, or set \
             `auth_method: trust`.",
        ));
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (n, user) in raw.into_iter().enumerate() {
        if user.name.is_empty() {
            return Err(invalid(
                format!("users[{n}].name"),
                "the user name is empty",
                "Write the PostgreSQL user name.",
            ));
        }
        if let Some(first) = seen.insert(user.name.clone(), n) {
            return Err(invalid(
                format!("users[{n}].name"),
                format!("user `{}` is also users[{first}]", user.name),
                "List each user once.",
            ));
        }
        let secret = match &user.password {
            None if method == AuthMethod::Trust => None,
            None => {
                return Err(invalid(
                    format!("users[{n}].password"),
                    format!("user `{}` has no password", user.name),
                    format!(
                        "Add `password:` with the plaintext password or its SCRAM-SHA-256 \
                         secret, or set `auth_method: trust` (now {}).",
                        method.as_str()
                    ),
                ))
            }
            Some(text) if text.is_empty() && method != AuthMethod::Trust => {
                return Err(invalid(
                    format!("users[{n}].password"),
                    format!(
                        "user `{}` has an empty password, which PostgreSQL never accepts",
                        user.name
                    ),
                    "Write the user's password, or set `auth_method: trust`.",
                ))
            }
            Some(text) => Some(Secret::parse(text).map_err(|e| {
                invalid(
                    format!("users[{n}].password"),
                    e.to_string(),
                    "Write the plaintext password, or the whole secret as stored in \
                     pg_authid.rolpassword: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:\
                     <ServerKey>`.",
                )
            })?),
        };
        if method == AuthMethod::ScramSha256 && matches!(secret, Some(Secret::Md5(_))) {
            return Err(invalid(
                format!("users[{n}].password"),
                format!(
                    "user `{}` has an md5 hash, and a client cannot prove it knows the password \
                     with scram-sha-256 against an md5 hash",
                    user.name
                ),
                "Write the plaintext password or its SCRAM-SHA-256 secret, or set \
                 `auth_method: md5`.",
            ));
        }
        out.push(UserConfig {
            name: user.name,
            password: user.password,
            secret,
        });
    }
    Ok(out)
}

fn worker_threads(raw: Option<u64>) -> Result<usize, Invalid> {
    match raw {
        None => Ok(DEFAULT_WORKER_THREADS),
        Some(n) if (1..=MAX_WORKER_THREADS as u64).contains(&n) => Ok(n as usize),
        Some(n) => Err(invalid(
            "worker_threads",
            format!("{n} is outside 1 .. {MAX_WORKER_THREADS}"),
            "Write a whole number of threads from 1 (the default) to the number of cores.",
        )),
    }
}

fn control_socket(raw: Option<std::path::PathBuf>) -> Result<std::path::PathBuf, Invalid> {
    const MAX_LEN: usize = MAX_SOCKET_PATH;
    let path = raw.unwrap_or_else(|| Path::new(DEFAULT_CONTROL_SOCKET).to_path_buf());
    let len = path.as_os_str().len();
    if len == 0 {
        return Err(invalid(
            "control_socket",
            "the socket path is empty",
            format!("Write a path, like `{DEFAULT_CONTROL_SOCKET}`, or leave the setting out."),
        ));
    }
    if len > MAX_LEN {
        return Err(invalid(
            "control_socket",
            format!(
                "the path is {len} bytes long, and a Unix socket path can have at most {MAX_LEN}"
            ),
            "Choose a shorter path, like `/tmp/qcp.sock` or `/run/qcp/ctrl.sock`.",
        ));
    }
    Ok(path)
}

fn timeouts(raw: RawTimeouts) -> Timeouts {
    let d = Timeouts::default();
    let pick = |value: Option<super::raw::Seconds>, default| value.map_or(default, |s| s.0);
    Timeouts {
        query_wait: pick(raw.query_wait, d.query_wait),
        server_connect: pick(raw.server_connect, d.server_connect),
        client_login: pick(raw.client_login, d.client_login),
        server_idle: pick(raw.server_idle, d.server_idle),
        server_lifetime: pick(raw.server_lifetime, d.server_lifetime),
        shutdown: pick(raw.shutdown, d.shutdown),
        cancel_wait: pick(raw.cancel_wait, d.cancel_wait),
        server_login_retry: pick(raw.server_login_retry, d.server_login_retry),
    }
}

fn limits(raw: RawLimits) -> Result<Limits, Invalid> {
    let d = Limits::default();
    let max_client_connections = match raw.max_client_connections {
        None => d.max_client_connections,
        Some(0) => {
            return Err(invalid(
                "limits.max_client_connections",
                "0 would refuse every client",
                "Write at least 1 (the default is 10000).",
            ))
        }
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    };
    let max_message_size = match raw.max_message_size {
        None => d.max_message_size,
        Some(size) => u32::try_from(size.0)
            .ok()
            .filter(|s| (MIN_MAX_MESSAGE_SIZE..=MAX_MAX_MESSAGE_SIZE).contains(s))
            .ok_or_else(|| {
                invalid(
                    "limits.max_message_size",
                    format!(
                        "{} ({} B) is outside {} .. {} B (a PostgreSQL message length is a \
                         signed 32-bit number)",
                        format_size(size.0),
                        size.0,
                        MIN_MAX_MESSAGE_SIZE,
                        MAX_MAX_MESSAGE_SIZE
                    ),
                    "Write a size from 1 KB to 2147483647 B; the default is 1 GB.",
                )
            })?,
    };
    let max_prepared_statements = match raw.max_prepared_statements {
        None => d.max_prepared_statements,
        Some(0) => {
            return Err(invalid(
                "limits.max_prepared_statements",
                "0 would leave no room for a prepared statement on a server connection",
                "Write at least 1 (the default is 200).",
            ))
        }
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    };
    Ok(Limits {
        max_client_connections,
        max_message_size,
        max_prepared_statements,
    })
}

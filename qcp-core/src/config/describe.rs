//! The effective settings as text, for `qcp --check`. Never prints a password.

use std::fmt::{Display, Write as _};
use std::time::Duration;

use super::address::format_mode;
use super::size::{format_duration, format_size};
use super::{Config, Endpoint, LogOutput, RelayMode};

/// One `setting: value` per line, in the order of config-example.yaml.
pub(super) fn describe(config: &Config) -> String {
    let mut out = Lines(String::new());
    out.line(
        "listening_address",
        address(&config.listening_address, true),
    );
    out.line("unix_socket_mode", format_mode(config.unix_socket_mode));
    let mode = match config.relay_mode {
        RelayMode::Session => "Session",
        RelayMode::Smart => "Smart",
    };
    out.line("relay_mode", mode);
    out.line("log_level", level_name(config.log_level));
    match &config.log_output {
        LogOutput::Stdout => out.line("log_output", "stdout"),
        LogOutput::Stderr => out.line("log_output", "stderr"),
        LogOutput::File(path) => out.line("log_output", format_args!("file: {}", path.display())),
    }
    out.line("log_format", config.log_format.as_str());

    let arena = &config.arena;
    out.line("arena.chunk_size", size(arena.chunk_size as u64));
    out.line("arena.chunks_count", arena.chunks_count);
    out.line("arena.total_size", size(arena.total_size()));

    for (n, server) in config.servers.iter().enumerate() {
        out.line(
            format_args!("servers[{n}].address"),
            address(&server.address, false),
        );
        out.line(format_args!("servers[{n}].pool_size"), server.pool_size);
        let databases = if server.databases.is_empty() {
            "(every database)".to_owned()
        } else {
            server.databases.join(", ")
        };
        out.line(format_args!("servers[{n}].databases"), databases);
        let tls = &server.tls;
        out.line(format_args!("servers[{n}].tls.mode"), tls.mode.as_str());
        for (name, file) in [("ca", &tls.ca), ("cert", &tls.cert), ("key", &tls.key)] {
            if let Some(file) = file {
                out.line(format_args!("servers[{n}].tls.{name}"), file.display());
            }
        }
    }
    let tls = &config.client_tls;
    out.line("client_tls.mode", tls.mode.as_str());
    for (name, file) in [("cert", &tls.cert), ("key", &tls.key), ("ca", &tls.ca)] {
        if let Some(file) = file {
            out.line(format_args!("client_tls.{name}"), file.display());
        }
    }
    out.line("auth_method", config.auth_method.as_str());
    match &config.auth_query {
        Some(a) => {
            out.line("auth_user", &a.user);
            out.line("auth_query", &a.query);
            out.line(
                "auth_dbname",
                a.dbname.as_deref().unwrap_or("(the client's database)"),
            );
            out.line("auth_cache_ttl", super::size::format_duration(a.cache_ttl));
        }
        None => out.line("auth_user", "(none)"),
    }
    match &config.hba_file {
        Some(path) => out.line("hba_file", path.display()),
        None => out.line("hba_file", "(none)"),
    }
    if config.users.is_empty() {
        out.line("users", "(none)");
    }
    for (n, user) in config.users.iter().enumerate() {
        out.line(format_args!("users[{n}].name"), &user.name);
        let password = user.secret.as_ref().map_or("(none)", |s| s.kind());
        out.line(format_args!("users[{n}].password"), password);
    }
    out.line("control_socket", config.control_socket.display());
    out.line("worker_threads", config.worker_threads);
    let list = |names: &[String]| {
        if names.is_empty() {
            "(none)".to_owned()
        } else {
            names.join(", ")
        }
    };
    out.line("admin_users", list(&config.admin_users));
    out.line("stats_users", list(&config.stats_users));
    match config.metrics_address {
        Some(address) => out.line("metrics_address", address),
        None => out.line("metrics_address", "(off)"),
    }
    out.line(
        "stats_period",
        super::size::format_duration(config.stats_period),
    );

    let t = &config.timeouts;
    for (name, value, when_zero) in [
        ("query_wait", t.query_wait, "wait forever"),
        ("server_connect", t.server_connect, "no limit"),
        ("client_login", t.client_login, "no limit"),
        ("server_idle", t.server_idle, "never close"),
        ("server_lifetime", t.server_lifetime, "no limit"),
        ("shutdown", t.shutdown, "cut clients off at once"),
        ("cancel_wait", t.cancel_wait, "no limit"),
        ("server_login_retry", t.server_login_retry, "retry at once"),
    ] {
        out.line(format_args!("timeouts.{name}"), timeout(value, when_zero));
    }

    let l = &config.limits;
    out.line("limits.max_client_connections", l.max_client_connections);
    out.line(
        "limits.max_message_size",
        size(u64::from(l.max_message_size)),
    );
    out.line("limits.max_prepared_statements", l.max_prepared_statements);
    out.0
}

struct Lines(String);

impl Lines {
    fn line(&mut self, setting: impl Display, value: impl Display) {
        if !self.0.is_empty() {
            self.0.push('\n');
        }
        // Writing to a String cannot fail.
        let _ = write!(self.0, "{setting}: {value}");
    }
}

/// The address as written, with the socket file when it is a Unix socket written as
/// `DIR:PORT`: `/run/qcp:6432 (socket /run/qcp/.s.PGSQL.6432)`.
fn address(text: &str, listening: bool) -> String {
    match Endpoint::parse(text, listening) {
        Ok(Endpoint::Unix(path)) if path.as_os_str() != text => {
            format!("{text} (socket {})", path.display())
        }
        _ => text.to_owned(),
    }
}

/// `65 KB (66560 B)`, or `512 B`.
fn size(bytes: u64) -> String {
    let human = format_size(bytes);
    if bytes < 1024 {
        human
    } else {
        format!("{human} ({bytes} B)")
    }
}

fn timeout(d: Duration, when_zero: &str) -> String {
    if d.is_zero() {
        format!("0 ({when_zero})")
    } else {
        format_duration(d)
    }
}

fn level_name(level: tracing::level_filters::LevelFilter) -> &'static str {
    use tracing::level_filters::LevelFilter as L;
    match level {
        L::OFF => "Off",
        L::ERROR => "Error",
        L::WARN => "Warn",
        L::INFO => "Info",
        L::DEBUG => "Debug",
        _ => "Trace",
    }
}

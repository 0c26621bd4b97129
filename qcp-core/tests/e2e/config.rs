//! Configuration loading: defaults, every kind of mistake and its message, `describe`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use qcp_core::auth::{ScramSecret, Secret};
use qcp_core::config::{
    parse_duration, parse_size, ArenaConfig, AuthMethod, Config, ConfigError, ConfigErrorKind,
    Limits, LogOutput, RelayMode, Timeouts,
};
use tracing::level_filters::LevelFilter;

/// The smallest valid file: one server, trust (no users needed).
const MINIMAL: &str = "servers:\n  - address: 127.0.0.1:5432\nauth_method: trust\n";
/// Just one server: enough for errors found while parsing, before the users are checked.
const SERVER: &str = "servers:\n  - address: 127.0.0.1:5432\n";

fn load(text: &str) -> Config {
    Config::from_yaml(text, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn fail(text: &str) -> ConfigError {
    match Config::from_yaml(text, "test.yaml") {
        Ok(config) => panic!("expected an error, loaded {config:?}"),
        Err(e) => e,
    }
}

/// Asserts the error names `setting`, gives `line`, and its text contains every `part`.
fn assert_error(e: &ConfigError, setting: &str, line: Option<usize>, parts: &[&str]) {
    let text = e.to_string();
    assert_eq!(e.setting(), Some(setting), "{text}");
    assert_eq!(e.line(), line, "{text}");
    assert!(text.contains(&format!("`{setting}`")), "{text}");
    if let Some(n) = line {
        assert!(
            text.starts_with(&format!("config error in test.yaml line {n}: ")),
            "{text}"
        );
    }
    for part in parts {
        assert!(text.contains(part), "{text:?} should contain {part:?}");
    }
    assert!(!e.fix().is_empty(), "{text}");
}

#[test]
fn defaults() {
    let d = Config::default();
    assert_eq!(d.listening_address, "0.0.0.0:8080");
    assert_eq!(d.relay_mode, RelayMode::Session);
    assert_eq!(d.log_level, LevelFilter::INFO);
    assert_eq!(d.log_output, LogOutput::Stdout);
    assert_eq!(
        d.arena,
        ArenaConfig {
            chunk_size: 66_560,
            chunks_count: 1024
        }
    );
    assert_eq!(d.arena.total_size(), 66_560 * 1024);
    assert!(d.servers.is_empty() && d.users.is_empty());
    assert_eq!(d.auth_method, AuthMethod::ScramSha256);
    assert_eq!(d.control_socket, PathBuf::from("/tmp/qcp.sock"));
    let t = d.timeouts;
    assert_eq!(t.query_wait, Duration::from_secs(120));
    assert_eq!(t.server_connect, Duration::from_secs(15));
    assert_eq!(t.client_login, Duration::from_secs(60));
    assert_eq!(t.server_idle, Duration::from_secs(600));
    assert_eq!(t.server_lifetime, Duration::from_secs(3600));
    assert_eq!(t.shutdown, Duration::from_secs(30));
    assert_eq!(t.cancel_wait, Duration::from_secs(10));
    assert_eq!(t.server_login_retry, Duration::from_secs(15));
    assert_eq!(
        d.limits,
        Limits {
            max_client_connections: 10_000,
            max_message_size: 1 << 30,
            max_prepared_statements: 200,
        }
    );
    assert_eq!(d.worker_threads, 1);
}

#[test]
fn a_minimal_file_gets_every_default() {
    let c = load(MINIMAL);
    let expected = Config {
        servers: c.servers.clone(),
        auth_method: AuthMethod::Trust,
        ..Config::default()
    };
    assert_eq!(c, expected);
    assert_eq!(c.servers.len(), 1);
    assert_eq!(c.servers[0].address, "127.0.0.1:5432");
    assert_eq!(c.servers[0].pool_size, 20);
    assert!(c.servers[0].databases.is_empty() && c.servers[0].serves("anything"));
}

#[test]
fn every_setting_can_be_set() {
    let text = r#"
listening_address: "[::1]:6432"
unix_socket_mode: 0770
relay_mode: Smart
log_level: debug
log_output:
    file: /tmp/qcp.log
arena:
    chunk_size: 8 KB
    total_size: 3.1 GB
servers:
  - address: db1.example.com:5432
    pool_size: 5
    databases: [app, reports]
  - address: 10.0.0.2:5433
auth_method: md5
users:
  - name: alice
    password: secret
  - name: bob
    password: md5aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
control_socket: /run/qcp/ctrl.sock
timeouts:
    query_wait: 0
    server_connect: 2.5
    client_login: 500ms
    server_idle: 5min
    server_lifetime: 2h
    shutdown: 0s
    cancel_wait: 1
    server_login_retry: 1.5s
limits:
    max_client_connections: 50
    max_message_size: 16MB
    max_prepared_statements: 7
worker_threads: 3
"#;
    let c = load(text);
    assert_eq!(c.listening_address, "[::1]:6432");
    assert_eq!(c.unix_socket_mode, 0o770);
    assert_eq!(c.relay_mode, RelayMode::Smart);
    assert_eq!(c.log_level, LevelFilter::DEBUG);
    assert_eq!(c.log_output, LogOutput::File("/tmp/qcp.log".into()));
    // floor(3.1 * 2^30 / 8192) whole chunks.
    assert_eq!(
        c.arena,
        ArenaConfig {
            chunk_size: 8192,
            chunks_count: 406_323
        }
    );
    assert_eq!(c.servers[0].pool_size, 5);
    assert_eq!(c.servers[0].databases, ["app", "reports"]);
    assert!(c.servers[0].serves("app") && !c.servers[0].serves("other"));
    assert!(c.servers[1].serves("other"));
    assert_eq!(c.auth_method, AuthMethod::Md5);
    assert_eq!(c.users[0].password.as_deref(), Some("secret"));
    assert_eq!(c.users[0].secret, Some(Secret::Plain("secret".into())));
    assert!(matches!(c.users[1].secret, Some(Secret::Md5(_))));
    assert_eq!(c.control_socket, PathBuf::from("/run/qcp/ctrl.sock"));
    let t = c.timeouts;
    assert_eq!(t.query_wait, Duration::ZERO);
    assert_eq!(Timeouts::limit(t.query_wait), None);
    assert_eq!(t.server_connect, Duration::from_millis(2500));
    assert_eq!(
        Timeouts::limit(t.server_connect),
        Some(Duration::from_millis(2500))
    );
    assert_eq!(t.client_login, Duration::from_millis(500));
    assert_eq!(t.server_idle, Duration::from_secs(300));
    assert_eq!(t.server_lifetime, Duration::from_secs(7200));
    assert_eq!(t.shutdown, Duration::ZERO);
    assert_eq!(t.cancel_wait, Duration::from_secs(1));
    assert_eq!(t.server_login_retry, Duration::from_millis(1500));
    assert_eq!(
        c.limits,
        Limits {
            max_client_connections: 50,
            max_message_size: 16 << 20,
            max_prepared_statements: 7,
        }
    );
    assert_eq!(c.worker_threads, 3);
}

#[test]
fn spellings() {
    for (text, level) in [
        ("Off", LevelFilter::OFF),
        ("ERROR", LevelFilter::ERROR),
        ("Trace", LevelFilter::TRACE),
    ] {
        assert_eq!(
            load(&format!("{MINIMAL}log_level: {text}\n")).log_level,
            level
        );
    }
    assert_eq!(
        load(&format!("{MINIMAL}relay_mode: smart\n")).relay_mode,
        RelayMode::Smart
    );
    assert_eq!(
        load(&format!("{MINIMAL}log_output: stderr\n")).log_output,
        LogOutput::Stderr
    );
    // A block list at its key's indentation, and flow style, are both YAML.
    let c =
        load("servers:\n- address: a:1\n- {address: 'b:2', pool_size: 3}\nauth_method: trust\n");
    assert_eq!(c.servers[1].pool_size, 3);
}

#[test]
fn arena_from_total_size() {
    let c = load(&format!("{MINIMAL}arena:\n  total_size: 3.1 GB\n"));
    // floor(floor(3.1 * 2^30) / 66560) = 50009 chunks of the default size.
    assert_eq!(
        c.arena,
        ArenaConfig {
            chunk_size: 66_560,
            chunks_count: 50_009
        }
    );
    let c = load(&format!(
        "{MINIMAL}arena:\n  chunk_size: 1024\n  total_size: 1500 B\n"
    ));
    assert_eq!(c.arena.chunks_count, 1);
}

#[test]
fn unknown_key_names_the_line_and_the_valid_keys() {
    let e = fail(&format!(
        "{MINIMAL}arena:\n  chunk_size: 66560\n  chunk_count: 10\n"
    ));
    assert_eq!(e.kind(), ConfigErrorKind::UnknownKey);
    assert_error(
        &e,
        "arena.chunk_count",
        Some(6),
        &[
            "unknown field `chunk_count`",
            "`chunks_count`",
            "`total_size`",
        ],
    );
    let e = fail(&format!("{MINIMAL}listen_address: 0.0.0.0:1\n"));
    assert_error(
        &e,
        "listen_address",
        Some(4),
        &["`listening_address`", "spelling"],
    );
    let e = fail("servers:\n  - address: a:1\n    poolsize: 3\n");
    assert_error(&e, "servers[0].poolsize", Some(3), &["`pool_size`"]);
}

#[test]
fn wrong_type() {
    let e = fail("servers:\n  - address: a:1\n    pool_size: many\nauth_method: trust\n");
    assert_eq!(e.kind(), ConfigErrorKind::WrongType);
    assert_error(
        &e,
        "servers[0].pool_size",
        Some(3),
        &["invalid type: string \"many\"", "whole number"],
    );
    let e = fail("servers: 127.0.0.1:5432\n");
    assert_error(
        &e,
        "servers",
        Some(1),
        &["invalid type", "- address: host:port"],
    );
    let e = fail(&format!("{SERVER}relay_mode: Transaction\n"));
    assert_error(
        &e,
        "relay_mode",
        Some(3),
        &["`Transaction`", "`Session` or `Smart`"],
    );
    let e = fail(&format!("{SERVER}auth_method: password\n"));
    assert_error(
        &e,
        "auth_method",
        Some(3),
        &["`scram-sha-256`, `md5` or `trust`"],
    );
    let e = fail(&format!("{SERVER}log_level: verbose\n"));
    assert_error(
        &e,
        "log_level",
        Some(3),
        &["Off, Error, Warn, Info, Debug, Trace"],
    );
    let e = fail(&format!("{SERVER}log_output: syslog\n"));
    assert_error(&e, "log_output", Some(3), &["`syslog`", "file: "]);
    let e = fail("just text");
    assert_eq!(e.kind(), ConfigErrorKind::WrongType);
    assert!(e.to_string().contains("mapping of settings"), "{e}");
}

#[test]
fn missing_required_key() {
    let e = fail("servers:\n  - pool_size: 5\n");
    assert_error(
        &e,
        "servers[0].address",
        Some(2),
        &["missing field `address`", "host:port"],
    );
}

#[test]
fn both_chunks_count_and_total_size() {
    let e = fail(&format!(
        "{MINIMAL}arena:\n  chunks_count: 3150\n  total_size: 3.1 GB\n"
    ));
    assert_eq!(e.kind(), ConfigErrorKind::Invalid);
    assert_error(
        &e,
        "arena",
        Some(4),
        &["both `chunks_count` and `total_size`", "Keep only one"],
    );
}

#[test]
fn chunk_too_small() {
    let e = fail(&format!("{MINIMAL}arena:\n  chunk_size: 512\n"));
    assert_error(
        &e,
        "arena.chunk_size",
        Some(5),
        &["512 B is too small", "message header", "66560"],
    );
    let e = fail(&format!(
        "{MINIMAL}arena:\n  chunk_size: 1 KB\n  total_size: 1000 B\n"
    ));
    assert_error(&e, "arena.total_size", Some(6), &["less than one chunk"]);
    let e = fail(&format!("{MINIMAL}arena:\n  chunks_count: 0\n"));
    assert_error(&e, "arena.chunks_count", Some(5), &["at least 1"]);
}

#[test]
fn arena_too_large() {
    let e = fail(&format!("{MINIMAL}arena:\n  total_size: 2 TB\n"));
    assert_error(&e, "arena.total_size", Some(5), &["1 TB"]);
    let e = fail(&format!("{MINIMAL}arena:\n  chunks_count: 100000000000\n"));
    assert_error(&e, "arena.chunks_count", Some(5), &["1 TB"]);
}

#[test]
fn bad_size_suffix() {
    let e = fail(&format!("{MINIMAL}arena:\n  total_size: 3.1 GiGa\n"));
    assert_error(
        &e,
        "arena.total_size",
        Some(5),
        &["unknown unit `GiGa`", "1 KB = 1024 B"],
    );
    let e = fail(&format!("{MINIMAL}worker_threads: 0\n"));
    assert_error(&e, "worker_threads", Some(4), &["outside 1 .. 1024"]);
    let e = fail(&format!("{MINIMAL}limits:\n  max_prepared_statements: 0\n"));
    assert_error(
        &e,
        "limits.max_prepared_statements",
        Some(5),
        &["no room", "at least 1"],
    );
    let e = fail(&format!("{MINIMAL}limits:\n  max_message_size: lots\n"));
    assert_error(&e, "limits.max_message_size", Some(5), &["`lots`"]);
    let e = fail(&format!("{MINIMAL}limits:\n  max_message_size: 4 GB\n"));
    assert_error(&e, "limits.max_message_size", Some(5), &["2147483647"]);
}

#[test]
fn bad_duration() {
    let e = fail(&format!("{MINIMAL}timeouts:\n  server_idle: 3 days\n"));
    assert_error(
        &e,
        "timeouts.server_idle",
        Some(5),
        &["unknown unit `days`", "5min"],
    );
    let e = fail(&format!("{MINIMAL}timeouts:\n  shutdown: -1\n"));
    assert_error(&e, "timeouts.shutdown", Some(5), &["negative"]);
    let e = fail(&format!("{MINIMAL}timeouts:\n  query_wait: 9000h\n"));
    assert_error(&e, "timeouts.query_wait", Some(5), &["365 days"]);
}

#[test]
fn servers_are_checked() {
    let e = fail("auth_method: trust\n");
    assert_error(&e, "servers", None, &["no servers", "address"]);
    let e = fail("");
    assert_error(&e, "servers", None, &["no servers"]);
    let e = fail("servers:\n  - address: a:1\n    pool_size: 0\nauth_method: trust\n");
    assert_error(
        &e,
        "servers[0].pool_size",
        Some(3),
        &["0 connections", "at least 1"],
    );
    let e = fail("servers:\n  - address: a:1\n  - address: 127.0.0.1\nauth_method: trust\n");
    assert_error(
        &e,
        "servers[1].address",
        Some(3),
        &["`127.0.0.1` has no port", "host:port"],
    );
    let e = fail("servers:\n  - address: db:postgres\nauth_method: trust\n");
    assert_error(&e, "servers[0].address", Some(2), &["not a port number"]);
    let e = fail("servers:\n  - address: ::1:5432\nauth_method: trust\n");
    assert_error(&e, "servers[0].address", Some(2), &["brackets"]);
    let e = fail("servers:\n  - address: a:1\n  - address: a:1\nauth_method: trust\n");
    assert_error(&e, "servers[1].address", Some(3), &["also servers[0]"]);
    let e = fail(&format!("{MINIMAL}listening_address: 8080\n"));
    assert_error(
        &e,
        "listening_address",
        Some(4),
        &["has no port", "0.0.0.0:8080"],
    );
}

#[test]
fn unix_socket_addresses() {
    // A directory and a port (libpq's DIR/.s.PGSQL.PORT), or the socket file itself.
    let c = load(
        "listening_address: /var/run/qcp:6432\nservers:\n  - address: /var/run/postgresql:5432\n  \
         - address: /srv/pg/.s.PGSQL.5433\nauth_method: trust\n",
    );
    assert_eq!(c.listening_address, "/var/run/qcp:6432");
    assert_eq!(c.unix_socket_mode, 0o777);
    assert_eq!(c.servers[1].address, "/srv/pg/.s.PGSQL.5433");
    let out = c.describe();
    for line in [
        "listening_address: /var/run/qcp:6432 (socket /var/run/qcp/.s.PGSQL.6432)",
        "unix_socket_mode: 0777",
        "servers[0].address: /var/run/postgresql:5432 (socket /var/run/postgresql/.s.PGSQL.5432)",
        "servers[1].address: /srv/pg/.s.PGSQL.5433",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
    for (mode, bits) in [
        ("0700", 0o700),
        ("'0660'", 0o660),
        ("0o755", 0o755),
        ("777", 0o777),
    ] {
        let c = load(&format!("{MINIMAL}unix_socket_mode: {mode}\n"));
        assert_eq!(c.unix_socket_mode, bits, "{mode}");
    }

    // A directory alone: the port is missing (libpq would take 5432, qcp asks).
    let dir = std::env::temp_dir();
    let d = dir.display().to_string();
    let e = fail(&format!("{MINIMAL}listening_address: {d}\n"));
    assert_error(
        &e,
        "listening_address",
        Some(4),
        &["is a directory", &format!("`{d}:6432`"), "psql -h"],
    );
    let e = fail(&format!("servers:\n  - address: {d}\nauth_method: trust\n"));
    assert_error(
        &e,
        "servers[0].address",
        Some(2),
        &["is a directory", &format!("`{d}:5432`"), ".s.PGSQL.5432"],
    );
    for (bad, why) in [
        ("run/qcp.sock", "must start with `/`"),
        ("/var/run/qcp:0", "not a port number"),
        ("/var/run/qcp:70000", "not a port number"),
        ("/var/run/qcp/", "names a directory"),
    ] {
        let e = fail(&format!("{MINIMAL}listening_address: {bad}\n"));
        assert_error(
            &e,
            "listening_address",
            Some(4),
            &[why, "/var/run/qcp:6432"],
        );
    }
    let long = format!("/{}:5432", "x".repeat(120));
    let e = fail(&format!(
        "servers:\n  - address: {long}\nauth_method: trust\n"
    ));
    assert_error(
        &e,
        "servers[0].address",
        Some(2),
        &["at most 107", "/var/run/postgresql:5432"],
    );
    // The same socket written both ways is listed twice.
    let e = fail(
        "servers:\n  - address: /run/pg:5432\n  - address: /run/pg/.s.PGSQL.5432\n\
         auth_method: trust\n",
    );
    assert_error(&e, "servers[1].address", Some(3), &["also servers[0]"]);
    // Clients and qcp-ctrl cannot share a socket.
    let e = fail(&format!(
        "{MINIMAL}listening_address: /tmp/qcp.sock\ncontrol_socket: /tmp/qcp.sock\n"
    ));
    assert_error(
        &e,
        "listening_address",
        Some(4),
        &["also the control socket"],
    );
    for (bad, why) in [
        ("0789", "not an octal file mode"),
        ("1777", "more than permission bits"),
        ("rw", "not an octal file mode"),
    ] {
        let e = fail(&format!("{MINIMAL}unix_socket_mode: {bad}\n"));
        assert_error(&e, "unix_socket_mode", Some(4), &[why]);
    }
}

#[test]
fn users_are_checked() {
    const SERVERS: &str = "servers: [{address: 'a:1'}]\n";
    let e = fail(&format!(
        "{SERVERS}users:\n  - name: u\n    password: p\n  - name: u\n    password: q\n"
    ));
    assert_error(&e, "users[1].name", Some(5), &["user `u` is also users[0]"]);
    let md5 = "md50123456789abcdef0123456789abcdef";
    let e = fail(&format!(
        "{SERVERS}users:\n  - name: u\n    password: {md5}\n"
    ));
    assert_error(
        &e,
        "users[0].password",
        Some(4),
        &["md5 hash", "scram-sha-256", "auth_method: md5"],
    );
    assert!(!e.to_string().contains(md5), "{e}");
    let e = fail(&format!("{SERVERS}users:\n  - name: u\n    password: ''\n"));
    assert_error(&e, "users[0].password", Some(4), &["empty password"]);
    let e = fail(&format!("{SERVERS}users:\n  - name: u\n"));
    assert_error(&e, "users[0].password", Some(3), &["no password"]);
    let e = fail(SERVERS);
    assert_error(&e, "users", None, &["no users", "auth_method: trust"]);
    let e = fail(&format!(
        "{SERVERS}users:\n  - name: u\n    password: SCRAM-SHA-256$broken\n"
    ));
    assert_error(
        &e,
        "users[0].password",
        Some(4),
        &["SCRAM-SHA-256$<iterations>"],
    );
    let e = fail(&format!("{SERVERS}users:\n  - password: p\n"));
    assert_error(&e, "users[0].name", Some(3), &["missing field `name`"]);

    // With trust, no users and no passwords are needed; md5 accepts an md5 hash.
    let c = load(&format!(
        "{SERVERS}auth_method: trust\nusers:\n  - name: u\n"
    ));
    assert_eq!(c.users[0].password, None);
    assert_eq!(c.users[0].secret, None);
    let c = load(&format!(
        "{SERVERS}auth_method: md5\nusers:\n  - name: u\n    password: {md5}\n"
    ));
    assert!(matches!(c.users[0].secret, Some(Secret::Md5(_))));
}

#[test]
fn syntax_errors_and_other_documents() {
    let e = fail("servers:\n  - address: a:1\n   pool_size: 3\n");
    assert_eq!(e.kind(), ConfigErrorKind::Syntax);
    assert_eq!(e.line(), Some(3));
    assert!(e.to_string().contains("indentation"), "{e}");
    let e = fail(&format!("{MINIMAL}---\nrelay_mode: Smart\n"));
    assert!(e.to_string().contains("single YAML document"), "{e}");
    let e = fail(&format!("{MINIMAL}auth_method: md5\n"));
    assert_error(
        &e,
        "auth_method",
        Some(4),
        &["duplicate field", "Write `auth_method` once"],
    );
}

#[test]
fn missing_file() {
    let e = Config::load(Path::new("/nonexistent/qcp.yaml")).unwrap_err();
    assert_eq!(e.kind(), ConfigErrorKind::Io);
    let text = e.to_string();
    assert!(
        text.starts_with("cannot read config file /nonexistent/qcp.yaml: "),
        "{text}"
    );
    assert!(
        text.ends_with("; pass an existing file with --config"),
        "{text}"
    );
}

#[test]
fn sizes_parse() {
    assert_eq!(parse_size("3.1 GB"), Ok(3_328_599_654));
    assert_eq!(parse_size("66560"), Ok(66_560));
    assert_eq!(parse_size("1KB"), Ok(1024));
    assert_eq!(parse_size("1.5 MB"), Ok(1_572_864));
    assert!(parse_size("1.5 XB").is_err());
    assert_eq!(parse_duration("5min"), Ok(Duration::from_secs(300)));
}

#[test]
fn describe_uses_human_sizes_and_hides_passwords() {
    let scram = ScramSecret::from_password("hunter2", b"0123456789abcdef", 4096).to_string();
    let text = format!(
        "servers:\n  - address: 127.0.0.1:5432\n    databases: [app]\nusers:\n  - name: plain\n    \
         password: hunter2-plaintext\n  - name: scram\n    password: \"{scram}\"\n\
         arena:\n  chunk_size: 66560\n  total_size: 3.1 GB\ntimeouts:\n  query_wait: 0\n"
    );
    let c = load(&text);
    let out = c.describe();
    for line in [
        "listening_address: 0.0.0.0:8080",
        "relay_mode: Session",
        "log_level: Info",
        "arena.chunk_size: 65 KB (66560 B)",
        "arena.chunks_count: 50009",
        "arena.total_size: 3.10 GB (3328599040 B)",
        "servers[0].databases: app",
        "users[0].password: plaintext",
        "users[1].password: SCRAM secret",
        "timeouts.query_wait: 0 (wait forever)",
        "timeouts.server_idle: 10min",
        "limits.max_message_size: 1 GB (1073741824 B)",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
    for secret in ["hunter2", &scram, "SCRAM-SHA-256$"] {
        assert!(!out.contains(secret), "describe leaks {secret:?}:\n{out}");
        assert!(!format!("{c:?}").contains(secret), "Debug leaks {secret:?}");
    }
    // What describe prints reads back the same way.
    assert_eq!(parse_size("65 KB"), Ok(66_560));
    assert_eq!(parse_size("1 GB"), Ok(1 << 30));

    let md5 = load(&format!(
        "{SERVER}auth_method: md5\nusers:\n  - name: m\n    password: md50123456789abcdef0123456789abcdef\n"
    ));
    let out = md5.describe();
    assert!(
        out.contains("users[0].password: md5 hash") && !out.contains("0123456789abcdef"),
        "{out}"
    );
}

#[test]
fn describe_of_defaults() {
    let out = load(MINIMAL).describe();
    assert!(
        out.contains("arena.total_size: 65 MB (68157440 B)"),
        "{out}"
    );
    assert!(out.contains("users: (none)"), "{out}");
    assert!(out.contains("control_socket: /tmp/qcp.sock"), "{out}");
    assert!(out.contains("timeouts.server_lifetime: 1h"), "{out}");
}

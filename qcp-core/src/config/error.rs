//! [`ConfigError`]: which setting is wrong, where, why, and how to fix it.

use std::fmt;

/// What kind of mistake a [`ConfigError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The file could not be read.
    Io,
    /// The text is not well-formed YAML.
    Syntax,
    /// A key qcp does not know (often a misspelling).
    UnknownKey,
    /// A value of the wrong type (a string where a number goes, a list where a mapping goes).
    WrongType,
    /// A value of the right type that is not acceptable, a missing required setting, or
    /// settings that contradict each other.
    Invalid,
}

/// A configuration qcp refuses to start with.
///
/// `Display` reads `config error in FILE line N: `setting`: what is wrong. How to fix it.`
/// (the line and the setting when known); for an unreadable file,
/// `cannot read config file PATH: <io error>; pass an existing file with --config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    kind: ConfigErrorKind,
    origin: String,
    setting: Option<String>,
    line: Option<usize>,
    message: String,
    fix: String,
}

impl ConfigError {
    /// A new error; `message` says what is wrong, `fix` how to fix it (a sentence).
    pub(super) fn new(
        kind: ConfigErrorKind,
        origin: &str,
        setting: Option<String>,
        line: Option<usize>,
        message: String,
        fix: String,
    ) -> ConfigError {
        let message = message.trim_end_matches('.').to_owned();
        ConfigError {
            kind,
            origin: origin.to_owned(),
            setting,
            line,
            message,
            fix,
        }
    }

    /// The file at `path` could not be read.
    pub(super) fn io(path: &str, error: &std::io::Error) -> ConfigError {
        ConfigError::new(
            ConfigErrorKind::Io,
            path,
            None,
            None,
            error.to_string(),
            "pass an existing file with --config".to_owned(),
        )
    }

    /// What kind of mistake this is.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }

    /// The file (or other origin) the configuration came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The setting's path, such as `arena.total_size` or `servers[1].pool_size`, when known.
    pub fn setting(&self) -> Option<&str> {
        self.setting.as_deref()
    }

    /// The 1-based line in the file, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// How to fix it.
    pub fn fix(&self) -> &str {
        &self.fix
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == ConfigErrorKind::Io {
            return write!(
                f,
                "cannot read config file {}: {}; {}",
                self.origin, self.message, self.fix
            );
        }
        write!(f, "config error in {}", self.origin)?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        f.write_str(": ")?;
        if let Some(setting) = &self.setting {
            write!(f, "`{setting}`: ")?;
        }
        write!(f, "{}. {}", self.message, self.fix)
    }
}

impl std::error::Error for ConfigError {}

/// How a value of `setting` is written, as a sentence: the fix for a wrong value.
pub(super) fn expected_form(setting: &str) -> String {
    let generic: String = strip_indices(setting);
    let form = match generic.as_str() {
        "" => "Start from config-example.yaml, which shows every setting",
        "listening_address" => {
            "Write an address with a port, like `0.0.0.0:8080`, or a Unix socket, like \
             `/var/run/qcp:6432` (a directory and a port) or `/var/run/qcp/.s.PGSQL.6432`"
        }
        "unix_socket_mode" => "Write an octal file mode, like `0777` or `0770`",
        "relay_mode" => "Write `Session` or `Smart`",
        "log_level" => "Write one of Off, Error, Warn, Info, Debug, Trace",
        "log_output" => "Write `stdout`, `stderr`, or `file: /path/to/qcp.log` on the next line",
        "arena" => "Write a mapping with `chunk_size` and one of `chunks_count` or `total_size`",
        "arena.chunk_size" => "Write a size of at least 1024 bytes, like `66560` or `65 KB`",
        "arena.chunks_count" => "Write a whole number of chunks, at least 1, like `1024`",
        "arena.total_size" | "limits.max_message_size" => {
            "Write a size with a B, KB, MB or GB suffix (1 KB = 1024 B), like `3.1 GB`"
        }
        "servers" => {
            "Write a list of servers, each `- address: host:port` with optional \
                      `pool_size` and `databases`"
        }
        "servers.address" => {
            "Write `host:port`, like `127.0.0.1:5432`, or a Unix socket, like \
             `/var/run/postgresql:5432` (a directory and a port)"
        }
        "servers.pool_size" => "Write a whole number of at least 1 (the default is 20)",
        "servers.databases" => {
            "Write a list of database names, like `[app, reports]`, or leave \
                                it out to serve every database"
        }
        "users" => "Write a list of users, each `- name: NAME` with `password: PASSWORD`",
        "users.name" => "Write the PostgreSQL user name",
        "users.password" => {
            "Write the plaintext password (quoted if it looks like a number) or \
                             the SCRAM-SHA-256 secret from pg_authid.rolpassword"
        }
        "auth_method" => "Write `scram-sha-256`, `md5` or `trust`",
        "control_socket" => "Write a path for a Unix socket, like `/tmp/qcp.sock`",
        "worker_threads" => "Write a whole number of threads, like `1`",
        "timeouts" => "Write a mapping of timeouts, like `query_wait: 120s`",
        "limits" => "Write a mapping of limits, like `max_client_connections: 10000`",
        "limits.max_client_connections" => "Write a whole number of at least 1, like `10000`",
        "limits.max_prepared_statements" => "Write a whole number of at least 1, like `200`",
        s if s.starts_with("timeouts.") => {
            "Write seconds (`30`, `0.5`) or a number with a unit: `500ms`, `30s`, `5min`, `1h`; \
             0 disables it"
        }
        _ => "See config-example.yaml for how to write it",
    };
    format!("{form}.")
}

/// `servers[1].databases[0]` → `servers.databases`.
fn strip_indices(setting: &str) -> String {
    let mut out = String::with_capacity(setting.len());
    let mut depth = 0usize;
    for c in setting.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_forms() {
        let e = ConfigError::new(
            ConfigErrorKind::Invalid,
            "qcp.yaml",
            Some("arena.total_size".into()),
            Some(7),
            "`3 XB` has an unknown unit.".into(),
            "Use KB.".into(),
        );
        assert_eq!(
            e.to_string(),
            "config error in qcp.yaml line 7: `arena.total_size`: `3 XB` has an unknown unit. Use KB."
        );
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "not found");
        assert_eq!(
            ConfigError::io("/x.yaml", &io).to_string(),
            "cannot read config file /x.yaml: not found; pass an existing file with --config"
        );
    }

    #[test]
    fn forms_ignore_indices() {
        assert_eq!(
            strip_indices("servers[12].databases[0]"),
            "servers.databases"
        );
        assert!(expected_form("servers[3].pool_size").contains("at least 1"));
        assert!(expected_form("timeouts.query_wait").contains("5min"));
    }
}

//! The configuration file's shape, as serde sees it: every key optional, unknown keys refused.
//!
//! Only `serde` appears here, never a format crate, so these types work with any serde data
//! format. Scalars that have their own syntax (sizes, durations, the log level) are parsed
//! while deserializing, so a bad one is reported with the parser's line and setting path.
//! Checks that involve several settings are in `validate.rs`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use tracing::level_filters::LevelFilter;

use super::address::parse_mode;
use super::size::{duration_from_seconds, parse_duration, parse_size};
use super::tls::{RawClientTls, RawServerTls};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of settings, such as `servers:`"
)]
pub(super) struct RawConfig {
    pub listening_address: Option<String>,
    pub unix_socket_mode: Option<RawMode>,
    pub relay_mode: Option<RawRelayMode>,
    pub log_level: Option<RawLevel>,
    pub log_output: Option<RawLogOutput>,
    pub log_format: Option<RawLogFormat>,
    pub arena: Option<RawArena>,
    pub servers: Option<Vec<RawServer>>,
    pub users: Option<Vec<RawUser>>,
    pub auth_method: Option<RawAuthMethod>,
    pub control_socket: Option<PathBuf>,
    pub timeouts: Option<RawTimeouts>,
    pub limits: Option<RawLimits>,
    pub worker_threads: Option<u64>,
    pub client_tls: Option<RawClientTls>,
    pub admin_users: Option<Vec<String>>,
    pub stats_users: Option<Vec<String>>,
    pub metrics_address: Option<String>,
    pub stats_period: Option<Seconds>,
    pub hba_file: Option<PathBuf>,
    pub auth_user: Option<String>,
    pub auth_query: Option<String>,
    pub auth_dbname: Option<String>,
    pub auth_cache_ttl: Option<Seconds>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub(super) enum RawRelayMode {
    #[serde(alias = "session")]
    Session,
    #[serde(alias = "smart")]
    Smart,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub(super) enum RawLogFormat {
    #[serde(rename = "text")]
    Text,
    #[serde(rename = "json")]
    Json,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub(super) enum RawAuthMethod {
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    #[serde(rename = "md5")]
    Md5,
    #[serde(rename = "trust")]
    Trust,
}

#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `chunk_size` and `chunks_count` or `total_size`"
)]
pub(super) struct RawArena {
    pub chunk_size: Option<Size>,
    pub chunks_count: Option<u64>,
    pub total_size: Option<Size>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `address`, `pool_size`, `databases` and `tls`"
)]
pub(super) struct RawServer {
    pub address: String,
    pub pool_size: Option<u32>,
    pub databases: Option<Vec<String>>,
    pub tls: Option<RawServerTls>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `name` and `password`"
)]
pub(super) struct RawUser {
    pub name: String,
    pub password: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of timeouts, such as `query_wait: 120s`"
)]
pub(super) struct RawTimeouts {
    pub query_wait: Option<Seconds>,
    pub server_connect: Option<Seconds>,
    pub client_login: Option<Seconds>,
    pub server_idle: Option<Seconds>,
    pub server_lifetime: Option<Seconds>,
    pub shutdown: Option<Seconds>,
    pub cancel_wait: Option<Seconds>,
    pub server_login_retry: Option<Seconds>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of limits, such as `max_client_connections: 10000`"
)]
pub(super) struct RawLimits {
    pub max_client_connections: Option<u64>,
    pub max_message_size: Option<Size>,
    pub max_prepared_statements: Option<u64>,
}

/// A size in bytes: a whole number, or text with a unit (`3.1 GB`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Size(pub u64);

/// A duration: a number of seconds, or text with a unit (`500ms`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Seconds(pub Duration);

/// `unix_socket_mode`: permission bits, written in octal as `chmod` takes them.
#[derive(Debug, Clone, Copy)]
pub(super) struct RawMode(pub u32);

/// `log_level`: a LevelFilter name, any case.
#[derive(Debug, Clone, Copy)]
pub(super) struct RawLevel(pub LevelFilter);

/// `log_output`: `stdout`, `stderr` or `file: PATH`.
#[derive(Debug, Clone)]
pub(super) enum RawLogOutput {
    Stdout,
    Stderr,
    File(PathBuf),
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 66560 or \"3.1 GB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom(format!("`{v}` is negative")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Size, E> {
                parse_size(&v.to_string()).map(Size).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                parse_size(v).map(Size).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 30, 0.5, \"500ms\", \"30s\", \"5min\" or \"1h\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                parse_duration(&v.to_string())
                    .map(Seconds)
                    .map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                parse_duration(&v.to_string())
                    .map(Seconds)
                    .map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
                duration_from_seconds(v).map(Seconds).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Seconds, E> {
                parse_duration(v).map(Seconds).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawMode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an octal file mode such as 0777 or 0770")
            }
            // A mode is octal whichever way it is written, so the text is read as written
            // (YAML would take `0777` for the decimal number 777).
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawMode, E> {
                parse_mode(v).map(RawMode).map_err(E::custom)
            }
            // Formats that only hand over numbers: the decimal digits are the octal ones.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawMode, E> {
                parse_mode(&v.to_string()).map(RawMode).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for RawLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawLevel;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("one of Off, Error, Warn, Info, Debug, Trace")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawLevel, E> {
                let level = match v.trim().to_ascii_lowercase().as_str() {
                    "off" => LevelFilter::OFF,
                    "error" => LevelFilter::ERROR,
                    "warn" => LevelFilter::WARN,
                    "info" => LevelFilter::INFO,
                    "debug" => LevelFilter::DEBUG,
                    "trace" => LevelFilter::TRACE,
                    _ => {
                        return Err(E::custom(format!(
                            "unknown log level `{v}`, expected one of Off, Error, Warn, Info, \
                             Debug, Trace"
                        )))
                    }
                };
                Ok(RawLevel(level))
            }
        }
        deserializer.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for RawLogOutput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawLogOutput;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`stdout`, `stderr` or a mapping `file: PATH`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawLogOutput, E> {
                match v.trim().to_ascii_lowercase().as_str() {
                    "stdout" => Ok(RawLogOutput::Stdout),
                    "stderr" => Ok(RawLogOutput::Stderr),
                    _ => Err(E::custom(format!(
                        "unknown log output `{v}`, expected `stdout`, `stderr` or `file: PATH`"
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawLogOutput, A::Error> {
                let mut file: Option<PathBuf> = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "file" {
                        return Err(de::Error::unknown_field(&key, &["file"]));
                    }
                    if file.is_some() {
                        return Err(de::Error::duplicate_field("file"));
                    }
                    file = Some(map.next_value()?);
                }
                file.map(RawLogOutput::File)
                    .ok_or_else(|| de::Error::missing_field("file"))
            }
        }
        deserializer.deserialize_any(V)
    }
}

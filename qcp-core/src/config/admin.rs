//! The settings of what operators see: `admin_users` and `stats_users` (who may use the
//! admin console), `metrics_address` (the Prometheus endpoint) and `stats_period` (the
//! period of the console's averages).

use std::net::SocketAddr;
use std::time::Duration;

use super::raw::Seconds;
use super::validate::{invalid, Invalid};
use super::{AuthMethod, UserConfig};

/// Default `stats_period`, as PgBouncer's.
pub const DEFAULT_STATS_PERIOD: Duration = Duration::from_secs(60);

/// The database name that opens the admin console (`pgbouncer` works too, for tools made
/// for PgBouncer).
pub const CONSOLE_DATABASE: &str = "qcp";

/// The other name of the console's database.
pub const CONSOLE_DATABASE_ALIAS: &str = "pgbouncer";

/// True if a client asking for `database` gets the admin console.
pub fn is_console_database(database: &str) -> bool {
    database == CONSOLE_DATABASE || database == CONSOLE_DATABASE_ALIAS
}

/// `admin_users` or `stats_users`: every name must be a configured user (unless
/// `auth_method: trust`, where anyone may log in as anyone).
pub(super) fn console_users(
    setting: &str,
    raw: Option<Vec<String>>,
    users: &[UserConfig],
    method: AuthMethod,
) -> Result<Vec<String>, Invalid> {
    let names = raw.unwrap_or_default();
    for (n, name) in names.iter().enumerate() {
        let known = users.iter().any(|u| &u.name == name);
        if name.is_empty() {
            return Err(invalid(
                format!("{setting}[{n}]"),
                "the user name is empty",
                "Write the name of a user listed under `users`, or remove the entry.",
            ));
        }
        if !known && method != AuthMethod::Trust {
            return Err(invalid(
                format!("{setting}[{n}]"),
                format!("`{name}` is not one of the `users`, so it could never log in"),
                format!(
                    "Add `{name}` with a password under `users`, or remove it from `{setting}`."
                ),
            ));
        }
    }
    Ok(names)
}

/// `metrics_address`: an IP address and port (off when absent).
pub(super) fn metrics_address(raw: Option<String>) -> Result<Option<SocketAddr>, Invalid> {
    let Some(text) = raw else {
        return Ok(None);
    };
    text.trim().parse().map(Some).map_err(|_| {
        invalid(
            "metrics_address",
            format!("`{text}` is not an IP address with a port"),
            "Write an address and port, like `127.0.0.1:9930` (or `0.0.0.0:9930` for every \
             interface), or leave the setting out to turn the endpoint off.",
        )
    })
}

/// `stats_period`: more than zero.
pub(super) fn stats_period(raw: Option<Seconds>) -> Result<Duration, Invalid> {
    match raw {
        None => Ok(DEFAULT_STATS_PERIOD),
        Some(Seconds(period)) if period >= Duration::from_millis(100) => Ok(period),
        Some(_) => Err(invalid(
            "stats_period",
            "the period is shorter than 100 ms",
            "Write a period like `60s` (the default) or `15s`.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str =
        "servers:\n  - address: 127.0.0.1:5432\nusers:\n  - name: alice\n    password: x\n";

    fn load(extra: &str) -> Result<Config, String> {
        Config::from_yaml(&format!("{BASE}{extra}"), "test.yaml").map_err(|e| e.to_string())
    }

    #[test]
    fn console_users_must_be_configured_users() {
        let c = load("admin_users: [alice]\nstats_users: [alice]\n").unwrap();
        assert_eq!(c.admin_users, ["alice"]);
        let error = load("admin_users: [alice, bob]\n").unwrap_err();
        assert!(error.contains("admin_users[1]"), "{error}");
        assert!(error.contains("`bob` is not one of the `users`"), "{error}");
        // Under trust anyone may log in as anyone.
        assert!(load("auth_method: trust\nstats_users: [bob]\n").is_ok());
    }

    #[test]
    fn metrics_address_and_stats_period_are_checked() {
        let c = load("metrics_address: 127.0.0.1:9930\nstats_period: 15s\n").unwrap();
        assert_eq!(c.metrics_address, Some("127.0.0.1:9930".parse().unwrap()));
        assert_eq!(c.stats_period, std::time::Duration::from_secs(15));
        assert_eq!(load("").unwrap().metrics_address, None);
        let error = load("metrics_address: localhost\n").unwrap_err();
        assert!(error.contains("metrics_address"), "{error}");
        let error = load("stats_period: 0\n").unwrap_err();
        assert!(error.contains("stats_period"), "{error}");
    }
}

//! Credentials from the database: `auth_user`, `auth_query`, `auth_dbname`,
//! `auth_cache_ttl`. A client whose user is not in `users` is checked against the secret
//! `auth_query` returns, run as `auth_user`.

use std::time::Duration;

use super::raw::Seconds;
use super::validate::{invalid, Invalid};
use super::UserConfig;
use crate::auth::Secret;

/// Default `auth_query`: the role's secret, or NULL (no login by password) once its
/// `VALID UNTIL` has passed. `pg_shadow` lists only roles with LOGIN.
pub const DEFAULT_AUTH_QUERY: &str = "SELECT usename, CASE WHEN valuntil < now() THEN NULL ELSE passwd END FROM pg_catalog.pg_shadow WHERE usename = $1";

/// Default `auth_cache_ttl`.
pub const DEFAULT_AUTH_CACHE_TTL: Duration = Duration::from_secs(60);

/// The checked settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthQuery {
    /// The configured user qcp runs the query as.
    pub user: String,
    /// The query; `$1` is the client's user name (bound, never spliced in).
    pub query: String,
    /// The database it runs in (`None`: the one the client asked for).
    pub dbname: Option<String>,
    /// How long a result is used before it is asked again (0: every login asks).
    pub cache_ttl: Duration,
}

/// Builds [`AuthQuery`] from the raw settings; `None` when `auth_user` is not set (the other
/// three then make no sense and are refused).
pub(super) fn auth_query(
    user: Option<String>,
    query: Option<String>,
    dbname: Option<String>,
    ttl: Option<Seconds>,
    users: &[UserConfig],
) -> Result<Option<AuthQuery>, Invalid> {
    let Some(user) = user else {
        for (setting, set) in [
            ("auth_query", query.is_some()),
            ("auth_dbname", dbname.is_some()),
            ("auth_cache_ttl", ttl.is_some()),
        ] {
            if set {
                return Err(invalid(
                    setting,
                    "it is set but auth_user is not, so no query is ever run",
                    "Set auth_user to a configured user that may read the secrets, or remove this setting.",
                ));
            }
        }
        return Ok(None);
    };
    let Some(entry) = users.iter().find(|u| u.name == user) else {
        return Err(invalid(
            "auth_user",
            format!("`{user}` is not one of the `users`"),
            format!("Add `{user}` with its password under `users`: qcp logs in as it to run auth_query."),
        ));
    };
    if !matches!(entry.secret, Some(Secret::Plain(_)) | Some(Secret::Md5(_))) {
        return Err(invalid(
            "auth_user",
            format!("`{user}` needs its plaintext password (or md5 hash) under `users`"),
            "qcp logs in as auth_user before any client has proven a SCRAM key for it: give its password as plaintext.",
        ));
    }
    let query = query.unwrap_or_else(|| DEFAULT_AUTH_QUERY.to_owned());
    if !query.contains("$1") {
        return Err(invalid(
            "auth_query",
            "the query does not use $1",
            "Write a query that takes the user name as $1 and returns the name and the secret, like the default: SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename = $1",
        ));
    }
    if dbname.as_deref() == Some("") {
        return Err(invalid(
            "auth_dbname",
            "the database name is empty",
            "Name the database auth_query runs in, or leave the setting out to use the client's.",
        ));
    }
    Ok(Some(AuthQuery {
        user,
        query,
        dbname,
        cache_ttl: ttl.map_or(DEFAULT_AUTH_CACHE_TTL, |t| t.0),
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn load(extra: &str) -> Result<Config, String> {
        let secret = crate::auth::ScramSecret::generate_with("pass", 16);
        let base = format!(
            "servers:\n  - address: 127.0.0.1:5432\nusers:\n  - name: pgbouncer\n    password: secret\n  - name: scram\n    password: \"{secret}\"\n"
        );
        Config::from_yaml(&format!("{base}{extra}"), "test.yaml").map_err(|e| e.to_string())
    }

    #[test]
    fn the_auth_settings_are_checked() {
        let c = load("auth_user: pgbouncer\n").unwrap();
        let a = c.auth_query.unwrap();
        assert_eq!(a.query, super::DEFAULT_AUTH_QUERY);
        assert_eq!(a.dbname, None);
        assert_eq!(a.cache_ttl, std::time::Duration::from_secs(60));
        let c = load("auth_user: pgbouncer\nauth_dbname: postgres\nauth_cache_ttl: 0\nauth_query: SELECT u, p FROM f($1)\n").unwrap();
        let a = c.auth_query.unwrap();
        assert_eq!(a.dbname.as_deref(), Some("postgres"));
        assert!(a.cache_ttl.is_zero());
        for (extra, needle) in [
            ("auth_user: nobody\n", "`nobody` is not one of the `users`"),
            ("auth_user: scram\n", "needs its plaintext password"),
            (
                "auth_user: pgbouncer\nauth_query: SELECT 1\n",
                "does not use $1",
            ),
            ("auth_query: SELECT $1\n", "auth_user is not"),
        ] {
            let error = load(extra).unwrap_err();
            assert!(error.contains(needle), "{extra}: {error}");
        }
    }
}

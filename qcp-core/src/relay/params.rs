//! Session parameters (GUCs): what a client expects, what a server connection has, and the
//! SQL that brings one in line with the other, safely quoted.
//!
//! PostgreSQL reports the values of some parameters (ParameterStatus) whenever they change;
//! qcp records them per client and per server connection. Values that a client set in its
//! start-up packet are recorded too, so a server connection that another client changed is
//! set back before this client uses it.

/// Reported parameters that cannot (or must not) be changed with SET: never synchronised.
const READ_ONLY: &[&str] = &[
    "server_version",
    "server_encoding",
    "integer_datetimes",
    "is_superuser",
    "session_authorization",
    "in_hot_standby",
];

/// True for a reported parameter that cannot be SET (see [`READ_ONLY`]).
pub fn is_read_only(name: &str) -> bool {
    READ_ONLY.iter().any(|ro| ro.eq_ignore_ascii_case(name))
}

/// A small ordered map of parameter name to value; names compare case-insensitively, as
/// PostgreSQL's do.
#[derive(Clone, Debug, Default)]
pub struct Params {
    entries: Vec<(String, String)>,
    /// Bumped by every change, so that [`InLine`] can tell a map it checked is unchanged.
    generation: u64,
}

/// Equal entries in the same order (the change counter is not part of the value).
impl PartialEq for Params {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Eq for Params {}

impl Params {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bumps the change counter. It is only ever compared for equality, so wrapping keeps
    /// every change visible (and 2^64 changes never happen).
    fn changed(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    /// The value of `name`, if known.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sets `name` to `value`; returns true if that changed anything.
    pub fn set(&mut self, name: &str, value: &str) -> bool {
        match self
            .entries
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some((_, v)) if v == value => false,
            Some((_, v)) => {
                value.clone_into(v);
                self.changed();
                true
            }
            None => {
                self.entries.push((name.to_owned(), value.to_owned()));
                self.changed();
                true
            }
        }
    }

    /// All entries, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes `name`; returns true if it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        let removed = self.entries.len() != before;
        if removed {
            self.changed();
        }
        removed
    }
}

/// A set of parameter values a server connection can be brought in line with.
pub trait ParamSource {
    /// The value of `name`, if known (case-insensitive).
    fn get(&self, name: &str) -> Option<&str>;

    /// Every (name, value), each name once.
    fn entries(&self) -> impl Iterator<Item = (&str, &str)>;

    /// The entries of `self` that `current` lacks or holds with another value, leaving out
    /// read-only parameters: what must be SET on a server connection with `current` values
    /// for it to match `self`.
    fn differences<'a>(
        &'a self,
        current: &'a Params,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.entries()
            .filter(move |(name, value)| !is_read_only(name) && current.get(name) != Some(*value))
    }

    /// The names `current` holds and `self` lacks, leaving out read-only parameters: settings
    /// another client had applied to a server connection with `current` values, which must
    /// be reset to the server's default for it to match `self`.
    fn extras<'a>(&'a self, current: &'a Params) -> impl Iterator<Item = &'a str> + 'a {
        current
            .iter()
            .map(|(name, _)| name)
            .filter(move |name| !is_read_only(name) && self.get(name).is_none())
    }

    /// One SQL statement that sets every difference (see [`ParamSource::differences`]) and resets
    /// every extra (see [`ParamSource::extras`]), or `None` when there is nothing to do. Each value
    /// goes through `pg_catalog.set_config` as a quoted literal (a NULL value resets), so
    /// neither a name nor a value can inject SQL.
    fn sync_sql(&self, current: &Params) -> Option<String> {
        let mut sql = String::new();
        let sets = self
            .differences(current)
            .map(|(name, value)| (name, Some(value)));
        let resets = self.extras(current).map(|name| (name, None));
        for (name, value) in sets.chain(resets) {
            sql.push_str(if sql.is_empty() { "SELECT " } else { ", " });
            sql.push_str("pg_catalog.set_config(");
            push_literal(&mut sql, name);
            sql.push_str(", ");
            match value {
                Some(value) => push_literal(&mut sql, value),
                None => sql.push_str("NULL"),
            }
            sql.push_str(", false)");
        }
        (!sql.is_empty()).then_some(sql)
    }

    /// True when a server connection with `current` values needs no SET for `self`.
    fn is_in_line(&self, current: &Params) -> bool {
        self.differences(current).next().is_none() && self.extras(current).next().is_none()
    }
}

impl ParamSource for Params {
    fn get(&self, name: &str) -> Option<&str> {
        Params::get(self, name)
    }

    fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter()
    }
}

/// See [`ClientParams::stamp`].
pub type Stamp = (usize, u64);

/// What one client expects: the pool's shared greeting values plus only the values in which
/// this client differs. Thousands of clients of one pool share the greeting instead of each
/// holding a copy of it.
#[derive(Clone, Debug)]
pub struct ClientParams {
    base: std::sync::Arc<Params>,
    /// INVARIANT: holds no entry equal to `base`'s value for the same name.
    own: Params,
}

impl ClientParams {
    /// A client that expects exactly `base`.
    pub fn new(base: std::sync::Arc<Params>) -> Self {
        ClientParams {
            base,
            own: Params::new(),
        }
    }

    /// True if the server reports `name` (it is in the greeting): its value reaches the
    /// client in the server's spelling, with every change.
    pub fn reports(&self, name: &str) -> bool {
        self.base.get(name).is_some()
    }

    /// Sets `name` to `value`; returns true if that changed what the client expects.
    pub fn set(&mut self, name: &str, value: &str) -> bool {
        if ParamSource::get(self, name) == Some(value) {
            return false;
        }
        if self.base.get(name) == Some(value) {
            self.own.remove(name);
        } else {
            self.own.set(name, value);
        }
        true
    }

    /// Changes whenever what the client expects may have changed (and never comes back to
    /// an earlier value for one client): what a cache of something computed from these
    /// values is checked against.
    pub fn stamp(&self) -> Stamp {
        (
            std::sync::Arc::as_ptr(&self.base) as usize,
            self.own.generation,
        )
    }
}

impl ParamSource for ClientParams {
    fn get(&self, name: &str) -> Option<&str> {
        self.own.get(name).or_else(|| self.base.get(name))
    }

    fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        let shared = self
            .base
            .iter()
            .map(|(name, value)| (name, self.own.get(name).unwrap_or(value)));
        let own = self
            .own
            .iter()
            .filter(|(name, _)| self.base.get(name).is_none());
        shared.chain(own)
    }
}

/// What a server connection remembers of the last client expectation its values were found
/// in line with. In Smart mode a connection changes hands every transaction, nearly always
/// between clients that expect the same values (the same greeting, the same start-up
/// parameters); the remembered answer spares comparing every parameter by name each time.
#[derive(Debug, Default)]
pub struct InLine {
    base: Option<std::sync::Arc<Params>>,
    own: Params,
    /// The connection's [`Params::generation`] when it was found in line.
    generation: u64,
}

impl InLine {
    /// True if `current` is unchanged since it was found in line with an expectation equal
    /// to `wanted` (same shared greeting, same own values): no SET is needed.
    pub fn holds(&self, wanted: &ClientParams, current: &Params) -> bool {
        self.generation == current.generation && self.expects(wanted)
    }

    /// Records that `current` is in line with `wanted`. The caller must know it is (it just
    /// compared them, or brought `current` in line).
    pub fn record(&mut self, wanted: &ClientParams, current: &Params) {
        debug_assert!(wanted.is_in_line(current));
        if !self.expects(wanted) {
            self.base = Some(std::sync::Arc::clone(&wanted.base));
            self.own.clone_from(&wanted.own);
        }
        self.generation = current.generation;
    }

    fn expects(&self, wanted: &ClientParams) -> bool {
        self.base
            .as_ref()
            .is_some_and(|base| std::sync::Arc::ptr_eq(base, &wanted.base))
            && self.own == wanted.own
    }
}

/// Appends `value` as an escape-string literal (`E'...'`), which reads the same whatever
/// `standard_conforming_strings` is: backslashes and quotes are doubled.
pub fn push_literal(out: &mut String, value: &str) {
    out.push_str("E'");
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// Parses a start-up `options` value the way PostgreSQL does for `-c name=value` and
/// `--name=value` switches (backslash escapes a space or a backslash). Returns the settings,
/// or the first switch qcp cannot honour.
pub fn parse_options(options: &str) -> Result<Vec<(String, String)>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    let mut in_word = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                in_word = true;
            }
            c if c.is_ascii_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    let mut settings = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let setting = if word == "-c" {
            words
                .next()
                .ok_or_else(|| "-c without a setting".to_owned())?
        } else if let Some(rest) = word.strip_prefix("-c") {
            rest.to_owned()
        } else if let Some(rest) = word.strip_prefix("--") {
            rest.to_owned()
        } else {
            return Err(word);
        };
        let Some((name, value)) = setting.split_once('=') else {
            return Err(setting);
        };
        // PostgreSQL treats '-' in a switch's name as '_'.
        settings.push((name.replace('-', "_"), value.to_owned()));
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_case_insensitively() {
        let mut p = Params::new();
        assert!(p.set("DateStyle", "ISO, MDY"));
        assert!(!p.set("datestyle", "ISO, MDY"));
        assert_eq!(p.get("DATESTYLE"), Some("ISO, MDY"));
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn sync_sets_only_differences_and_skips_read_only() {
        let mut wanted = Params::new();
        wanted.set("TimeZone", "Asia/Tokyo");
        wanted.set("application_name", "app");
        wanted.set("server_version", "15.0");
        let mut current = Params::new();
        current.set("TimeZone", "UTC");
        current.set("application_name", "app");
        let sql = wanted.sync_sql(&current).unwrap();
        assert_eq!(
            sql,
            "SELECT pg_catalog.set_config(E'TimeZone', E'Asia/Tokyo', false)"
        );
        current.set("timezone", "Asia/Tokyo");
        assert_eq!(wanted.sync_sql(&current), None);
    }

    #[test]
    fn settings_the_client_lacks_are_reset() {
        let mut wanted = Params::new();
        wanted.set("TimeZone", "UTC");
        let mut current = Params::new();
        current.set("timezone", "UTC");
        current.set("statement_timeout", "1234");
        current.set("is_superuser", "off");
        assert_eq!(
            wanted.extras(&current).collect::<Vec<_>>(),
            ["statement_timeout"]
        );
        assert_eq!(
            wanted.sync_sql(&current).unwrap(),
            "SELECT pg_catalog.set_config(E'statement_timeout', NULL, false)"
        );
        assert!(current.remove("STATEMENT_TIMEOUT"));
        assert!(!current.remove("statement_timeout"));
        assert_eq!(wanted.sync_sql(&current), None);
    }

    #[test]
    fn client_params_share_the_base_and_keep_only_their_differences() {
        let mut base = Params::new();
        base.set("TimeZone", "UTC");
        base.set("application_name", "");
        let base = std::sync::Arc::new(base);
        let mut client = ClientParams::new(std::sync::Arc::clone(&base));
        assert!(
            !client.set("timezone", "UTC"),
            "same as the base: nothing to record"
        );
        assert!(client.set("application_name", "app"));
        assert!(client.set("statement_timeout", "5s"));
        assert_eq!(ParamSource::get(&client, "APPLICATION_NAME"), Some("app"));
        let entries: Vec<_> = client.entries().collect();
        assert_eq!(
            entries,
            [
                ("TimeZone", "UTC"),
                ("application_name", "app"),
                ("statement_timeout", "5s")
            ]
        );
        assert_eq!(
            client.sync_sql(&base).unwrap(),
            "SELECT pg_catalog.set_config(E'application_name', E'app', false), pg_catalog.set_config(E'statement_timeout', E'5s', false)"
        );
        assert!(client.set("application_name", ""), "back to the base value");
        assert_eq!(client.own.len(), 1);
    }

    #[test]
    fn in_line_is_remembered_until_either_side_changes() {
        let mut greeting = Params::new();
        greeting.set("TimeZone", "UTC");
        greeting.set("application_name", "");
        let base = std::sync::Arc::new(greeting.clone());
        let mut first = ClientParams::new(std::sync::Arc::clone(&base));
        first.set("application_name", "pgbench");
        let mut conn = greeting;
        conn.set("application_name", "pgbench");
        let mut in_line = InLine::default();
        assert!(!in_line.holds(&first, &conn), "nothing recorded yet");
        in_line.record(&first, &conn);
        assert!(in_line.holds(&first, &conn));

        // Another client expecting the same values (its own copy of them) is in line too.
        let mut second = ClientParams::new(std::sync::Arc::clone(&base));
        second.set("application_name", "pgbench");
        assert!(in_line.holds(&second, &conn));

        // A client expecting something else, or an equal greeting that is not the shared
        // one, is compared in full.
        let mut other = ClientParams::new(std::sync::Arc::clone(&base));
        other.set("application_name", "psql");
        assert!(!in_line.holds(&other, &conn));
        assert!(other.sync_sql(&conn).is_some());
        let mut lookalike = ClientParams::new(std::sync::Arc::new((*base).clone()));
        lookalike.set("application_name", "pgbench");
        assert!(!in_line.holds(&lookalike, &conn));

        // A change on the connection (a SET by the client that had it) voids the record,
        // and setting the same value again changes nothing.
        assert!(!conn.set("timezone", "UTC"));
        assert!(in_line.holds(&first, &conn));
        conn.set("TimeZone", "Europe/Paris");
        assert!(!in_line.holds(&first, &conn));
        assert!(first.sync_sql(&conn).is_some());
        conn.set("TimeZone", "UTC");
        assert!(
            !in_line.holds(&first, &conn),
            "changed and changed back: compare again"
        );
        in_line.record(&first, &conn);
        conn.remove("application_name");
        assert!(!in_line.holds(&first, &conn));
    }

    #[test]
    fn hostile_values_are_quoted() {
        let mut wanted = Params::new();
        wanted.set("application_name", "x'); DROP TABLE t; --\\");
        let sql = wanted.sync_sql(&Params::new()).unwrap();
        assert_eq!(sql, "SELECT pg_catalog.set_config(E'application_name', E'x''); DROP TABLE t; --\\\\', false)");
    }

    #[test]
    fn options_switches() {
        let parsed = parse_options(
            "-c search_path=a,b --statement-timeout=5s -cwork_mem=64MB -c x=with\\ space",
        )
        .unwrap();
        assert_eq!(
            parsed,
            vec![
                ("search_path".into(), "a,b".into()),
                ("statement_timeout".into(), "5s".into()),
                ("work_mem".into(), "64MB".into()),
                ("x".into(), "with space".into()),
            ]
        );
        assert_eq!(parse_options("-B 100"), Err("-B".into()));
        assert_eq!(parse_options("-c"), Err("-c without a setting".into()));
        assert!(parse_options("").unwrap().is_empty());
    }
}

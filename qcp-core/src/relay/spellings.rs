//! The server's spelling of the values clients ask for.
//!
//! PostgreSQL reports a parameter in its own spelling, whatever the client wrote:
//! `client_encoding=utf8` (or `UTF-8`, `unicode`) is reported `UTF8`, `euc-jp` is `EUC_JP`,
//! `DateStyle=iso` is `ISO, MDY`. A client talking to the server directly is greeted with
//! that spelling; through qcp it must be too, and qcp must compare a client's expectation
//! with a server connection's values in the server's spelling, or it would take `utf8` and
//! `UTF8` for different values and set the parameter again at every checkout.
//!
//! qcp knows no spelling rules: it learns them from the server (see docs/protocol.md,
//! "Parameter spellings"). A pool keeps what it learnt, so only the first client that asks
//! for a value in a new spelling costs a round trip to a server.

use std::collections::VecDeque;

use super::params::{is_read_only, Params};

/// At most this many learnt spellings per pool, the oldest forgotten first: distinct
/// spellings are few in practice (one per encoding, time zone or application name clients
/// use), and a client cycling through made-up values must not grow the pool without bound.
pub const MOST_SPELLINGS: usize = 256;

/// Spellings learnt from one pool's servers: (parameter, value as asked) to the server's
/// spelling.
#[derive(Debug, Default)]
pub struct Spellings {
    /// (name, asked, server's spelling); names compare case-insensitively.
    learnt: VecDeque<(String, String, String)>,
}

impl Spellings {
    /// The server's spelling of `asked` for `name`, if learnt.
    pub fn get(&self, name: &str, asked: &str) -> Option<&str> {
        self.learnt
            .iter()
            .find(|(n, a, _)| n.eq_ignore_ascii_case(name) && a == asked)
            .map(|(_, _, spelled)| spelled.as_str())
    }

    /// Remembers that the server spells `asked` for `name` as `spelled`.
    pub fn learn(&mut self, name: &str, asked: &str, spelled: &str) {
        self.learnt
            .retain(|(n, a, _)| !(n.eq_ignore_ascii_case(name) && a == asked));
        if self.learnt.len() >= MOST_SPELLINGS {
            self.learnt.pop_front();
        }
        self.learnt
            .push_back((name.to_owned(), asked.to_owned(), spelled.to_owned()));
    }

    /// Number of spellings learnt.
    pub fn len(&self) -> usize {
        self.learnt.len()
    }

    /// True if nothing was learnt yet.
    pub fn is_empty(&self) -> bool {
        self.learnt.is_empty()
    }
}

/// A client's start-up settings in the server's spelling, as far as known.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Respelled {
    /// The settings, in their order, each reported one in the server's spelling when known.
    pub settings: Vec<(String, String)>,
    /// Positions in `settings` of reported parameters whose spelling is not known yet: a
    /// server must be asked.
    pub unknown: Vec<usize>,
}

/// Spells `settings` as the pool's server does. A parameter the server reports (it is in
/// the `greeting`) and can be set takes the spelling learnt for it; a value equal to the
/// greeting's is the server's own spelling already. Other parameters are not reported, so
/// their spelling reaches no client and they stay as asked.
pub fn respell(
    settings: &[(String, String)],
    greeting: &Params,
    spellings: &Spellings,
) -> Respelled {
    let mut respelled = Respelled::default();
    for (name, value) in settings {
        let known = match greeting.get(name) {
            None => Some(value.as_str()),
            Some(_) if is_read_only(name) => Some(value.as_str()),
            Some(served) if served == value => Some(value.as_str()),
            Some(_) => spellings.get(name, value),
        };
        if known.is_none() {
            respelled.unknown.push(respelled.settings.len());
        }
        let spelled = known.unwrap_or(value);
        respelled.settings.push((name.clone(), spelled.to_owned()));
    }
    respelled
}

#[cfg(test)]
mod tests {
    use super::*;

    fn greeting() -> Params {
        let mut greeting = Params::new();
        greeting.set("client_encoding", "UTF8");
        greeting.set("DateStyle", "ISO, MDY");
        greeting.set("server_version", "15.0");
        greeting
    }

    fn settings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn reported_values_take_the_learnt_spelling_and_others_stay() {
        let mut spellings = Spellings::default();
        let asked = settings(&[
            ("client_encoding", "utf8"),
            ("statement_timeout", "5s"),
            ("datestyle", "ISO, MDY"),
            ("server_version", "9.6"),
            ("DateStyle", "sql"),
        ]);
        let first = respell(&asked, &greeting(), &spellings);
        assert_eq!(first.unknown, [0, 4], "utf8 and sql must be asked for");
        assert_eq!(first.settings, asked, "nothing known yet: as asked");

        spellings.learn("CLIENT_ENCODING", "utf8", "UTF8");
        spellings.learn("DateStyle", "sql", "SQL, MDY");
        let second = respell(&asked, &greeting(), &spellings);
        assert_eq!(second.unknown, Vec::<usize>::new());
        assert_eq!(
            second.settings,
            settings(&[
                ("client_encoding", "UTF8"),
                ("statement_timeout", "5s"),
                ("datestyle", "ISO, MDY"),
                ("server_version", "9.6"),
                ("DateStyle", "SQL, MDY"),
            ])
        );
        // Values compare exactly: another spelling is another question.
        let other = respell(
            &settings(&[("client_encoding", "UTF-8")]),
            &greeting(),
            &spellings,
        );
        assert_eq!(other.unknown, [0]);
    }

    #[test]
    fn learning_again_replaces_and_the_oldest_go_first() {
        let mut spellings = Spellings::default();
        spellings.learn("TimeZone", "utc", "UTC");
        spellings.learn("timezone", "utc", "Etc/UTC");
        assert_eq!(spellings.len(), 1);
        assert_eq!(spellings.get("TIMEZONE", "utc"), Some("Etc/UTC"));
        for n in 0..MOST_SPELLINGS {
            spellings.learn("application_name", &n.to_string(), &n.to_string());
        }
        assert_eq!(spellings.len(), MOST_SPELLINGS);
        assert_eq!(spellings.get("TimeZone", "utc"), None, "the oldest went");
        assert_eq!(spellings.get("application_name", "0"), Some("0"));
    }
}

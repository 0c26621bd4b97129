//! Name-resolution scopes: when two clients' named statements may share one server statement.
//!
//! The same text can mean different tables and types to different clients: PostgreSQL
//! resolves an unqualified name through `search_path` (whose `$user` is the current role),
//! and a prepared statement used under another path is re-planned under it, or refused with
//! `0A000 cached plan must not change result type` when its columns change (see
//! docs/protocol.md, "Prepared statements and name resolution"). So in Smart mode:
//!
//! - a client's statements are keyed by its *scope*, [`key`]: the values of [`PARAMS`] it
//!   expects (its start-up values, and what the server reported). Every server connection it
//!   gets is set to those values first (`params`), so a shared statement is only ever planned
//!   and run under the one resolution its key names;
//! - a client whose own SQL may have changed its resolution ([`changes_resolution`]: `SET
//!   search_path`, `set_config('search_path', ...)`, `SET ROLE`, `RESET ALL`, `DISCARD`, a
//!   temporary table...) goes *private* for good (`ClientStatements::make_private`): qcp does
//!   not know what it changed (PostgreSQL before 18 does not report `search_path`), so its
//!   statements are its own from then on;
//! - the server connection it ran that SQL on is marked as changed by it ([`Resolution`]).
//!   Linked to any other client, such a connection gets its [`PARAMS`] set again
//!   ([`forget`]) before anything runs on it; linked to the same client again, it is left as
//!   that client left it, as it was before qcp knew about scopes.
//!
//! When unsure, qcp does not share: a text the scan cannot see whole counts as a change.

mod detect;

use std::num::NonZeroU64;

pub use detect::changes_resolution;

use crate::relay::params::{ParamSource, Params};

/// The parameters that decide how a statement's names resolve, and so are part of its key.
pub const PARAMS: &[&str] = &["search_path", "role"];

/// What qcp records for a [`PARAMS`] value of a server connection it no longer knows. No
/// value PostgreSQL sends or accepts contains a NUL, so no client ever expects this one and
/// the next parameter sync sets (or resets) the parameter.
pub const UNKNOWN: &str = "\0unknown to qcp";

/// True if `name` is one of [`PARAMS`] (names compare case-insensitively).
pub fn is_scope_param(name: &str) -> bool {
    PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name))
}

/// The key of the scope a client with these expected values prepares in: each of [`PARAMS`]
/// as `=value` or `-` (not set: the server's default), NUL-terminated. Values hold no NUL, so
/// two keys are equal only for equal values.
pub fn key(wanted: &impl ParamSource) -> Vec<u8> {
    let mut key = Vec::with_capacity(16);
    for name in PARAMS {
        match wanted.get(name) {
            Some(value) => {
                key.push(b'=');
                key.extend_from_slice(value.as_bytes());
            }
            None => key.push(b'-'),
        }
        key.push(0);
    }
    key
}

/// Marks every [`PARAMS`] value of a server connection unknown, so that the next parameter
/// sync sets it to what the client expects (or resets it).
pub fn forget(params: &mut Params) {
    for name in PARAMS {
        params.set(name, UNKNOWN);
    }
}

/// Who may have changed a server connection's name resolution since qcp last set it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    /// The private scope of the client whose SQL may have changed it.
    changed_by: Option<NonZeroU64>,
}

impl Resolution {
    /// SQL of the client with private scope `client` may have changed it.
    pub fn changed(&mut self, client: NonZeroU64) {
        self.changed_by = Some(client);
    }

    /// The client whose SQL may have changed it, if any.
    pub fn changed_by(&self) -> Option<NonZeroU64> {
        self.changed_by
    }

    /// The connection is about to be linked to the client with private scope `client` (or
    /// to a client without one): true if another client may have changed its resolution, so
    /// that its [`PARAMS`] must be marked unknown ([`forget`]) and set again. The mark is
    /// cleared with that: once set again, the connection resolves as qcp says.
    pub fn claim(&mut self, client: Option<NonZeroU64>) -> bool {
        match self.changed_by {
            Some(by) if Some(by) != client => {
                self.changed_by = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests;

//! Named prepared statements in Smart mode: rewriting the client's Parse, Bind, Describe and
//! Close, and acting on the server's answers. Sans-IO: the session hands over message bytes
//! and gets back the bytes to send and what to do with the original.
//!
//! Every client request is sent to the server as exactly one request whose answer is the one
//! PostgreSQL would give the client, so replies keep their order without qcp queueing fake
//! ones:
//! - a Parse, Bind or Describe of a known statement goes out renamed to its internal name,
//!   after a Parse of that statement (answer swallowed) if this backend does not have it;
//! - a Parse of a text this backend already has goes out as a Close of a statement that never
//!   exists, whose CloseComplete becomes the client's ParseComplete;
//! - a Close goes out as that same harmless Close (the shared statement stays for others);
//! - a request PostgreSQL would refuse (an unknown name, a name already in use) goes out as a
//!   Describe of a missing statement: the server fails it *and skips to the next Sync*, exactly
//!   as it would have, and its error is replaced with the one naming the client's statement.
//!
//! Statements are shared only between clients of one name-resolution scope (`relay::scope`):
//! a Parse is interned under the client's scope key, and a Parse or Bind whose text may change
//! the client's resolution makes the client private and marks the backend.

use std::collections::VecDeque;
use std::sync::Arc;

use qcp_codec::fields::{ErrorField, ErrorFields};
use qcp_codec::frontend::{Bind, Close, Describe, Parse, Target};
use qcp_codec::{encode, DecodeError, EncodeError, Header, Tag, TransactionStatus};

use super::params::ClientParams;
use super::scope::{self, Resolution};
use super::statements::{
    internal_name, query_of, ClientStatements, Needs, Registry, Resolved, ServerStatements, State,
    Statement, NEVER_PREPARED,
};
use super::tracker::{Answer, Hooked, TooManyPending, Tracker};
use crate::errors::{sqlstate, PgError};

mod simple_query;

pub use simple_query::{deallocated_name, drops_all_statements, may_deallocate};

/// SQLSTATE 0A000, raised as "cached plan must not change result type".
const FEATURE_NOT_SUPPORTED: &[u8] = b"0A000";

/// What qcp must do when a request it rewrote or injected is answered.
#[derive(Debug)]
pub enum Hook {
    /// qcp's own Parse of statement `id` (answer swallowed).
    Prepare { id: u64, op: u64 },
    /// qcp's own Close of statement `id` (answer swallowed); `evict` when it makes room.
    Close { id: u64, op: u64, evict: bool },
    /// The client's Parse of `name`, sent renamed.
    Parse {
        name: Box<[u8]>,
        statement: Arc<Statement>,
        op: u64,
    },
    /// The client's Parse of `name`, whose text the backend already has: the stand-in Close's
    /// CloseComplete becomes its ParseComplete.
    ParseShared { name: Box<[u8]> },
    /// The client's Close of `name` (sent as a harmless Close).
    CloseName { name: Box<[u8]> },
    /// The client's Bind of statement `id`: a 0A000 means the backend's copy is stale.
    Bind { id: u64 },
    /// A request qcp refuses as PostgreSQL would: the stand-in's error is replaced by this.
    Fail { code: &'static str, message: String },
}

/// How a hooked request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// Answered.
    Done,
    /// Answered with an error with this SQLSTATE (empty if unknown).
    Failed(&'a [u8]),
    /// Skipped by the server.
    Dropped,
}

/// What to do with the server message that answers a hooked request.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Pass it on.
    Forward,
    /// Drop it: the client did not ask for it.
    Discard,
    /// Pass it on with this tag instead (same empty body).
    Retag(Tag),
    /// Drop it and send [`replacement`] instead.
    Replace,
}

/// What to do with the original client message once it was rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consume {
    /// Drop all of it.
    Whole,
    /// Drop the header and the first `n` body bytes; forward the rest unchanged.
    Head(usize),
    /// Nothing was done: the message depends on an answer still to come (see
    /// [`Resolved::Undecided`]); try again once more replies arrived.
    NotYet,
}

/// The client sent something qcp cannot rewrite.
#[derive(Debug)]
pub enum RewriteError {
    /// A malformed message (the text says what).
    Malformed(&'static str),
    /// Too many requests in flight.
    TooManyPending,
}

impl From<TooManyPending> for RewriteError {
    fn from(_: TooManyPending) -> Self {
        RewriteError::TooManyPending
    }
}

/// What qcp writes holds names decoded from the client's messages (so without a NUL) and
/// lengths within the client's own: encoding fails only if that does not hold.
impl From<EncodeError> for RewriteError {
    fn from(_: EncodeError) -> Self {
        RewriteError::Malformed("statement message too large to rewrite")
    }
}

/// True when a client message names a prepared statement, so Smart mode must rewrite it.
/// `body` is as much of the body as the buffer holds; messages that do not name a statement
/// (unnamed ones, portals) pass through untouched.
pub fn names_statement(tag: Tag, body: &[u8]) -> bool {
    match tag {
        Tag::PARSE => body.first().is_some_and(|&b| b != 0),
        Tag::BIND => {
            // portal NUL statement NUL: named when a byte other than NUL follows the portal.
            match body.splitn(2, |&b| b == 0).nth(1) {
                Some(statement) => statement.first().is_none_or(|&b| b != 0),
                None => true, // a name too long to see: let the rewrite report it
            }
        }
        Tag::DESCRIBE | Tag::CLOSE => {
            body.first() == Some(&b'S') && body.get(1).is_none_or(|&b| b != 0)
        }
        _ => false,
    }
}

/// What the rewrites of named statements did, counted for the pool's statistics (the
/// driver takes the counts at the end of each query).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatementTally {
    /// Parse messages of named statements from the client.
    pub client_parses: u32,
    /// Parse messages qcp sent the server for them.
    pub server_parses: u32,
    /// Bind messages of named statements.
    pub binds: u32,
    /// A client's Parse found the statement already on the server.
    pub hits: u32,
    /// Statements closed to stay within `max_prepared_statements`.
    pub evictions: u32,
}

impl StatementTally {
    /// True when nothing was counted.
    pub fn is_empty(&self) -> bool {
        *self == StatementTally::default()
    }
}

/// The state one rewrite works on.
pub struct Rewriter<'a> {
    pub client: &'a mut ClientStatements,
    pub server: &'a mut ServerStatements,
    pub registry: &'a Registry,
    /// What the client expects of its server connections: its scope's key comes from it.
    pub wanted: &'a ClientParams,
    /// Who may have changed the backend's name resolution.
    pub resolution: &'a mut Resolution,
    pub tracker: &'a mut Tracker,
    pub hooks: &'a mut VecDeque<Hook>,
    /// Bytes to send to the server, in order.
    pub out: &'a mut Vec<u8>,
    /// Counts for the statistics.
    pub tally: &'a mut StatementTally,
}

impl Rewriter<'_> {
    /// Rewrites one client message that [`names_statement`]. `body_len` is the length of its
    /// body; `body` is all of it for a Parse, and at least the names for the others.
    pub fn message(
        &mut self,
        tag: Tag,
        body: &[u8],
        body_len: usize,
    ) -> Result<Consume, RewriteError> {
        match tag {
            Tag::PARSE if body.len() == body_len => self.parse(body),
            Tag::BIND => self.bind(body, body_len),
            // Only the name follows the kind byte: a body that does not hold all of it is a
            // name longer than the buffer.
            Tag::DESCRIBE => self.describe(Describe::decode(body).map_err(name_error)?.name()),
            Tag::CLOSE => self.close(Close::decode(body).map_err(name_error)?.name()),
            _ => Err(RewriteError::Malformed("incomplete statement message")),
        }
    }

    fn parse(&mut self, body: &[u8]) -> Result<Consume, RewriteError> {
        let name = Parse::decode(body)
            .map_err(|error| match error {
                DecodeError::MissingNul("Parse.name") => {
                    RewriteError::Malformed("Parse without a statement name")
                }
                _ => RewriteError::Malformed("malformed Parse"),
            })?
            .name();
        // The statement: everything after the name and its NUL (query, NUL, parameter types).
        // The name was decoded from the body, so its NUL is in it: this never saturates.
        let head = name.len().saturating_add(1);
        let definition = body.get(head..).unwrap_or_default();
        let batch = self.tracker.batch();
        match self.client.resolve(name, batch) {
            Resolved::Undecided => return Ok(Consume::NotYet),
            Resolved::Unknown => {}
            Resolved::Known(_) => {
                self.refuse_duplicate(name, definition)?;
                return Ok(Consume::Whole);
            }
        }
        let statement = self.statement(definition);
        self.client.parsing(name, Arc::clone(&statement), batch);
        self.tally.client_parses = self.tally.client_parses.saturating_add(1);
        let present = matches!(self.server.state(statement.id), Some(State::Ready))
            || self.server.state(statement.id) == Some(State::Preparing(batch));
        // The harmless Close succeeds even where PostgreSQL would refuse the Parse (in a
        // failed transaction block): use it only when the transaction is known to be fine.
        let healthy = self.tracker.nothing_outstanding()
            && self.tracker.status() != TransactionStatus::Failed;
        if present && healthy {
            // The backend has this text already: the client still gets its ParseComplete.
            self.tally.hits = self.tally.hits.saturating_add(1);
            self.server.use_in(statement.id, batch);
            encode::close(self.out, Target::Statement, NEVER_PREPARED)?;
            let hook = Hook::ParseShared { name: name.into() };
            self.send(Tag::CLOSE, hook)?;
            return Ok(Consume::Whole);
        }
        let needs = if present {
            // Prepared again, so that the server answers this Parse as it would the client's.
            self.server.prepare_again(statement.id, batch)
        } else {
            self.server.use_in(statement.id, batch)
        };
        self.clear_the_way(statement.id, batch, needs)?;
        self.tally.server_parses = self.tally.server_parses.saturating_add(1);
        // The client's own Parse, renamed: its ParseComplete goes to the client. The
        // definition follows as the client sent it.
        put_parse_head(self.out, statement.name(), definition.len())?;
        let hook = Hook::Parse {
            name: name.into(),
            statement,
            op: needs.op,
        };
        self.send(Tag::PARSE, hook)?;
        Ok(Consume::Head(head))
    }

    fn bind(&mut self, body: &[u8], body_len: usize) -> Result<Consume, RewriteError> {
        // Only the names need to be in the buffer: the parameters follow as the client sent
        // them.
        let (portal, name) = Bind::decode_names(body).map_err(|error| match error {
            DecodeError::MissingNul("Bind.portal") => {
                RewriteError::Malformed("Bind portal name is too long")
            }
            _ => RewriteError::Malformed("Bind statement name is too long"),
        })?;
        let mut statement = match self.known(name)? {
            Ok(statement) => statement,
            Err(answered) => return Ok(answered),
        };
        if statement.changes_resolution() {
            // Running it may change how this backend resolves names. (Its Parse made the
            // client private already; if not, the name now means a private copy.)
            let was_shared = self.client.private().is_none();
            self.resolution_changed();
            if was_shared {
                statement = match self.known(name)? {
                    Ok(statement) => statement,
                    Err(answered) => return Ok(answered),
                };
            }
        }
        self.ensure(&statement)?;
        self.tally.binds = self.tally.binds.saturating_add(1);
        // The two names and their NULs come first in the body: a `head` beyond `body_len`
        // would be a logic error, reported rather than sent.
        let head = portal
            .len()
            .checked_add(name.len())
            .and_then(|n| n.checked_add(2))
            .filter(|&head| head <= body_len)
            .ok_or(RewriteError::Malformed("Bind names overrun the message"))?;
        let parameters = body_len.saturating_sub(head);
        let renamed = portal
            .len()
            .checked_add(statement.name().len())
            .and_then(|n| n.checked_add(2))
            .and_then(|n| n.checked_add(parameters))
            .ok_or(EncodeError::TooLarge("Bind"))?;
        self.out
            .extend_from_slice(&Header::for_body(Tag::BIND, renamed)?.to_bytes());
        self.out.extend_from_slice(portal);
        self.out.push(0);
        self.out.extend_from_slice(statement.name());
        self.out.push(0);
        self.send(Tag::BIND, Hook::Bind { id: statement.id })?;
        Ok(Consume::Head(head))
    }

    fn describe(&mut self, name: &[u8]) -> Result<Consume, RewriteError> {
        let statement = match self.known(name)? {
            Ok(statement) => statement,
            Err(answered) => return Ok(answered),
        };
        self.ensure(&statement)?;
        encode::describe(self.out, Target::Statement, statement.name())?;
        self.tracker.client_message(Tag::DESCRIBE)?;
        Ok(Consume::Whole)
    }

    fn close(&mut self, name: &[u8]) -> Result<Consume, RewriteError> {
        // The shared statement stays on the backend for other clients; the client's name goes.
        // A Close of nothing still gets its CloseComplete from the server, in order.
        let batch = self.tracker.batch();
        let known = match self.client.resolve(name, batch) {
            Resolved::Undecided => return Ok(Consume::NotYet),
            Resolved::Unknown => false,
            Resolved::Known(_) => true,
        };
        encode::close(self.out, Target::Statement, NEVER_PREPARED)?;
        if known {
            self.client.closing(name, batch);
            self.send(Tag::CLOSE, Hook::CloseName { name: name.into() })?;
        } else {
            self.tracker.client_message(Tag::CLOSE)?;
        }
        Ok(Consume::Whole)
    }

    /// The statement a client's Parse of `definition` prepares: shared with the clients of its
    /// scope, or its own once its resolution may have changed (which this Parse itself may
    /// announce: a named `SET search_path` changes it when it runs).
    fn statement(&mut self, definition: &[u8]) -> Arc<Statement> {
        if self.client.private().is_none() && scope::changes_resolution(query_of(definition)) {
            self.resolution_changed();
        }
        if self.client.private().is_some() {
            return self.registry.private(definition);
        }
        self.registry
            .intern(self.client.scope_key(self.wanted), definition)
    }

    /// The client's SQL may have changed how this backend resolves names: the client goes
    /// private, and the backend is marked as changed by it.
    fn resolution_changed(&mut self) {
        let client = self.client.make_private(self.registry);
        self.resolution.changed(client);
    }

    /// The statement a Bind or Describe names, or how the message was dealt with without it
    /// (refused as unknown, or left for later).
    fn known(&mut self, name: &[u8]) -> Result<Result<Arc<Statement>, Consume>, RewriteError> {
        Ok(match self.client.resolve(name, self.tracker.batch()) {
            Resolved::Known(statement) => Ok(statement),
            Resolved::Unknown => {
                self.refuse_unknown(name)?;
                Err(Consume::Whole)
            }
            Resolved::Undecided => Err(Consume::NotYet),
        })
    }

    /// Makes sure the backend has `statement` before a message that uses it.
    fn ensure(&mut self, statement: &Statement) -> Result<(), RewriteError> {
        if self.tracker.skipping() {
            // The message that needs it will be skipped as well.
            return Ok(());
        }
        let batch = self.tracker.batch();
        let needs = self.server.use_in(statement.id, batch);
        if !needs.parse {
            return Ok(());
        }
        self.clear_the_way(statement.id, batch, needs)?;
        self.tally.server_parses = self.tally.server_parses.saturating_add(1);
        put_parse_head(self.out, statement.name(), statement.definition().len())?;
        self.out.extend_from_slice(statement.definition());
        self.send(
            Tag::PARSE,
            Hook::Prepare {
                id: statement.id,
                op: needs.op,
            },
        )
    }

    /// Before a Parse of statement `id`: room within the bound, and a Close first if it may
    /// already exist.
    fn clear_the_way(&mut self, id: u64, batch: u64, needs: Needs) -> Result<(), RewriteError> {
        self.make_room(id, batch)?;
        if needs.close {
            self.close_internal(id, 0, false)?;
        }
        Ok(())
    }

    /// Closes least recently used statements until the backend is within its bound. Not
    /// while the server skips to the next Sync: nothing sent now would run (and a Close it
    /// skips leaves the statement where it was).
    fn make_room(&mut self, keep: u64, batch: u64) -> Result<(), RewriteError> {
        if self.tracker.skipping() {
            return Ok(());
        }
        while let Some((victim, op)) = self.server.evict(batch, keep) {
            self.tally.evictions = self.tally.evictions.saturating_add(1);
            self.close_internal(victim, op, true)?;
        }
        Ok(())
    }

    /// Sends a Close of statement `id`: to make room (`evict`, Close number `op`), or before
    /// preparing an unsure one again (then its Parse decides the state).
    fn close_internal(&mut self, id: u64, op: u64, evict: bool) -> Result<(), RewriteError> {
        encode::close(self.out, Target::Statement, internal_name(id))?;
        self.send(Tag::CLOSE, Hook::Close { id, op, evict })
    }

    /// Bind or Describe of a name the client does not have: a Describe of a statement that
    /// never exists fails where PostgreSQL would have failed the client's message (and makes
    /// the server skip to the next Sync); its 26000 is reworded with the client's name.
    fn refuse_unknown(&mut self, name: &[u8]) -> Result<(), RewriteError> {
        encode::describe(self.out, Target::Statement, NEVER_PREPARED)?;
        let hook = Hook::Fail {
            code: sqlstate::INVALID_SQL_STATEMENT_NAME,
            message: format!("prepared statement \"{}\" does not exist", lossy(name)),
        };
        self.send(Tag::DESCRIBE, hook)
    }

    /// Parse of a name the client already uses. PostgreSQL checks the SQL before the name,
    /// so the client's SQL is parsed under the name of a statement that surely exists on the
    /// backend (the sentinel): any error in the SQL is PostgreSQL's own, and otherwise its
    /// 42P05 is reworded with the client's name.
    fn refuse_duplicate(&mut self, name: &[u8], definition: &[u8]) -> Result<(), RewriteError> {
        let sentinel = self.registry.sentinel();
        self.ensure(&sentinel)?;
        put_parse_head(self.out, sentinel.name(), definition.len())?;
        self.out.extend_from_slice(definition);
        let hook = Hook::Fail {
            code: sqlstate::DUPLICATE_PREPARED_STATEMENT,
            message: format!("prepared statement \"{}\" already exists", lossy(name)),
        };
        self.send(Tag::PARSE, hook)
    }

    /// Records a hooked request just written to `out`.
    fn send(&mut self, tag: Tag, hook: Hook) -> Result<(), RewriteError> {
        if self.tracker.hooked_message(tag)? {
            self.hooks.push_back(hook);
        } else {
            settle(hook, Outcome::Dropped, self.client, self.server);
        }
        Ok(())
    }
}

/// What to do with server message `tag` (`body`: as much of it as was read) when it answers
/// the hooked request `hook`. Only ParseComplete, CloseComplete and ErrorResponse are ever
/// changed, and an error only when it is the one the stand-in was sent to cause.
pub fn action(hook: &Hook, tag: Tag, body: &[u8]) -> Action {
    match (hook, tag) {
        (Hook::Prepare { .. } | Hook::Close { .. }, Tag::PARSE_COMPLETE | Tag::CLOSE_COMPLETE) => {
            Action::Discard
        }
        (Hook::ParseShared { .. }, Tag::CLOSE_COMPLETE) => Action::Retag(Tag::PARSE_COMPLETE),
        (Hook::Fail { code, .. }, Tag::ERROR_RESPONSE) if error_code(body) == code.as_bytes() => {
            Action::Replace
        }
        _ => Action::Forward,
    }
}

/// The ErrorResponse that replaces the server's for an [`Action::Replace`].
pub fn replacement(hook: &Hook) -> Option<Vec<u8>> {
    match hook {
        Hook::Fail { code, message } => Some(PgError::error(code, message.clone()).to_bytes()),
        _ => None,
    }
}

/// Updates what qcp knows once a hooked request ended.
pub fn settle(
    hook: Hook,
    outcome: Outcome<'_>,
    client: &mut ClientStatements,
    server: &mut ServerStatements,
) {
    let done = outcome == Outcome::Done;
    match hook {
        Hook::Prepare { id, op } => server.prepared(id, op, done),
        Hook::Close { id, op, evict } => {
            if evict {
                server.closed(id, op, done);
            }
        }
        Hook::Parse {
            name,
            statement,
            op,
        } => {
            server.prepared(statement.id, op, done);
            if done {
                statement.mark_accepted();
            }
            client.answered(&name, done);
        }
        Hook::ParseShared { name } | Hook::CloseName { name } => client.answered(&name, done),
        Hook::Bind { id } => {
            if outcome == Outcome::Failed(FEATURE_NOT_SUPPORTED) {
                server.invalidate(id);
            }
        }
        Hook::Fail { .. } => {}
    }
}

/// Applies what the tracker reported for one server message: the answered hook first, then
/// the dropped ones.
pub fn settle_reported(
    Hooked { answered, dropped }: Hooked,
    error_code: &[u8],
    hooks: &mut VecDeque<Hook>,
    client: &mut ClientStatements,
    server: &mut ServerStatements,
) {
    if let Some(answer) = answered {
        if let Some(hook) = hooks.pop_front() {
            let outcome = match answer {
                Answer::Done => Outcome::Done,
                Answer::Failed => Outcome::Failed(error_code),
            };
            settle(hook, outcome, client, server);
        }
    }
    for _ in 0..dropped {
        if let Some(hook) = hooks.pop_front() {
            settle(hook, Outcome::Dropped, client, server);
        }
    }
}

/// The SQLSTATE in an ErrorResponse body (empty if not there). `body` may be only the start
/// of it (an error larger than the buffer): the code comes early, and is found if it is there.
pub fn error_code(body: &[u8]) -> &[u8] {
    ErrorFields::leading(body)
        .find(|field| field.code == ErrorField::SQLSTATE)
        .map_or(&[], |field| field.value)
}

/// A Describe or Close body that does not decode: without its NUL, the name is longer than
/// the buffer; otherwise something follows it.
fn name_error(error: DecodeError) -> RewriteError {
    match error {
        DecodeError::MissingNul(_) => RewriteError::Malformed("statement name is too long"),
        _ => RewriteError::Malformed("malformed Describe or Close"),
    }
}

fn lossy(name: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(name)
}

/// The start of a Parse of statement `name`: its header and the name. The definition
/// (`definition_len` bytes: query, NUL, parameter types) must follow.
fn put_parse_head(
    out: &mut Vec<u8>,
    name: &[u8],
    definition_len: usize,
) -> Result<(), RewriteError> {
    let body_len = name
        .len()
        .checked_add(1)
        .and_then(|n| n.checked_add(definition_len))
        .ok_or(EncodeError::TooLarge("Parse"))?;
    out.extend_from_slice(&Header::for_body(Tag::PARSE, body_len)?.to_bytes());
    out.extend_from_slice(name);
    out.push(0);
    Ok(())
}

#[cfg(test)]
mod tests;

//! Named prepared statements under transaction pooling: what exists where.
//!
//! Three views, each owned by what it describes:
//! - [`Registry`] (one per pool): every distinct statement a client prepared, keyed by its
//!   name-resolution scope, query text and parameter types, with the internal name
//!   (`qcp_<id>`) it has on servers. Clients that prepare the same text in the same scope share
//!   one entry and so one server-side statement.
//! - [`ClientStatements`] (one per client): the client's own names, each bound to a
//!   [`Statement`], shared unless the client went private (see [`ClientStatements::private`]).
//! - [`ServerStatements`] (one per server connection): which statements that backend has,
//!   bounded, least recently used first out.
//!
//! A server's view must stay exact even when a pipelined message qcp sent is skipped by the
//! server after an earlier error. Rather than guessing, an entry whose fate is not known yet
//! is marked as such: a statement prepared in the current Sync batch is usable in that batch
//! (if the Parse is skipped, so is everything after it up to the Sync), while a statement whose
//! Parse or Close was sent in an earlier batch and not yet answered, or failed, is [`Unsure`]:
//! its next use closes it first (closing a missing statement is not an error) and prepares it
//! again. That costs a few bytes in rare cases and never sends a client another's statement or
//! a "does not exist" error PostgreSQL would not have sent.
//!
//! [`Unsure`]: State::Unsure

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU64;
use std::sync::Arc;

use crate::relay::params::{ClientParams, Stamp};
use crate::relay::scope;

mod registry;

pub use registry::{internal_name, query_of, Registry, Statement, INTERNAL_PREFIX, NEVER_PREPARED};

/// A Parse (`Some`) or Close (`None`) of a client's name that the server has not answered.
#[derive(Debug)]
struct Unanswered {
    batch: u64,
    parse: Option<Arc<Statement>>,
}

/// One client name: what the server has confirmed, and what is on its way, in order.
#[derive(Debug, Default)]
struct Named {
    confirmed: Option<Arc<Statement>>,
    unanswered: VecDeque<Unanswered>,
}

impl Named {
    /// What the name means once every unanswered request has run.
    fn projected(&self) -> Option<&Arc<Statement>> {
        self.unanswered
            .iter()
            .fold(self.confirmed.as_ref(), |_, u| u.parse.as_ref())
    }
}

/// What a client's statement name means for a message in a given Sync batch.
#[derive(Debug)]
pub enum Resolved {
    /// The statement it names.
    Known(Arc<Statement>),
    /// No such statement.
    Unknown,
    /// A Parse or Close of the name from an earlier batch has not been answered: whether the
    /// server ran it or skipped it after an error decides, so ask again once it is answered.
    Undecided,
}

/// One client's statement names. A Parse or Close counts at once for the rest of its Sync
/// batch (if the server skips it, it skips the rest of the batch too), and for later batches
/// only once the server answered it: answers come in order, and each either ran (and changes
/// the name) or failed or was skipped (and does not).
#[derive(Debug, Default)]
pub struct ClientStatements {
    /// Allocated on the first name: most clients of a pooler never prepare by name, and an
    /// idle client should cost as little as possible: 8 bytes here instead of an empty
    /// map's 48.
    names: Option<Box<Names>>,
}

/// The part of [`ClientStatements`] allocated on the first name (or when the client goes
/// private).
#[derive(Debug, Default)]
struct Names {
    by_name: HashMap<Box<[u8]>, Named>,
    /// Set once the client's own SQL may have changed how its names resolve (see
    /// `relay::scope`): from then on its statements are its own, and this id marks the server
    /// connections it may have changed.
    private: Option<NonZeroU64>,
    /// The key of the client's scope (`scope::key`) and the `ClientParams::stamp` of the
    /// values it was made from: computed once, not at every Parse.
    scope: Option<(Stamp, Box<[u8]>)>,
}

/// The empty map that clients without names read.
fn no_names() -> &'static HashMap<Box<[u8]>, Named> {
    static EMPTY: std::sync::OnceLock<HashMap<Box<[u8]>, Named>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(HashMap::new)
}

impl ClientStatements {
    fn map(&self) -> &HashMap<Box<[u8]>, Named> {
        match self.names.as_deref() {
            Some(names) => &names.by_name,
            None => no_names(),
        }
    }

    fn map_mut(&mut self) -> &mut HashMap<Box<[u8]>, Named> {
        &mut self.names.get_or_insert_with(Box::default).by_name
    }

    /// The key of the scope the client prepares in, for the values it expects (`wanted`).
    pub fn scope_key(&mut self, wanted: &ClientParams) -> &[u8] {
        self.refresh_scope(wanted);
        self.cached_scope_key().unwrap_or_default()
    }

    /// Makes [`ClientStatements::cached_scope_key`] the key for `wanted`, computing it only if
    /// the values changed since.
    pub fn refresh_scope(&mut self, wanted: &ClientParams) {
        let names = self.names.get_or_insert_with(Box::default);
        let stamp = wanted.stamp();
        match &mut names.scope {
            Some((made_from, _)) if *made_from == stamp => {}
            cache => *cache = Some((stamp, scope::key(wanted).into_boxed_slice())),
        }
    }

    /// The scope key [`ClientStatements::refresh_scope`] last made.
    pub fn cached_scope_key(&self) -> Option<&[u8]> {
        let (_, key) = self.names.as_deref()?.scope.as_ref()?;
        Some(key)
    }

    /// What `name` means for a message of Sync batch `batch`.
    pub fn resolve(&self, name: &[u8], batch: u64) -> Resolved {
        let Some(named) = self.map().get(name) else {
            return Resolved::Unknown;
        };
        if named.unanswered.iter().any(|u| u.batch != batch) {
            return Resolved::Undecided;
        }
        match named.projected() {
            Some(statement) => Resolved::Known(Arc::clone(statement)),
            None => Resolved::Unknown,
        }
    }

    /// The statement `name` is bound to once everything on its way has run (for answers qcp
    /// gives itself once nothing is in flight).
    pub fn get(&self, name: &[u8]) -> Option<&Arc<Statement>> {
        self.map().get(name).and_then(Named::projected)
    }

    /// Binds `name` to `statement` for good (qcp answered the Parse itself).
    pub fn bind(&mut self, name: &[u8], statement: Arc<Statement>) {
        self.map_mut().insert(
            name.into(),
            Named {
                confirmed: Some(statement),
                unanswered: VecDeque::new(),
            },
        );
    }

    /// A Parse of `name` as `statement`, sent in `batch`.
    pub fn parsing(&mut self, name: &[u8], statement: Arc<Statement>, batch: u64) {
        self.sent(name, batch, Some(statement));
    }

    /// A Close of `name`, sent in `batch`.
    pub fn closing(&mut self, name: &[u8], batch: u64) {
        self.sent(name, batch, None);
    }

    fn sent(&mut self, name: &[u8], batch: u64, parse: Option<Arc<Statement>>) {
        let map = self.map_mut();
        // The key is copied only for a new name.
        if !map.contains_key(name) {
            map.insert(name.into(), Named::default());
        }
        if let Some(named) = map.get_mut(name) {
            named.unanswered.push_back(Unanswered { batch, parse });
        }
    }

    /// The oldest unanswered Parse or Close of `name` was answered: it ran (`ok`), or it
    /// failed or was skipped.
    pub fn answered(&mut self, name: &[u8], ok: bool) {
        let map = self.map_mut();
        let Some(named) = map.get_mut(name) else {
            return;
        };
        if let Some(request) = named.unanswered.pop_front() {
            if ok {
                named.confirmed = request.parse;
            }
        }
        if named.confirmed.is_none() && named.unanswered.is_empty() {
            map.remove(name);
        }
    }

    /// Forgets `name` (DEALLOCATE name, answered by qcp once nothing is in flight).
    pub fn remove(&mut self, name: &[u8]) -> Option<Arc<Statement>> {
        self.map_mut()
            .remove(name)
            .and_then(|named| named.projected().cloned())
    }

    /// Forgets every name (DEALLOCATE ALL, DISCARD ALL ran). Parse and Close sent after it
    /// are still on their way and still count.
    pub fn clear(&mut self) {
        if let Some(names) = self.names.as_deref_mut() {
            names.by_name.retain(|_, named| {
                named.confirmed = None;
                !named.unanswered.is_empty()
            });
        }
    }

    /// The client's private scope, once it has one: its statements are shared with nobody.
    pub fn private(&self) -> Option<NonZeroU64> {
        self.names.as_deref().and_then(|names| names.private)
    }

    /// The client's own SQL may have changed how its names resolve: from now on it shares
    /// no statement with other clients. Every name it has, and every Parse on its way, is
    /// bound to a private copy of its statement, so that the client never again uses (or
    /// prepares again, under its own resolution) a statement other clients use. Returns the
    /// client's private scope.
    pub fn make_private(&mut self, registry: &Registry) -> NonZeroU64 {
        let names = self.names.get_or_insert_with(Box::default);
        if let Some(id) = names.private {
            return id;
        }
        let id = registry.private_scope();
        names.private = Some(id);
        // One copy per statement, however many names or pending Parses hold it.
        let mut copies: HashMap<u64, Arc<Statement>> = HashMap::new();
        let mut copy = |statement: &mut Arc<Statement>| {
            let private = copies
                .entry(statement.id)
                .or_insert_with(|| registry.private_copy(statement));
            *statement = Arc::clone(private);
        };
        for named in names.by_name.values_mut() {
            if let Some(statement) = named.confirmed.as_mut() {
                copy(statement);
            }
            for request in &mut named.unanswered {
                if let Some(statement) = request.parse.as_mut() {
                    copy(statement);
                }
            }
        }
        id
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// True without any name.
    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }
}

/// What qcp knows about one statement on one backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Prepared there (its Parse was answered).
    Ready,
    /// A Parse was sent in this Sync batch and not answered yet.
    Preparing(u64),
    /// A Close was sent in this Sync batch and not answered yet.
    Closing(u64),
    /// May or may not exist: close it before preparing it again.
    Unsure,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    state: State,
    /// Larger is more recent.
    used: u64,
    /// The number of the latest Parse or Close sent for it.
    op: u64,
}

/// What must be sent before a message that uses a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Needs {
    /// A Close of the statement (its existence is unsure).
    pub close: bool,
    /// A Parse of the statement.
    pub parse: bool,
    /// The number of that Parse, for [`ServerStatements::prepared`].
    pub op: u64,
}

/// The statements one backend has, bounded by `capacity`.
#[derive(Debug)]
pub struct ServerStatements {
    slots: HashMap<u64, Slot>,
    clock: u64,
    capacity: usize,
}

impl Default for ServerStatements {
    fn default() -> Self {
        ServerStatements::new(crate::config::DEFAULT_MAX_PREPARED_STATEMENTS)
    }
}

impl ServerStatements {
    /// An empty view (a new backend) that keeps at most `capacity` statements.
    pub fn new(capacity: usize) -> Self {
        ServerStatements {
            slots: HashMap::new(),
            clock: 0,
            capacity: capacity.max(1),
        }
    }

    /// Advances the clock that orders uses, Parses and Closes. One tick per message qcp
    /// sends or rewrites: it cannot reach `u64::MAX` in the life of a process, so it never
    /// saturates.
    fn tick(&mut self) {
        self.clock = self.clock.saturating_add(1);
    }

    /// Changes the bound (statements beyond it are closed as new ones are used).
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
    }

    /// The state of statement `id` here (`None`: not there).
    pub fn state(&self, id: u64) -> Option<State> {
        self.slots.get(&id).map(|slot| slot.state)
    }

    /// Statements that may exist here (for tests and status).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no statement exists here.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Statement `id` is about to be used in Sync batch `batch`: what must be sent first.
    /// Marks it used, and preparing if a Parse is needed.
    pub fn use_in(&mut self, id: u64, batch: u64) -> Needs {
        self.tick();
        let used = self.clock;
        let Some(slot) = self.slots.get_mut(&id) else {
            self.slots.insert(
                id,
                Slot {
                    state: State::Preparing(batch),
                    used,
                    op: used,
                },
            );
            return Needs {
                close: false,
                parse: true,
                op: used,
            };
        };
        slot.used = used;
        let needs = match slot.state {
            State::Ready => Needs::default(),
            State::Preparing(b) if b == batch => Needs::default(),
            // Closed earlier in this batch: if that Close is skipped, so is this Parse.
            State::Closing(b) if b == batch => Needs {
                close: false,
                parse: true,
                op: used,
            },
            State::Preparing(_) | State::Closing(_) | State::Unsure => Needs {
                close: true,
                parse: true,
                op: used,
            },
        };
        if needs.parse {
            slot.state = State::Preparing(batch);
            slot.op = used;
        }
        needs
    }

    /// Statement `id`, which this backend has or is preparing, is to be closed and prepared
    /// again before the next message: what to send.
    pub fn prepare_again(&mut self, id: u64, batch: u64) -> Needs {
        self.tick();
        let op = self.clock;
        let slot = self.slots.entry(id).or_insert(Slot {
            state: State::Unsure,
            used: op,
            op,
        });
        slot.used = op;
        slot.op = op;
        slot.state = State::Preparing(batch);
        Needs {
            close: true,
            parse: true,
            op,
        }
    }

    /// A statement to close to stay within capacity, other than `keep`, least recently used
    /// first; marks it closing in `batch`. Returns it and the number of its Close, for
    /// [`closed`](Self::closed). Call until `None`.
    pub fn evict(&mut self, batch: u64, keep: u64) -> Option<(u64, u64)> {
        let held = self
            .slots
            .values()
            .filter(|slot| !matches!(slot.state, State::Closing(_)))
            .count();
        if held <= self.capacity {
            return None;
        }
        // Anything but `keep` may go, even a statement prepared earlier in this batch: the
        // messages that used it were sent before the Close.
        let (&victim, _) = self
            .slots
            .iter()
            .filter(|(&id, slot)| id != keep && !matches!(slot.state, State::Closing(_)))
            .min_by_key(|(_, slot)| slot.used)?;
        self.tick();
        let op = self.clock;
        if let Some(slot) = self.slots.get_mut(&victim) {
            slot.state = State::Closing(batch);
            slot.op = op;
        }
        Some((victim, op))
    }

    /// Parse number `op` of `id` was answered: `ok`, or failed / skipped. Only the latest
    /// Parse or Close sent for a statement decides its state: an earlier one's answer says
    /// nothing about what the server has after the later one.
    pub fn prepared(&mut self, id: u64, op: u64, ok: bool) {
        if let Some(slot) = self.slots.get_mut(&id) {
            if matches!(slot.state, State::Preparing(_)) && slot.op == op {
                slot.state = if ok { State::Ready } else { State::Unsure };
            }
        }
    }

    /// Close number `op` of `id` was answered: `ok`, or failed / skipped.
    pub fn closed(&mut self, id: u64, op: u64, ok: bool) {
        if let Some(slot) = self.slots.get_mut(&id) {
            if matches!(slot.state, State::Closing(_)) && slot.op == op {
                if ok {
                    self.slots.remove(&id);
                } else {
                    slot.state = State::Unsure;
                }
            }
        }
    }

    /// The server said the statement can no longer be used as prepared (0A000, "cached plan
    /// must not change result type"): prepare it again on its next use.
    pub fn invalidate(&mut self, id: u64) {
        if let Some(slot) = self.slots.get_mut(&id) {
            if slot.state == State::Ready {
                slot.state = State::Unsure;
            }
        }
    }

    /// The client ran DEALLOCATE ALL or DISCARD ALL: nothing can be assumed any more.
    pub fn forget_all(&mut self) {
        for slot in self.slots.values_mut() {
            slot.state = State::Unsure;
        }
    }
}

#[cfg(test)]
mod tests;

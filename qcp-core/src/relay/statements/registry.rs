//! The pool's statements: every distinct statement a client prepared, with the internal name
//! it has on servers. Clients share an entry when they prepare the same text and parameter
//! types *in the same name-resolution scope* (see `relay::scope`): the same text can mean
//! another table, other types, under another `search_path`. A client whose own SQL may have
//! changed how its names resolve gets statements of its own instead ([`Registry::private`]).

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};

use crate::relay::scope;

/// Internal statement names are this prefix and a number from 1 up; `qcp_0` never exists.
pub const INTERNAL_PREFIX: &str = "qcp_";

/// A name that never exists on a server: qcp's stand-in for requests that must reach the
/// server but must not touch any real statement.
pub const NEVER_PREPARED: &[u8] = b"qcp_0";

/// One distinct statement: query text plus parameter types, in one scope.
#[derive(Debug)]
pub struct Statement {
    /// Unique in the pool, never reused.
    pub id: u64,
    /// `qcp_<id>`.
    name: Box<[u8]>,
    /// The Parse body after the name: query, NUL, parameter count and types.
    definition: Box<[u8]>,
    /// A server accepted it once: the text parses and its tables existed.
    accepted: AtomicBool,
    /// Running it may change how later statements resolve names (`SET search_path`...).
    changes_resolution: bool,
}

impl Statement {
    fn new(id: u64, definition: &[u8]) -> Statement {
        Statement {
            id,
            name: internal_name(id).into_boxed_slice(),
            definition: definition.into(),
            accepted: AtomicBool::new(false),
            changes_resolution: scope::changes_resolution(query_of(definition)),
        }
    }

    /// The name the statement has on servers.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// The Parse body after the name (query text, NUL, parameter types), for preparing it.
    pub fn definition(&self) -> &[u8] {
        &self.definition
    }

    /// True once a server has accepted a Parse of it.
    pub fn accepted(&self) -> bool {
        self.accepted.load(Relaxed)
    }

    /// A server answered a Parse of it with ParseComplete.
    pub fn mark_accepted(&self) {
        self.accepted.store(true, Relaxed);
    }

    /// True if running it may change how names resolve on the backend it runs on.
    pub fn changes_resolution(&self) -> bool {
        self.changes_resolution
    }
}

/// The query text of a Parse definition (up to its NUL; all of it without one).
pub fn query_of(definition: &[u8]) -> &[u8] {
    definition.split(|&b| b == 0).next().unwrap_or_default()
}

/// The statements of one pool, shared by its clients.
#[derive(Debug)]
pub struct Registry {
    inner: Mutex<RegistryInner>,
    /// A statement qcp keeps on backends only to learn what PostgreSQL says about a client's
    /// Parse of a name it already uses (see `prepared`).
    sentinel: Arc<Statement>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            inner: Mutex::default(),
            sentinel: Arc::new(Statement {
                id: SENTINEL_ID,
                name: SENTINEL_NAME.into(),
                // ROLLBACK: one of the statements PostgreSQL still parses in a failed
                // transaction block, so the sentinel can be prepared in any state. It is
                // never run.
                definition: b"ROLLBACK\0\0\0".as_slice().into(),
                accepted: AtomicBool::new(true),
                changes_resolution: false,
            }),
        }
    }
}

/// The name statement `id` has on servers.
pub fn internal_name(id: u64) -> Vec<u8> {
    if id == SENTINEL_ID {
        return SENTINEL_NAME.to_vec();
    }
    format!("{INTERNAL_PREFIX}{id}").into_bytes()
}

/// The sentinel's id (no interned statement reaches it) and name.
const SENTINEL_ID: u64 = u64::MAX;
const SENTINEL_NAME: &[u8] = b"qcp_sentinel";

/// The statements of one definition, by scope key (`scope::key`). Nearly every pool has a
/// single scope, so a lookup is the one hash of the definition and a comparison of a few
/// bytes; only definitions prepared in several scopes pay a second hash.
#[derive(Debug)]
enum Scoped {
    One(Box<[u8]>, Weak<Statement>),
    Many(HashMap<Box<[u8]>, Weak<Statement>>),
}

impl Scoped {
    fn get(&self, scope: &[u8]) -> Option<&Weak<Statement>> {
        match self {
            Scoped::One(key, statement) => (**key == *scope).then_some(statement),
            Scoped::Many(statements) => statements.get(scope),
        }
    }

    /// Records `statement` for `scope` (which has none that is alive). True if that is one
    /// entry more.
    fn insert(&mut self, scope: &[u8], statement: Weak<Statement>) -> bool {
        match self {
            Scoped::One(key, old) if **key == *scope || old.strong_count() == 0 => {
                *self = Scoped::One(scope.into(), statement);
                false
            }
            Scoped::One(key, old) => {
                let mut statements = HashMap::with_capacity(2);
                statements.insert(std::mem::take(key), std::mem::take(old));
                statements.insert(scope.into(), statement);
                *self = Scoped::Many(statements);
                true
            }
            Scoped::Many(statements) => statements.insert(scope.into(), statement).is_none(),
        }
    }

    fn values(&self) -> impl Iterator<Item = &Weak<Statement>> {
        let (one, many) = match self {
            Scoped::One(_, statement) => (Some(statement), None),
            Scoped::Many(statements) => (None, Some(statements.values())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    /// Drops the entries no client holds; returns how many are left.
    fn sweep(&mut self) -> usize {
        match self {
            Scoped::One(_, statement) => usize::from(statement.strong_count() > 0),
            Scoped::Many(statements) => {
                statements.retain(|_, weak| weak.strong_count() > 0);
                statements.len()
            }
        }
    }
}

#[derive(Debug, Default)]
struct RegistryInner {
    by_definition: HashMap<Box<[u8]>, Scoped>,
    /// (scope, definition) entries in all.
    entries: usize,
    /// The last id given to a statement or a private scope (they share the sequence).
    last_id: u64,
    /// Entries whose statement no client holds any more are swept when the map reaches this
    /// size.
    sweep_at: usize,
}

impl RegistryInner {
    /// A new id, from 1 up: even at 10^9 a second it would take centuries to reach
    /// `u64::MAX` (the sentinel's id), so it never saturates.
    fn next_id(&mut self) -> u64 {
        self.last_id = self.last_id.saturating_add(1);
        self.last_id
    }

    fn find(&self, scope: &[u8], definition: &[u8]) -> Option<Arc<Statement>> {
        self.by_definition
            .get(definition)
            .and_then(|scoped| scoped.get(scope))
            .and_then(Weak::upgrade)
    }

    fn sweep(&mut self) {
        let mut entries = 0usize;
        self.by_definition.retain(|_, scoped| {
            let left = scoped.sweep();
            // At most one per statement ever interned: never saturates.
            entries = entries.saturating_add(left);
            left > 0
        });
        self.entries = entries;
        // A map's length is far below `usize::MAX / 2`: it never saturates.
        self.sweep_at = self.entries.saturating_mul(2).max(64);
    }

    fn live(&self) -> impl Iterator<Item = &Weak<Statement>> {
        self.by_definition.values().flat_map(Scoped::values)
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, RegistryInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The statement with this definition (the Parse body after the name) in scope `scope`,
    /// shared with every other client of that scope that prepared the same text and types.
    pub fn intern(&self, scope: &[u8], definition: &[u8]) -> Arc<Statement> {
        let mut inner = self.lock();
        if let Some(live) = inner.find(scope, definition) {
            return live;
        }
        if inner.entries >= inner.sweep_at {
            inner.sweep();
        }
        let statement = Arc::new(Statement::new(inner.next_id(), definition));
        let weak = Arc::downgrade(&statement);
        let added = match inner.by_definition.get_mut(definition) {
            Some(scoped) => scoped.insert(scope, weak),
            None => {
                // The definition is copied only for a new one.
                let scoped = Scoped::One(scope.into(), weak);
                inner.by_definition.insert(definition.into(), scoped);
                true
            }
        };
        if added {
            // At most one entry per statement ever interned: this never saturates.
            inner.entries = inner.entries.saturating_add(1);
        }
        statement
    }

    /// A statement with this definition that no other client gets: for a client whose
    /// scope qcp cannot know. It has a name of its own on servers.
    pub fn private(&self, definition: &[u8]) -> Arc<Statement> {
        let id = self.lock().next_id();
        Arc::new(Statement::new(id, definition))
    }

    /// A copy of `statement` that no other client gets (see [`Registry::private`]).
    pub fn private_copy(&self, statement: &Statement) -> Arc<Statement> {
        let copy = self.private(statement.definition());
        if statement.accepted() {
            copy.mark_accepted();
        }
        copy
    }

    /// A new id for a private scope, never given to a statement or another scope.
    pub fn private_scope(&self) -> NonZeroU64 {
        let id = self.lock().next_id();
        NonZeroU64::new(id).unwrap_or(NonZeroU64::MIN)
    }

    /// The sentinel statement.
    pub fn sentinel(&self) -> Arc<Statement> {
        Arc::clone(&self.sentinel)
    }

    /// The statement with this definition in scope `scope`, if some client holds it.
    pub fn find(&self, scope: &[u8], definition: &[u8]) -> Option<Arc<Statement>> {
        self.lock().find(scope, definition)
    }

    /// The shared statements some client still holds, oldest first (for the admin console).
    pub fn live_statements(&self) -> Vec<Arc<Statement>> {
        let mut live: Vec<Arc<Statement>> = self.lock().live().filter_map(Weak::upgrade).collect();
        live.sort_by_key(|s| s.id);
        live
    }

    /// Distinct shared statements some client still holds (for status and tests).
    pub fn live(&self) -> usize {
        self.lock()
            .live()
            .filter(|weak| weak.strong_count() > 0)
            .count()
    }
}

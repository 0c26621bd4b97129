//! Server connection pools: one [`Pool`] per (database, user) pair.
//!
//! A pool owns the idle server connections of its pair across every server that serves the
//! database, counts the open ones per server against `pool_size`, and queues clients first
//! come, first served when every connection is busy. It is plain synchronous code, generic
//! over the connection type, with the time passed in: the driver does the waiting and the
//! connecting.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

mod health;
mod servers;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::channel::oneshot;

pub use health::ServerHealth;
pub use servers::ServerTable;

/// Which pool a client belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolKey {
    /// Database name, as the client asked for it.
    pub database: String,
    /// User name, as the client logged in.
    pub user: String,
}

/// What a client gets from [`Pool::checkout`].
#[derive(Debug)]
pub enum Grant<C> {
    /// An idle connection to `server`, opened at `born`.
    Idle {
        conn: C,
        server: usize,
        born: Instant,
    },
    /// Permission to open a new connection to `server`: a slot is already counted for it, so
    /// if opening fails (or the connection is ever closed) the caller calls [`Pool::closed`].
    Open { server: usize },
}

/// A client's place in the queue for a connection (see [`Pool::checkout`]). It yields the
/// grant, or `Canceled` once [`Pool::expire`] found its deadline passed.
pub type Waiting<C> = oneshot::Receiver<Grant<C>>;

/// Outcome of [`Pool::checkout`].
#[derive(Debug)]
pub enum Checkout<C> {
    /// Served at once.
    Now(Grant<C>),
    /// Every connection is busy: wait on this.
    Wait(Waiting<C>),
}

struct Idle<C> {
    conn: C,
    server: usize,
    since: Instant,
    born: Instant,
}

struct State<C> {
    /// INVARIANT: most recently returned last (reuse is LIFO, so spare connections age out).
    idle: Vec<Idle<C>>,
    /// The servers that serve this pool's database, and those a reload removed that still
    /// have connections open.
    members: Vec<Member>,
    waiters: VecDeque<Waiter<C>>,
    /// PAUSE: clients queue for connections and none is handed out until RESUME.
    paused: bool,
    /// RECONNECT: connections opened at or before this instant are closed as they come back.
    reconnect_at: Option<Instant>,
}

/// One server of a pool.
struct Member {
    /// The server's id (see [`ServerTable`]).
    server: usize,
    /// Its `pool_size`.
    limit: u32,
    /// Connections open to it (idle, lent out, or being opened).
    open: u32,
    /// A reload removed it from this pool: no connection is opened to it or kept idle, and
    /// it goes once its last connection closed.
    retired: bool,
}

struct Waiter<C> {
    sender: oneshot::Sender<Grant<C>>,
    /// When it stops waiting (`timeouts.query_wait`); `None` waits for ever.
    deadline: Option<Instant>,
    /// The relay thread it runs on (`None`: no preference).
    home: Option<usize>,
    /// When it started waiting.
    since: Instant,
}

/// How long the first client in line may be passed over in favour of a later one on the
/// thread the returned connection lives on. Handing a connection to a client of another
/// thread moves it between threads (registering it anew), and under load the first in line
/// is as often on another thread as not; a few milliseconds of reordering within the queue
/// saves that, and nobody waits more than this for it.
pub const SAME_THREAD_WINDOW: Duration = Duration::from_millis(10);

/// The pool of one (database, user) pair.
pub struct Pool<C> {
    key: PoolKey,
    health: Arc<ServerHealth>,
    state: Mutex<State<C>>,
}

/// Counters for `qcp-ctrl status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open (idle + lent out + being opened).
    pub open: u32,
    /// Connections idle in the pool.
    pub idle: u32,
    /// Clients queued for a connection.
    pub waiting: u32,
}

impl<C> Pool<C> {
    /// A pool over `servers` (server ids) with their `pool_size` limits.
    pub fn new(key: PoolKey, servers: Vec<(usize, u32)>, health: Arc<ServerHealth>) -> Self {
        let members = servers
            .into_iter()
            .map(|(server, limit)| Member {
                server,
                limit,
                open: 0,
                retired: false,
            })
            .collect();
        Pool {
            key,
            health,
            state: Mutex::new(State {
                idle: Vec::new(),
                members,
                waiters: VecDeque::new(),
                paused: false,
                reconnect_at: None,
            }),
        }
    }

    /// Puts a reloaded list of servers (ids and `pool_size`) in force: servers not in it
    /// are retired, limits change, and new servers join. Returns the idle connections that
    /// must go (to a retired server, or above a lowered limit) for the caller to close;
    /// connections lent out go when they come back ([`Pool::checkin`]). Clients waiting
    /// are served if a limit grew.
    pub fn reconfigure(&self, servers: &[(usize, u32)], now: Instant) -> Vec<C> {
        let mut state = self.lock();
        for member in &mut state.members {
            match servers.iter().find(|(id, _)| *id == member.server) {
                Some(&(_, limit)) => {
                    member.limit = limit;
                    member.retired = false;
                }
                None => member.retired = true,
            }
        }
        for &(server, limit) in servers {
            if !state.members.iter().any(|m| m.server == server) {
                state.members.push(Member {
                    server,
                    limit,
                    open: 0,
                    retired: false,
                });
            }
        }
        // Oldest first out: the most recently returned stay.
        let mut gone = Vec::new();
        let idle = std::mem::take(&mut state.idle);
        for entry in idle {
            let surplus = member_of(&state.members, entry.server)
                .is_none_or(|m| m.retired || m.open > m.limit);
            if surplus {
                Self::forget_locked(&mut state, entry.server);
                gone.push(entry.conn);
            } else {
                state.idle.push(entry);
            }
        }
        state.members.retain(|m| !m.retired || m.open > 0);
        self.serve_waiters_locked(&mut state, now);
        gone
    }

    /// The pool's (database, user).
    pub fn key(&self) -> &PoolKey {
        &self.key
    }

    /// Usage counters.
    pub fn stats(&self) -> PoolStats {
        let state = self.lock();
        PoolStats {
            open: state.members.iter().map(|m| m.open).sum(),
            idle: u32::try_from(state.idle.len()).unwrap_or(u32::MAX),
            // A waiter that gave up stays queued until a connection is offered to it; it is
            // not waiting any more.
            waiting: u32::try_from(
                state
                    .waiters
                    .iter()
                    .filter(|w| !w.sender.is_canceled())
                    .count(),
            )
            .unwrap_or(u32::MAX),
        }
    }

    /// How long the longest-waiting client has waited (`None` when nobody waits).
    pub fn oldest_wait(&self, now: Instant) -> Option<Duration> {
        let state = self.lock();
        state
            .waiters
            .iter()
            .filter(|w| !w.sender.is_canceled())
            .map(|w| now.saturating_duration_since(w.since))
            .max()
    }

    /// `look` applied to each idle connection, most recently returned last (for the admin
    /// console; the pool is locked meanwhile, so `look` only copies a few fields).
    pub fn idle_view<T>(&self, look: impl Fn(&C) -> T) -> Vec<T> {
        let state = self.lock();
        state.idle.iter().map(|idle| look(&idle.conn)).collect()
    }

    /// Asks for a connection: the most recently used idle one, else permission to open one on
    /// the least-loaded server that has room, else a place in the queue until `deadline`
    /// (`None`: no limit). The queue's deadlines are enforced by [`Pool::expire`], so that a
    /// wait needs no timer of its own.
    pub fn checkout(&self, now: Instant, deadline: Option<Instant>) -> Checkout<C> {
        self.checkout_on(now, deadline, None, |_| true)
    }

    /// [`Pool::checkout`] for a client of relay thread `home`: it takes the most recently
    /// used idle connection for which `prefer` holds if there is one (the relay engine
    /// prefers connections registered with the calling thread, so that they do not move
    /// between threads), else the most recently used one; and if it has to wait, a
    /// connection returned on that thread may go to it before clients ahead of it on other
    /// threads (see [`SAME_THREAD_WINDOW`]).
    pub fn checkout_on(
        &self,
        now: Instant,
        deadline: Option<Instant>,
        home: Option<usize>,
        prefer: impl Fn(&C) -> bool,
    ) -> Checkout<C> {
        let mut state = self.lock();
        if state.waiters.is_empty() && !state.paused {
            if let Some(index) = state.idle.iter().rposition(|idle| prefer(&idle.conn)) {
                // Moved to the end, where the grant takes it; the others keep their order.
                let preferred = state.idle.remove(index);
                state.idle.push(preferred);
            }
            if let Some(grant) = self.grant_locked(&mut state, now) {
                return Checkout::Now(grant);
            }
        }
        let (sender, receiver) = oneshot::channel();
        state.waiters.push_back(Waiter {
            sender,
            deadline,
            home,
            since: now,
        });
        Checkout::Wait(receiver)
    }

    /// Ends the waits whose deadline is `now` or earlier (their [`Waiting`] yields `Canceled`)
    /// and forgets those that gave up; returns the earliest deadline still pending.
    pub fn expire(&self, now: Instant) -> Option<Instant> {
        let mut state = self.lock();
        state
            .waiters
            .retain(|w| !w.sender.is_canceled() && w.deadline.is_none_or(|d| d > now));
        state.waiters.iter().filter_map(|w| w.deadline).min()
    }

    /// A connection opened under a [`Grant::Open`] slot failed or was closed: frees the slot
    /// and lets the next waiter open one.
    pub fn closed(&self, server: usize, now: Instant) {
        let mut state = self.lock();
        Self::forget_locked(&mut state, server);
        self.serve_waiters_locked(&mut state, now);
    }

    /// Gives a healthy, idle connection back: to the first waiter, else to the idle list.
    /// `born` is when it was opened (for `server_lifetime`). A connection a reload made
    /// surplus (its server removed or changed, or its limit lowered) comes back instead,
    /// its slot freed, for the caller to close.
    #[must_use = "a connection handed back must be closed"]
    pub fn checkin(&self, conn: C, server: usize, born: Instant, now: Instant) -> Option<C> {
        self.checkin_from(conn, server, born, now, None)
    }

    /// [`Pool::checkin`] of a connection that lives on relay thread `home`: a client of
    /// that thread waiting in line gets it first, unless the first in line has waited
    /// [`SAME_THREAD_WINDOW`] already.
    #[must_use = "a connection handed back must be closed"]
    pub fn checkin_from(
        &self,
        conn: C,
        server: usize,
        born: Instant,
        now: Instant,
        home: Option<usize>,
    ) -> Option<C> {
        let mut state = self.lock();
        let surplus = member_of(&state.members, server)
            .is_none_or(|m| m.retired || m.open > m.limit)
            || state.reconnect_at.is_some_and(|at| born <= at);
        if surplus {
            Self::forget_locked(&mut state, server);
            self.serve_waiters_locked(&mut state, now);
            return Some(conn);
        }
        let mut grant = Grant::Idle { conn, server, born };
        while !state.paused {
            let Some(waiter) = Self::next_waiter_locked(&mut state, home, now) else {
                break;
            };
            match waiter.sender.send(grant) {
                Ok(()) => return None,
                Err(back) => grant = back,
            }
        }
        if let Grant::Idle { conn, server, .. } = grant {
            state.idle.push(Idle {
                conn,
                server,
                since: now,
                born,
            });
        }
        None
    }

    /// Takes back a grant its client no longer wants (it gave up waiting, or was cancelled,
    /// just as the grant arrived): the connection returns to the pool, or the slot is freed.
    #[must_use = "a connection handed back must be closed"]
    pub fn give_back(&self, grant: Grant<C>, now: Instant) -> Option<C> {
        match grant {
            Grant::Idle { conn, server, born } => self.checkin(conn, server, born, now),
            Grant::Open { server } => {
                self.closed(server, now);
                None
            }
        }
    }

    /// Removes idle connections that sat unused for `idle_timeout` or outlived `lifetime`
    /// (a zero duration disables that check) and returns them for the caller to close; their
    /// slots are freed.
    pub fn reap(&self, now: Instant, idle_timeout: Duration, lifetime: Duration) -> Vec<C> {
        let mut state = self.lock();
        let mut expired = Vec::new();
        let expires = |entry: &Idle<C>| {
            let idle_too_long = !idle_timeout.is_zero()
                && now.saturating_duration_since(entry.since) >= idle_timeout;
            let too_old =
                !lifetime.is_zero() && now.saturating_duration_since(entry.born) >= lifetime;
            idle_too_long || too_old
        };
        // Kept in order (most recently returned last).
        let (gone, kept): (Vec<Idle<C>>, Vec<Idle<C>>) = std::mem::take(&mut state.idle)
            .into_iter()
            .partition(expires);
        state.idle = kept;
        for entry in gone {
            Self::forget_locked(&mut state, entry.server);
            expired.push(entry.conn);
        }
        if !expired.is_empty() {
            self.serve_waiters_locked(&mut state, now);
        }
        expired
    }

    /// PAUSE: from now on no connection is handed out; clients queue (up to their deadline)
    /// until [`Pool::resume`]. Returns false if the pool was paused already.
    pub fn pause(&self) -> bool {
        !std::mem::replace(&mut self.lock().paused, true)
    }

    /// RESUME: hands connections out again, to the clients queued first. Returns false if the
    /// pool was not paused.
    pub fn resume(&self, now: Instant) -> bool {
        let mut state = self.lock();
        let was = std::mem::replace(&mut state.paused, false);
        self.serve_waiters_locked(&mut state, now);
        was
    }

    /// True while paused.
    pub fn is_paused(&self) -> bool {
        self.lock().paused
    }

    /// Connections lent out to clients or being opened (what PAUSE waits for).
    pub fn in_use(&self) -> u32 {
        let state = self.lock();
        let open: u32 = state.members.iter().map(|m| m.open).sum();
        open.saturating_sub(u32::try_from(state.idle.len()).unwrap_or(u32::MAX))
    }

    /// RECONNECT: every connection open now is replaced: the idle ones are returned for the
    /// caller to close, the others are handed back by [`Pool::checkin`] when released.
    pub fn reconnect(&self, now: Instant) -> Vec<C> {
        let mut state = self.lock();
        state.reconnect_at = Some(now);
        let idle = std::mem::take(&mut state.idle);
        for entry in &idle {
            Self::forget_locked(&mut state, entry.server);
        }
        self.serve_waiters_locked(&mut state, now);
        idle.into_iter().map(|entry| entry.conn).collect()
    }

    /// Takes every idle connection out (for shutdown); their slots are freed.
    pub fn drain_idle(&self) -> Vec<C> {
        let mut state = self.lock();
        let idle = std::mem::take(&mut state.idle);
        for entry in &idle {
            Self::forget_locked(&mut state, entry.server);
        }
        idle.into_iter().map(|entry| entry.conn).collect()
    }

    /// The waiter a connection returned on thread `home` goes to (see [`Pool::checkin_from`]).
    fn next_waiter_locked(
        state: &mut State<C>,
        home: Option<usize>,
        now: Instant,
    ) -> Option<Waiter<C>> {
        let first = state.waiters.front()?;
        let pass_over = home.is_some()
            && first.home != home
            && now.saturating_duration_since(first.since) < SAME_THREAD_WINDOW;
        if pass_over {
            let local = state
                .waiters
                .iter()
                .position(|w| w.home == home && !w.sender.is_canceled());
            if let Some(index) = local {
                return state.waiters.remove(index);
            }
        }
        state.waiters.pop_front()
    }

    fn grant_locked(&self, state: &mut State<C>, now: Instant) -> Option<Grant<C>> {
        if let Some(entry) = state.idle.pop() {
            return Some(Grant::Idle {
                conn: entry.conn,
                server: entry.server,
                born: entry.born,
            });
        }
        let slot = self.pick_server_locked(state, now)?;
        let member = state.members.get_mut(slot)?;
        member.open = member.open.saturating_add(1);
        Some(Grant::Open {
            server: member.server,
        })
    }

    /// The least-loaded server with room, preferring servers not in back-off after a failed
    /// connection; a server in back-off is still tried when no other has room, so a restarted
    /// server is used again at once.
    fn pick_server_locked(&self, state: &State<C>, now: Instant) -> Option<usize> {
        let candidates = state
            .members
            .iter()
            .enumerate()
            .filter(|(_, m)| !m.retired && m.open < m.limit);
        let mut best: Option<(bool, u32, usize)> = None;
        for (slot, member) in candidates {
            let backing_off = self.health.backing_off(member.server, now);
            let rank = (backing_off, member.open, slot);
            if best.is_none_or(|b| rank < b) {
                best = Some(rank);
            }
        }
        best.map(|(_, _, slot)| slot)
    }

    fn serve_waiters_locked(&self, state: &mut State<C>, now: Instant) {
        while !state.waiters.is_empty() && !state.paused {
            let Some(grant) = self.grant_locked(state, now) else {
                return;
            };
            let mut grant = grant;
            loop {
                let Some(waiter) = state.waiters.pop_front() else {
                    // Nobody left to take it: undo.
                    self.undo_grant_locked(state, grant, now);
                    return;
                };
                match waiter.sender.send(grant) {
                    Ok(()) => break,
                    Err(back) => grant = back,
                }
            }
        }
    }

    fn undo_grant_locked(&self, state: &mut State<C>, grant: Grant<C>, now: Instant) {
        match grant {
            Grant::Idle { conn, server, born } => state.idle.push(Idle {
                conn,
                server,
                since: now,
                born,
            }),
            Grant::Open { server } => Self::forget_locked(state, server),
        }
    }

    /// One connection to `server` is no longer open; a retired server goes with its last.
    fn forget_locked(state: &mut State<C>, server: usize) {
        if let Some(member) = state.members.iter_mut().find(|m| m.server == server) {
            member.open = member.open.saturating_sub(1);
        }
        state.members.retain(|m| !m.retired || m.open > 0);
    }

    fn lock(&self) -> MutexGuard<'_, State<C>> {
        // Every update under this lock is a few field writes that cannot be left half done.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The member for `server`, if it is one of the pool's.
fn member_of(members: &[Member], server: usize) -> Option<&Member> {
    members.iter().find(|m| m.server == server)
}

#[cfg(test)]
mod tests;

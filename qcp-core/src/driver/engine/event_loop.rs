//! One engine thread: waits for readiness with `epoll` (through mio), routes each event to
//! the client it concerns, and reads its inbox (commands from the async side, clients whose
//! waker fired) before it sleeps again.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::{Events, Poll};
use slab::Slab;
use tracing::{error, warn};

use super::client::{Client, Life, Readiness};
use super::{wake, Command, Loop, WAKER};
use crate::driver::shared::Shared;

/// What a token of this thread stands for.
pub enum Entry {
    /// A logged-in client.
    Client(Box<Client>),
    /// A client being driven right now (taken out of its slot meanwhile).
    Driving,
    /// A server connection registered with this thread.
    Server {
        /// The client it is linked to, if any.
        owner: Option<usize>,
        /// While idle, the kernel reported input or a close: check it before use.
        heard: bool,
    },
}

/// The state of one engine thread, passed to the client being driven.
pub struct Context<'a> {
    /// This thread's shared part.
    pub home: &'a Arc<Loop>,
    /// The instance.
    pub shared: &'a Arc<Shared>,
    /// Every token of this thread.
    pub slab: &'a mut Slab<Entry>,
    /// Deadlines: (when, client token, client serial).
    pub timers: &'a mut BinaryHeap<Reverse<(Instant, usize, u64)>>,
    /// When the thread last woke up, in µs since the instance started (at least 1): the
    /// statistics' clock, read once per wake-up rather than per event.
    pub now_us: u64,
}

struct Thread {
    home: Arc<Loop>,
    shared: Arc<Shared>,
    slab: Slab<Entry>,
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    /// Serial numbers for new clients (a token is reused, a serial never).
    serials: u64,
    /// See [`Context::now_us`].
    now_us: u64,
    /// When the thread last woke up.
    now: Instant,
}

/// Runs engine thread `home` for the life of the process.
pub fn run(mut poll: Poll, home: Arc<Loop>, shared: Arc<Shared>) {
    wake::enter(home.index);
    let mut thread = Thread {
        home,
        shared,
        slab: Slab::new(),
        timers: BinaryHeap::new(),
        serials: 0,
        now_us: 1,
        now: Instant::now(),
    };
    let mut events = Events::with_capacity(1024);
    loop {
        let timeout = thread.next_timeout();
        if let Err(error) = poll.poll(&mut events, timeout) {
            if error.kind() != std::io::ErrorKind::Interrupted {
                error!(%error, "engine thread: epoll_wait failed");
                std::thread::sleep(Duration::from_millis(10));
            }
            continue;
        }
        thread.tick();
        for event in events.iter() {
            thread.dispatch(event);
        }
        // Commands and wake-ups may lead to more of both (a release hands a connection to a
        // client of this same thread): read until nothing is left, then sleep.
        while thread.read_inbox() | thread.fire_timers() {}
    }
}

impl Thread {
    fn context(&mut self) -> Context<'_> {
        Context {
            home: &self.home,
            shared: &self.shared,
            slab: &mut self.slab,
            timers: &mut self.timers,
            now_us: self.now_us,
        }
    }

    /// Sets the statistics' clock (once per wake-up).
    fn tick(&mut self) {
        let now = Instant::now();
        self.now = now;
        self.now_us = self.shared.micros_at(now);
    }

    fn next_timeout(&self) -> Option<Duration> {
        let Reverse((when, _, _)) = self.timers.peek()?;
        Some(when.saturating_duration_since(Instant::now()))
    }

    /// Routes one readiness event.
    fn dispatch(&mut self, event: &Event) {
        let token = event.token();
        if token == WAKER {
            return;
        }
        let token = token.0;
        let readiness = Readiness {
            readable: event.is_readable(),
            writable: event.is_writable() || event.is_write_closed() || event.is_error(),
            closed: event.is_read_closed() || event.is_error(),
        };
        let owner = match self.slab.get_mut(token) {
            Some(Entry::Client(client)) => {
                client.client_ready(readiness);
                token
            }
            Some(Entry::Server {
                owner: Some(owner), ..
            }) => {
                let owner = *owner;
                if let Some(Entry::Client(client)) = self.slab.get_mut(owner) {
                    client.server_ready(readiness);
                }
                owner
            }
            Some(Entry::Server { owner: None, heard }) => {
                // An idle backend says nothing: input or a close means it is going away.
                *heard |= readiness.readable || readiness.closed;
                return;
            }
            _ => return,
        };
        self.drive(owner, None);
    }

    /// Runs client `token` (if it still has serial `serial`, when given) until it waits.
    fn drive(&mut self, token: usize, serial: Option<u64>) {
        let Some(entry) = self.slab.get_mut(token) else {
            return;
        };
        if let (Entry::Client(client), Some(serial)) = (&*entry, serial) {
            if client.serial() != serial {
                return;
            }
        }
        let Entry::Client(mut client) = std::mem::replace(entry, Entry::Driving) else {
            // Not a client (a server token, or the client being driven): put it back.
            if let Entry::Driving = entry {
                warn!(token, "engine: a client was driven from inside itself");
            }
            return;
        };
        let life = client.drive(&mut self.context());
        match life {
            Life::Alive => {
                if let Some(slot) = self.slab.get_mut(token) {
                    *slot = Entry::Client(client);
                }
            }
            Life::Ended => {
                self.slab.try_remove(token);
            }
        }
    }

    /// Acts on what the inbox holds; `true` if it held anything.
    fn read_inbox(&mut self) -> bool {
        let inbox = self.home.take_inbox();
        let busy = !inbox.commands.is_empty() || !inbox.woken.is_empty();
        for command in inbox.commands {
            match command {
                Command::Adopt(adopted) => {
                    let entry = self.slab.vacant_entry();
                    let token = entry.key();
                    self.serials = self.serials.wrapping_add(1);
                    let client =
                        Client::new(*adopted, token, self.serials, &self.home, &self.shared);
                    entry.insert(Entry::Client(Box::new(client)));
                    if let Some(Entry::Client(client)) = self.slab.get_mut(token) {
                        if let Some(socket) = client.stream() {
                            if let Err(error) = self.home.register(socket, token) {
                                warn!(%error, "engine: cannot register a client socket");
                            }
                        }
                    }
                    self.drive(token, None);
                }
                Command::Opened {
                    token,
                    serial,
                    result,
                } => {
                    self.with_client(token, serial, |client, cx| client.opened(result, cx));
                }
                Command::Synced {
                    token,
                    serial,
                    conn,
                    wanted,
                    result,
                } => {
                    self.with_client(token, serial, |client, cx| {
                        client.synced(conn, *wanted, result, cx)
                    });
                }
                Command::Forget(token) => {
                    if let Some(Entry::Server { .. }) = self.slab.get(token) {
                        self.slab.remove(token);
                    }
                }
            }
        }
        for token in inbox.woken {
            self.drive(token, None);
        }
        busy
    }

    /// Hands a command's result to client `token` if it is still the one with `serial`
    /// (else the result is dropped: a connection in it closes, freeing its pool slot).
    fn with_client(
        &mut self,
        token: usize,
        serial: u64,
        f: impl FnOnce(&mut Client, &mut Context<'_>),
    ) {
        let Some(entry) = self.slab.get_mut(token) else {
            return;
        };
        match &*entry {
            Entry::Client(client) if client.serial() == serial => {}
            _ => return,
        }
        let Entry::Client(mut client) = std::mem::replace(entry, Entry::Driving) else {
            return;
        };
        let span = client.span().clone();
        let entered = span.enter();
        f(&mut client, &mut self.context());
        drop(entered);
        if let Some(slot) = self.slab.get_mut(token) {
            *slot = Entry::Client(client);
        }
        self.drive(token, Some(serial));
    }

    /// Drives the clients whose deadline passed; `true` if any did.
    fn fire_timers(&mut self) -> bool {
        // The wake-up's own instant: a deadline that falls due meanwhile is seen when the
        // next sleep's timeout (computed afresh) ends at once.
        let now = self.now;
        let mut fired = false;
        while let Some(Reverse((when, token, serial))) = self.timers.peek().copied() {
            if when > now {
                break;
            }
            self.timers.pop();
            fired = true;
            self.drive(token, Some(serial));
        }
        fired
    }
}

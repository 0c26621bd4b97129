//! A deterministic stand-in for the driver: scripted client and server bytes, an in-memory
//! pool of backends, and the same read/scan/write order as `driver/engine/client.rs`, so
//! session scenarios run without sockets, tasks or PostgreSQL. Used by the session tests
//! (`tests/`) and the `session` fuzz target (feature `fuzzing`); not part of qcp itself.
// Test support: a harness that panics is a failed test, which is what it is for.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    missing_docs
)]

use std::sync::Arc;

use qcp_codec::{encode, Header, Limits, TransactionStatus};

use crate::arena::Arena;
use crate::relay::params::{ClientParams, ParamSource, Params};
use crate::relay::session::{Backend, Event, Peer, Session, Space};
use crate::relay::statements::Registry;

/// What the harness saw the session ask for, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// Linked backend `id` for a request.
    Linked(u32),
    /// Set backend `id`'s parameters to what the client expects before linking it (the
    /// driver's parameter sync).
    Synced(u32),
    /// Gave backend `id` back.
    Released(u32),
    /// Needed a backend and none was free (the request waits).
    Waiting,
    /// Needed a chunk from `peer` and the arena had none.
    NeedChunk(Peer),
    /// The client left.
    ClientGone,
    /// The server connection closed.
    ServerGone,
    /// The client was refused with this SQLSTATE.
    ClientError(&'static str),
    /// The server sent unframeable bytes.
    ServerError,
}

/// One client session with its peers simulated in memory.
pub struct Harness {
    pub arena: Arc<Arena>,
    /// The pool's statements, shared with [`Harness::another_client`]s.
    pub registry: Arc<Registry>,
    pub session: Session<u32>,
    /// Backends in the pool (most recently returned last), boxed as the session links them.
    #[allow(clippy::vec_box)]
    pub pool: Vec<Box<Backend<u32>>>,
    /// Bytes the client sent that the session has not read yet.
    client_in: Vec<u8>,
    /// Bytes the linked server sent that the session has not read yet.
    server_in: Vec<u8>,
    /// Everything written to the client, in order.
    pub client_got: Vec<u8>,
    /// Everything written to the linked server since the last `take_server`.
    pub server_got: Vec<u8>,
    /// The most bytes one read or write moves (small values exercise partial I/O).
    pub io_limit: usize,
    /// The client closed its socket (after its bytes are read).
    pub client_closed: bool,
    /// The server closed its socket.
    pub server_closed: bool,
    /// What happened, in order.
    pub seen: Vec<Seen>,
    /// The request waiting for a backend, if any.
    pub waiting: Option<Header>,
    /// A driver stop: a close or error ended the session.
    pub ended: bool,
}

impl Harness {
    /// A Smart-mode session over `backends` pool connections, with an arena of `chunks`
    /// chunks of `chunk_size` bytes.
    pub fn new(smart: bool, backends: u32, chunk_size: usize, chunks: usize) -> Self {
        Harness::with_arena(smart, backends, Arena::new(chunk_size, chunks))
    }

    /// As [`Harness::new`], on an arena that already exists (an arena is never freed, so a
    /// fuzz target that runs millions of sessions reuses a few).
    pub fn with_arena(smart: bool, backends: u32, arena: Arc<Arena>) -> Self {
        let mut harness = Harness::client_of(smart, arena, Arc::new(Registry::default()), &[]);
        harness.pool = (1..=backends)
            .rev()
            .map(|id| Box::new(Backend::new(id, Params::new())))
            .collect();
        harness
    }

    /// Smart mode, one backend, a roomy arena, a client that set `params` at start-up.
    pub fn smart_with(params: &[(&str, &str)]) -> Self {
        let registry = Arc::new(Registry::default());
        let mut harness = Harness::client_of(true, Arena::new(4096, 16), registry, params);
        harness.pool.push(Box::new(Backend::new(1, Params::new())));
        harness
    }

    /// Another Smart-mode client of the same pool (same arena, same statements) that set
    /// `params` at start-up. It has no backend: move them between the harnesses' `pool`s.
    pub fn another_client(&self, params: &[(&str, &str)]) -> Self {
        let (arena, registry) = (Arc::clone(&self.arena), Arc::clone(&self.registry));
        Harness::client_of(true, arena, registry, params)
    }

    fn client_of(
        smart: bool,
        arena: Arc<Arena>,
        registry: Arc<Registry>,
        params: &[(&str, &str)],
    ) -> Self {
        let mut wanted = ClientParams::new(Arc::new(Params::new()));
        for (name, value) in params {
            wanted.set(name, value);
        }
        let session = Session::new(
            smart,
            Limits::new(Limits::POSTGRES_STARTUP, 1 << 30),
            Arc::clone(&registry),
            wanted,
            None,
        );
        Harness {
            arena,
            registry,
            session,
            pool: Vec::new(),
            client_in: Vec::new(),
            server_in: Vec::new(),
            client_got: Vec::new(),
            server_got: Vec::new(),
            io_limit: usize::MAX,
            client_closed: false,
            server_closed: false,
            seen: Vec::new(),
            waiting: None,
            ended: false,
        }
    }

    /// Smart mode, one backend, a roomy arena.
    pub fn smart() -> Self {
        Harness::new(true, 1, 4096, 16)
    }

    /// Session mode, one backend, a roomy arena.
    pub fn session_mode() -> Self {
        Harness::new(false, 1, 4096, 16)
    }

    /// The client sends `bytes`; the session runs until nothing moves.
    pub fn client(&mut self, bytes: &[u8]) -> &mut Self {
        self.client_in.extend_from_slice(bytes);
        self.run();
        self
    }

    /// The linked server sends `bytes`; the session runs until nothing moves.
    pub fn server(&mut self, bytes: &[u8]) -> &mut Self {
        self.server_in.extend_from_slice(bytes);
        self.run();
        self
    }

    /// What the server received since the last call.
    pub fn take_server(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.server_got)
    }

    /// What the client received since the last call.
    pub fn take_client(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.client_got)
    }

    /// The id of the linked backend.
    pub fn linked(&self) -> Option<u32> {
        self.session.linked().map(|b| b.io)
    }

    /// Chunks the session holds now.
    pub fn chunks_held(&self) -> usize {
        self.arena.stats().in_use
    }

    /// A backend comes back to the pool while a request waits: the session gets it.
    pub fn backend_freed(&mut self, id: u32) {
        self.pool.push(Box::new(Backend::new(id, Params::new())));
        if let Some(_header) = self.waiting.take() {
            self.link_one();
        }
        self.run();
    }

    /// The client cancels the request that waits for a backend.
    pub fn cancel_waiting(&mut self) {
        let header = self.waiting.take().expect("a request waits");
        self.session.cancelled_while_waiting(header);
        self.run();
    }

    /// Links the most recently returned backend, after the driver's parameter sync if its
    /// parameters differ from what the client expects (the sync is taken to succeed, and the
    /// backend then has the client's values).
    fn link_one(&mut self) {
        let mut backend = self.pool.pop().expect("a backend is free");
        self.session.claim(&mut backend);
        let wanted = self.session.wanted();
        if !wanted.is_in_line(&backend.params) {
            let sets: Vec<(String, String)> = wanted
                .differences(&backend.params)
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect();
            let resets: Vec<String> = wanted.extras(&backend.params).map(str::to_owned).collect();
            for (name, value) in sets {
                backend.params.set(&name, &value);
            }
            for name in resets {
                backend.params.remove(&name);
            }
            self.seen.push(Seen::Synced(backend.io));
        }
        self.seen.push(Seen::Linked(backend.io));
        self.session.link(backend, 200);
    }

    /// Runs the loop the driver runs, until nothing moves or the session waits.
    pub fn run(&mut self) {
        for _ in 0..10_000 {
            if self.ended || self.waiting.is_some() {
                return;
            }
            match self.step() {
                Ok(true) => continue,
                Ok(false) => return,
                Err(event) => {
                    if !self.handle(event) {
                        return;
                    }
                }
            }
        }
        panic!("the session kept moving for 10,000 steps");
    }

    /// One pass of the driver's loop; `Ok(false)` when nothing moved.
    fn step(&mut self) -> Result<bool, Event> {
        let mut progress = false;
        let mut need_chunk = None;
        progress |= self.write(Peer::Client);
        if self.session.is_linked() {
            progress |= self.session.scan_down()?;
            match self.read(Peer::Server) {
                Some(moved) => progress |= moved,
                None => need_chunk = Some(Peer::Server),
            }
        }
        progress |= self.session.scan_up()?;
        progress |= self.write(Peer::Server);
        match self.read(Peer::Client) {
            Some(moved) => progress |= moved,
            None => need_chunk = need_chunk.or(Some(Peer::Client)),
        }
        self.session.release_idle_chunks();
        if let Some(peer) = need_chunk {
            if !progress {
                return Err(Event::NeedChunk(peer));
            }
            return Ok(true);
        }
        if self.session.wants_release() {
            return Err(Event::Release);
        }
        Ok(progress)
    }

    /// Acts on an event as the driver would; `true` if the loop goes on.
    fn handle(&mut self, event: Event) -> bool {
        match event {
            Event::NeedServer(header) => {
                if self.pool.is_empty() {
                    self.seen.push(Seen::Waiting);
                    self.waiting = Some(header);
                    return false;
                }
                self.link_one();
                true
            }
            Event::Release => {
                let backend = self.session.unlink().expect("linked");
                self.seen.push(Seen::Released(backend.io));
                self.pool.push(backend);
                true
            }
            Event::NeedChunk(peer) => {
                self.seen.push(Seen::NeedChunk(peer));
                false
            }
            Event::ClientGone => self.end(Seen::ClientGone),
            Event::ServerGone => self.end(Seen::ServerGone),
            Event::ClientError(error) => self.end(Seen::ClientError(error.code)),
            Event::ServerError(_) => self.end(Seen::ServerError),
        }
    }

    fn end(&mut self, seen: Seen) -> bool {
        self.seen.push(seen);
        self.ended = true;
        false
    }

    fn write(&mut self, peer: Peer) -> bool {
        let (own, relayed) = match peer {
            Peer::Client => self.session.client_output(),
            Peer::Server => self.session.server_output(),
        };
        let mut bytes = own.to_vec();
        bytes.extend_from_slice(relayed);
        let n = bytes.len().min(self.io_limit);
        if n == 0 {
            return false;
        }
        let sink = match peer {
            Peer::Client => &mut self.client_got,
            Peer::Server => &mut self.server_got,
        };
        sink.extend_from_slice(&bytes[..n]);
        match peer {
            Peer::Client => self.session.client_written(n),
            Peer::Server => self.session.server_written(n),
        }
        true
    }

    /// `None`: the peer has bytes and no chunk is free.
    fn read(&mut self, peer: Peer) -> Option<bool> {
        let pending = match peer {
            Peer::Client => self.client_in.len(),
            Peer::Server => self.server_in.len(),
        };
        let closed = match peer {
            Peer::Client => self.client_closed,
            Peer::Server => self.server_closed,
        };
        if pending == 0 && !closed {
            return Some(false);
        }
        if pending == 0 && closed {
            // End of stream: reported as the driver reports a read of 0.
            let event = match peer {
                Peer::Client => Seen::ClientGone,
                Peer::Server => Seen::ServerGone,
            };
            self.end(event);
            return Some(false);
        }
        let limit = self.io_limit;
        let (space, _) = self.session.read_space(peer, &self.arena);
        let space = match space {
            Space::Free(space) => space,
            Space::Full => return Some(false),
            Space::NeedChunk => return None,
        };
        let source = match peer {
            Peer::Client => &mut self.client_in,
            Peer::Server => &mut self.server_in,
        };
        let n = space.len().min(source.len()).min(limit);
        space[..n].copy_from_slice(&source[..n]);
        source.drain(..n);
        self.session.received(peer, n);
        Some(true)
    }
}

/// A simple Query.
pub fn query(sql: &str) -> Vec<u8> {
    let mut out = Vec::new();
    encode::query(&mut out, sql).unwrap();
    out
}

/// ReadyForQuery with `status`.
pub fn ready(status: TransactionStatus) -> Vec<u8> {
    let mut out = Vec::new();
    encode::ready_for_query(&mut out, status);
    out
}

/// A whole simple-query answer: CommandComplete `tag`, then ReadyForQuery `status`.
pub fn done(tag: &str, status: TransactionStatus) -> Vec<u8> {
    let mut out = Vec::new();
    encode::command_complete(&mut out, tag).unwrap();
    encode::ready_for_query(&mut out, status);
    out
}

/// Concatenates messages.
pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Builds messages with `f` (an encoder writing into a buffer).
pub fn msg(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    f(&mut out);
    out
}

/// The tags of the messages in `bytes`, in order (panics on a partial message).
pub fn tags(bytes: &[u8]) -> Vec<char> {
    let mut tags = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let header = Header::parse(rest).unwrap().expect("a whole header");
        tags.push(header.tag.0 as char);
        rest = &rest[header.frame_len()..];
    }
    tags
}

/// The SQLSTATE of the first ErrorResponse in `bytes`.
pub fn error_code(bytes: &[u8]) -> Option<String> {
    let mut rest = bytes;
    while !rest.is_empty() {
        let header = Header::parse(rest).ok()??;
        let body = &rest[qcp_codec::HEADER_LEN..header.frame_len()];
        if header.tag == qcp_codec::Tag::ERROR_RESPONSE {
            let mut fields = body.split(|&b| b == 0);
            return fields
                .find(|f| f.first() == Some(&b'C'))
                .map(|f| String::from_utf8_lossy(&f[1..]).into_owned());
        }
        rest = &rest[header.frame_len()..];
    }
    None
}

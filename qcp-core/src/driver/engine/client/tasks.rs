//! The work an engine thread hands to async-std for a client: opening a server connection,
//! a parameter sync, and the end of a session (last words, DISCARD ALL, cancel). Results
//! come back as [`Command`]s.

use super::end::give_back;
use super::*;
use crate::stats::Counter;

/// Opens a server connection for a client, on the async side.
pub(super) struct OpenTask {
    pub(super) shared: Arc<Shared>,
    pub(super) entry: Arc<PoolEntry>,
    pub(super) credentials: Arc<Credentials>,
    pub(super) home: Arc<Loop>,
    pub(super) token: usize,
    pub(super) serial: u64,
    pub(super) server: usize,
}

impl OpenTask {
    pub(super) async fn run(self) {
        let opening = self.entry.opening();
        let result = self.open().await;
        drop(opening);
        self.home.send(Command::Opened {
            token: self.token,
            serial: self.serial,
            result,
        });
    }

    async fn open(&self) -> Result<Box<ServerConn>, LinkFailure> {
        let shared = &self.shared;
        let server = self.server;
        let tls = shared.tls();
        let (Some(config), Some(tls)) = (shared.server(server), tls.server(server)) else {
            // A reload removed the server after the pool granted it: another may serve.
            self.entry.pool.closed(server, Instant::now());
            return Err(LinkFailure::Unreachable {
                server: format!("server {server}"),
                error: ServerError::Connect(std::io::Error::other(
                    "the server was removed from the configuration by a reload",
                )),
            });
        };
        // The login's replies need a buffer only now, not while queued for the grant.
        let Some(mut inbox) = shared.server_inbox().await else {
            self.entry.pool.closed(server, Instant::now());
            return Err(LinkFailure::Refused(link_error_fatal(LinkError::Arena)));
        };
        let context = LoginContext {
            inbox: &mut inbox,
            limit: shared.config().timeouts.server_connect,
            limits: shared.limits(),
            scram_cache: &shared.scram_cache,
            tls,
            id: shared.clients.next_id(),
        };
        let database = &self.entry.pool.key().database;
        match server::open(
            server,
            &config.address,
            database,
            &self.credentials,
            context,
        )
        .await
        {
            Ok(conn) => {
                shared.health.succeeded(server);
                Shared::count(&shared.stats.server_connects);
                self.entry.counters.add(Counter::ServerConnects, 1);
                debug!(server = %config.address, pid = conn.pid(), "opened server connection");
                Ok(conn)
            }
            Err(error) => {
                self.entry.pool.closed(server, Instant::now());
                self.entry.counters.add(Counter::ServerConnectFailures, 1);
                warn!(server = %config.address, %error, "server login failed");
                let unreachable = matches!(
                    error,
                    ServerError::Connect(_) | ServerError::TimedOut | ServerError::Closed
                );
                if unreachable {
                    shared.health.failed(server, Instant::now());
                    return Err(LinkFailure::Unreachable {
                        server: config.address.clone(),
                        error,
                    });
                }
                Err(LinkFailure::Refused(link_error_fatal(LinkError::Server {
                    server: config.address.clone(),
                    error,
                })))
            }
        }
    }
}

/// Brings a connection's parameters in line with a client's, on the async side.
pub(super) struct SyncTask {
    pub(super) shared: Arc<Shared>,
    pub(super) home: Arc<Loop>,
    pub(super) token: usize,
    pub(super) serial: u64,
    pub(super) smart: bool,
    pub(super) wanted: Box<ClientParams>,
    pub(super) conn: Box<ServerConn>,
}

impl SyncTask {
    pub(super) async fn run(mut self) {
        let result =
            bring_in_line(&self.shared, &mut self.conn, &mut self.wanted, self.smart).await;
        self.home.send(Command::Synced {
            token: self.token,
            serial: self.serial,
            conn: self.conn,
            wanted: self.wanted,
            result,
        });
    }
}

/// The end of a session, on the async side: last words to the client, then the server
/// connection back to the pool (Session mode: after `DISCARD ALL`) or closed.
pub(super) struct Finish {
    pub(super) shared: Arc<Shared>,
    pub(super) entry: Arc<PoolEntry>,
    pub(super) stream: Stream,
    pub(super) last_words: Vec<u8>,
    pub(super) conn: Option<Box<ServerConn>>,
    pub(super) clean: bool,
    pub(super) busy: bool,
    pub(super) smart: bool,
    pub(super) guard: async_std::channel::Sender<()>,
}

impl Finish {
    pub(super) async fn run(self) {
        let Finish {
            shared,
            entry,
            mut stream,
            last_words,
            conn,
            clean,
            busy,
            smart,
            guard,
        } = self;
        if !last_words.is_empty() {
            let _ = timeout(Duration::from_secs(1), stream.write_all(&last_words)).await;
        }
        stream.goodbye(&[]);
        drop(stream);
        if let Some(mut conn) = conn {
            if !clean {
                // Mid-transaction or mid-result: closing is the only state PostgreSQL
                // cleans up for sure (it rolls back). A running query is cancelled first so
                // its locks go at once rather than when it next writes.
                if busy {
                    crate::driver::cancel::send(&conn.io.cancel, Duration::from_secs(2)).await;
                }
                debug!(
                    server_pid = conn.pid(),
                    "closing server connection left mid-transaction"
                );
                entry.pool.closed(conn.io.server, Instant::now());
            } else if !smart {
                // Session mode: reset everything the client may have changed.
                let reset = async {
                    let mut inbox = Inbox::new(shared.arena.acquire(Priority::Linked).await);
                    conn.run_internal("DISCARD ALL", &mut inbox, &shared.limits(), |_, _| {})
                        .await
                };
                match timeout(shared.config().timeouts.server_connect, reset).await {
                    Ok(Ok(_)) => give_back(&shared, &entry, conn),
                    _ => entry.pool.closed(conn.io.server, Instant::now()),
                }
            } else {
                give_back(&shared, &entry, conn);
            }
        }
        drop(guard);
    }
}

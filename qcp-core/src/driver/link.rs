//! Getting a server connection for a client: from the pool's idle list, by opening a new one,
//! or by waiting in line.

use std::time::Instant;

use tracing::{debug, warn};

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use futures::channel::oneshot;
use futures::future::{select, Either};

use super::clients::ClientHandle;
use super::io::Inbox;
use super::server::{self, Credentials, LoginContext, ServerConn, ServerError};
use super::shared::{PoolEntry, Shared};
use crate::arena::Priority;
use crate::pool::{Checkout, Grant};

/// Leaves the pool's queue: a grant that arrived in the meantime goes back to the pool
/// instead of being lost with the receiver.
fn abandon(entry: &PoolEntry, waiting: &mut oneshot::Receiver<Grant<Box<ServerConn>>>) {
    waiting.close();
    if let Ok(Some(grant)) = waiting.try_recv() {
        entry.pool.give_back(grant, Instant::now());
    }
}

/// Why no server connection could be had.
#[derive(Debug)]
pub enum LinkError {
    /// Every connection stayed busy for `timeouts.query_wait`.
    PoolTimeout,
    /// The client cancelled its request while it waited.
    Canceled,
    /// No arena chunk for the server login within `timeouts.query_wait`.
    Arena,
    /// Opening a connection failed on every server that could serve the client.
    Server { server: String, error: ServerError },
}

/// Takes a server connection for `database` from `entry`'s pool, opening one if the pool has
/// room. A connection that went bad while idle is dropped and another taken. When opening
/// fails on one server, the others that serve the database are tried before giving up.
pub async fn acquire(
    shared: &Shared,
    entry: &PoolEntry,
    database: &str,
    credentials: &Arc<Credentials>,
    client: Option<&ClientHandle>,
) -> Result<Box<ServerConn>, LinkError> {
    let mut failures = 0usize;
    loop {
        let now = Instant::now();
        let deadline = Some(shared.config.timeouts.query_wait)
            .filter(|limit| !limit.is_zero())
            .map(|limit| now + limit);
        let grant = match entry.pool.checkout(now, deadline) {
            Checkout::Now(grant) => grant,
            Checkout::Wait(mut waiting) => {
                if let Some(deadline) = deadline {
                    shared.wait_timer.queued(deadline);
                }
                shared.stats.waiting.fetch_add(1, Relaxed);
                if let Some(client) = client {
                    client.set_waiting(true);
                }
                let cancelled = async {
                    match client {
                        Some(client) => client.cancelled().await,
                        None => std::future::pending().await,
                    }
                };
                let cancelled = std::pin::pin!(cancelled);
                // No timer here: the pool ends the wait at its deadline (see wait_timer).
                let outcome = select(&mut waiting, cancelled).await;
                shared.stats.waiting.fetch_sub(1, Relaxed);
                if let Some(client) = client {
                    client.set_waiting(false);
                }
                match outcome {
                    Either::Left((Ok(grant), _)) => grant,
                    // The pool drops a waiter only once its deadline has passed.
                    Either::Left((Err(_), _)) => return Err(LinkError::PoolTimeout),
                    Either::Right(_) => {
                        abandon(entry, &mut waiting);
                        return Err(LinkError::Canceled);
                    }
                }
            }
        };
        match grant {
            Grant::Idle { conn, server, .. } => {
                if conn.is_healthy() {
                    return Ok(conn);
                }
                debug!(
                    server,
                    pid = conn.pid(),
                    "dropping a pooled server connection that went away while idle"
                );
                drop(conn);
                entry.pool.closed(server, Instant::now());
            }
            Grant::Open { server } => {
                let config = &shared.config.servers[server];
                // The login's replies need a buffer only now, not while queued for the grant.
                let Ok(mut inbox) = Inbox::acquire(
                    &shared.arena,
                    Priority::Linked,
                    shared.config.timeouts.query_wait,
                )
                .await
                else {
                    entry.pool.closed(server, Instant::now());
                    return Err(LinkError::Arena);
                };
                let context = LoginContext {
                    inbox: &mut inbox,
                    limit: shared.config.timeouts.server_connect,
                    limits: shared.limits,
                    scram_cache: &shared.scram_cache,
                };
                match server::open(server, &config.address, database, credentials, context).await {
                    Ok(conn) => {
                        shared.health.succeeded(server);
                        Shared::count(&shared.stats.server_connects);
                        debug!(server = %config.address, pid = conn.pid(), "opened server connection");
                        return Ok(conn);
                    }
                    Err(error) => {
                        entry.pool.closed(server, Instant::now());
                        let unreachable = matches!(
                            error,
                            ServerError::Connect(_) | ServerError::TimedOut | ServerError::Closed
                        );
                        warn!(server = %config.address, %error, "server login failed");
                        if unreachable {
                            shared.health.failed(server, Instant::now());
                            failures += 1;
                            // Another server may serve this database: try it before failing.
                            if failures < shared.config.servers.len() {
                                continue;
                            }
                        }
                        return Err(LinkError::Server {
                            server: config.address.clone(),
                            error,
                        });
                    }
                }
            }
        }
    }
}

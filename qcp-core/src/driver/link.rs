//! Getting a server connection on the async side, for the first login of a pool (which
//! learns the server's parameters to greet clients with): from the pool's idle list, by
//! opening a new one, or by waiting in line. Logged-in clients get theirs on their relay
//! thread (`engine/client/link.rs`).

use std::time::Instant;

use tracing::{debug, warn};

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::server::{self, Credentials, LoginContext, ServerConn, ServerError};
use super::shared::{PoolEntry, Shared};
use crate::pool::{Checkout, Grant};
use crate::stats::Counter;

/// Why no server connection could be had.
#[derive(Debug)]
pub enum LinkError {
    /// Every connection stayed busy for `timeouts.query_wait`.
    PoolTimeout,
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
) -> Result<Box<ServerConn>, LinkError> {
    let mut failures = 0usize;
    loop {
        let now = Instant::now();
        let deadline = Some(shared.config().timeouts.query_wait)
            .filter(|limit| !limit.is_zero())
            .map(|limit| now + limit);
        let grant = match entry.pool.checkout(now, deadline) {
            Checkout::Now(grant) => grant,
            Checkout::Wait(waiting) => {
                if let Some(deadline) = deadline {
                    shared.wait_timer.queued(deadline);
                }
                shared.stats.waiting.fetch_add(1, Relaxed);
                // No timer here: the pool ends the wait at its deadline (see wait_timer).
                let outcome = waiting.await;
                shared.stats.waiting.fetch_sub(1, Relaxed);
                match outcome {
                    Ok(grant) => grant,
                    // The pool drops a waiter only once its deadline has passed.
                    Err(_) => return Err(LinkError::PoolTimeout),
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
                let _opening = entry.opening();
                let tls = shared.tls();
                let (Some(config), Some(tls)) = (shared.server(server), tls.server(server)) else {
                    // A reload removed the server after the pool granted it: another may
                    // serve.
                    entry.pool.closed(server, Instant::now());
                    failures += 1;
                    if failures <= shared.server_count() {
                        continue;
                    }
                    return Err(LinkError::PoolTimeout);
                };
                // The login's replies need a buffer only now, not while queued for the grant.
                let Some(mut inbox) = shared.server_inbox().await else {
                    entry.pool.closed(server, Instant::now());
                    return Err(LinkError::Arena);
                };
                let context = LoginContext {
                    inbox: &mut inbox,
                    limit: shared.config().timeouts.server_connect,
                    limits: shared.limits(),
                    scram_cache: &shared.scram_cache,
                    tls,
                    id: shared.clients.next_id(),
                };
                match server::open(server, &config.address, database, credentials, context).await {
                    Ok(conn) => {
                        shared.health.succeeded(server);
                        Shared::count(&shared.stats.server_connects);
                        entry.counters.add(Counter::ServerConnects, 1);
                        debug!(server = %config.address, pid = conn.pid(), "opened server connection");
                        return Ok(conn);
                    }
                    Err(error) => {
                        entry.pool.closed(server, Instant::now());
                        entry.counters.add(Counter::ServerConnectFailures, 1);
                        let unreachable = matches!(
                            error,
                            ServerError::Connect(_) | ServerError::TimedOut | ServerError::Closed
                        );
                        warn!(server = %config.address, %error, "server login failed");
                        if unreachable {
                            shared.health.failed(server, Instant::now());
                            failures += 1;
                            // Another server may serve this database: try it before failing.
                            if failures < shared.server_count() {
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

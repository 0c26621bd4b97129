//! Getting a server connection for a client: from the pool's idle list, by opening a new one,
//! or by waiting in line.

use std::time::Instant;

use tracing::{debug, warn};

use super::io::{timeout, Inbox};
use super::server::{self, Credentials, LoginContext, ServerConn, ServerError};
use super::shared::{PoolEntry, Shared};
use crate::pool::{Checkout, Grant};

/// Why no server connection could be had.
#[derive(Debug)]
pub enum LinkError {
    /// Every connection stayed busy for `timeouts.query_wait`.
    PoolTimeout,
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
    credentials: &Credentials,
    inbox: &mut Inbox,
) -> Result<ServerConn, LinkError> {
    let mut failures = 0usize;
    loop {
        let grant = match entry.pool.checkout(Instant::now()) {
            Checkout::Now(grant) => grant,
            Checkout::Wait(waiting) => {
                shared
                    .stats
                    .waiting
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let outcome = timeout(shared.config.timeouts.query_wait, waiting).await;
                shared
                    .stats
                    .waiting
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                match outcome {
                    Ok(Ok(grant)) => grant,
                    // The pool never drops a waiter without serving it; try again if it did.
                    Ok(Err(_)) => continue,
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
                    pid = conn.pid,
                    "dropping a pooled server connection that went away while idle"
                );
                drop(conn);
                entry.pool.closed(server, Instant::now());
            }
            Grant::Open { server } => {
                let config = &shared.config.servers[server];
                let context = LoginContext {
                    inbox: &mut *inbox,
                    limit: shared.config.timeouts.server_connect,
                    limits: shared.limits,
                    scram_cache: &shared.scram_cache,
                };
                match server::open(server, &config.address, database, credentials, context).await {
                    Ok(conn) => {
                        shared.health.succeeded(server);
                        Shared::count(&shared.stats.server_connects);
                        debug!(server = %config.address, pid = conn.pid, "opened server connection");
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

//! Cancel requests: a client's CancelRequest (with the key qcp gave it) is forwarded, on a new
//! connection, to the backend the client's query runs on.

use std::time::Duration;

use qcp_codec::encode;
use tracing::{debug, info};

use super::clients::CancelTarget;
use super::io::{connect_to, timeout, write_all};
use super::shared::Shared;

/// Handles a CancelRequest for qcp's (`pid`, `secret`). A wrong key cancels nothing, and the
/// requester learns nothing either way: PostgreSQL closes without a reply, and so does qcp.
pub async fn handle(shared: &Shared, pid: i32, secret: &[u8]) {
    let Some(client) = shared.clients.find(pid, secret) else {
        debug!(pid, "cancel request with an unknown key ignored");
        return;
    };
    match client.begin_cancel() {
        Some(target) => {
            info!(pid, server_pid = target.pid, "forwarding cancel request");
            send(&target, shared.config().timeouts.cancel_wait).await;
            target.gate.leave();
        }
        None => {
            // Not linked: nothing runs on a server for it. If it is queued for a server
            // connection, its wait ends with 57014.
            if client.request_cancel() {
                info!(pid, "cancelled a client waiting for a server connection");
            }
        }
    }
}

/// Sends PostgreSQL's CancelRequest for `target`, bounded by `limit`; failures are logged only
/// (a cancel is best effort by definition).
pub async fn send(target: &CancelTarget, limit: Duration) {
    let mut packet = Vec::with_capacity(16);
    if encode::cancel_request(&mut packet, target.pid, &target.secret).is_err() {
        return;
    }
    let attempt = async {
        let socket = connect_to(&target.address, limit).await?;
        write_all(&socket, &packet).await?;
        // PostgreSQL closes the connection once it has signalled the backend; waiting for
        // that makes the cancel take effect before we report it sent.
        let mut probe = [0u8; 1];
        let _ = futures::AsyncReadExt::read(&mut &socket, &mut probe).await;
        Ok::<(), std::io::Error>(())
    };
    match timeout(limit, attempt).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => debug!(%error, "cancel request failed"),
        Err(_) => debug!("cancel request timed out"),
    }
}

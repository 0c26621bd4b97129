//! The control socket `qcp-ctrl` talks to: one text command per connection (`quit`,
//! `status`), one text answer.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_std::os::unix::net::{UnixListener, UnixStream};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use tracing::{info, warn};

use super::shared::Shared;
use super::status;

/// Creates the control socket at `path`, readable and writable by qcp's user only. The socket
/// is bound under a temporary name, restricted, then renamed into place, so it is never
/// reachable with looser permissions. A stale socket left by a crashed qcp is replaced; one
/// that still answers belongs to a running instance and is an error.
pub async fn bind(path: &Path) -> io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "another qcp instance is running with control socket {}",
                    path.display()
                ),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let temporary = temporary_name(path);
    let _ = std::fs::remove_file(&temporary);
    let listener = UnixListener::bind(&temporary).await?;
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&temporary, path)?;
    Ok(listener)
}

fn temporary_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}.tmp", std::process::id()));
    PathBuf::from(name)
}

/// Serves control connections until the listener is dropped.
pub async fn serve(listener: UnixListener, shared: Arc<Shared>) {
    let mut incoming = listener.incoming();
    while let Some(stream) = incoming.next().await {
        match stream {
            Ok(stream) => {
                let shared = Arc::clone(&shared);
                super::spawn(async move {
                    if let Err(error) = answer(stream, &shared).await {
                        warn!(%error, "control connection failed");
                    }
                });
            }
            Err(error) => warn!(%error, "control socket accept failed"),
        }
    }
}

async fn answer(mut stream: UnixStream, shared: &Shared) -> io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0u8; 256];
    // Commands are one short line; stop at the newline or a small cap.
    while !request.contains(&b'\n') && request.len() < 1024 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let command = String::from_utf8_lossy(&request).trim().to_owned();
    let reply = match command.as_str() {
        "quit" => {
            info!("quit requested through the control socket");
            shared.begin_shutdown();
            "ok: shutting down\n".to_owned()
        }
        "status" => status::render(shared),
        other => format!("error: unknown command {other:?}; known commands: quit, status\n"),
    };
    stream.write_all(reply.as_bytes()).await?;
    stream.flush().await
}

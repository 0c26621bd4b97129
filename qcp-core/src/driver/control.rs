//! The control socket `qcp-ctrl` talks to: one text command per connection (`quit`,
//! `status`, `reload`, `show ITEM`, or one of the console's acting commands such as
//! `pause app`), one text answer.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_std::os::unix::net::{UnixListener, UnixStream};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use tracing::{info, warn};

use super::shared::Shared;
use super::status;

/// Longest socket path the system takes (`sun_path` holds 108 bytes with the final NUL on
/// Linux, 104 on macOS and the BSDs); the config accepts no longer `control_socket`.
const MAX_SOCKET_PATH: usize = if cfg!(target_os = "linux") { 107 } else { 103 };

/// Creates the control socket at `path`, readable and writable by qcp's user only. The socket
/// is bound inside a private (0700) directory next to `path`, restricted, then moved into
/// place, so nobody else can ever connect to it before it is 0600. A stale socket left by a
/// crashed qcp is replaced; one that still answers belongs to a running instance and is an
/// error.
pub async fn bind(path: &Path) -> io::Result<UnixListener> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
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
    let restrict = |at: &Path| std::fs::set_permissions(at, std::fs::Permissions::from_mode(0o600));
    let private = private_dir(path);
    let inner = private.join("s");
    if inner.as_os_str().len() > MAX_SOCKET_PATH {
        // A path this close to the limit leaves no room for the directory: bind in place and
        // restrict at once.
        let listener = UnixListener::bind(path).await?;
        restrict(path)?;
        return Ok(listener);
    }
    // Left over by a qcp that crashed while starting.
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let bound = async {
        let listener = UnixListener::bind(&inner).await?;
        restrict(&inner)?;
        std::fs::rename(&inner, path)?;
        Ok::<_, io::Error>(listener)
    }
    .await;
    let _ = std::fs::remove_dir_all(&private);
    bound
}

/// `dir/.name.tmp` for `dir/name`: on the same file system, so the socket can be renamed out.
fn private_dir(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".tmp");
    path.with_file_name(name)
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
        // The first line says how it went (`ok:` or `error:`), for qcp-ctrl's exit status.
        "reload" => match super::reload::reload(shared, "qcp-ctrl reload").await {
            Ok(report) => format!("ok: {report}\n"),
            Err(error) => format!("error: {error}\n"),
        },
        show if show.starts_with("show ") => {
            let what = show.trim_start_matches("show ").trim();
            match crate::admin::table(what, &super::snapshot::take(shared)) {
                Ok(table) => crate::admin::render(&table),
                Err(error) => format!("error: {}\n", error.message),
            }
        }
        // The console's acting commands: `pause app`, `kill_client 7`, `shutdown
        // wait_for_clients`...
        other => match crate::admin::parse(other) {
            Ok(crate::admin::Command::Act { verb, argument }) => {
                match super::actions::perform(shared, verb, argument).await {
                    Ok(notices) => {
                        let mut reply = format!("ok: {}\n", verb.name());
                        for notice in notices {
                            reply.push_str(&notice);
                            reply.push('\n');
                        }
                        reply
                    }
                    Err(error) => format!("error: {}\n", error.message),
                }
            }
            _ => format!(
                "error: unknown command {other:?}; known commands: quit, status, reload, show ITEM, and the console's PAUSE, RESUME, RECONNECT, WAIT_CLOSE, KILL, KILL_CLIENT, DISABLE, ENABLE, SHUTDOWN\n"
            ),
        },
    };
    stream.write_all(reply.as_bytes()).await?;
    stream.flush().await
}

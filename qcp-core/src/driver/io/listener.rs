//! The socket qcp accepts clients on: `host:port`, or a Unix-domain socket file.

use std::io;
use std::net::TcpListener;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_io::Async;

use crate::config::{Endpoint, MAX_SOCKET_PATH};

use super::socket::{tune, LocalAddr, Peer, Socket};
use super::{timeout, TimedOut};

/// The socket qcp accepts clients on.
pub enum Listener {
    /// `host:port`.
    Tcp(Async<TcpListener>),
    /// A Unix-domain socket file, removed when the listener is dropped.
    Unix(SocketFile),
}

/// A listening Unix-domain socket and its file.
pub struct SocketFile {
    listener: Async<UnixListener>,
    path: PathBuf,
    /// The file's device and inode: only this file is removed at the end, not one another
    /// program put there since.
    id: (u64, u64),
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.id {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

impl Listener {
    /// Listens on `endpoint`; a Unix-domain socket file gets the permissions `mode`.
    pub async fn bind(endpoint: &Endpoint, mode: u32) -> io::Result<Listener> {
        match endpoint {
            Endpoint::Tcp(address) => bind_tcp(address).map(Listener::Tcp),
            Endpoint::Unix(path) => bind_unix(path, mode).await.map(Listener::Unix),
        }
    }

    /// Where clients connect.
    pub fn local_addr(&self) -> io::Result<LocalAddr> {
        match self {
            Listener::Tcp(listener) => listener.get_ref().local_addr().map(LocalAddr::Tcp),
            Listener::Unix(file) => Ok(LocalAddr::Unix(file.path.clone())),
        }
    }

    /// Accepts the next client.
    pub async fn accept(&self) -> io::Result<(Socket, Peer)> {
        match self {
            Listener::Tcp(listener) => {
                let (socket, address) = listener.accept().await?;
                let socket = Socket::Tcp(socket);
                tune(&socket);
                Ok((socket, Peer::Tcp(address)))
            }
            Listener::Unix(file) => {
                let (socket, _) = file.listener.accept().await?;
                let peer = Peer::of_unix(socket.get_ref());
                Ok((Socket::Unix(socket), peer))
            }
        }
    }
}

/// How many connections the kernel may queue before qcp accepts them (capped by the
/// system's `net.core.somaxconn`). std listens with 128: a burst of connections beyond that
/// (a login storm, a flood) has its SYNs dropped, and those clients retry only a second
/// later.
const BACKLOG: i32 = 4096;

fn bind_tcp(address: &str) -> io::Result<Async<TcpListener>> {
    use std::net::ToSocketAddrs;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the address resolves to nothing");
    for candidate in address.to_socket_addrs()? {
        match Async::<TcpListener>::bind(candidate) {
            Ok(listener) => {
                // Listening again on a listening socket only sets its backlog.
                rustix::net::listen(listener.get_ref(), BACKLOG)?;
                return Ok(listener);
            }
            Err(error) => last = error,
        }
    }
    Err(last)
}

/// Creates the socket file `path` with permissions `mode`. A socket file already there is
/// replaced if nothing answers on it (left by a process that is gone), and is an error if
/// something does; any other kind of file there is an error. The socket is bound inside a
/// private (0700) directory next to `path`, given its mode, then moved into place, so nobody
/// can connect to it before it has its permissions (as the control socket).
async fn bind_unix(path: &Path, mode: u32) -> io::Result<SocketFile> {
    use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{shown} exists and is not a socket"),
            ))
        }
        Ok(_) => match timeout(Duration::from_secs(1), Async::<UnixStream>::connect(path)).await {
            Ok(Err(error)) if error.kind() == io::ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path)?;
            }
            Ok(Err(error)) => {
                return Err(io::Error::new(
                    error.kind(),
                    format!("cannot tell whether a program listens on {shown}: {error}"),
                ))
            }
            // Answered, or too busy to answer at once: in use either way.
            Ok(Ok(_)) | Err(TimedOut) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("another program is listening on {shown}"),
                ))
            }
        },
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let restrict = |at: &Path| std::fs::set_permissions(at, std::fs::Permissions::from_mode(mode));
    let private = private_dir(path);
    let inner = private.join("s");
    let listener = if inner.as_os_str().len() > MAX_SOCKET_PATH {
        // No room for the directory in the path: bind in place and set the mode at once.
        let listener = Async::<UnixListener>::bind(path)?;
        if let Err(error) = restrict(path) {
            let _ = std::fs::remove_file(path);
            return Err(error);
        }
        listener
    } else {
        // Left over by a qcp that crashed while starting.
        let _ = std::fs::remove_dir_all(&private);
        std::fs::DirBuilder::new().mode(0o700).create(&private)?;
        let bound = Async::<UnixListener>::bind(&inner).and_then(|listener| {
            restrict(&inner)?;
            std::fs::rename(&inner, path)?;
            Ok(listener)
        });
        let _ = std::fs::remove_dir_all(&private);
        bound?
    };
    rustix::net::listen(listener.get_ref(), BACKLOG)?;
    let meta = std::fs::symlink_metadata(path)?;
    Ok(SocketFile {
        listener,
        path: path.to_owned(),
        id: (meta.dev(), meta.ino()),
    })
}

/// `dir/.name.tmp` for `dir/name`: on the same file system, so the socket can be renamed out.
fn private_dir(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".tmp");
    path.with_file_name(name)
}

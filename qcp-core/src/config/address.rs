//! Addresses (`listening_address`, `servers[].address`): a TCP `host:port`, or a Unix-domain
//! socket written as libpq and PgBouncer users write it. Also `unix_socket_mode`.
//!
//! The rule for a socket (see [`Endpoint::parse`]): an address that starts with `/` is a
//! Unix-domain socket. `DIR:PORT` (the text after the last `:` is a port number) means the
//! socket PostgreSQL and libpq use for that directory and port, `DIR/.s.PGSQL.PORT`, so
//! `psql -h DIR -p PORT` reaches it; any other absolute path is the socket file itself.

use std::path::{Path, PathBuf};

/// Longest socket path the system takes (`sun_path` holds 108 bytes with the final NUL on
/// Linux, 104 on macOS and the BSDs).
pub const MAX_SOCKET_PATH: usize = if cfg!(target_os = "linux") { 107 } else { 103 };

/// Default `unix_socket_mode`: anyone on the machine may connect (every client still logs
/// in), as PostgreSQL's `unix_socket_permissions` and PgBouncer's `unix_socket_mode`.
pub const DEFAULT_UNIX_SOCKET_MODE: u32 = 0o777;

/// Where a socket is, as a configured address says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `host:port`; the host is a name (resolved when connecting or binding), an IPv4
    /// address or a bracketed IPv6 address.
    Tcp(String),
    /// The path of a Unix-domain socket file.
    Unix(PathBuf),
}

impl Endpoint {
    /// Reads `address` as written in the configuration: `host:port`; or, starting with `/`, a
    /// Unix-domain socket: `DIR:PORT` is `DIR/.s.PGSQL.PORT` (libpq's socket name for that
    /// directory and port), any other path is the socket file itself. Port 0 ("any free
    /// port") is only accepted for a TCP listening address. The error says what is wrong.
    pub fn parse(address: &str, listening: bool) -> Result<Endpoint, String> {
        if address.starts_with('/') {
            return unix_path(address).map(Endpoint::Unix);
        }
        if address.contains('/') {
            return Err(format!(
                "`{address}` looks like a relative path, and a Unix socket path must start \
                 with `/`"
            ));
        }
        check_address(address, listening)?;
        Ok(Endpoint::Tcp(address.to_owned()))
    }
}

/// The socket file name PostgreSQL uses for `port` in a socket directory.
pub fn socket_file_name(port: u16) -> String {
    format!(".s.PGSQL.{port}")
}

/// The socket file an absolute `address` names (see [`Endpoint::parse`]).
fn unix_path(address: &str) -> Result<PathBuf, String> {
    let path = match address.rsplit_once(':') {
        Some((dir, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            match port.parse::<u16>() {
                Ok(port) if port != 0 => Path::new(dir).join(socket_file_name(port)),
                _ => {
                    return Err(format!(
                        "`{port}` in `{address}` is not a port number (1 to 65535)"
                    ))
                }
            }
        }
        Some((_, "")) => return Err(format!("`{address}` has no port after the `:`")),
        _ if address.ends_with('/') => {
            return Err(format!(
                "`{address}` ends with `/`, so it names a directory, not a socket"
            ))
        }
        _ => PathBuf::from(address),
    };
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(format!(
            "the socket path `{}` is {len} bytes long, and a Unix socket path can have at most \
             {MAX_SOCKET_PATH}",
            path.display()
        ));
    }
    Ok(path)
}

/// Checks `host:port`. The host is a name, an IPv4 address or a bracketed IPv6 address; port 0
/// ("any free port") is only accepted for a listening address.
fn check_address(address: &str, listening: bool) -> Result<(), String> {
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(format!("`{address}` has no port"));
    };
    if host.is_empty() {
        return Err(format!("`{address}` has no host"));
    }
    if host.chars().any(char::is_whitespace) {
        return Err(format!("`{address}` contains a space"));
    }
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if host.contains(':') && !bracketed {
        return Err(format!(
            "the IPv6 address in `{address}` must be in brackets, like `[::1]:5432`"
        ));
    }
    match port.parse::<u16>() {
        Ok(0) if !listening => Err(format!("`{address}` has port 0")),
        Ok(_) => Ok(()),
        Err(_) => Err(format!(
            "`{port}` in `{address}` is not a port number (1 to 65535)"
        )),
    }
}

/// Reads `unix_socket_mode`: octal digits as `chmod` takes them (`777`, `0777`, `0o777`),
/// permission bits only (at most `777`).
pub(super) fn parse_mode(text: &str) -> Result<u32, String> {
    let trimmed = text.trim();
    let digits = trimmed.strip_prefix("0o").unwrap_or(trimmed);
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(format!(
            "`{text}` is not an octal file mode (digits 0 to 7, like `0777`)"
        ));
    }
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(format!(
            "`{text}` has more than permission bits (at most `0777`)"
        )),
    }
}

/// `0777`, as `unix_socket_mode` is written.
pub(super) fn format_mode(mode: u32) -> String {
    format!("{mode:04o}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        for good in [
            "127.0.0.1:5432",
            "db.example.com:6432",
            "[::1]:5432",
            "localhost:1",
        ] {
            assert_eq!(check_address(good, false), Ok(()), "{good}");
        }
        assert_eq!(check_address("0.0.0.0:0", true), Ok(()));
        for bad in [
            "127.0.0.1",
            ":5432",
            "host:",
            "host:99999",
            "host:x",
            "::1:5432",
            "a b:1",
        ] {
            assert!(check_address(bad, false).is_err(), "{bad}");
        }
        assert!(check_address("h:0", false).is_err());
    }

    fn unix(path: &str) -> Result<Endpoint, String> {
        Ok(Endpoint::Unix(PathBuf::from(path)))
    }

    #[test]
    fn tcp_endpoints() {
        assert_eq!(
            Endpoint::parse("127.0.0.1:5432", false),
            Ok(Endpoint::Tcp("127.0.0.1:5432".into()))
        );
        assert_eq!(
            Endpoint::parse("[::]:0", true),
            Ok(Endpoint::Tcp("[::]:0".into()))
        );
        assert!(Endpoint::parse("h:0", false).is_err());
        assert!(Endpoint::parse("8080", true)
            .unwrap_err()
            .contains("no port"));
    }

    #[test]
    fn a_directory_and_a_port_is_libpqs_socket() {
        assert_eq!(
            Endpoint::parse("/var/run/postgresql:5432", false),
            unix("/var/run/postgresql/.s.PGSQL.5432")
        );
        assert_eq!(
            Endpoint::parse("/var/run/qcp/:6432", true),
            unix("/var/run/qcp/.s.PGSQL.6432")
        );
        assert_eq!(Endpoint::parse("/:1", true), unix("/.s.PGSQL.1"));
        for (bad, why) in [
            ("/tmp:0", "not a port number"),
            ("/tmp:65536", "not a port number"),
            ("/tmp:", "no port after"),
        ] {
            let error = Endpoint::parse(bad, true).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn any_other_absolute_path_is_the_socket_itself() {
        assert_eq!(
            Endpoint::parse("/var/run/qcp/.s.PGSQL.6432", true),
            unix("/var/run/qcp/.s.PGSQL.6432")
        );
        assert_eq!(
            Endpoint::parse("/tmp/qcp.sock", false),
            unix("/tmp/qcp.sock")
        );
        // A colon followed by something else than a port is part of the file name.
        assert_eq!(Endpoint::parse("/tmp/a:b", false), unix("/tmp/a:b"));
        assert!(Endpoint::parse("/var/run/qcp/", true)
            .unwrap_err()
            .contains("directory"));
    }

    #[test]
    fn relative_and_long_paths_are_refused() {
        for relative in ["qcp/.s.PGSQL.6432", "./qcp.sock", "unix:/tmp/qcp.sock"] {
            let error = Endpoint::parse(relative, true).unwrap_err();
            assert!(error.contains("must start with `/`"), "{relative}: {error}");
        }
        let dir = format!("/{}", "d".repeat(MAX_SOCKET_PATH - "//.s.PGSQL.5432".len()));
        assert!(Endpoint::parse(&format!("{dir}:5432"), false).is_ok());
        let error = Endpoint::parse(&format!("{dir}:54321"), false).unwrap_err();
        assert!(error.contains("at most"), "{error}");
        let long = format!("/{}", "s".repeat(MAX_SOCKET_PATH));
        assert!(Endpoint::parse(&long, true).is_err());
    }

    #[test]
    fn modes() {
        for (text, mode) in [("0777", 0o777), ("777", 0o777), ("0o700", 0o700), ("0", 0)] {
            assert_eq!(parse_mode(text), Ok(mode), "{text}");
        }
        for bad in ["", "0o", "8", "0789", "1777", "rwx", "-1"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
        assert_eq!(format_mode(0o777), "0777");
        assert_eq!(format_mode(0o60), "0060");
    }
}

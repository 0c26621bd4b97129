//! `host:port` addresses (`listening_address`, `servers[].address`).

/// Checks `host:port`. The host is a name, an IPv4 address or a bracketed IPv6 address; port 0
/// ("any free port") is only accepted for a listening address.
pub(super) fn check_address(address: &str, listening: bool) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::check_address;

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
}

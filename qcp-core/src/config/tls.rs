//! `client_tls` and `servers[].tls`: which connections are encrypted, and with which files.
//!
//! Only the settings are checked here (modes, which files go together); the files themselves
//! are read and checked by `crate::tls` when qcp starts or the configuration is checked.

use std::path::PathBuf;

use serde::Deserialize;

use super::validate::{invalid, Invalid};
use super::Endpoint;

/// `client_tls.mode`: what qcp does with clients that ask (or do not ask) for TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientTlsMode {
    /// Every SSLRequest is answered `N`; a direct TLS handshake is closed without a reply (as
    /// PostgreSQL without TLS closes it).
    #[default]
    Disable,
    /// TLS for clients that ask for it, clear text for the others.
    Allow,
    /// The same as `allow` (a server cannot prefer more than accepting what clients ask for;
    /// the name is there because PgBouncer and libpq users expect it).
    Prefer,
    /// Clients that do not start TLS are refused with an error naming this setting.
    Require,
}

impl ClientTlsMode {
    /// The spelling used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientTlsMode::Disable => "disable",
            ClientTlsMode::Allow => "allow",
            ClientTlsMode::Prefer => "prefer",
            ClientTlsMode::Require => "require",
        }
    }
}

/// `client_tls`: TLS between clients and qcp.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientTls {
    /// What qcp does with TLS requests. Default `prefer` when `cert` is given, else `disable`.
    pub mode: ClientTlsMode,
    /// qcp's certificate chain (PEM), the leaf first.
    pub cert: Option<PathBuf>,
    /// The private key of `cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// Certificate authorities (PEM) that client certificates must chain to; when given,
    /// every TLS client must present one.
    pub ca: Option<PathBuf>,
}

/// `servers[].tls.mode`, as libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerTlsMode {
    /// Clear text; no SSLRequest is sent.
    Disable,
    /// TLS if the server accepts it, else clear text; the certificate is not checked.
    #[default]
    Prefer,
    /// TLS or no connection; the certificate is not checked.
    Require,
    /// TLS, and the certificate must chain to `ca`.
    VerifyCa,
    /// TLS, the certificate must chain to `ca` and name the host qcp connects to.
    VerifyFull,
}

impl ServerTlsMode {
    /// The spelling used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerTlsMode::Disable => "disable",
            ServerTlsMode::Prefer => "prefer",
            ServerTlsMode::Require => "require",
            ServerTlsMode::VerifyCa => "verify-ca",
            ServerTlsMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the connection fails when the server will not speak TLS.
    pub fn requires_tls(self) -> bool {
        matches!(
            self,
            ServerTlsMode::Require | ServerTlsMode::VerifyCa | ServerTlsMode::VerifyFull
        )
    }
}

/// `servers[].tls`: TLS between qcp and one server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerTls {
    /// Whether and how TLS is used. Default `prefer`.
    pub mode: ServerTlsMode,
    /// Certificate authorities (PEM) the server's certificate must chain to (verify modes).
    pub ca: Option<PathBuf>,
    /// A client certificate chain (PEM) qcp presents to the server, if it asks for one.
    pub cert: Option<PathBuf>,
    /// The private key of `cert`.
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub(super) enum RawClientTlsMode {
    #[serde(rename = "disable")]
    Disable,
    #[serde(rename = "allow")]
    Allow,
    #[serde(rename = "prefer")]
    Prefer,
    #[serde(rename = "require")]
    Require,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub(super) enum RawServerTlsMode {
    #[serde(rename = "disable")]
    Disable,
    #[serde(rename = "prefer")]
    Prefer,
    #[serde(rename = "require")]
    Require,
    #[serde(rename = "verify-ca")]
    VerifyCa,
    #[serde(rename = "verify-full")]
    VerifyFull,
}

#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `mode`, `cert`, `key` and `ca`"
)]
pub(super) struct RawClientTls {
    pub mode: Option<RawClientTlsMode>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `mode`, `ca`, `cert` and `key`"
)]
pub(super) struct RawServerTls {
    pub mode: Option<RawServerTlsMode>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// Checks `client_tls`.
pub(super) fn client_tls(raw: Option<RawClientTls>) -> Result<ClientTls, Invalid> {
    let Some(raw) = raw else {
        return Ok(ClientTls::default());
    };
    pair("client_tls", raw.cert.is_some(), raw.key.is_some())?;
    let has_cert = raw.cert.is_some();
    let mode = match raw.mode {
        None if has_cert => ClientTlsMode::Prefer,
        None => ClientTlsMode::Disable,
        Some(RawClientTlsMode::Disable) => ClientTlsMode::Disable,
        Some(RawClientTlsMode::Allow) => ClientTlsMode::Allow,
        Some(RawClientTlsMode::Prefer) => ClientTlsMode::Prefer,
        Some(RawClientTlsMode::Require) => ClientTlsMode::Require,
    };
    if mode != ClientTlsMode::Disable && !has_cert {
        return Err(invalid(
            "client_tls.cert",
            format!(
                "client_tls.mode {} needs a certificate to show clients",
                mode.as_str()
            ),
            "Add `cert` and `key` (PEM files), or write `mode: disable`.",
        ));
    }
    if raw.ca.is_some() && !has_cert {
        return Err(invalid(
            "client_tls.ca",
            "client certificates can only be asked for over TLS, and no `cert` is given",
            "Add `cert` and `key` (PEM files), or remove `ca`.",
        ));
    }
    Ok(ClientTls {
        mode,
        cert: raw.cert,
        key: raw.key,
        ca: raw.ca,
    })
}

/// Checks `servers[n].tls` for the server at `address`.
pub(super) fn server_tls(
    n: usize,
    raw: Option<RawServerTls>,
    address: &Endpoint,
) -> Result<ServerTls, Invalid> {
    let Some(raw) = raw else {
        return Ok(ServerTls::default());
    };
    let at = format!("servers[{n}].tls");
    pair(&at, raw.cert.is_some(), raw.key.is_some())?;
    let mode = match raw.mode {
        None => ServerTlsMode::Prefer,
        Some(RawServerTlsMode::Disable) => ServerTlsMode::Disable,
        Some(RawServerTlsMode::Prefer) => ServerTlsMode::Prefer,
        Some(RawServerTlsMode::Require) => ServerTlsMode::Require,
        Some(RawServerTlsMode::VerifyCa) => ServerTlsMode::VerifyCa,
        Some(RawServerTlsMode::VerifyFull) => ServerTlsMode::VerifyFull,
    };
    let verifies = matches!(mode, ServerTlsMode::VerifyCa | ServerTlsMode::VerifyFull);
    if verifies && raw.ca.is_none() {
        return Err(invalid(
            format!("{at}.ca"),
            format!(
                "tls.mode {} checks the server's certificate against `ca`, and none is given",
                mode.as_str()
            ),
            "Add `ca: FILE` with the certificate authority that signed the server's certificate \
             (PEM), or write `mode: require` to encrypt without checking.",
        ));
    }
    if raw.ca.is_some() && !verifies {
        return Err(invalid(
            format!("{at}.ca"),
            format!(
                "tls.mode {} does not check the server's certificate, so `ca` would be ignored",
                mode.as_str()
            ),
            "Write `mode: verify-full` (or `verify-ca`) to check it, or remove `ca`.",
        ));
    }
    // As libpq: TLS is never used over a Unix-domain socket, so insisting on it cannot work.
    if matches!(address, Endpoint::Unix(_)) && mode.requires_tls() {
        return Err(invalid(
            format!("{at}.mode"),
            format!(
                "tls.mode {} cannot apply to a Unix-domain socket: PostgreSQL does not speak \
                 TLS over one",
                mode.as_str()
            ),
            "Write `mode: disable` (the socket is local), or connect over TCP.",
        ));
    }
    Ok(ServerTls {
        mode,
        ca: raw.ca,
        cert: raw.cert,
        key: raw.key,
    })
}

/// `cert` and `key` come together.
fn pair(at: &str, cert: bool, key: bool) -> Result<(), Invalid> {
    match (cert, key) {
        (true, false) => Err(invalid(
            format!("{at}.key"),
            "`cert` is given without its private key",
            "Add `key: FILE` with the certificate's private key (PEM).",
        )),
        (false, true) => Err(invalid(
            format!("{at}.cert"),
            "`key` is given without its certificate",
            "Add `cert: FILE` with the certificate chain (PEM), leaf first.",
        )),
        _ => Ok(()),
    }
}

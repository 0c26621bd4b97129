//! TLS set-up: rustls configurations built from `client_tls` and `servers[].tls`, once at
//! start-up (and by `qcp --check`), with errors that name the setting and the fix.
//!
//! The crypto provider is *ring*: it builds with just a C compiler (no cmake, no Go), and
//! offers what libpq and PostgreSQL's OpenSSL negotiate (TLS 1.3, and TLS 1.2 with ECDHE and
//! AES-GCM or ChaCha20). The bytes themselves are moved by `driver/io/stream.rs`.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]
#![warn(missing_docs)]

use std::fmt;
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::version::{TLS12, TLS13};
use rustls::{ClientConfig, ServerConfig};

use crate::config::{ClientTls, ClientTlsMode, Config, Endpoint, ServerTls, ServerTlsMode};

mod binding;
mod files;
mod identity;
mod verify;

pub use binding::server_end_point;
pub use identity::common_name;

/// The ALPN protocol name PostgreSQL servers and clients use (required for direct TLS).
pub const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// A TLS setting qcp cannot start with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError {
    /// The setting's path, such as `client_tls.key`.
    pub setting: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it (a sentence).
    pub fix: String,
}

impl TlsError {
    fn new(setting: &str, message: impl Into<String>, fix: impl Into<String>) -> TlsError {
        TlsError {
            setting: setting.to_owned(),
            message: message.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}. {}", self.setting, self.message, self.fix)
    }
}

impl std::error::Error for TlsError {}

/// TLS towards clients, when `client_tls.mode` is not `disable`.
#[derive(Debug, Clone)]
pub struct ClientSide {
    /// Whether clear text is still accepted.
    pub mode: ClientTlsMode,
    /// The rustls configuration every client handshake uses.
    pub config: Arc<ServerConfig>,
    /// SCRAM channel-binding data for qcp's certificate (`None`: its signature algorithm
    /// names no hash, so SCRAM-SHA-256-PLUS is not offered).
    pub end_point: Option<Vec<u8>>,
}

/// TLS towards one server, when its `tls.mode` is not `disable`.
#[derive(Debug, Clone)]
pub struct ServerSide {
    /// Whether clear text is acceptable when the server declines TLS.
    pub mode: ServerTlsMode,
    /// The rustls configuration every connection to this server uses.
    pub config: Arc<ClientConfig>,
    /// The name its certificate must carry (`verify-full`), and the SNI sent.
    pub name: ServerName<'static>,
}

/// Every TLS configuration of a running qcp.
#[derive(Debug, Clone, Default)]
pub struct TlsSetup {
    /// Towards clients; `None` when TLS is off for them.
    pub clients: Option<ClientSide>,
    /// Towards each of `servers`, by index; `None` for clear text.
    pub servers: Vec<Option<ServerSide>>,
    /// The server id (see `pool::ServerTable`) of each of `servers`, by index.
    ids: Vec<usize>,
}

impl TlsSetup {
    /// Reads every certificate and key the configuration names and builds the rustls
    /// configurations.
    pub fn load(config: &Config) -> Result<TlsSetup, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let clients = client_side(&config.client_tls, &provider)?;
        let mut servers = Vec::with_capacity(config.servers.len());
        for (n, server) in config.servers.iter().enumerate() {
            servers.push(server_side(n, &server.address, &server.tls, &provider)?);
        }
        let ids = (0..servers.len()).collect();
        Ok(TlsSetup {
            clients,
            servers,
            ids,
        })
    }

    /// The same set-up for servers known under `ids` (each entry of the config's `servers`,
    /// in order), as a reload numbers them.
    pub fn with_ids(mut self, ids: Vec<usize>) -> Self {
        self.ids = ids;
        self
    }

    /// How to reach the server with id `id`: `Some(None)` in clear text, `None` if this
    /// set-up does not know the server (a reload removed it).
    pub fn server(&self, id: usize) -> Option<Option<&ServerSide>> {
        let index = self.ids.iter().position(|&known| known == id)?;
        self.servers.get(index).map(Option::as_ref)
    }

    /// How clients are answered, with `None` when TLS is off for them.
    pub fn client_mode(&self) -> ClientTlsMode {
        self.clients
            .as_ref()
            .map_or(ClientTlsMode::Disable, |side| side.mode)
    }
}

fn client_side(
    tls: &ClientTls,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<ClientSide>, TlsError> {
    let (Some(cert), Some(key)) = (&tls.cert, &tls.key) else {
        return Ok(None);
    };
    if tls.mode == ClientTlsMode::Disable {
        return Ok(None);
    }
    let chain = files::certificates("client_tls.cert", cert)?;
    if let Some(leaf) = chain.first() {
        files::check_validity("client_tls.cert", cert, leaf)?;
    }
    let end_point = chain.first().and_then(|leaf| server_end_point(leaf));
    let private_key = files::private_key("client_tls.key", key)?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(&[&TLS13, &TLS12])
        .map_err(|error| TlsError::new("client_tls", error.to_string(), "Report this to qcp."))?;
    let builder = match &tls.ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let roots = files::authorities("client_tls.ca", ca)?;
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
                    .build()
                    .map_err(|error| {
                        TlsError::new(
                            "client_tls.ca",
                            format!("cannot verify client certificates with it: {error}"),
                            "Give the PEM certificates of the authorities that sign client \
                             certificates.",
                        )
                    })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, private_key)
        .map_err(|error| key_error("client_tls.key", key, cert, &error))?;
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    // PostgreSQL clients never resume sessions: keep no per-session state for them.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Some(ClientSide {
        mode: tls.mode,
        config: Arc::new(config),
        end_point,
    }))
}

fn server_side(
    n: usize,
    address: &str,
    tls: &ServerTls,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<ServerSide>, TlsError> {
    let host = match Endpoint::parse(address, false) {
        Ok(Endpoint::Tcp(address)) => host_of(&address).to_owned(),
        // PostgreSQL does not speak TLS on Unix-domain sockets (the config check refuses
        // the modes that insist on it).
        Ok(Endpoint::Unix(_)) | Err(_) => return Ok(None),
    };
    if tls.mode == ServerTlsMode::Disable {
        return Ok(None);
    }
    let at = |name: &str| format!("servers[{n}].tls.{name}");
    let name = ServerName::try_from(host.clone()).map_err(|_| {
        TlsError::new(
            &format!("servers[{n}].address"),
            format!("`{host}` is neither a host name nor an IP address TLS can check"),
            "Write the server's host name as its certificate names it.",
        )
    })?;
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> = match (tls.mode, &tls.ca) {
        (ServerTlsMode::VerifyFull, Some(ca)) => {
            let roots = files::authorities(&at("ca"), ca)?;
            rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                Arc::clone(provider),
            )
            .build()
            .map_err(|error| {
                TlsError::new(
                    &at("ca"),
                    format!("cannot verify server certificates with it: {error}"),
                    "Give the PEM certificates of the authority that signs the server's \
                     certificate.",
                )
            })?
        }
        (ServerTlsMode::VerifyCa, Some(ca)) => {
            verify::ChainCheck::new(Some(files::authorities(&at("ca"), ca)?), algorithms)
        }
        _ => verify::ChainCheck::new(None, algorithms),
    };
    let builder = ClientConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(&[&TLS13, &TLS12])
        .map_err(|error| TlsError::new(&at("mode"), error.to_string(), "Report this to qcp."))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = files::certificates(&at("cert"), cert)?;
            if let Some(leaf) = chain.first() {
                files::check_validity(&at("cert"), cert, leaf)?;
            }
            let private_key = files::private_key(&at("key"), key)?;
            builder
                .with_client_auth_cert(chain, private_key)
                .map_err(|error| key_error(&at("key"), key, cert, &error))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    // PostgreSQL servers do not resume sessions either.
    config.resumption = Resumption::disabled();
    Ok(Some(ServerSide {
        mode: tls.mode,
        config: Arc::new(config),
        name,
    }))
}

/// The host of `host:port` (brackets of an IPv6 address removed).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

fn key_error(
    setting: &str,
    key: &std::path::Path,
    cert: &std::path::Path,
    error: &rustls::Error,
) -> TlsError {
    match error {
        rustls::Error::InconsistentKeys(_) => TlsError::new(
            setting,
            format!(
                "the key in {} does not belong to the certificate in {}",
                key.display(),
                cert.display()
            ),
            "Give the private key the certificate was issued for (or the certificate of this \
             key).",
        ),
        other => TlsError::new(
            setting,
            format!("cannot use the key in {}: {other}", key.display()),
            "Give an RSA, ECDSA (P-256, P-384) or Ed25519 private key in PEM.",
        ),
    }
}

#[cfg(test)]
mod tests;

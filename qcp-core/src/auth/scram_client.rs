//! SCRAM-SHA-256 with qcp as the client: logging in to a PostgreSQL server.
//!
//! ```text
//! qcp     SASLInitialResponse   n,,n=,r=<client nonce>
//! server  SASLContinue          r=<client nonce><server nonce>,s=<salt>,i=<iterations>
//! qcp     SASLResponse          c=biws,r=<both nonces>,p=<ClientProof>
//! server  SASLFinal             v=<ServerSignature>
//! ```
//!
//! Over TLS, qcp binds the login to the server's certificate when the server offers
//! `SCRAM-SHA-256-PLUS` ([`ScramClient::with_channel_binding`], gs2 header
//! `p=tls-server-end-point,,`), and says `y,,` when it could bind but the server offers no
//! `-PLUS` ([`ScramClient::could_bind`]), as libpq does. It sends an empty user name (the
//! server takes the startup packet's). It needs either the password, or the
//! ClientKey and ServerKey for the server's exact salt and iteration count (pass-through: the
//! ClientKey recovered from a client's own SCRAM login, see
//! [`ScramServerOutcome`](super::ScramServerOutcome)). The server's signature is always
//! verified, so a server that does not hold the user's secret is detected.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use base64::{engine::general_purpose::STANDARD, Engine as _};

use super::constant_time_eq;
use super::primitives::{
    client_key, hmac_sha256, salted_password, sasl_prep, server_key, sha256, xor, KEY_LEN,
};
use super::scram::{
    attribute, attributes, check_extension, decode_array, decode_vec, is_valid_nonce,
    join_with_commas, random_nonce, sanitize_server_error, ScramError, MAX_ITERATIONS,
};
use super::secret::ScramSecret;

/// What qcp proves its identity with.
#[derive(Clone)]
pub enum ScramCredentials {
    /// The plaintext password: works whatever salt and iteration count the server uses.
    Password(String),
    /// Keys derived for one salt and iteration count. The login fails with
    /// [`ScramError::KeysDoNotMatchServerSalt`] if the server's differ.
    Keys {
        /// `HMAC(SaltedPassword, "Client Key")`.
        client_key: [u8; 32],
        /// `HMAC(SaltedPassword, "Server Key")`, to verify the server's signature.
        server_key: [u8; 32],
        /// The salt the keys were derived with (raw bytes).
        salt: Vec<u8>,
        /// The iteration count the keys were derived with.
        iterations: u32,
    },
}

impl ScramCredentials {
    /// Pass-through credentials: the ClientKey recovered from a client's successful SCRAM login
    /// ([`ScramServerOutcome::client_key`](super::ScramServerOutcome)) with the secret it was
    /// verified against. They log in to a server whose `pg_authid` holds that same secret.
    pub fn passthrough(secret: &ScramSecret, client_key: [u8; 32]) -> ScramCredentials {
        ScramCredentials::Keys {
            client_key,
            server_key: secret.server_key,
            salt: secret.salt.clone(),
            iterations: secret.iterations,
        }
    }
}

impl fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScramCredentials::Password(_) => f.write_str("ScramCredentials::Password(<redacted>)"),
            ScramCredentials::Keys { iterations, .. } => f
                .debug_struct("ScramCredentials::Keys")
                .field("iterations", iterations)
                .finish_non_exhaustive(),
        }
    }
}

/// Remembers ClientKey/ServerKey per (password, salt, iterations), so that repeated logins to
/// the same server run PBKDF2 once instead of every time.
///
/// Share one (`Arc`) between the logins of a pool, or across pools. It holds at most
/// `capacity` entries and forgets the oldest first. PBKDF2 runs outside the lock, so two
/// simultaneous first logins may both compute it; the result is the same.
pub struct SaltedPasswordCache {
    capacity: usize,
    entries: Mutex<VecDeque<CacheEntry>>,
}

struct CacheEntry {
    /// SASLprep'd password.
    password: Vec<u8>,
    salt: Vec<u8>,
    iterations: u32,
    client_key: [u8; KEY_LEN],
    server_key: [u8; KEY_LEN],
}

impl SaltedPasswordCache {
    /// Default capacity: comfortably more than the (user, server) pairs of a usual config.
    pub const DEFAULT_CAPACITY: usize = 64;

    /// An empty cache of [`Self::DEFAULT_CAPACITY`] entries.
    pub fn new() -> SaltedPasswordCache {
        SaltedPasswordCache::with_capacity(SaltedPasswordCache::DEFAULT_CAPACITY)
    }

    /// An empty cache holding at most `capacity` entries (at least 1).
    pub fn with_capacity(capacity: usize) -> SaltedPasswordCache {
        SaltedPasswordCache {
            capacity: capacity.max(1),
            entries: Mutex::new(VecDeque::new()),
        }
    }

    /// Number of cached entries.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(ClientKey, ServerKey)` of `password` for `salt` and `iterations`, from the cache or
    /// computed (PBKDF2) and remembered.
    pub fn keys(&self, password: &str, salt: &[u8], iterations: u32) -> ([u8; 32], [u8; 32]) {
        let password = sasl_prep(password);
        let found = self.lock().iter().find_map(|e| {
            (e.iterations == iterations && e.salt == salt && *e.password == *password)
                .then_some((e.client_key, e.server_key))
        });
        if let Some(keys) = found {
            return keys;
        }
        let keys = derive_keys(&password, salt, iterations);
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            entries.pop_front();
        }
        entries.push_back(CacheEntry {
            password: password.into_owned(),
            salt: salt.to_vec(),
            iterations,
            client_key: keys.0,
            server_key: keys.1,
        });
        keys
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<CacheEntry>> {
        // The entries are always consistent (each push is one call), so a panic elsewhere
        // while the lock was held leaves nothing to repair.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for SaltedPasswordCache {
    fn default() -> Self {
        SaltedPasswordCache::new()
    }
}

impl fmt::Debug for SaltedPasswordCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaltedPasswordCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

/// `(ClientKey, ServerKey)` of a SASLprep'd password.
fn derive_keys(password: &[u8], salt: &[u8], iterations: u32) -> ([u8; KEY_LEN], [u8; KEY_LEN]) {
    let salted = salted_password(password, salt, iterations);
    (client_key(&salted), server_key(&salted))
}

/// One SCRAM exchange in which qcp logs in to a server. Create one per login.
pub struct ScramClient {
    credentials: ScramCredentials,
    cache: Option<Arc<SaltedPasswordCache>>,
    /// The gs2 header: `n,,`, or `p=tls-server-end-point,,` when binding.
    gs2_header: Vec<u8>,
    /// What `c=` carries, before base64: the gs2 header, then the binding data if any.
    binding: Vec<u8>,
    /// `n=,r=<client nonce>`; the nonce is printable and comma-free.
    client_first_bare: Vec<u8>,
    /// Where the nonce starts in `client_first_bare`.
    nonce_offset: usize,
    state: State,
}

enum State {
    Initial,
    AwaitingServerFirst,
    AwaitingServerFinal {
        server_signature: [u8; KEY_LEN],
    },
    /// Succeeded or failed; nothing more is accepted.
    Done,
}

/// The gs2 header without channel binding or authorization identity.
const GS2_HEADER: &[u8] = b"n,,";

impl ScramClient {
    /// Starts a login with a random client nonce (18 random bytes, base64).
    pub fn new(credentials: ScramCredentials) -> ScramClient {
        ScramClient::build(credentials, b"", &random_nonce())
    }

    /// Starts a login with a given client nonce, for tests and reproducible runs. The nonce
    /// must be non-empty printable ASCII without commas; otherwise `Err(Malformed)`.
    pub fn with_nonce(
        credentials: ScramCredentials,
        nonce: &str,
    ) -> Result<ScramClient, ScramError> {
        if !is_valid_nonce(nonce.as_bytes()) {
            return Err(ScramError::Malformed(
                "client nonce must be printable ASCII without commas",
            ));
        }
        Ok(ScramClient::build(credentials, b"", nonce))
    }

    /// `user` must already be a SCRAM `saslname` (`,` and `=` escaped); qcp always sends an
    /// empty one, as libpq does. Tests pass RFC 7677's `user` to reproduce its example.
    fn build(credentials: ScramCredentials, user: &[u8], nonce: &str) -> ScramClient {
        let mut client_first_bare = b"n=".to_vec();
        client_first_bare.extend_from_slice(user);
        client_first_bare.extend_from_slice(b",r=");
        let nonce_offset = client_first_bare.len();
        client_first_bare.extend_from_slice(nonce.as_bytes());
        ScramClient {
            credentials,
            cache: None,
            gs2_header: GS2_HEADER.to_vec(),
            binding: GS2_HEADER.to_vec(),
            client_first_bare,
            nonce_offset,
            state: State::Initial,
        }
    }

    /// Uses `cache` for the PBKDF2 step of password logins.
    #[must_use]
    pub fn with_cache(mut self, cache: Arc<SaltedPasswordCache>) -> ScramClient {
        self.cache = Some(cache);
        self
    }

    /// Binds the login to the TLS connection whose server certificate has the
    /// `tls-server-end-point` data `end_point` (SCRAM-SHA-256-PLUS).
    #[must_use]
    pub fn with_channel_binding(mut self, end_point: &[u8]) -> ScramClient {
        self.gs2_header = format!("p={},,", super::scram::TLS_SERVER_END_POINT).into_bytes();
        self.binding = [self.gs2_header.as_slice(), end_point].concat();
        self
    }

    /// Says the client could bind but the server offered no `SCRAM-SHA-256-PLUS` (gs2 `y`):
    /// a server that did offer it, and sees this, knows the offer was removed on the way.
    #[must_use]
    pub fn could_bind(mut self) -> ScramClient {
        self.gs2_header = b"y,,".to_vec();
        self.binding = self.gs2_header.clone();
        self
    }

    /// The SASL mechanism to name in SASLInitialResponse: `SCRAM-SHA-256`, or
    /// `SCRAM-SHA-256-PLUS` when binding.
    pub fn mechanism(&self) -> &'static str {
        if !self.gs2_header.starts_with(b"p=") {
            super::scram::SCRAM_SHA_256
        } else {
            super::scram::SCRAM_SHA_256_PLUS
        }
    }

    /// The client-first-message, data of SASLInitialResponse: `n,,n=,r=<nonce>`.
    ///
    /// Calling it again returns the same bytes.
    pub fn client_first(&mut self) -> Vec<u8> {
        if let State::Initial = self.state {
            self.state = State::AwaitingServerFirst;
        }
        [self.gs2_header.as_slice(), &self.client_first_bare].concat()
    }

    /// Handles the server-first-message (data of AuthenticationSASLContinue) and returns the
    /// client-final-message (data of SASLResponse).
    ///
    /// Refuses a nonce that does not extend ours, an empty or invalid salt, an iteration count
    /// of 0 or above [`MAX_ITERATIONS`], and pass-through keys made for another salt or
    /// iteration count. With a password this runs PBKDF2 (through the cache if one is set).
    /// Any error ends the exchange.
    pub fn handle_server_first(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let State::AwaitingServerFirst = std::mem::replace(&mut self.state, State::Done) else {
            return Err(ScramError::OutOfOrder);
        };
        let ServerFirst {
            nonce,
            salt,
            iterations,
        } = parse_server_first(server_first)?;

        let our_nonce = self
            .client_first_bare
            .get(self.nonce_offset..)
            .unwrap_or_default();
        if nonce.len() <= our_nonce.len() || !nonce.starts_with(our_nonce) {
            return Err(ScramError::NonceMismatch);
        }

        let (client_key, server_key) = match &self.credentials {
            ScramCredentials::Password(password) => match &self.cache {
                Some(cache) => cache.keys(password, &salt, iterations),
                None => derive_keys(&sasl_prep(password), &salt, iterations),
            },
            ScramCredentials::Keys {
                client_key,
                server_key,
                salt: key_salt,
                iterations: key_iterations,
            } => {
                if *key_salt != salt || *key_iterations != iterations {
                    return Err(ScramError::KeysDoNotMatchServerSalt);
                }
                (*client_key, *server_key)
            }
        };

        let mut without_proof = b"c=".to_vec();
        without_proof.extend_from_slice(STANDARD.encode(&self.binding).as_bytes());
        without_proof.extend_from_slice(b",r=");
        without_proof.extend_from_slice(nonce);
        let auth_message =
            join_with_commas(&[&self.client_first_bare, server_first, &without_proof]);
        let client_signature = hmac_sha256(&sha256(&client_key), &[&auth_message]);
        let proof = xor(&client_key, &client_signature);
        let server_signature = hmac_sha256(&server_key, &[&auth_message]);

        let mut client_final = without_proof;
        client_final.extend_from_slice(b",p=");
        client_final.extend_from_slice(STANDARD.encode(proof).as_bytes());
        self.state = State::AwaitingServerFinal { server_signature };
        Ok(client_final)
    }

    /// Handles the server-final-message (data of AuthenticationSASLFinal): checks the server's
    /// signature (constant-time). `e=<text>` from the server is `Err(ServerError(text))`.
    pub fn handle_server_final(&mut self, server_final: &[u8]) -> Result<(), ScramError> {
        let State::AwaitingServerFinal { server_signature } =
            std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(ScramError::OutOfOrder);
        };
        // server-final-message = (server-error / verifier) ["," extensions]
        let mut attrs = attributes(server_final);
        let first = attrs.next().unwrap_or_default();
        if let Some(text) = first.strip_prefix(b"e=") {
            return Err(ScramError::ServerError(sanitize_server_error(text)));
        }
        let verifier = attribute(
            Some(first),
            b'v',
            "server-final-message lacks the verifier (v=)",
        )?;
        let verifier: [u8; KEY_LEN] =
            decode_array(verifier, "server signature must be base64 of 32 bytes")?;
        attrs.try_for_each(check_extension)?;
        if !constant_time_eq(&verifier, &server_signature) {
            return Err(ScramError::ServerSignatureMismatch);
        }
        Ok(())
    }
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Initial => "Initial",
            State::AwaitingServerFirst => "AwaitingServerFirst",
            State::AwaitingServerFinal { .. } => "AwaitingServerFinal",
            State::Done => "Done",
        };
        f.debug_struct("ScramClient")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

/// The parts of a server-first-message.
struct ServerFirst<'a> {
    nonce: &'a [u8],
    salt: Vec<u8>,
    iterations: u32,
}

/// ```text
/// server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions]
/// ```
fn parse_server_first(message: &[u8]) -> Result<ServerFirst<'_>, ScramError> {
    let mut attrs = attributes(message).peekable();
    if attrs.peek().is_some_and(|a| a.starts_with(b"m=")) {
        return Err(ScramError::Unsupported("mandatory extension (m=)"));
    }
    let nonce = attribute(
        attrs.next(),
        b'r',
        "server-first-message lacks the nonce (r=)",
    )?;
    if !is_valid_nonce(nonce) {
        return Err(ScramError::Malformed(
            "server nonce must be printable ASCII",
        ));
    }
    let salt = attribute(
        attrs.next(),
        b's',
        "server-first-message lacks the salt (s=)",
    )?;
    let salt = decode_vec(salt, "salt (s=) is not valid base64")?;
    if salt.is_empty() {
        return Err(ScramError::Malformed("salt (s=) is empty"));
    }
    let iterations = attribute(
        attrs.next(),
        b'i',
        "server-first-message lacks the iteration count (i=)",
    )?;
    let iterations = parse_iterations(iterations)?;
    attrs.try_for_each(check_extension)?;
    Ok(ServerFirst {
        nonce,
        salt,
        iterations,
    })
}

/// Decimal digits; 1 to [`MAX_ITERATIONS`].
fn parse_iterations(text: &[u8]) -> Result<u32, ScramError> {
    const MALFORMED: ScramError =
        ScramError::Malformed("iteration count (i=) must be a decimal number");
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return Err(MALFORMED);
    }
    // All ASCII digits, so valid UTF-8; the only parse failure left is overflow.
    let n = std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<u32>().ok())
        .ok_or(ScramError::UnsupportedIterations(u32::MAX))?;
    if n == 0 || n > MAX_ITERATIONS {
        return Err(ScramError::UnsupportedIterations(n));
    }
    Ok(n)
}

#[cfg(test)]
mod tests;

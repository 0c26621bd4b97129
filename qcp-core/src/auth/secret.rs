//! What qcp knows about a user's password: the plaintext, PostgreSQL's md5 hash, or a
//! SCRAM-SHA-256 secret, in the textual forms PostgreSQL stores in `pg_authid.rolpassword`.
//!
//! Formats (PostgreSQL `src/backend/libpq/crypt.c`, `auth-scram.c`):
//! - md5: `"md5" + hex(md5(password || username))`, 35 characters.
//! - SCRAM: `SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>`.
//! - anything else is a plaintext password.
//!
//! `Debug` never prints a password or a key, and no [`SecretError`] quotes the secret it
//! rejects, so both are safe to log.

use std::fmt;
use std::str::FromStr;

use base64::{engine::general_purpose::STANDARD, Engine as _};

use super::constant_time_eq;
use super::md5::md5_hash;
use super::primitives::{
    client_key, hex_decode, hmac_sha256, random_bytes, salted_password, sasl_prep, server_key,
    sha256, KEY_LEN,
};

/// Prefix of a SCRAM-SHA-256 secret, including the separator after the mechanism name.
const SCRAM_PREFIX: &str = "SCRAM-SHA-256$";

/// Iteration count of secrets qcp generates; PostgreSQL's default `scram_iterations`.
pub const DEFAULT_SCRAM_ITERATIONS: u32 = 4096;

/// Salt length of secrets qcp generates, as PostgreSQL's `SCRAM_DEFAULT_SALT_LEN`.
pub const DEFAULT_SALT_LEN: usize = 16;

/// A user's password as configured: one of the three forms PostgreSQL itself stores.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The password itself.
    Plain(String),
    /// `md5(password || username)`, decoded from the stored `"md5" + 32 hex digits`.
    Md5([u8; 16]),
    /// A SCRAM-SHA-256 verifier.
    Scram(ScramSecret),
}

impl Secret {
    /// Recognises a stored secret.
    ///
    /// Text starting with `SCRAM-SHA-256$` must be a well-formed SCRAM secret (anything wrong is
    /// an error rather than a silent fallback to "plaintext", so a damaged secret is reported at
    /// configuration load). `"md5"` followed by exactly 32 hex digits (either case) is an md5
    /// hash. Anything else, including the empty string, is a plaintext password.
    pub fn parse(text: &str) -> Result<Secret, SecretError> {
        if let Some(rest) = text.strip_prefix(SCRAM_PREFIX) {
            return ScramSecret::parse_body(rest).map(Secret::Scram);
        }
        if let Some(hash) = text
            .strip_prefix("md5")
            .and_then(|h| hex_decode::<16>(h.as_bytes()))
        {
            return Ok(Secret::Md5(hash));
        }
        Ok(Secret::Plain(text.to_owned()))
    }

    /// A short name of the form, for messages: `"plaintext"`, `"md5 hash"` or `"SCRAM secret"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Secret::Plain(_) => "plaintext",
            Secret::Md5(_) => "md5 hash",
            Secret::Scram(_) => "SCRAM secret",
        }
    }

    /// Checks a password a client sent in cleartext (`AuthenticationCleartextPassword`).
    ///
    /// Works with every form, the way PostgreSQL's `plain_crypt_verify` does; with a SCRAM
    /// secret this runs PBKDF2 with the secret's iteration count. Comparisons are constant-time.
    pub fn verify_cleartext(&self, user: &str, password: &str) -> bool {
        match self {
            Secret::Plain(expected) => constant_time_eq(expected.as_bytes(), password.as_bytes()),
            Secret::Md5(hash) => constant_time_eq(hash, &md5_hash(user, password)),
            Secret::Scram(secret) => {
                let candidate =
                    ScramSecret::from_password(password, &secret.salt, secret.iterations);
                constant_time_eq(&candidate.stored_key, &secret.stored_key)
                    & constant_time_eq(&candidate.server_key, &secret.server_key)
            }
        }
    }
}

impl FromStr for Secret {
    type Err = SecretError;

    fn from_str(text: &str) -> Result<Secret, SecretError> {
        Secret::parse(text)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Plain(_) => f.write_str("Secret::Plain(<redacted>)"),
            Secret::Md5(_) => f.write_str("Secret::Md5(<redacted>)"),
            Secret::Scram(s) => f.debug_tuple("Secret::Scram").field(s).finish(),
        }
    }
}

/// A SCRAM-SHA-256 verifier: enough to check a client's proof, not enough to compute one.
///
/// `Display` writes PostgreSQL's stored form, so `secret.to_string()` round-trips through
/// [`Secret::parse`].
#[derive(Clone, PartialEq, Eq)]
pub struct ScramSecret {
    /// PBKDF2 iteration count; at least 1 in every value this module creates.
    pub iterations: u32,
    /// The salt, raw (not base64).
    pub salt: Vec<u8>,
    /// `SHA-256(ClientKey)`.
    pub stored_key: [u8; 32],
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: [u8; 32],
}

impl ScramSecret {
    /// Derives the verifier of `password` for a given salt and iteration count.
    ///
    /// The password goes through SASLprep first, falling back to its raw bytes when SASLprep
    /// rejects it, as PostgreSQL does. This runs PBKDF2 (`iterations` rounds of HMAC): derive
    /// once and keep the result. An iteration count of 0 is treated as 1.
    pub fn from_password(password: &str, salt: &[u8], iterations: u32) -> ScramSecret {
        let iterations = iterations.max(1);
        let salted = salted_password(&sasl_prep(password), salt, iterations);
        ScramSecret {
            iterations,
            salt: salt.to_vec(),
            stored_key: sha256(&client_key(&salted)),
            server_key: server_key(&salted),
        }
    }

    /// A fresh verifier like PostgreSQL's `CREATE ROLE ... PASSWORD`: random 16-byte salt,
    /// 4096 iterations. Expensive (PBKDF2): call it once per user at configuration load.
    pub fn generate(password: &str) -> ScramSecret {
        ScramSecret::generate_with(password, DEFAULT_SCRAM_ITERATIONS)
    }

    /// [`ScramSecret::generate`] with `iterations` rounds (for `qcp-ctrl passwd`).
    pub fn generate_with(password: &str, iterations: u32) -> ScramSecret {
        let salt: [u8; DEFAULT_SALT_LEN] = random_bytes();
        ScramSecret::from_password(password, &salt, iterations)
    }

    /// A verifier that no password matches, for "mock" authentication of unknown users.
    ///
    /// The salt is derived from `mock_key` and `user`, so repeated attempts for the same
    /// unknown user see the same salt, as they would for a real user; the keys are derived the
    /// same way, and finding a ClientKey whose SHA-256 is that StoredKey is a preimage attack.
    /// `mock_key` should be random per process (PostgreSQL uses its cluster's mock nonce).
    pub fn mock(user: &str, mock_key: &[u8]) -> ScramSecret {
        let salt = hmac_sha256(mock_key, &[b"qcp mock salt\0", user.as_bytes()]);
        ScramSecret {
            iterations: DEFAULT_SCRAM_ITERATIONS,
            salt: salt.get(..DEFAULT_SALT_LEN).unwrap_or(&salt).to_vec(),
            stored_key: hmac_sha256(mock_key, &[b"qcp mock stored key\0", user.as_bytes()]),
            server_key: hmac_sha256(mock_key, &[b"qcp mock server key\0", user.as_bytes()]),
        }
    }

    /// Parses what follows `SCRAM-SHA-256$`: `<iterations>:<salt>$<StoredKey>:<ServerKey>`.
    fn parse_body(body: &str) -> Result<ScramSecret, SecretError> {
        let (params, keys) = body.split_once('$').ok_or(SecretError::ScramFormat)?;
        let (iterations, salt) = params.split_once(':').ok_or(SecretError::ScramFormat)?;
        let (stored_key, server_key) = keys.split_once(':').ok_or(SecretError::ScramFormat)?;

        let iterations = parse_iterations(iterations).ok_or(SecretError::ScramIterations)?;
        let salt = STANDARD
            .decode(salt)
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or(SecretError::ScramSalt)?;
        let stored_key = decode_key(stored_key).ok_or(SecretError::ScramStoredKey)?;
        let server_key = decode_key(server_key).ok_or(SecretError::ScramServerKey)?;
        Ok(ScramSecret {
            iterations,
            salt,
            stored_key,
            server_key,
        })
    }
}

/// Decimal digits only (no sign, no spaces), value 1 to `u32::MAX`.
fn parse_iterations(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u32>().ok().filter(|&i| i >= 1)
}

/// Base64 of exactly 32 bytes.
fn decode_key(text: &str) -> Option<[u8; KEY_LEN]> {
    STANDARD.decode(text).ok()?.try_into().ok()
}

impl fmt::Display for ScramSecret {
    /// PostgreSQL's stored form: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCRAM_PREFIX}{}:{}${}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(self.stored_key),
            STANDARD.encode(self.server_key),
        )
    }
}

impl fmt::Debug for ScramSecret {
    /// Shows the iteration count and salt (both public: every client is sent them) but not
    /// the keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramSecret")
            .field("iterations", &self.iterations)
            .field("salt", &STANDARD.encode(&self.salt))
            .field("stored_key", &"<redacted>")
            .field("server_key", &"<redacted>")
            .finish()
    }
}

/// Why a stored secret was rejected. The text never quotes the secret.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretError {
    /// Starts with `SCRAM-SHA-256$` but lacks the `$`/`:` separators of the stored form.
    ScramFormat,
    /// The iteration count is not a decimal integer from 1 to 4294967295.
    ScramIterations,
    /// The salt is not valid, non-empty base64.
    ScramSalt,
    /// The StoredKey is not base64 of exactly 32 bytes.
    ScramStoredKey,
    /// The ServerKey is not base64 of exactly 32 bytes.
    ScramServerKey,
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            SecretError::ScramFormat => {
                "expected the form SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>"
            }
            SecretError::ScramIterations => {
                "the iteration count must be a decimal integer from 1 to 4294967295"
            }
            SecretError::ScramSalt => "the salt must be non-empty, padded base64",
            SecretError::ScramStoredKey => "the StoredKey must be padded base64 of exactly 32 bytes",
            SecretError::ScramServerKey => "the ServerKey must be padded base64 of exactly 32 bytes",
        };
        write!(f, "invalid SCRAM-SHA-256 secret: {what}")
    }
}

impl std::error::Error for SecretError {}

#[cfg(test)]
mod tests;

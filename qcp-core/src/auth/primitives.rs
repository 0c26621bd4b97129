//! Cryptographic building blocks shared by the SCRAM and md5 code: SASLprep, the SCRAM key
//! schedule (RFC 5802 section 3), hex, and randomness.
//!
//! The primitives themselves (SHA-256, HMAC, PBKDF2, MD5) come from RustCrypto; this module
//! only names the compositions SCRAM uses.

use std::borrow::Cow;

use hmac::{Hmac, Mac};
use rand::{rngs::OsRng, RngCore};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Length of every SCRAM-SHA-256 key, proof and signature.
pub(crate) const KEY_LEN: usize = 32;

/// The password bytes SCRAM hashes: `SASLprep(password)` when that succeeds, else the raw bytes.
///
/// This is what PostgreSQL does (`pg_saslprep` in `src/common/saslprep.c`, used by both the
/// server and libpq): a password that SASLprep rejects (prohibited or unassigned code points,
/// bidi violations) is used as it is, rather than refused.
pub(crate) fn sasl_prep(password: &str) -> Cow<'_, [u8]> {
    // Pure ASCII needs no processing in PostgreSQL, even ASCII control characters that
    // SASLprep would prohibit; returning it untouched matches that exactly.
    if password.is_ascii() {
        return Cow::Borrowed(password.as_bytes());
    }
    match stringprep::saslprep(password) {
        Ok(Cow::Borrowed(s)) => Cow::Borrowed(s.as_bytes()),
        Ok(Cow::Owned(s)) => Cow::Owned(s.into_bytes()),
        Err(_) => Cow::Borrowed(password.as_bytes()),
    }
}

/// `SaltedPassword := Hi(Normalize(password), salt, i)`, that is PBKDF2-HMAC-SHA-256.
///
/// `password` must already be SASLprep'd (see [`sasl_prep`]). An iteration count of 0 is
/// treated as 1 (PBKDF2 always runs its first round).
pub(crate) fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations.max(1), &mut out);
    out
}

/// `HMAC-SHA-256(key, part1 || part2 || ...)`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; KEY_LEN] {
    // HMAC accepts keys of any length (RFC 2104: longer keys are hashed first), so
    // `new_from_slice` cannot fail; no input, hostile or not, reaches this expect.
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// `SHA-256(data)`.
pub(crate) fn sha256(data: &[u8]) -> [u8; KEY_LEN] {
    Sha256::digest(data).into()
}

/// `ClientKey := HMAC(SaltedPassword, "Client Key")`.
pub(crate) fn client_key(salted_password: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    hmac_sha256(salted_password, &[b"Client Key"])
}

/// `ServerKey := HMAC(SaltedPassword, "Server Key")`.
pub(crate) fn server_key(salted_password: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    hmac_sha256(salted_password, &[b"Server Key"])
}

/// `a XOR b`, byte by byte.
pub(crate) fn xor(a: &[u8; KEY_LEN], b: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = x ^ y;
    }
    out
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().saturating_mul(2));
    for &b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            // A nibble is always < 16, so `from_digit` always succeeds.
            out.extend(char::from_digit(u32::from(nibble), 16));
        }
    }
    out
}

/// Decodes exactly `N` bytes of hex (either case); `None` on any other length or character.
pub(crate) fn hex_decode<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    fn nibble(c: u8) -> Option<u8> {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    if text.len() != N.checked_mul(2)? {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *o = (nibble(*hi)? << 4) | nibble(*lo)?;
    }
    Some(out)
}

/// `N` bytes from the operating system's CSPRNG, for salts and nonces.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    OsRng.fill_bytes(&mut out);
    out
}

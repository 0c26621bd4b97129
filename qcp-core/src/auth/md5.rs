//! PostgreSQL's md5 password authentication (`AuthenticationMD5Password`).
//!
//! The stored hash is `md5(password || username)`. The server sends a random 4-byte salt and
//! the client answers `"md5" + hex(md5(hex(stored hash) || salt))`. Whoever holds the stored
//! hash can therefore answer (pass-the-hash): qcp uses that to log in to servers with an md5
//! secret, as PgBouncer does.

use md5::{Digest, Md5};

use super::constant_time_eq;
use super::primitives::hex_encode;
use super::secret::Secret;

/// `md5(password || user)`: the hash PostgreSQL stores (without its `"md5"` prefix).
pub fn md5_hash(user: &str, password: &str) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(password.as_bytes());
    md5.update(user.as_bytes());
    md5.finalize().into()
}

/// The stored text form: `"md5" + hex(md5(password || user))`.
pub fn md5_stored(user: &str, password: &str) -> String {
    format!("md5{}", hex_encode(&md5_hash(user, password)))
}

/// What a client sends for the challenge `salt`, given the stored hash:
/// `"md5" + hex(md5(hex(hash) || salt))`.
pub fn md5_response_from_hash(hash: &[u8; 16], salt: [u8; 4]) -> String {
    let mut md5 = Md5::new();
    md5.update(hex_encode(hash).as_bytes());
    md5.update(salt);
    format!("md5{}", hex_encode(&md5.finalize()))
}

/// What a client sends for the challenge `salt`, given the password.
pub fn md5_response(user: &str, password: &str, salt: [u8; 4]) -> String {
    md5_response_from_hash(&md5_hash(user, password), salt)
}

/// Checks a client's answer to the challenge `salt`.
///
/// `response` is the PasswordMessage string; one trailing NUL terminator is tolerated. Works
/// with [`Secret::Plain`] and [`Secret::Md5`]; always `false` for [`Secret::Scram`] (an md5
/// answer cannot be checked against a SCRAM verifier). The comparison is constant-time.
pub fn md5_verify(secret: &Secret, user: &str, salt: [u8; 4], response: &[u8]) -> bool {
    let hash = match secret {
        Secret::Plain(password) => md5_hash(user, password),
        Secret::Md5(hash) => *hash,
        Secret::Scram(_) => return false,
    };
    let response = response.strip_suffix(b"\0").unwrap_or(response);
    constant_time_eq(md5_response_from_hash(&hash, salt).as_bytes(), response)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values computed independently with Python's hashlib:
    //   h = md5(b"secret" + b"dave").hexdigest(); "md5" + md5(h.encode() + bytes([1, 2, 3, 4])).hexdigest()
    const DAVE_STORED: &str = "md5d054392f985a267df752bb2b16be2f2f"; // also what PostgreSQL 15 stored
    const DAVE_RESPONSE_01020304: &str = "md55ab45ece48033d1037e5637478e04b0f";
    const USER_PENCIL_RESPONSE_DEADBEEF: &str = "md50f5b636d891e9860623ac8ca91fc9dfc";

    #[test]
    fn known_vectors() {
        assert_eq!(md5_stored("dave", "secret"), DAVE_STORED);
        assert_eq!(
            md5_response("dave", "secret", [1, 2, 3, 4]),
            DAVE_RESPONSE_01020304
        );
        assert_eq!(
            md5_response("user", "pencil", [0xde, 0xad, 0xbe, 0xef]),
            USER_PENCIL_RESPONSE_DEADBEEF
        );
        assert_eq!(
            md5_response_from_hash(&md5_hash("dave", "secret"), [1, 2, 3, 4]),
            DAVE_RESPONSE_01020304
        );
    }

    #[test]
    fn verify_with_each_secret_form() {
        let salt = [1, 2, 3, 4];
        let response = DAVE_RESPONSE_01020304.as_bytes();
        let stored = Secret::parse(DAVE_STORED).unwrap_or_else(|e| panic!("{e}"));
        let plain = Secret::Plain("secret".into());
        for secret in [&stored, &plain] {
            assert!(md5_verify(secret, "dave", salt, response));
            assert!(md5_verify(
                secret,
                "dave",
                salt,
                b"md55ab45ece48033d1037e5637478e04b0f\0"
            ));
            assert!(!md5_verify(secret, "dave", [1, 2, 3, 5], response));
            assert!(!md5_verify(
                secret,
                "dave",
                salt,
                b"md55ab45ece48033d1037e5637478e04b0"
            ));
            assert!(!md5_verify(
                secret,
                "dave",
                salt,
                b"MD55AB45ECE48033D1037E5637478E04B0F"
            ));
            assert!(!md5_verify(secret, "dave", salt, b""));
        }
        // The user name salts the stored hash: it matters with a plaintext secret only.
        assert!(!md5_verify(&plain, "davE", salt, response));
        assert!(md5_verify(&stored, "davE", salt, response));
        let scram = Secret::Scram(crate::auth::ScramSecret::from_password(
            "secret", b"salt", 1,
        ));
        assert!(!md5_verify(&scram, "dave", salt, response));
    }
}

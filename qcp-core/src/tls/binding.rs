//! SCRAM's `tls-server-end-point` channel binding (RFC 5929, section 4): the hash of the TLS
//! server's certificate, with the hash of the certificate's own signature algorithm (SHA-256
//! where that is MD5 or SHA-1). A client that binds proves it saw this very certificate, so a
//! man in the middle with another certificate cannot relay its login.

use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ECDSA_WITH_SHA_512, SHA_1_WITH_RSA_ENCRYPTION,
    SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION,
};
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert::der::Decode;
use x509_cert::Certificate;

/// The channel-binding data for a server whose certificate is `der`; `None` when its
/// signature algorithm names no hash (Ed25519, RSASSA-PSS), which leaves channel binding off,
/// as PostgreSQL does.
pub fn server_end_point(der: &[u8]) -> Option<Vec<u8>> {
    let certificate = Certificate::from_der(der).ok()?;
    let algorithm = certificate.signature_algorithm.oid;
    if [
        SHA_1_WITH_RSA_ENCRYPTION,
        SHA_256_WITH_RSA_ENCRYPTION,
        ECDSA_WITH_SHA_256,
    ]
    .contains(&algorithm)
    {
        Some(Sha256::digest(der).to_vec())
    } else if [SHA_384_WITH_RSA_ENCRYPTION, ECDSA_WITH_SHA_384].contains(&algorithm) {
        Some(Sha384::digest(der).to_vec())
    } else if [SHA_512_WITH_RSA_ENCRYPTION, ECDSA_WITH_SHA_512].contains(&algorithm) {
        Some(Sha512::digest(der).to_vec())
    } else {
        None
    }
}

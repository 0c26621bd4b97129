//! Reading certificates and keys from PEM files, with errors that name the setting.

use std::path::Path;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

use super::TlsError;

/// The certificates in the PEM file `path` (setting `setting`), at least one.
pub(super) fn certificates(
    setting: &str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let unreadable = |error: pem::Error| {
        TlsError::new(
            setting,
            format!("cannot read {}: {}", path.display(), pem_error(&error)),
            "Check the path, that qcp's user may read the file, and that it holds PEM \
             certificates (`-----BEGIN CERTIFICATE-----`).",
        )
    };
    let mut certificates = Vec::new();
    for certificate in CertificateDer::pem_file_iter(path).map_err(unreadable)? {
        certificates.push(certificate.map_err(unreadable)?);
    }
    if certificates.is_empty() {
        return Err(TlsError::new(
            setting,
            format!("{} holds no PEM certificate", path.display()),
            "Point it at a PEM file with at least one `-----BEGIN CERTIFICATE-----` block.",
        ));
    }
    Ok(certificates)
}

/// Refuses a leaf certificate (`der`, from `path`) that expired or is not valid yet: clients
/// would refuse it anyway, with a message far from its cause.
pub(super) fn check_validity(setting: &str, path: &Path, der: &[u8]) -> Result<(), TlsError> {
    use x509_cert::der::Decode;
    let Ok(certificate) = x509_cert::Certificate::from_der(der) else {
        // rustls checks the certificate's form where it matters; only the dates are ours.
        return Ok(());
    };
    let validity = certificate.tbs_certificate.validity;
    let now = std::time::SystemTime::now();
    if validity.not_after.to_system_time() < now {
        return Err(TlsError::new(
            setting,
            format!(
                "the certificate in {} expired on {}",
                path.display(),
                validity.not_after
            ),
            "Renew it (and its key if needed), then restart qcp or send it SIGHUP.",
        ));
    }
    if validity.not_before.to_system_time() > now {
        return Err(TlsError::new(
            setting,
            format!(
                "the certificate in {} is not valid before {}",
                path.display(),
                validity.not_before
            ),
            "Check the machine's clock, or use a certificate that is valid now.",
        ));
    }
    Ok(())
}

/// The private key in the PEM file `path` (setting `setting`).
pub(super) fn private_key(setting: &str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|error| {
        let message = match error {
            pem::Error::NoItemsFound => format!("{} holds no PEM private key", path.display()),
            error => format!("cannot read {}: {}", path.display(), pem_error(&error)),
        };
        TlsError::new(
            setting,
            message,
            "Point it at the certificate's private key in PEM (`-----BEGIN PRIVATE KEY-----`, \
             `RSA PRIVATE KEY` or `EC PRIVATE KEY`), readable by qcp's user.",
        )
    })
}

/// The certificate authorities in the PEM file `path`, as trust anchors.
pub(super) fn authorities(setting: &str, path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates(setting, path)? {
        roots.add(certificate).map_err(|error| {
            TlsError::new(
                setting,
                format!(
                    "{} holds a certificate that cannot be a trust anchor: {error}",
                    path.display()
                ),
                "Give the PEM certificates of the certificate authorities only.",
            )
        })?;
    }
    Ok(roots)
}

fn pem_error(error: &pem::Error) -> String {
    match error {
        pem::Error::Io(error) => error.to_string(),
        other => format!("not a valid PEM file ({other:?})"),
    }
}

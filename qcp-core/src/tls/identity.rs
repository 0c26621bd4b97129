//! Who a client certificate names: its subject's common name (CN), which the `cert` method
//! of `hba_file` compares with the user name, as PostgreSQL does.

use const_oid::db::rfc4519::CN;
use x509_cert::der::asn1::{PrintableStringRef, Utf8StringRef};
use x509_cert::der::{Decode, Tag, Tagged};
use x509_cert::Certificate;

/// The common name of the certificate `der` (the last CN of its subject, as OpenSSL reports
/// it); `None` when it has none, or it is not text.
pub fn common_name(der: &[u8]) -> Option<String> {
    let certificate = Certificate::from_der(der).ok()?;
    let subject = &certificate.tbs_certificate.subject;
    let value = subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .rev()
        .find(|attribute| attribute.oid == CN)?
        .value
        .clone();
    match value.tag() {
        Tag::Utf8String => Utf8StringRef::try_from(&value)
            .ok()
            .map(|s| s.as_str().to_owned()),
        Tag::PrintableString => PrintableStringRef::try_from(&value)
            .ok()
            .map(|s| s.as_str().to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_common_name_is_read_from_the_subject() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "qcp tests");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(super::common_name(cert.der()).as_deref(), Some("alice"));

        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let mut params = params;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(super::common_name(cert.der()), None, "no CN in the subject");
        assert_eq!(super::common_name(b"not a certificate"), None);
    }
}

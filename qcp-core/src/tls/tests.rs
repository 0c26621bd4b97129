use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

use super::*;
use crate::config::Config;

/// A CA and a certificate for `localhost` it signed, written to `dir` as PEM files.
struct Files {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    other_key: PathBuf,
}

fn write_files(dir: &Path) -> Files {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let files = Files {
        ca: dir.join("ca.crt"),
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
        other_key: dir.join("other.key"),
    };
    std::fs::write(&files.ca, ca.pem()).unwrap();
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    std::fs::write(
        &files.other_key,
        KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    files
}

fn config(yaml: &str) -> Config {
    Config::from_yaml(&format!("auth_method: trust\n{yaml}"), "test.yaml")
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Loading the configuration reads the files too, so `qcp --check` reports a bad one with
/// the setting and its line.
fn refused(yaml: &str) -> crate::config::ConfigError {
    Config::from_yaml(&format!("auth_method: trust\n{yaml}"), "test.yaml")
        .expect_err("a bad TLS file must be refused")
}

#[test]
fn client_and_server_sides_load_from_pem_files() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_files(dir.path());
    let c = config(&format!(
        "servers:\n  - address: db.example.com:5432\n    tls: {{mode: verify-full, ca: {}}}\n  - address: 127.0.0.1:5433\n    tls: {{mode: disable}}\n  - address: 127.0.0.1:5434\nclient_tls: {{cert: {}, key: {}, ca: {}}}\n",
        f.ca.display(),
        f.cert.display(),
        f.key.display(),
        f.ca.display()
    ));
    let setup = TlsSetup::load(&c).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(setup.client_mode(), ClientTlsMode::Prefer);
    let clients = setup.clients.as_ref().unwrap();
    assert_eq!(clients.config.alpn_protocols, vec![b"postgresql".to_vec()]);
    assert_eq!(setup.servers.len(), 3);
    let first = setup.servers[0].as_ref().unwrap();
    assert_eq!(first.mode, ServerTlsMode::VerifyFull);
    assert_eq!(first.name, ServerName::try_from("db.example.com").unwrap());
    assert!(setup.servers[1].is_none(), "mode disable");
    // The default for a server is prefer.
    assert_eq!(
        setup.servers[2].as_ref().unwrap().mode,
        ServerTlsMode::Prefer
    );
}

#[test]
fn a_key_of_another_certificate_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_files(dir.path());
    let error = refused(&format!(
        "servers: [{{address: 127.0.0.1:5432}}]\nclient_tls:\n  cert: {}\n  key: {}\n",
        f.cert.display(),
        f.other_key.display()
    ));
    assert_eq!(error.setting(), Some("client_tls.key"));
    assert_eq!(error.line(), Some(5));
    assert!(error.message().contains("does not belong"), "{error}");
}

#[test]
fn a_missing_or_empty_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_files(dir.path());
    let missing = dir.path().join("missing.crt");
    let error = refused(&format!(
        "servers: [{{address: 127.0.0.1:5432}}]\nclient_tls: {{cert: {}, key: {}}}\n",
        missing.display(),
        f.key.display()
    ));
    assert_eq!(error.setting(), Some("client_tls.cert"));
    assert!(error.message().contains("missing.crt"), "{error}");

    // A key file given as the certificate holds no certificate.
    let error = refused(&format!(
        "servers: [{{address: 127.0.0.1:5432}}]\nclient_tls: {{cert: {}, key: {}}}\n",
        f.key.display(),
        f.key.display()
    ));
    assert_eq!(error.setting(), Some("client_tls.cert"));
    assert!(error.message().contains("no PEM certificate"), "{error}");

    let error = refused(&format!(
        "servers:\n  - address: 127.0.0.1:5432\n    tls: {{mode: verify-ca, ca: {}}}\n",
        f.key.display()
    ));
    assert_eq!(error.setting(), Some("servers[0].tls.ca"));
}

#[test]
fn settings_that_cannot_work_are_refused_before_files_are_read() {
    for (yaml, setting) in [
        (
            "servers: [{address: 127.0.0.1:5432}]\nclient_tls: {mode: require}\n",
            "client_tls.cert",
        ),
        (
            "servers: [{address: 127.0.0.1:5432}]\nclient_tls: {cert: /x.crt}\n",
            "client_tls.key",
        ),
        (
            "servers: [{address: 127.0.0.1:5432, tls: {mode: verify-full}}]\n",
            "servers[0].tls.ca",
        ),
        (
            "servers: [{address: 127.0.0.1:5432, tls: {mode: require, ca: /ca.crt}}]\n",
            "servers[0].tls.ca",
        ),
        (
            "servers: [{address: '/run/pg:5432', tls: {mode: require}}]\n",
            "servers[0].tls.mode",
        ),
    ] {
        let error = refused(yaml);
        assert_eq!(error.setting(), Some(setting), "{yaml}: {error}");
    }
}

#[test]
fn host_names_come_out_of_addresses() {
    assert_eq!(host_of("db.example.com:5432"), "db.example.com");
    assert_eq!(host_of("[::1]:5432"), "::1");
    assert_eq!(host_of("10.0.0.1:5432"), "10.0.0.1");
}

#[test]
fn an_expired_certificate_is_named_with_its_date() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.path().join("old.crt"), dir.path().join("old.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let error = refused(&format!(
        "servers: [{{address: 127.0.0.1:5432}}]\nclient_tls: {{cert: {}, key: {}}}\n",
        cert_path.display(),
        key_path.display()
    ));
    assert_eq!(error.setting(), Some("client_tls.cert"));
    assert!(error.message().contains("expired on 2021-01-01"), "{error}");
}

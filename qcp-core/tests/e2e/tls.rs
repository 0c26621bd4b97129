//! TLS on both sides, against the real test PostgreSQL (which runs with `ssl = on`, a
//! certificate for `localhost` signed by the CA in `QCP_TEST_PG_CA`): psql (libpq) and
//! tokio-postgres (rustls) to qcp with each `sslmode`, client certificates, direct TLS, and qcp
//! to PostgreSQL with `verify-full` success and host-name failure.

use std::path::PathBuf;
use std::sync::Arc;

use qcp_codec::{encode, Header, Limits, ProtocolVersion, Tag};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::script::{trusting, write_private};
use crate::support::*;

/// A CA, a certificate for `localhost` it signed (qcp's), and a client certificate for the
/// SCRAM test user signed by a second CA, as PEM files in a scratch directory.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    client_ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn authority(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    (params.self_signed(&key).expect("CA certificate"), key)
}

impl Pki {
    fn new() -> Pki {
        let dir = scratch_dir("tls");
        // Each set has its own CA names: OpenSSL looks a CA up by name.
        let tag = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (ca, ca_key) = authority(&format!("qcp e2e CA {tag}"));
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .signed_by(&key, &ca, &ca_key)
            .expect("qcp certificate");
        let (client_ca, client_ca_key) = authority(&format!("qcp e2e client CA {tag}"));
        let client_key = KeyPair::generate().expect("client key");
        let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        client_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, SCRAM_USER.0);
        let client_cert = client_params
            .signed_by(&client_key, &client_ca, &client_ca_key)
            .expect("client certificate");
        let path = |name: &str| dir.path().join(name);
        let pki = Pki {
            ca: path("ca.crt"),
            cert: path("qcp.crt"),
            key: path("qcp.key"),
            client_ca: path("client-ca.crt"),
            client_cert: path("client.crt"),
            client_key: path("client.key"),
            _dir: dir,
        };
        std::fs::write(&pki.ca, ca.pem()).expect("write");
        std::fs::write(&pki.cert, cert.pem()).expect("write");
        write_private(&pki.key, &key.serialize_pem());
        std::fs::write(&pki.client_ca, client_ca.pem()).expect("write");
        std::fs::write(&pki.client_cert, client_cert.pem()).expect("write");
        write_private(&pki.client_key, &client_key.serialize_pem());
        pki
    }

    /// `client_tls` with this certificate, `mode` and, if `client_ca`, client certificates
    /// required.
    fn client_tls(&self, mode: &str, client_ca: bool) -> String {
        let mut yaml = format!(
            "client_tls:\n  mode: {mode}\n  cert: {}\n  key: {}\n",
            self.cert.display(),
            self.key.display()
        );
        if client_ca {
            yaml.push_str(&format!("  ca: {}\n", self.client_ca.display()));
        }
        yaml
    }

    /// A rustls client configuration that trusts this CA, offering `alpn`.
    fn rustls_client(&self, alpn: &[&[u8]]) -> rustls::ClientConfig {
        let pem = std::fs::read_to_string(&self.ca).expect("read CA");
        let mut config = trusting(&[&pem]);
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }
}

/// psql options for a TLS connection to qcp checked against `pki`'s CA, by host name.
fn verify_full(pki: &Pki) -> Vec<(&'static str, String)> {
    vec![
        ("PGSSLMODE", "verify-full".to_owned()),
        ("PGSSLROOTCERT", pki.ca.display().to_string()),
        ("PGHOSTADDR", "127.0.0.1".to_owned()),
    ]
}

async fn psql_tls(qcp: &Qcp, env: &[(&str, String)], sql: &str) -> (bool, String, String) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    psql_at("localhost", qcp.addr.port(), &env, &["-Atc", sql]).await
}

/// tokio-postgres over rustls to qcp as the SCRAM test user, `sslmode=require`, checking
/// qcp's certificate against `pki`'s CA and the name `localhost`.
async fn rustls_connect(qcp: &Qcp, pki: &Pki) -> tokio_postgres::Client {
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(pki.rustls_client(&[]));
    let conninfo = format!(
        "host=localhost hostaddr=127.0.0.1 port={} user={} password={} dbname={DATABASE} sslmode=require",
        qcp.addr.port(),
        SCRAM_USER.0,
        SCRAM_USER.1
    );
    let (client, connection) = tokio_postgres::connect(&conninfo, tls)
        .await
        .expect("TLS connect through qcp");
    tokio::spawn(connection);
    client
}

/// What the connection itself reports about TLS, as PostgreSQL sees qcp's server
/// connection: `ssl|version`.
const SERVER_SIDE_SSL: &str = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

#[tokio::test]
async fn libpq_verifies_qcp_by_name_and_qcp_speaks_tls_to_postgresql_by_default() {
    let pki = Pki::new();
    let qcp = Setup::smart()
        .extra(&pki.client_tls("prefer", false))
        .start();
    let (ok, out, err) = psql_tls(
        &qcp,
        &verify_full(&pki),
        "SELECT ssl FROM pg_stat_ssl LIMIT 0; SELECT 40 + 2",
    )
    .await;
    assert!(ok, "verify-full through qcp: {err}");
    assert_eq!(out.trim(), "42");
    // The server connection behind it is encrypted too (servers[].tls.mode defaults to
    // prefer, and the test PostgreSQL has ssl = on).
    let (ok, out, err) = psql_tls(&qcp, &verify_full(&pki), SERVER_SIDE_SSL).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "t", "qcp's server connection must use TLS");

    // sslmode=require (no check) and clear text both work in prefer mode.
    let require = [("PGSSLMODE", "require".to_owned())];
    let (ok, out, err) = psql_tls(&qcp, &require, "SELECT 1").await;
    assert!(ok && out.trim() == "1", "require: {err}");
    let disable = [("PGSSLMODE", "disable".to_owned())];
    let (ok, out, err) = psql_tls(&qcp, &disable, "SELECT 2").await;
    assert!(ok && out.trim() == "2", "clear text in prefer mode: {err}");

    // A CA that did not sign qcp's certificate is refused by libpq.
    let other = Pki::new();
    let (ok, _, err) = psql_tls(&qcp, &verify_full(&other), "SELECT 1").await;
    assert!(!ok, "a foreign CA must not verify qcp");
    assert!(err.contains("certificate verify failed"), "{err}");
}

#[tokio::test]
async fn clear_text_is_refused_when_tls_is_required() {
    let pki = Pki::new();
    let qcp = Setup::session()
        .extra(&pki.client_tls("require", false))
        .start();
    let disable = [("PGSSLMODE", "disable".to_owned())];
    let (ok, _, err) = psql_tls(&qcp, &disable, "SELECT 1").await;
    assert!(!ok);
    assert!(err.contains("client_tls.mode is require"), "{err}");
    assert!(
        err.contains("sslmode=require"),
        "the hint says what to do: {err}"
    );

    // The same with a Rust driver, which sees the SQLSTATE.
    let error = connect(&qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, DATABASE))
        .await
        .expect_err("clear text must be refused");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("28000"), "{error}");

    let (ok, out, err) = psql_tls(&qcp, &verify_full(&pki), "SELECT 3").await;
    assert!(ok && out.trim() == "3", "{err}");
}

#[tokio::test]
async fn tokio_postgres_over_rustls_runs_transactions_and_large_results() {
    let pki = Pki::new();
    let qcp = Setup::smart()
        .extra(&pki.client_tls("require", false))
        .start();
    let client = rustls_connect(&qcp, &pki).await;
    // Larger than a TLS record (16 KB) and than the test arena's chunk: many records, many
    // chunks, both ways.
    let big = "x".repeat(300_000);
    let row = client
        .query_one("SELECT length($1::text), md5($1::text)", &[&big])
        .await
        .expect("big parameter");
    assert_eq!(row.get::<_, i32>(0), 300_000);
    let rows = client
        .query(
            "SELECT g, repeat('y', 1000) FROM generate_series(1, 2000) g",
            &[],
        )
        .await
        .expect("big result");
    assert_eq!(rows.len(), 2000);
    for n in 0..50 {
        let row = client
            .query_one("SELECT $1::int + 1", &[&n])
            .await
            .expect("small query");
        assert_eq!(row.get::<_, i32>(0), n + 1);
    }
}

#[tokio::test]
async fn client_certificates_are_required_and_checked_when_a_ca_is_given() {
    let pki = Pki::new();
    let qcp = Setup::smart()
        .extra(&pki.client_tls("require", true))
        .start();
    let mut with_cert = verify_full(&pki);
    with_cert.push(("PGSSLCERT", pki.client_cert.display().to_string()));
    with_cert.push(("PGSSLKEY", pki.client_key.display().to_string()));
    let (ok, out, err) = psql_tls(&qcp, &with_cert, "SELECT 5").await;
    assert!(ok && out.trim() == "5", "with a client certificate: {err}");

    // No certificate: the handshake fails.
    let mut without = verify_full(&pki);
    without.push(("PGSSLCERT", "/nonexistent/client.crt".to_owned()));
    let (ok, _, err) = psql_tls(&qcp, &without, "SELECT 1").await;
    assert!(!ok, "a client without a certificate must be refused");
    assert!(err.contains("certificate"), "{err}");

    // A certificate signed by another CA: refused too.
    let other = Pki::new();
    let mut foreign = verify_full(&pki);
    foreign.push(("PGSSLCERT", other.client_cert.display().to_string()));
    foreign.push(("PGSSLKEY", other.client_key.display().to_string()));
    let (ok, _, err) = psql_tls(&qcp, &foreign, "SELECT 1").await;
    assert!(!ok, "a certificate from another CA must be refused: {err}");
}

/// Sends a start-up packet (trust login) over `stream` and reads to ReadyForQuery, then runs
/// `SELECT 6 * 7` and returns the value.
async fn trust_login_and_query<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
) -> String {
    let mut out = Vec::new();
    encode::startup(
        &mut out,
        ProtocolVersion::V3_0,
        &[("user", SCRAM_USER.0), ("database", DATABASE)],
    )
    .expect("startup");
    stream.write_all(&out).await.expect("send startup");
    read_until_ready(stream).await;
    out.clear();
    encode::query(&mut out, "SELECT 6 * 7").expect("query");
    stream.write_all(&out).await.expect("send query");
    let messages = read_until_ready(stream).await;
    // DataRow: a column count (2 bytes), then each column's length (4 bytes) and bytes.
    let (_, row) = messages
        .iter()
        .find(|(tag, _)| *tag == Tag::DATA_ROW)
        .expect("a row");
    let len = i32::from_be_bytes([row[2], row[3], row[4], row[5]]) as usize;
    String::from_utf8_lossy(&row[6..6 + len]).into_owned()
}

async fn read_until_ready<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Vec<(Tag, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut messages = Vec::new();
    let limits = Limits::default();
    loop {
        while let Some(header) = Header::parse_limited(&buf, &limits).expect("valid header") {
            if buf.len() < header.frame_len() {
                break;
            }
            let body = buf[qcp_codec::HEADER_LEN..header.frame_len()].to_vec();
            buf.drain(..header.frame_len());
            assert_ne!(header.tag, Tag::ERROR_RESPONSE, "error from qcp: {body:?}");
            let done = header.tag == Tag::READY_FOR_QUERY;
            messages.push((header.tag, body));
            if done {
                return messages;
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("qcp answers")
            .expect("read");
        assert!(n > 0, "qcp closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn direct_tls_with_alpn_logs_in_and_without_it_is_refused() {
    let pki = Pki::new();
    let qcp = Setup {
        auth_method: "trust",
        ..Setup::smart()
    }
    .extra(&pki.client_tls("require", false))
    .start();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");

    // TLS from the first byte, ALPN postgresql: as PostgreSQL 17's sslnegotiation=direct.
    let connector = tokio_rustls::TlsConnector::from(Arc::new(pki.rustls_client(&[b"postgresql"])));
    let tcp = TcpStream::connect(qcp.addr).await.expect("connect");
    let mut tls = connector
        .connect(name.clone(), tcp)
        .await
        .expect("direct TLS handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"postgresql"[..]));
    assert_eq!(trust_login_and_query(&mut tls).await, "42");

    // Without ALPN the handshake completes, and qcp refuses the connection with 08P01 (over
    // TLS), as PostgreSQL does.
    let connector = tokio_rustls::TlsConnector::from(Arc::new(pki.rustls_client(&[])));
    let tcp = TcpStream::connect(qcp.addr).await.expect("connect");
    let mut tls = connector.connect(name, tcp).await.expect("handshake");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tls.read_to_end(&mut answer),
    )
    .await
    .expect("qcp closes");
    let header = Header::parse(&answer).expect("header").expect("a message");
    assert_eq!(header.tag, Tag::ERROR_RESPONSE);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.contains("08P01") && text.contains("ALPN"), "{text}");
}

#[tokio::test]
async fn direct_tls_is_refused_when_qcp_has_no_tls_for_clients() {
    let qcp = Setup {
        auth_method: "trust",
        ..Setup::smart()
    }
    .start();
    let pki = Pki::new();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(pki.rustls_client(&[b"postgresql"])));
    let tcp = TcpStream::connect(qcp.addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let result = connector.connect(name, tcp).await;
    assert!(
        result.is_err(),
        "no TLS handshake can succeed without client_tls"
    );
}

/// `servers` pointing at the test PostgreSQL as `host`, with `tls`.
fn to_server(host: &str, tls: &str) -> Setup {
    let port = pg_port();
    Setup {
        servers: Vec::new(),
        ..Setup::smart()
    }
    .extra(&format!(
        "  - address: {host}:{port}\n    pool_size: 2\n    tls: {tls}\n"
    ))
}

fn pg_ca() -> String {
    std::env::var("QCP_TEST_PG_CA").expect("QCP_TEST_PG_CA is set by scripts/pg-cluster.sh env")
}

#[tokio::test]
async fn qcp_verifies_postgresql_by_name_with_verify_full() {
    let ca = pg_ca();
    let qcp = to_server("localhost", &format!("{{mode: verify-full, ca: {ca}}}")).start();
    let client = qcp.client().await;
    let row = client.query_one(SERVER_SIDE_SSL, &[]).await.expect("query");
    assert!(row.get::<_, bool>(0), "verify-full must use TLS");

    // The certificate names localhost, not 127.0.0.1: verify-full refuses, with 08006 and
    // the reason; verify-ca (chain only) accepts.
    let qcp = to_server("127.0.0.1", &format!("{{mode: verify-full, ca: {ca}}}")).start();
    let error = connect(&qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, DATABASE))
        .await
        .expect_err("a certificate for another name must be refused");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("08006"), "{error}");
    let text = format!("{error:?}");
    assert!(text.contains("TLS") && text.contains("127.0.0.1"), "{text}");
    assert!(
        text.contains("not valid for name"),
        "the reason is given: {text}"
    );

    let qcp = to_server("127.0.0.1", &format!("{{mode: verify-ca, ca: {ca}}}")).start();
    let row = qcp
        .client()
        .await
        .query_one(SERVER_SIDE_SSL, &[])
        .await
        .expect("query");
    assert!(row.get::<_, bool>(0));

    // A CA that did not sign the server's certificate fails verify-ca too.
    let other = Pki::new();
    let qcp = to_server(
        "localhost",
        &format!("{{mode: verify-ca, ca: {}}}", other.ca.display()),
    )
    .start();
    let error = connect(&qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, DATABASE))
        .await
        .expect_err("an unknown issuer must be refused");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("08006"), "{error}");
}

#[tokio::test]
async fn mode_disable_keeps_the_server_connection_in_clear_text() {
    let qcp = to_server("127.0.0.1", "{mode: disable}").start();
    let row = qcp
        .client()
        .await
        .query_one(SERVER_SIDE_SSL, &[])
        .await
        .expect("query");
    assert!(!row.get::<_, bool>(0), "mode disable sends no SSLRequest");
}

#[tokio::test]
async fn scram_channel_binding_is_offered_over_tls_and_required_by_libpq() {
    let pki = Pki::new();
    let qcp = Setup::smart()
        .extra(&pki.client_tls("prefer", false))
        .start();
    // libpq with channel_binding=require picks SCRAM-SHA-256-PLUS and binds to qcp's
    // certificate (it fails by itself if the server does not offer binding).
    let mut bind = verify_full(&pki);
    bind.push(("PGCHANNELBINDING", "require".to_owned()));
    let (ok, out, err) = psql_tls(&qcp, &bind, "SELECT 'bound'").await;
    assert!(ok, "channel_binding=require through qcp: {err}");
    assert_eq!(out.trim(), "bound");

    // In clear text there is nothing to bind to: libpq refuses by itself.
    let clear = [
        ("PGSSLMODE", "disable".to_owned()),
        ("PGCHANNELBINDING", "require".to_owned()),
    ];
    let (ok, _, err) = psql_tls(&qcp, &clear, "SELECT 1").await;
    assert!(!ok, "no binding without TLS");
    assert!(err.contains("channel binding"), "{err}");

    // A wrong password is still refused with binding.
    let mut wrong = bind.clone();
    wrong.push(("PGPASSWORD", "not-the-password".to_owned()));
    let (ok, _, err) = psql_tls(&qcp, &wrong, "SELECT 1").await;
    assert!(!ok);
    assert!(err.contains("password authentication failed"), "{err}");

    // (tokio-postgres-rustls 0.13 cannot bind: it decodes the certificate as a
    // TBSCertificate, fails, and offers no binding data; so only libpq is checked here.)
}

#[tokio::test]
async fn certificates_read_again_serve_new_connections_and_a_bad_file_keeps_the_old_ones() {
    let first = Pki::new();
    let qcp = Setup::smart()
        .extra(&first.client_tls("require", false))
        .start();
    // A client connected before the certificate changes.
    let before = rustls_connect(&qcp, &first).await;

    // The files are replaced (a certificate renewed by another authority) and read again.
    let second = Pki::new();
    std::fs::copy(&second.cert, &first.cert).expect("replace the certificate");
    std::fs::copy(&second.key, &first.key).expect("replace the key");
    qcp.reload_tls().expect("the new files are good");
    let (ok, out, err) = psql_tls(&qcp, &verify_full(&second), "SELECT 'new'").await;
    assert!(
        ok && out.trim() == "new",
        "the new certificate serves new clients: {err}"
    );
    let (ok, _, _) = psql_tls(&qcp, &verify_full(&first), "SELECT 1").await;
    assert!(!ok, "the old certificate is no longer shown");
    // The connection made before keeps going.
    let row = before
        .query_one("SELECT 7", &[])
        .await
        .expect("old connection");
    assert_eq!(row.get::<_, i32>(0), 7);

    // A broken key file: the reload fails, naming the setting, and the previous files stay.
    std::fs::write(&first.key, "not a key").expect("break the key");
    let error = qcp.reload_tls().expect_err("a broken key is refused");
    assert_eq!(error.setting, "client_tls.key", "{error}");
    let (ok, out, err) = psql_tls(&qcp, &verify_full(&second), "SELECT 'kept'").await;
    assert!(
        ok && out.trim() == "kept",
        "the previous certificate stays: {err}"
    );
}

#[tokio::test]
async fn require_fails_clearly_when_the_server_declines_tls_and_prefer_goes_on_in_clear() {
    // The "server" is another qcp without TLS for clients: it answers the SSLRequest `N`.
    let inner = Setup::smart().start();
    let behind = |mode: &str| {
        Setup {
            servers: Vec::new(),
            ..Setup::smart()
        }
        .extra(&format!(
            "  - address: {}\n    pool_size: 2\n    tls: {{mode: {mode}}}\n",
            inner.addr
        ))
        .start()
    };
    let strict = behind("require");
    let error = connect(&strict.conninfo(SCRAM_USER.0, SCRAM_USER.1, DATABASE))
        .await
        .expect_err("require must not fall back to clear text");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("08006"), "{error}");
    let text = format!("{error:?}");
    assert!(
        text.contains("does not accept TLS") && text.contains("require"),
        "{text}"
    );

    let lenient = behind("prefer");
    let row = lenient
        .client()
        .await
        .query_one("SELECT 11", &[])
        .await
        .expect("prefer goes on in clear text");
    assert_eq!(row.get::<_, i32>(0), 11);
}

/// `hba_file` with TLS: `hostssl` and `hostnossl` rules see whether the client encrypted,
/// and `cert` logs in the user its verified certificate names, without a password.
#[tokio::test]
async fn hba_hostssl_hostnossl_and_cert() {
    let pki = Pki::new();
    let dir = scratch_dir("hba");
    let rules = dir.path().join("hba.conf");
    std::fs::write(
        &rules,
        format!(
            "hostssl all {scram} 127.0.0.1/32 cert\n\
             hostssl all {md5} 127.0.0.1/32 cert\n\
             hostnossl all {scram} 127.0.0.1/32 reject\n\
             hostssl all {plain} 127.0.0.1/32 md5\n",
            scram = SCRAM_USER.0,
            md5 = MD5_USER.0,
            plain = PLAIN_USER.0
        ),
    )
    .expect("write hba.conf");
    let qcp = Setup::smart()
        .extra(&pki.client_tls("prefer", true))
        .extra(&format!("hba_file: {}\n", rules.display()))
        .start();
    let mut with_cert = verify_full(&pki);
    with_cert.push(("PGSSLCERT", pki.client_cert.display().to_string()));
    with_cert.push(("PGSSLKEY", pki.client_key.display().to_string()));
    // The certificate names qcp_scram: in, whatever the password.
    with_cert.push(("PGPASSWORD", "not the password".to_owned()));
    let (ok, out, err) = psql_tls(&qcp, &with_cert, "SELECT current_user").await;
    assert!(ok, "cert login: {err}");
    assert_eq!(out.trim(), SCRAM_USER.0);
    // The same certificate for another user: refused as PostgreSQL refuses it.
    let mut as_md5 = with_cert.clone();
    as_md5.push(("PGUSER", MD5_USER.0.to_owned()));
    let (ok, _, err) = psql_tls(&qcp, &as_md5, "SELECT 1").await;
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "FATAL:  certificate authentication failed for user \"{}\"",
            MD5_USER.0
        )),
        "{err}"
    );
    // hostssl with md5 for the plain user: its password, over TLS.
    let mut plain = with_cert.clone();
    plain.push(("PGUSER", PLAIN_USER.0.to_owned()));
    plain.push(("PGPASSWORD", PLAIN_USER.1.to_owned()));
    let (ok, out, err) = psql_tls(&qcp, &plain, "SELECT 7").await;
    assert!(ok && out.trim() == "7", "hostssl md5: {err}");
    // Over TLS, no rule for the trust user: PostgreSQL's words, "SSL encryption".
    let mut trust = with_cert.clone();
    trust.push(("PGUSER", TRUST_USER.to_owned()));
    let (ok, _, err) = psql_tls(&qcp, &trust, "SELECT 1").await;
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "FATAL:  no pg_hba.conf entry for host \"127.0.0.1\", user \"{TRUST_USER}\", database \"{DATABASE}\", SSL encryption"
        )),
        "{err}"
    );
    // In clear text the hostnossl rule rejects the SCRAM user, and nothing lets the plain
    // user in.
    let error = connect(&qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, DATABASE))
        .await
        .expect_err("rejected in clear text");
    assert_eq!(
        error.as_db_error().map(|e| e.message().to_owned()).as_deref(),
        Some(&*format!(
            "pg_hba.conf rejects connection for host \"127.0.0.1\", user \"{}\", database \"{DATABASE}\", no encryption",
            SCRAM_USER.0
        ))
    );
    let error = connect(&qcp.conninfo(PLAIN_USER.0, PLAIN_USER.1, DATABASE))
        .await
        .expect_err("no rule in clear text");
    assert_eq!(
        error.as_db_error().map(|e| e.message().to_owned()).as_deref(),
        Some(&*format!(
            "no pg_hba.conf entry for host \"127.0.0.1\", user \"{}\", database \"{DATABASE}\", no encryption",
            PLAIN_USER.0
        ))
    );
}

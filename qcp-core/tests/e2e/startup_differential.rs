//! The start-up phase against PostgreSQL itself: every malformed or odd first packet in the
//! table below is sent over a raw socket both to the test PostgreSQL and to qcp in front of
//! it, and the answers must be the same: the same answer bytes to encryption requests, the
//! same messages (errors compared by every field but PostgreSQL's source location F/L/R), in
//! the same layout, and a close without a reply where PostgreSQL closes without one.
//!
//! Two things differ on purpose and are evened out before comparing: PostgreSQL 15 speaks
//! protocol 3.0 only and says "server supports 3.0 to 3.0" where qcp, which speaks 3.2 too,
//! says "3.0 to 3.2"; and the cases with an SSLRequest run against a qcp with `client_tls`
//! (the test PostgreSQL has `ssl = on`), the others against one without, since qcp takes a
//! first byte 0x16 for direct TLS when it has TLS (as PostgreSQL 17 does) and PostgreSQL 15
//! reads it as a length. GSSENCRequest cases are in `startup.rs`: the test PostgreSQL is
//! built with GSSAPI and answers `G`, where qcp, which has no GSSAPI, answers `N`.

use qcp_codec::{encode, ProtocolVersion};

use crate::support::script::{play, trusting, Heard, Step, TestCert};
use crate::support::*;

const LOGIN: [(&str, &str); 2] = [("user", TRUST_USER), ("database", DATABASE)];

/// An untagged packet: its length, then `body`.
fn packet(body: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(body.len() + 4)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(body);
    out
}

/// A packet with this code and body.
fn coded(code: u32, rest: &[u8]) -> Vec<u8> {
    packet(&[code.to_be_bytes().as_slice(), rest].concat())
}

fn startup(params: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    encode::startup(&mut out, ProtocolVersion::V3_0, params).unwrap();
    out
}

const V3: u32 = 0x0003_0000;
const SSL: u32 = 80_877_103;
const GSS: u32 = 80_877_104;
const CANCEL: u32 = 80_877_102;

fn send(bytes: impl Into<Vec<u8>>) -> Step {
    Step::Send(bytes.into())
}

/// A length PostgreSQL refuses without a word: the script's last packet, so that every
/// script ends in a close.
fn bad_length() -> Step {
    send(*b"\0\0\0\x02")
}

/// Name, whether the case needs TLS, and its steps.
fn cases() -> Vec<(&'static str, bool, Vec<Step>)> {
    let ssl = coded(SSL, b"");
    let mut ssl_then_startup = ssl.clone();
    ssl_then_startup.extend(startup(&LOGIN));
    let cut = startup(&LOGIN);
    vec![
        // ---- lengths: closed without a reply ----
        ("connect and close", false, vec![Step::Shut]),
        ("half a length", false, vec![send(*b"\0\0"), Step::Shut]),
        ("length 0", false, vec![send(*b"\0\0\0\0\0\x03\0\0")]),
        ("length 4", false, vec![send(*b"\0\0\0\x04\0\x03\0\0")]),
        ("length 7", false, vec![send(*b"\0\0\0\x07\0\x03\0\0")]),
        (
            "negative length",
            false,
            vec![send(*b"\xff\xff\xff\xf0\0\x03\0\0")],
        ),
        ("length 10005", false, vec![send(10_005u32.to_be_bytes())]),
        ("length 2^31-1", false, vec![send(i32::MAX.to_be_bytes())]),
        ("Terminate first", false, vec![send(*b"X\0\0\0\x04")]),
        ("Query first", false, vec![send(*b"Q\0\0\0\x0dSELECT 1\0")]),
        (
            "a TLS record first, no TLS",
            false,
            vec![send(*b"\x16\x03\x01\0\x05hello")],
        ),
        (
            "a packet cut short",
            false,
            vec![send(&cut[..cut.len() - 3]), Step::Shut],
        ),
        (
            "a cancel cut short",
            false,
            vec![send(coded(CANCEL, b"\0\0\0\x01ab"))],
        ),
        (
            "a cancel too long",
            false,
            vec![send(coded(CANCEL, &[1; 262]))],
        ),
        // ---- protocol versions ----
        (
            "protocol 2.0",
            false,
            vec![send(coded(0x0002_0000, &[0; 64]))],
        ),
        (
            "protocol 1.0",
            false,
            vec![send(coded(0x0001_0000, &[0; 8]))],
        ),
        ("protocol 0.5", false, vec![send(coded(5, b""))]),
        ("protocol 0.0", false, vec![send(coded(0, b""))]),
        (
            "protocol 4.0",
            false,
            vec![send(coded(0x0004_0000, b"user\0x\0\0"))],
        ),
        ("code 1234.0", false, vec![send(coded(1234 << 16, b""))]),
        ("code 1234.5681", false, vec![send(coded(80_877_105, b""))]),
        // ---- the parameter list ----
        ("no list", false, vec![send(coded(V3, b""))]),
        (
            "no terminator",
            false,
            vec![send(coded(V3, b"user\0qcp_trust\0"))],
        ),
        (
            "a name without a value",
            false,
            vec![send(coded(V3, b"user\0"))],
        ),
        (
            "a value without its NUL",
            false,
            vec![send(coded(V3, b"user\0qcp_trust"))],
        ),
        (
            "bytes after the terminator",
            false,
            vec![send(coded(V3, b"user\0qcp_trust\0\0x\0"))],
        ),
        (
            "an empty name first",
            false,
            vec![send(coded(V3, b"\0x\0user\0qcp_trust\0\0"))],
        ),
        ("only the terminator", false, vec![send(coded(V3, b"\0"))]),
        (
            "no user",
            false,
            vec![send(startup(&[("database", DATABASE)]))],
        ),
        (
            "an empty user",
            false,
            vec![send(startup(&[("user", ""), ("database", DATABASE)]))],
        ),
        (
            "an invalid replication value",
            false,
            vec![send(startup(&[
                ("user", TRUST_USER),
                ("replication", "xyz"),
            ]))],
        ),
        // ---- SSLRequest (both sides answer S) ----
        (
            "SSLRequest, clear text behind it",
            true,
            vec![send(ssl_then_startup), Step::Answer, Step::Tls],
        ),
        (
            "SSLRequest twice",
            true,
            vec![
                send(ssl.clone()),
                Step::Answer,
                Step::Tls,
                send(ssl.clone()),
            ],
        ),
        (
            "SSLRequest, then GSSENCRequest",
            true,
            vec![
                send(ssl.clone()),
                Step::Answer,
                Step::Tls,
                send(coded(GSS, b"")),
            ],
        ),
        (
            "a 12-byte SSLRequest",
            true,
            vec![
                send(coded(SSL, b"junk")),
                Step::Answer,
                Step::Tls,
                bad_length(),
            ],
        ),
        (
            "SSLRequest, then a cancel",
            true,
            vec![
                send(ssl.clone()),
                Step::Answer,
                Step::Tls,
                send(coded(CANCEL, &[0, 0, 0, 1, 9, 9, 9, 9])),
            ],
        ),
        (
            "SSLRequest, then protocol 2.0",
            true,
            vec![
                send(ssl.clone()),
                Step::Answer,
                Step::Tls,
                send(coded(0x0002_0000, &[0; 64])),
            ],
        ),
        (
            "SSLRequest, then no terminator",
            true,
            vec![
                send(ssl.clone()),
                Step::Answer,
                Step::Tls,
                send(coded(V3, b"user\0qcp_trust\0")),
            ],
        ),
        (
            "SSLRequest, then no user",
            true,
            vec![
                send(ssl.clone()),
                Step::Answer,
                Step::Tls,
                send(startup(&[("database", DATABASE)])),
            ],
        ),
        (
            "SSLRequest, then a bad length",
            true,
            vec![send(ssl), Step::Answer, Step::Tls, bad_length()],
        ),
    ]
}

/// PostgreSQL 15's answer with the one deliberate difference evened out (see the module
/// documentation).
fn as_qcp_says_it(heard: Vec<Heard>) -> Vec<Heard> {
    let even =
        |text: String| text.replace("server supports 3.0 to 3.0", "server supports 3.0 to 3.2");
    heard
        .into_iter()
        .map(|item| match item {
            Heard::Fields(tag, fields) => Heard::Fields(
                tag,
                fields
                    .into_iter()
                    .map(|(code, text)| (code, even(text)))
                    .collect(),
            ),
            Heard::Protocol2(text) => Heard::Protocol2(even(text)),
            other => other,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_start_ups_are_answered_as_postgresql_answers_them() {
    let cert = TestCert::new();
    let trusting_setup = Setup {
        auth_method: "trust",
        ..Setup::session()
    };
    let plain = trusting_setup.start();
    let with_tls = trusting_setup.extra(&cert.client_tls()).start();
    let pg_ca = std::fs::read_to_string(std::env::var("QCP_TEST_PG_CA").expect("QCP_TEST_PG_CA"))
        .expect("read the test cluster's CA");
    let tls = trusting(&[&pg_ca, &cert.ca_pem]);
    let pg: std::net::SocketAddr = pg_addr().parse().expect("an address");

    let mut differences = Vec::new();
    for (name, needs_tls, steps) in cases() {
        let qcp = if needs_tls { &with_tls } else { &plain };
        let expected = as_qcp_says_it(play(pg, &steps, &tls).await);
        let got = play(qcp.addr, &steps, &tls).await;
        if got != expected {
            differences.push(format!(
                "{name}:\n  PostgreSQL: {expected:?}\n  qcp:        {got:?}"
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "qcp answers differently:\n{}",
        differences.join("\n")
    );
    // Nobody logged in or reached a server.
    for qcp in [&plain, &with_tls] {
        assert_eq!(status_count(&qcp.status(), "logins"), 0);
        assert_eq!(status_count(&qcp.status(), "server_connections_opened"), 0);
    }
}

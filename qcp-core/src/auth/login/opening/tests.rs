//! A client's first packet, scripted: what qcp answers, and that every refusal is
//! PostgreSQL 15's (the same fields and layout, or no reply). The e2e test
//! `startup_differential.rs` checks the same facts against a real server.

use qcp_codec::{encode, Header, Limits, ProtocolVersion, Tag, HEADER_LEN};

use super::{parse_bool, read_opening, Opening, OwnedStartup, TlsOffer};
use crate::errors::{PgError, Refusal};

fn limits() -> Limits {
    Limits::default()
}

fn startup(version: ProtocolVersion, params: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    encode::startup(&mut out, version, params).unwrap();
    out
}

/// An untagged packet: the length, then `body`.
fn packet(body: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(body.len() + 4)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(body);
    out
}

fn ssl_request() -> Vec<u8> {
    let mut out = Vec::new();
    encode::ssl_request(&mut out);
    out
}

fn gss_request() -> Vec<u8> {
    let mut out = Vec::new();
    encode::gss_enc_request(&mut out);
    out
}

const TLS: TlsOffer = TlsOffer {
    available: true,
    required: false,
    encrypted: false,
    ssl_declined: false,
    gss_declined: false,
};

/// What `read_opening` returns.
type Read = Result<Option<(Opening, usize)>, Refusal>;

/// What `input` opens with, and the bytes answered.
fn open(input: &[u8], tls: TlsOffer) -> (Read, Vec<u8>) {
    let mut out = Vec::new();
    let mut tls = tls;
    let result = read_opening(input, &limits(), &mut tls, &mut out);
    (result, out)
}

fn refusal(input: &[u8], tls: TlsOffer) -> Refusal {
    match open(input, tls).0 {
        Err(refusal) => refusal,
        Ok(other) => panic!("expected a refusal, got {other:?}"),
    }
}

/// The protocol-3 error a refusal sends (fails for any other refusal).
fn refused_with(input: &[u8], tls: TlsOffer) -> PgError {
    match refusal(input, tls) {
        Refusal::Error(error) => error,
        other => panic!("expected an ErrorResponse, got {other:?}"),
    }
}

fn assert_hangup(input: &[u8], tls: TlsOffer) {
    let refusal = refusal(input, tls);
    assert!(
        matches!(refusal, Refusal::Hangup(_)),
        "{input:?}: {refusal:?}"
    );
    assert_eq!(refusal.message(), None, "nothing is sent");
}

fn started(input: &[u8]) -> Box<OwnedStartup> {
    match open(input, TlsOffer::default()).0 {
        Ok(Some((Opening::Startup(startup), used))) => {
            assert_eq!(used, input.len());
            startup
        }
        other => panic!("expected a start-up, got {other:?}"),
    }
}

// ---- encryption requests ------------------------------------------------------------------

#[test]
fn encryption_requests_are_answered_n_without_tls_and_ssl_gets_s_with_it() {
    for request in [ssl_request(), gss_request()] {
        let (result, out) = open(&request, TlsOffer::default());
        let (opening, used) = result.unwrap().unwrap();
        assert!(matches!(opening, Opening::Encryption { injected: None }));
        assert_eq!((used, out.as_slice()), (8, b"N".as_slice()));
    }
    let (result, out) = open(&ssl_request(), TLS);
    let (opening, _) = result.unwrap().unwrap();
    assert!(matches!(opening, Opening::StartTls { injected: None }));
    assert_eq!(out, b"S");
    // qcp has no GSSAPI encryption, with TLS or without.
    let (result, out) = open(&gss_request(), TLS);
    assert!(matches!(
        result.unwrap().unwrap().0,
        Opening::Encryption { .. }
    ));
    assert_eq!(out, b"N");
}

/// As PostgreSQL: a request already answered (or any request inside TLS) is no longer one,
/// but a start-up packet of protocol 1234.5679 (or .5680), refused as unsupported.
#[test]
fn a_request_already_answered_is_an_unsupported_protocol() {
    let declined_ssl = TlsOffer {
        ssl_declined: true,
        ..TlsOffer::default()
    };
    let error = refused_with(&ssl_request(), declined_ssl);
    assert_eq!((error.code, error.hint), ("0A000", None));
    assert_eq!(
        error.message,
        "unsupported frontend protocol 1234.5679: server supports 3.0 to 3.2"
    );
    // The other kind may still be asked for.
    let (result, out) = open(&gss_request(), declined_ssl);
    assert!(result.is_ok());
    assert_eq!(out, b"N");
    // Each `N` is recorded.
    let mut tls = TlsOffer::default();
    read_opening(&ssl_request(), &limits(), &mut tls, &mut Vec::new()).unwrap();
    assert!(tls.ssl_declined && !tls.gss_declined);
    read_opening(&gss_request(), &limits(), &mut tls, &mut Vec::new()).unwrap();
    assert!(tls.gss_declined);
    let declined_gss = TlsOffer {
        gss_declined: true,
        ..TlsOffer::default()
    };
    let message = refused_with(&gss_request(), declined_gss).message;
    assert!(message.contains("1234.5680"), "{message}");
    let encrypted = TlsOffer {
        encrypted: true,
        ..TLS
    };
    for request in [ssl_request(), gss_request()] {
        assert_eq!(refused_with(&request, encrypted).code, "0A000");
    }
}

#[test]
fn bytes_after_the_code_of_a_request_are_ignored() {
    let mut request = ssl_request();
    request.extend_from_slice(b"junk");
    let request = packet(&request[4..]);
    let (result, out) = open(&request, TlsOffer::default());
    let (opening, used) = result.unwrap().unwrap();
    assert!(matches!(opening, Opening::Encryption { injected: None }));
    assert_eq!((used, out.as_slice()), (12, b"N".as_slice()));
}

/// Clear text right behind a request is refused once the request is answered (after the TLS
/// handshake, for `S`), in PostgreSQL's words.
#[test]
fn bytes_behind_an_encryption_request_are_refused_after_the_answer() {
    let cases = [
        (ssl_request(), TlsOffer::default(), "SSL request"),
        (ssl_request(), TLS, "SSL request"),
        (
            gss_request(),
            TlsOffer::default(),
            "GSSAPI encryption request",
        ),
    ];
    for (request, tls, what) in cases {
        let mut input = request.clone();
        input.extend_from_slice(&startup(ProtocolVersion::V3_0, &[("user", "u")]));
        let (result, out) = open(&input, tls);
        let (opening, used) = result.unwrap().unwrap();
        assert_eq!(used, 8);
        assert_eq!(out.len(), 1, "answered first");
        let (Opening::Encryption {
            injected: Some(error),
        }
        | Opening::StartTls {
            injected: Some(error),
        }) = opening
        else {
            panic!("{opening:?}")
        };
        assert_eq!(error.code, "08P01");
        assert_eq!(
            error.message,
            format!("received unencrypted data after {what}")
        );
        assert_eq!(
            error.detail.as_deref(),
            Some("This could be either a client-software bug or evidence of an attempted man-in-the-middle attack.")
        );
    }
}

#[test]
fn a_tls_record_first_is_direct_tls_or_closed_without_a_word() {
    // The start of a TLS ClientHello record.
    let hello = [0x16, 0x03, 0x01, 0x00, 0xc8, 0x01];
    let (opening, used) = open(&hello, TLS).0.unwrap().unwrap();
    assert!(matches!(opening, Opening::DirectTls));
    assert_eq!(used, 0, "the handshake's bytes stay for rustls");
    // PostgreSQL 15 reads it as a length far over the limit.
    assert_hangup(&hello, TlsOffer::default());
}

// ---- lengths ------------------------------------------------------------------------------

#[test]
fn invalid_lengths_are_closed_without_a_word() {
    for length in [0i32, 3, 4, 7, -1, -16, 10_005, i32::MAX] {
        let mut input = length.to_be_bytes().to_vec();
        input.extend_from_slice(&[0, 3, 0, 0]);
        assert_hangup(&input, TlsOffer::default());
        // Decided from the length alone.
        assert_hangup(&length.to_be_bytes(), TlsOffer::default());
    }
    // A regular message where the start-up packet belongs: its tag is read as a length.
    assert_hangup(b"X\0\0\0\x04", TlsOffer::default());
    assert_hangup(b"Q\0\0\0\x0dSELECT 1\0", TlsOffer::default());
}

#[test]
fn the_longest_packet_is_10004_bytes() {
    let base = startup(
        ProtocolVersion::V3_0,
        &[("user", "u"), ("application_name", "")],
    );
    let filler = "a".repeat(10_004 - base.len());
    let input = startup(
        ProtocolVersion::V3_0,
        &[("user", "u"), ("application_name", &filler)],
    );
    assert_eq!(input.len(), 10_004);
    assert_eq!(started(&input).user, "u");
}

#[test]
fn a_partial_packet_needs_more_bytes() {
    let input = startup(ProtocolVersion::V3_0, &[("user", "u")]);
    for cut in [0, 3, 4, input.len() - 1] {
        assert!(open(&input[..cut], TlsOffer::default())
            .0
            .unwrap()
            .is_none());
    }
}

// ---- cancel requests ----------------------------------------------------------------------

#[test]
fn a_cancel_request_carries_its_key_and_a_malformed_one_is_closed() {
    let mut request = Vec::new();
    encode::cancel_request(&mut request, 77, &[1, 2, 3, 4]).unwrap();
    let Opening::Cancel { pid, secret } = open(&request, TlsOffer::default()).0.unwrap().unwrap().0
    else {
        panic!("a cancel")
    };
    assert_eq!((pid, secret), (77, vec![1, 2, 3, 4]));
    for body in [
        &b"\x04\xd2\x16\x2e\0\0\0\x01ab"[..],
        b"\x04\xd2\x16\x2e\0\0",
    ] {
        assert_hangup(&packet(body), TlsOffer::default());
    }
}

// ---- versions -----------------------------------------------------------------------------

#[test]
fn other_major_versions_are_refused_in_a_layout_their_client_reads() {
    // Protocols 1 and 2 get protocol 2's layout.
    for (code, text) in [(0x0002_0000u32, "2.0"), (0x0001_0000, "1.0"), (5, "0.5")] {
        let input = packet(&[code.to_be_bytes().as_slice(), &[0; 8]].concat());
        let refusal = refusal(&input, TlsOffer::default());
        assert!(matches!(refusal, Refusal::Protocol2(_)), "{refusal:?}");
        let expected = format!(
            "EFATAL:  unsupported frontend protocol {text}: server supports 3.0 to 3.2\n\0"
        );
        assert_eq!(refusal.message().unwrap(), expected.as_bytes());
        assert_eq!(refusal.sqlstate().as_deref(), Some("0A000"));
    }
    // Code 0 means "no protocol yet" to PostgreSQL: protocol 3's layout, as for 4.0 or an
    // unknown special code.
    for (code, text) in [
        (0u32, "0.0"),
        (0x0004_0000, "4.0"),
        (80_877_105, "1234.5681"),
    ] {
        let input = packet(&code.to_be_bytes());
        let error = refused_with(&input, TlsOffer::default());
        assert_eq!(error.code, "0A000");
        assert_eq!(
            error.message,
            format!("unsupported frontend protocol {text}: server supports 3.0 to 3.2")
        );
    }
}

#[test]
fn protocol_3_1_and_pq_options_are_negotiated() {
    let startup = started(&startup(
        ProtocolVersion { major: 3, minor: 1 },
        &[("user", "alice"), ("_pq_.compression", "on")],
    ));
    let mut out = Vec::new();
    startup.negotiate_version(&mut out);
    let header = Header::parse(&out).unwrap().unwrap();
    assert_eq!(header.tag, Tag::NEGOTIATE_PROTOCOL_VERSION);
    let body = &out[HEADER_LEN..header.frame_len()];
    assert_eq!(
        &body[..8],
        &[0, 3, 0, 0, 0, 0, 0, 1],
        "3.0, one unknown option"
    );
    assert!(String::from_utf8_lossy(body).contains("_pq_.compression"));
}

// ---- the parameter list -------------------------------------------------------------------

#[test]
fn a_parameter_list_not_ended_by_its_terminator_is_refused() {
    let layouts: [&[u8]; 6] = [
        b"\0\x03\0\0",                 // no list at all
        b"\0\x03\0\0user\0u\0",        // no terminator
        b"\0\x03\0\0user\0",           // a name without a value
        b"\0\x03\0\0user\0u",          // a value without its NUL
        b"\0\x03\0\0user\0u\0\0x\0",   // bytes after the terminator
        b"\0\x03\0\0\0x\0user\0u\0\0", // an empty name first
    ];
    for layout in layouts {
        let error = refused_with(&packet(layout), TlsOffer::default());
        assert_eq!(error.code, "08P01", "{layout:?}");
        assert_eq!(
            error.message,
            "invalid startup packet layout: expected terminator as last byte"
        );
        assert_eq!((error.detail, error.hint), (None, None));
    }
}

#[test]
fn a_startup_without_a_user_is_refused() {
    for input in [
        startup(ProtocolVersion::V3_0, &[("database", "d")]),
        startup(ProtocolVersion::V3_0, &[("user", "")]),
        packet(b"\0\x03\0\0\0"),
    ] {
        let error = refused_with(&input, TlsOffer::default());
        assert_eq!(error.code, "28000");
        assert_eq!(
            error.message,
            "no PostgreSQL user name specified in startup packet"
        );
    }
}

#[test]
fn replication_values_as_postgresql_reads_them() {
    let with = |value: &str| {
        startup(
            ProtocolVersion::V3_0,
            &[("user", "u"), ("replication", value)],
        )
    };
    for off in ["false", "0", "no", "f", "OFF", "of"] {
        assert_eq!(started(&with(off)).user, "u", "{off}");
    }
    for on in ["database", "true", "1", "on", "Yes", "t"] {
        assert_eq!(
            refused_with(&with(on), TlsOffer::default()).code,
            "0A000",
            "{on}"
        );
    }
    let error = refused_with(&with("xyz"), TlsOffer::default());
    assert_eq!(error.code, "22023");
    assert_eq!(
        error.message,
        "invalid value for parameter \"replication\": \"xyz\""
    );
    assert_eq!(
        error.hint.as_deref(),
        Some("Valid values are: \"false\", 0, \"true\", 1, \"database\".")
    );
}

#[test]
fn booleans_are_read_as_postgresql_reads_them() {
    let table = [
        ("t", Some(true)),
        ("TRUE", Some(true)),
        ("truex", None),
        ("y", Some(true)),
        ("ye", Some(true)),
        ("on", Some(true)),
        ("o", None),
        ("of", Some(false)),
        ("off", Some(false)),
        ("offf", None),
        ("n", Some(false)),
        ("1", Some(true)),
        ("0", Some(false)),
        ("01", None),
        ("", None),
        (" true", None),
    ];
    for (value, expected) in table {
        assert_eq!(parse_bool(value), expected, "{value:?}");
    }
}

#[test]
fn a_startup_gives_user_database_and_settings() {
    let startup = started(&startup(
        ProtocolVersion::V3_0,
        &[
            ("user", "alice"),
            ("application_name", "app"),
            ("options", "-c search_path=s1"),
        ],
    ));
    assert_eq!(startup.user, "alice");
    assert_eq!(
        startup.database, "alice",
        "the user's name when none is given"
    );
    assert!(startup
        .settings
        .contains(&("application_name".into(), "app".into())));
    assert!(startup
        .settings
        .contains(&("search_path".into(), "s1".into())));
    assert_eq!(startup.secret_len(), 4);
    let mut out = Vec::new();
    startup.negotiate_version(&mut out);
    assert!(out.is_empty(), "3.0 needs no negotiation");
}

#[test]
fn clear_text_start_up_is_refused_when_tls_is_required_after_the_packet_checks() {
    let required = TlsOffer {
        required: true,
        ..TLS
    };
    let input = startup(ProtocolVersion::V3_0, &[("user", "u")]);
    let error = refused_with(&input, required);
    assert_eq!(error.code, "28000");
    assert!(error.message.contains("client_tls.mode"), "{error:?}");
    // A broken packet hears what is wrong with it first, as from PostgreSQL.
    assert_eq!(error_of(&packet(b"\0\x03\0\0user\0u\0"), required), "08P01");
    // Encrypted, the same packet goes through; so does a cancel request in clear.
    let encrypted = TlsOffer {
        encrypted: true,
        ..required
    };
    let (opening, _) = open(&input, encrypted).0.unwrap().unwrap();
    assert!(matches!(opening, Opening::Startup(_)));
    let mut cancel = Vec::new();
    encode::cancel_request(&mut cancel, 7, &[1, 2, 3, 4]).unwrap();
    let (opening, _) = open(&cancel, required).0.unwrap().unwrap();
    assert!(matches!(opening, Opening::Cancel { .. }));
}

fn error_of(input: &[u8], tls: TlsOffer) -> &'static str {
    refused_with(input, tls).code
}

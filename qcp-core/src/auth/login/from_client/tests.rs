//! A client's login driven with scripted client messages: its first packet, each
//! authentication method (a real SCRAM client against qcp's side), and the refusals.

use qcp_codec::{encode, Header, Limits, ProtocolVersion, StartupPacket, Tag, HEADER_LEN};

use super::{read_opening, AuthStep, Authenticator, Opening, TlsOffer, UserSecrets};
use crate::auth::{ScramClient, ScramCredentials, ScramSecret, Secret};
use crate::config::AuthMethod;
use crate::errors::Refusal;

fn limits() -> Limits {
    Limits::new(10_000, 1 << 20)
}

fn startup(version: ProtocolVersion, params: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    encode::startup(&mut out, version, params).unwrap();
    out
}

fn code(refusal: &Refusal) -> String {
    match refusal {
        Refusal::Error(error) => error.code.to_owned(),
        other => panic!("{other:?}"),
    }
}

/// The body of the one message in `bytes`, checking its tag.
fn body(bytes: &[u8], tag: Tag) -> &[u8] {
    let header = Header::parse(bytes).unwrap().unwrap();
    assert_eq!(header.tag, tag);
    &bytes[HEADER_LEN..header.frame_len()]
}

#[test]
fn an_encryption_request_is_answered_n() {
    let mut request = Vec::new();
    encode::ssl_request(&mut request);
    let mut out = Vec::new();
    let (opening, used) = read_opening(&request, &limits(), TlsOffer::default(), &mut out)
        .unwrap()
        .unwrap();
    assert!(matches!(opening, Opening::Encryption));
    assert_eq!((used, out.as_slice()), (8, b"N".as_slice()));
}

const TLS: TlsOffer = TlsOffer {
    available: true,
    required: false,
    encrypted: false,
};

#[test]
fn an_ssl_request_is_answered_s_when_tls_is_set_up_and_n_once_encrypted() {
    let mut request = Vec::new();
    encode::ssl_request(&mut request);
    let mut out = Vec::new();
    let (opening, used) = read_opening(&request, &limits(), TLS, &mut out)
        .unwrap()
        .unwrap();
    assert!(matches!(opening, Opening::StartTls));
    assert_eq!((used, out.as_slice()), (8, b"S".as_slice()));
    // A second SSLRequest inside TLS, or a GSSENCRequest, gets N.
    let encrypted = TlsOffer {
        encrypted: true,
        ..TLS
    };
    out.clear();
    let (opening, _) = read_opening(&request, &limits(), encrypted, &mut out)
        .unwrap()
        .unwrap();
    assert!(matches!(opening, Opening::Encryption));
    assert_eq!(out, b"N");
    let mut gss = Vec::new();
    StartupPacket::GssEncRequest.encode(&mut gss).unwrap();
    out.clear();
    let (opening, _) = read_opening(&gss, &limits(), TLS, &mut out)
        .unwrap()
        .unwrap();
    assert!(matches!(opening, Opening::Encryption));
    assert_eq!(out, b"N");
}

#[test]
fn a_tls_record_first_is_direct_tls_or_refused() {
    // The start of a TLS ClientHello record.
    let hello = [0x16, 0x03, 0x01, 0x00, 0xc8, 0x01];
    let (opening, used) = read_opening(&hello, &limits(), TLS, &mut Vec::new())
        .unwrap()
        .unwrap();
    assert!(matches!(opening, Opening::DirectTls));
    assert_eq!(used, 0, "the handshake's bytes stay for rustls");
    let error = read_opening(&hello, &limits(), TlsOffer::default(), &mut Vec::new()).unwrap_err();
    assert_eq!(error.code, "08P01");
    assert!(
        error.hint.as_deref().unwrap_or("").contains("client_tls"),
        "{error:?}"
    );
}

#[test]
fn clear_text_start_up_is_refused_when_tls_is_required() {
    let required = TlsOffer {
        required: true,
        ..TLS
    };
    let packet = startup(ProtocolVersion::V3_0, &[("user", "u")]);
    let error = read_opening(&packet, &limits(), required, &mut Vec::new()).unwrap_err();
    assert_eq!(error.code, "28000");
    assert!(error.message.contains("client_tls.mode"), "{error:?}");
    // Encrypted, the same packet goes through; so does a cancel request in clear.
    let encrypted = TlsOffer {
        encrypted: true,
        ..required
    };
    let (opening, _) = read_opening(&packet, &limits(), encrypted, &mut Vec::new())
        .unwrap()
        .unwrap();
    assert!(matches!(opening, Opening::Startup(_)));
    let mut cancel = Vec::new();
    encode::cancel_request(&mut cancel, 7, &[1, 2, 3, 4]).unwrap();
    let (opening, _) = read_opening(&cancel, &limits(), required, &mut Vec::new())
        .unwrap()
        .unwrap();
    assert!(matches!(opening, Opening::Cancel { .. }));
}

#[test]
fn bytes_after_an_encryption_request_are_refused() {
    let mut request = Vec::new();
    encode::ssl_request(&mut request);
    request.extend_from_slice(&startup(ProtocolVersion::V3_0, &[("user", "u")]));
    let error =
        read_opening(&request, &limits(), TlsOffer::default(), &mut Vec::new()).unwrap_err();
    assert_eq!(error.code, "08P01");
}

#[test]
fn a_partial_packet_needs_more_bytes() {
    let packet = startup(ProtocolVersion::V3_0, &[("user", "u")]);
    assert!(read_opening(
        &packet[..packet.len() - 1],
        &limits(),
        TlsOffer::default(),
        &mut Vec::new()
    )
    .unwrap()
    .is_none());
}

#[test]
fn a_cancel_request_carries_its_key() {
    let mut request = Vec::new();
    encode::cancel_request(&mut request, 77, &[1, 2, 3, 4]).unwrap();
    let (opening, _) = read_opening(&request, &limits(), TlsOffer::default(), &mut Vec::new())
        .unwrap()
        .unwrap();
    match opening {
        Opening::Cancel { pid, secret } => assert_eq!((pid, secret), (77, vec![1, 2, 3, 4])),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_startup_gives_user_database_and_settings() {
    let packet = startup(
        ProtocolVersion::V3_0,
        &[
            ("user", "alice"),
            ("application_name", "app"),
            ("options", "-c search_path=s1"),
        ],
    );
    let (opening, used) = read_opening(&packet, &limits(), TlsOffer::default(), &mut Vec::new())
        .unwrap()
        .unwrap();
    assert_eq!(used, packet.len());
    let Opening::Startup(startup) = opening else {
        panic!("a startup")
    };
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
fn protocol_3_1_and_pq_options_are_negotiated() {
    let packet = startup(
        ProtocolVersion { major: 3, minor: 1 },
        &[("user", "alice"), ("_pq_.compression", "on")],
    );
    let (Opening::Startup(startup), _) =
        read_opening(&packet, &limits(), TlsOffer::default(), &mut Vec::new())
            .unwrap()
            .unwrap()
    else {
        panic!("a startup")
    };
    let mut out = Vec::new();
    startup.negotiate_version(&mut out);
    let body = body(&out, Tag::NEGOTIATE_PROTOCOL_VERSION);
    assert_eq!(
        &body[..8],
        &[0, 3, 0, 0, 0, 0, 0, 1],
        "3.0, one unknown option"
    );
    assert!(String::from_utf8_lossy(body).contains("_pq_.compression"));
}

#[test]
fn a_startup_without_user_or_for_replication_is_refused() {
    let packet = startup(ProtocolVersion::V3_0, &[("database", "d")]);
    let error = read_opening(&packet, &limits(), TlsOffer::default(), &mut Vec::new()).unwrap_err();
    assert_eq!(error.code, "28000");
    let packet = startup(
        ProtocolVersion::V3_0,
        &[("user", "u"), ("replication", "database")],
    );
    let error = read_opening(&packet, &limits(), TlsOffer::default(), &mut Vec::new()).unwrap_err();
    assert_eq!(error.code, "0A000");
}

#[test]
fn trust_needs_no_message() {
    let mut out = Vec::new();
    let (_, step) = Authenticator::start(AuthMethod::Trust, "u", None, b"k", false, None, &mut out);
    assert_eq!(step, AuthStep::Done(None));
    assert!(out.is_empty());
}

fn md5_login(password: &str) -> Result<AuthStep, Refusal> {
    let secret = Secret::Plain("right".into());
    let known = UserSecrets {
        scram: None,
        secret: Some(&secret),
    };
    let mut out = Vec::new();
    let (mut auth, step) = Authenticator::start(
        AuthMethod::Md5,
        "bob",
        Some(known),
        b"k",
        false,
        None,
        &mut out,
    );
    assert_eq!(step, AuthStep::Continue);
    let request = body(&out, Tag::AUTHENTICATION);
    let salt: [u8; 4] = request[4..8].try_into().unwrap();
    let mut answer = Vec::new();
    encode::password(
        &mut answer,
        crate::auth::md5_response("bob", password, salt),
    )
    .unwrap();
    auth.message(Tag::PASSWORD, body(&answer, Tag::PASSWORD), &mut Vec::new())
}

#[test]
fn md5_accepts_the_right_password_only() {
    assert_eq!(md5_login("right").unwrap(), AuthStep::Done(None));
    let refusal = md5_login("wrong").unwrap_err();
    assert_eq!(code(&refusal), "28P01");
}

/// Runs a SCRAM login of `password` against `known`; the outcome of the last step.
fn scram_login(known: Option<UserSecrets<'_>>, password: &str) -> Result<AuthStep, Refusal> {
    let mut out = Vec::new();
    let (mut auth, step) = Authenticator::start(
        AuthMethod::ScramSha256,
        "carol",
        known,
        b"mock",
        false,
        None,
        &mut out,
    );
    assert_eq!(step, AuthStep::Continue);
    assert!(String::from_utf8_lossy(body(&out, Tag::AUTHENTICATION)).contains("SCRAM-SHA-256"));
    let mut client = ScramClient::new(ScramCredentials::Password(password.into()));
    let mut initial = Vec::new();
    encode::sasl_initial_response(&mut initial, "SCRAM-SHA-256", Some(&client.client_first()))
        .unwrap();
    out.clear();
    let step = auth.message(Tag::PASSWORD, body(&initial, Tag::PASSWORD), &mut out)?;
    assert_eq!(step, AuthStep::Continue);
    let server_first = &body(&out, Tag::AUTHENTICATION)[4..];
    let client_final = client.handle_server_first(server_first).unwrap();
    let mut response = Vec::new();
    encode::sasl_response(&mut response, &client_final).unwrap();
    out.clear();
    let step = auth.message(Tag::PASSWORD, body(&response, Tag::PASSWORD), &mut out)?;
    client
        .handle_server_final(&body(&out, Tag::AUTHENTICATION)[4..])
        .expect("the server's signature checks out");
    Ok(step)
}

#[test]
fn scram_accepts_the_right_password_and_reveals_the_client_key() {
    let secret = ScramSecret::generate("pw");
    let known = UserSecrets {
        scram: Some(&secret),
        secret: None,
    };
    assert!(matches!(
        scram_login(Some(known), "pw"),
        Ok(AuthStep::Done(Some(_)))
    ));
    assert_eq!(
        code(&scram_login(Some(known), "nope").unwrap_err()),
        "28P01"
    );
}

#[test]
fn an_unknown_user_runs_a_whole_mock_exchange_and_fails_like_a_wrong_password() {
    let refusal = scram_login(None, "anything").unwrap_err();
    assert_eq!(code(&refusal), "28P01");
    let Refusal::Error(error) = refusal else {
        unreachable!()
    };
    assert_eq!(
        error.message,
        "password authentication failed for user \"carol\""
    );
}

#[test]
fn a_message_that_is_not_a_password_message_is_a_protocol_violation() {
    let mut out = Vec::new();
    let (mut auth, _) = Authenticator::start(
        AuthMethod::ScramSha256,
        "u",
        None,
        b"k",
        false,
        None,
        &mut out,
    );
    let refusal = auth
        .message(Tag::QUERY, b"SELECT 1\0", &mut out)
        .unwrap_err();
    assert_eq!(code(&refusal), "08P01");
}

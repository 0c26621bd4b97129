//! A server login driven with scripted server messages, and checked against a SCRAM server
//! of qcp's own (the same exchange PostgreSQL runs).

use std::sync::Arc;

use qcp_codec::{encode, Header, Tag, TransactionStatus, HEADER_LEN};

use super::{Credentials, LoginError, ServerLogin};
use crate::auth::{Binding, SaltedPasswordCache, ScramSecret, ScramServer};

fn credentials(password: Option<&str>) -> Arc<Credentials> {
    Arc::new(Credentials {
        user: "alice".into(),
        password: password.map(str::to_owned),
        ..Credentials::default()
    })
}

fn start(credentials: Arc<Credentials>) -> (ServerLogin, Vec<u8>) {
    let mut out = Vec::new();
    let login = ServerLogin::start(
        credentials,
        "app",
        Arc::new(SaltedPasswordCache::new()),
        &mut out,
    )
    .unwrap();
    (login, out)
}

/// Feeds every message in `bytes`; returns what the login wrote and its last outcome.
fn feed(
    login: &mut ServerLogin,
    bytes: &[u8],
) -> (Vec<u8>, Result<Option<super::LoggedIn>, LoginError>) {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut outcome = Ok(None);
    while let Ok(Some(header)) = Header::parse(rest) {
        let frame = &rest[..header.frame_len()];
        outcome = login.message(header.tag, &frame[HEADER_LEN..], frame, &mut out);
        if !matches!(outcome, Ok(None)) {
            break;
        }
        rest = &rest[header.frame_len()..];
    }
    (out, outcome)
}

fn msg(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    f(&mut out);
    out
}

fn ready() -> Vec<u8> {
    let mut out = Vec::new();
    encode::authentication_ok(&mut out);
    encode::parameter_status(&mut out, "TimeZone", "UTC").unwrap();
    encode::backend_key_data(&mut out, 4242, &[1, 2, 3, 4]).unwrap();
    encode::ready_for_query(&mut out, TransactionStatus::Idle);
    out
}

#[test]
fn the_startup_packet_names_the_user_and_database() {
    let (_, out) = start(credentials(None));
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("user\0alice\0database\0app\0"), "{text:?}");
}

#[test]
fn trust_ends_with_the_servers_parameters_and_key() {
    let (mut login, _) = start(credentials(None));
    let (out, outcome) = feed(&mut login, &ready());
    assert!(out.is_empty(), "nothing to answer");
    let done = outcome.unwrap().expect("logged in");
    assert_eq!(
        crate::relay::params::ParamSource::get(&done.params, "TimeZone"),
        Some("UTC")
    );
    assert_eq!(done.key, Some((4242, vec![1, 2, 3, 4])));
}

#[test]
fn md5_is_answered_with_the_password() {
    let (mut login, _) = start(credentials(Some("secret")));
    let salt = [9, 8, 7, 6];
    let (out, outcome) = feed(
        &mut login,
        &msg(|o| encode::authentication_md5_password(o, salt)),
    );
    assert!(matches!(outcome, Ok(None)));
    let expected = crate::auth::md5_response("alice", "secret", salt);
    assert_eq!(out, msg(|o| encode::password(o, expected).unwrap()));
}

#[test]
fn a_method_without_what_it_needs_is_an_auth_error() {
    let (mut login, _) = start(credentials(None));
    let (_, outcome) = feed(&mut login, &msg(encode::authentication_cleartext_password));
    assert!(matches!(outcome, Err(LoginError::Auth(text)) if text.contains("cleartext")));
}

#[test]
fn a_server_error_is_kept_whole_for_the_client() {
    let (mut login, _) = start(credentials(None));
    let error = msg(|o| {
        encode::error_response(
            o,
            &[(b'S', b"FATAL"), (b'C', b"3D000"), (b'M', b"no such db")],
        )
        .unwrap()
    });
    let (_, outcome) = feed(&mut login, &error);
    match outcome {
        Err(LoginError::Rejected {
            message,
            code,
            text,
        }) => {
            assert_eq!(message, error);
            assert_eq!(code, "3D000");
            assert_eq!(text, "no such db");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn scram_runs_to_the_end_against_a_scram_server() {
    let secret = ScramSecret::generate("secret");
    let mut server = ScramServer::new(&secret);
    let (mut login, _) = start(credentials(Some("secret")));
    let (out, _) = feed(
        &mut login,
        &msg(|o| encode::authentication_sasl(o, &["SCRAM-SHA-256"]).unwrap()),
    );
    // SASLInitialResponse: mechanism, then the client-first message.
    let header = Header::parse(&out).unwrap().unwrap();
    assert_eq!(header.tag, Tag::PASSWORD);
    let body = &out[HEADER_LEN..header.frame_len()];
    let first = &body[b"SCRAM-SHA-256\0".len() + 4..];
    let server_first = server.handle_client_first(first).unwrap();
    let (out, _) = feed(
        &mut login,
        &msg(|o| encode::authentication_sasl_continue(o, &server_first).unwrap()),
    );
    let header = Header::parse(&out).unwrap().unwrap();
    let client_final = &out[HEADER_LEN..header.frame_len()];
    let outcome = server
        .handle_client_final(client_final)
        .expect("a valid proof");
    let mut rest = msg(|o| encode::authentication_sasl_final(o, &outcome.server_final).unwrap());
    rest.extend_from_slice(&ready());
    let (_, outcome) = feed(&mut login, &rest);
    assert!(outcome.unwrap().is_some(), "logged in");
}

/// A SCRAM login over TLS (`end_point` set on the login) against a server that offers
/// `mechanisms` and expects `binding`; returns the mechanism qcp picked and the outcome.
fn bound_login(mechanisms: &[&str], binding: Binding) -> (String, Result<(), String>) {
    let secret = ScramSecret::generate("secret");
    let mut server = ScramServer::new(&secret);
    server.set_binding(binding);
    let (mut login, _) = start(credentials(Some("secret")));
    login.bind_to(vec![5; 32]);
    let (out, _) = feed(
        &mut login,
        &msg(|o| encode::authentication_sasl(o, mechanisms).unwrap()),
    );
    let header = Header::parse(&out).unwrap().unwrap();
    let body = &out[HEADER_LEN..header.frame_len()];
    let name_len = body.iter().position(|&b| b == 0).unwrap();
    let mechanism = String::from_utf8_lossy(&body[..name_len]).into_owned();
    let first = &body[name_len + 1 + 4..];
    let server_first = match server.handle_client_first(first) {
        Ok(server_first) => server_first,
        Err(error) => return (mechanism, Err(error.to_string())),
    };
    let (out, _) = feed(
        &mut login,
        &msg(|o| encode::authentication_sasl_continue(o, &server_first).unwrap()),
    );
    let header = Header::parse(&out).unwrap().unwrap();
    let outcome = server
        .handle_client_final(&out[HEADER_LEN..header.frame_len()])
        .map(|_| ())
        .map_err(|e| e.to_string());
    (mechanism, outcome)
}

#[test]
fn over_tls_qcp_binds_when_the_server_offers_plus() {
    let (mechanism, outcome) = bound_login(
        &["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"],
        Binding::Required(vec![5; 32]),
    );
    assert_eq!(mechanism, "SCRAM-SHA-256-PLUS");
    assert_eq!(outcome, Ok(()));
    // Bound to what qcp saw: a server with another certificate (a man in the middle)
    // refuses the proof.
    let (_, outcome) = bound_login(
        &["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"],
        Binding::Required(vec![6; 32]),
    );
    assert!(outcome.is_err());
    // No -PLUS offered: plain SCRAM with `y` (qcp could bind), which a server without
    // binding accepts.
    let (mechanism, outcome) = bound_login(&["SCRAM-SHA-256"], Binding::Unavailable);
    assert_eq!(mechanism, "SCRAM-SHA-256");
    assert_eq!(outcome, Ok(()));
}

#[test]
fn sasl_continue_before_sasl_is_a_protocol_error() {
    let (mut login, _) = start(credentials(Some("secret")));
    let (_, outcome) = feed(
        &mut login,
        &msg(|o| encode::authentication_sasl_continue(o, b"r=x").unwrap()),
    );
    assert!(matches!(outcome, Err(LoginError::Protocol(_))));
}

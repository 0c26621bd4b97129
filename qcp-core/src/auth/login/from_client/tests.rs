//! A client's login driven with scripted client messages: each authentication method (a
//! real SCRAM client against qcp's side), and the refusals. The first packet's tests are in
//! `opening/tests.rs`.

use qcp_codec::{encode, Header, Tag, HEADER_LEN};

use super::{AuthStep, Authenticator, UserSecrets};
use crate::auth::{ScramClient, ScramCredentials, ScramSecret, Secret};
use crate::config::AuthMethod;
use crate::errors::Refusal;

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

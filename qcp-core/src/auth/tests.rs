//! Whole exchanges: qcp's client against qcp's server (password and pass-through), and qcp's
//! server against an independent client, `postgres-protocol`'s (the one tokio-postgres uses).

use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

use super::*;

/// Runs one exchange; returns the server's outcome and the client's verdict on it.
fn run(
    client: &mut ScramClient,
    server: &mut ScramServer,
) -> Result<ScramServerOutcome, ScramError> {
    let server_first = server.handle_client_first(&client.client_first())?;
    let client_final = client.handle_server_first(&server_first)?;
    let outcome = server.handle_client_final(&client_final)?;
    client.handle_server_final(&outcome.server_final)?;
    Ok(outcome)
}

/// Runs postgres-protocol's client against ours; returns the server's outcome.
fn run_reference(
    password: &str,
    binding: ChannelBinding,
    secret: &ScramSecret,
) -> Result<ScramServerOutcome, ScramError> {
    let mut client = ScramSha256::new(password.as_bytes(), binding);
    let mut server = ScramServer::new(secret);
    let server_first = server.handle_client_first(client.message())?;
    client
        .update(&server_first)
        .unwrap_or_else(|e| panic!("reference client: {e}"));
    let outcome = server.handle_client_final(client.message())?;
    client
        .finish(&outcome.server_final)
        .unwrap_or_else(|e| panic!("reference client refused our server-final: {e}"));
    Ok(outcome)
}

fn cheap_secret(password: &str) -> ScramSecret {
    ScramSecret::from_password(password, b"0123456789abcdef", 64)
}

#[test]
fn password_login_then_pass_through_login() {
    let secret = ScramSecret::generate("correct horse");
    let mut client = ScramClient::new(ScramCredentials::Password("correct horse".into()));
    let outcome =
        run(&mut client, &mut ScramServer::new(&secret)).unwrap_or_else(|e| panic!("{e}"));

    // The recovered ClientKey logs in, without the password, to a server with the same secret.
    let keys = ScramCredentials::passthrough(&secret, outcome.client_key);
    let mut relayed = ScramClient::new(keys.clone());
    let again = run(&mut relayed, &mut ScramServer::new(&secret)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.client_key, outcome.client_key);

    // But not to a server whose secret has another salt: the error explains the fix.
    let other = ScramSecret::generate("correct horse");
    let err = run(&mut ScramClient::new(keys), &mut ScramServer::new(&other)).err();
    assert_eq!(err, Some(ScramError::KeysDoNotMatchServerSalt));
}

#[test]
fn wrong_password_is_invalid_proof() {
    let secret = cheap_secret("right");
    let mut client = ScramClient::new(ScramCredentials::Password("wrong".into()));
    assert_eq!(
        run(&mut client, &mut ScramServer::new(&secret)).err(),
        Some(ScramError::InvalidProof)
    );
}

#[test]
fn server_without_the_server_key_is_detected() {
    // An impostor holding only StoredKey can't answer with the right ServerSignature.
    let mut secret = cheap_secret("pw");
    secret.server_key = [0; 32];
    let mut client = ScramClient::new(ScramCredentials::Password("pw".into()));
    assert_eq!(
        run(&mut client, &mut ScramServer::new(&secret)).err(),
        Some(ScramError::ServerSignatureMismatch)
    );
}

#[test]
fn tampered_nonce_is_refused_by_both_sides() {
    let secret = cheap_secret("pw");
    let mut client = ScramClient::new(ScramCredentials::Password("pw".into()));
    let mut server = ScramServer::new(&secret);
    let server_first = server
        .handle_client_first(&client.client_first())
        .unwrap_or_else(|e| panic!("{e}"));
    // Server side: a client-final with a changed nonce.
    let client_final = client
        .handle_server_first(&server_first)
        .unwrap_or_else(|e| panic!("{e}"));
    let tampered = String::from_utf8_lossy(&client_final).replacen(",r=", ",r=X", 1);
    assert_eq!(
        server.handle_client_final(tampered.as_bytes()).err(),
        Some(ScramError::NonceMismatch)
    );
    // Client side: a server-first whose nonce does not extend ours.
    let mut client = ScramClient::new(ScramCredentials::Password("pw".into()));
    let tampered = String::from_utf8_lossy(&server_first).replacen("r=", "r=X", 1);
    client.client_first();
    assert_eq!(
        client.handle_server_first(tampered.as_bytes()).err(),
        Some(ScramError::NonceMismatch)
    );
}

#[test]
fn reference_client_against_our_server() {
    let secret = cheap_secret("pencil");
    // gs2 "n,," and "y,," are both accepted.
    let n = run_reference("pencil", ChannelBinding::unsupported(), &secret)
        .unwrap_or_else(|e| panic!("{e}"));
    let y = run_reference("pencil", ChannelBinding::unrequested(), &secret)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n.client_key, y.client_key);
    // The key recovered from the reference client's proof is the real ClientKey: it logs in.
    let mut relayed = ScramClient::new(ScramCredentials::passthrough(&secret, n.client_key));
    assert!(run(&mut relayed, &mut ScramServer::new(&secret)).is_ok());

    assert_eq!(
        run_reference(
            "pencil",
            ChannelBinding::tls_server_end_point(vec![1; 32]),
            &secret
        )
        .err(),
        Some(ScramError::ChannelBindingNotSupported)
    );
    let mut client = ScramSha256::new(b"pencil2", ChannelBinding::unsupported());
    let mut server = ScramServer::new(&secret);
    let server_first = server
        .handle_client_first(client.message())
        .unwrap_or_else(|e| panic!("{e}"));
    client
        .update(&server_first)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        server.handle_client_final(client.message()).err(),
        Some(ScramError::InvalidProof)
    );
}

#[test]
fn reference_secrets_and_sasl_prep() {
    // A secret written by postgres-protocol (PostgreSQL's format) verifies our client.
    let text = postgres_protocol::password::scram_sha_256("p\u{E5}ss w\u{F6}rd".as_bytes());
    let Ok(Secret::Scram(secret)) = Secret::parse(&text) else {
        panic!("not a SCRAM secret")
    };
    let mut client = ScramClient::new(ScramCredentials::Password("p\u{E5}ss w\u{F6}rd".into()));
    assert!(run(&mut client, &mut ScramServer::new(&secret)).is_ok());

    // SASLprep on both sides: U+2168 and U+00AD normalise so that all three are one password.
    let secret = cheap_secret("IX");
    assert!(run_reference("\u{2168}", ChannelBinding::unsupported(), &secret).is_ok());
    let mut client = ScramClient::new(ScramCredentials::Password("I\u{AD}X".into()));
    assert!(run(&mut client, &mut ScramServer::new(&secret)).is_ok());
}

#[test]
fn md5_matches_reference() {
    assert_eq!(
        md5_stored("dave", "secret"),
        postgres_protocol::password::md5(b"secret", "dave")
    );
}

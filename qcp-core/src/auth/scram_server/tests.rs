use super::*;
use crate::auth::primitives::{client_key, salted_password};

// RFC 7677 section 3: user "user", password "pencil".
const RFC_CLIENT_FIRST: &[u8] = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const RFC_SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
const RFC_SERVER_FIRST: &[u8] =
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC_CLIENT_FINAL: &[u8] = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC_SERVER_FINAL: &[u8] = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn rfc_salt() -> Vec<u8> {
    STANDARD.decode(RFC_SALT).unwrap_or_else(|e| panic!("{e}"))
}

fn rfc_secret(password: &str) -> ScramSecret {
    ScramSecret::from_password(password, &rfc_salt(), 4096)
}

fn rfc_server(password: &str) -> ScramServer {
    ScramServer::with_nonce(&rfc_secret(password), RFC_SERVER_NONCE)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn rfc7677_example_byte_for_byte() {
    let mut server = rfc_server("pencil");
    assert_eq!(
        server.handle_client_first(RFC_CLIENT_FIRST).as_deref(),
        Ok(RFC_SERVER_FIRST)
    );
    let outcome = server
        .handle_client_final(RFC_CLIENT_FINAL)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.server_final, RFC_SERVER_FINAL);
    let expected_key = client_key(&salted_password(b"pencil", &rfc_salt(), 4096));
    assert_eq!(outcome.client_key, expected_key);
    assert!(!format!("{outcome:?}").contains(&format!("{:?}", outcome.client_key)));
    // The exchange is over.
    assert_eq!(
        server.handle_client_final(RFC_CLIENT_FINAL).err(),
        Some(ScramError::OutOfOrder)
    );
}

#[test]
fn wrong_password_is_invalid_proof() {
    let mut server = rfc_server("pencil2");
    assert!(server.handle_client_first(RFC_CLIENT_FIRST).is_ok());
    assert_eq!(
        server.handle_client_final(RFC_CLIENT_FINAL).err(),
        Some(ScramError::InvalidProof)
    );
}

#[test]
fn out_of_order_messages() {
    let mut server = rfc_server("pencil");
    assert_eq!(
        server.handle_client_final(RFC_CLIENT_FINAL).err(),
        Some(ScramError::OutOfOrder)
    );
    let mut server = rfc_server("pencil");
    assert!(server.handle_client_first(RFC_CLIENT_FIRST).is_ok());
    assert_eq!(
        server.handle_client_first(RFC_CLIENT_FIRST).err(),
        Some(ScramError::OutOfOrder)
    );
    // A failed step ends the exchange too.
    let mut server = rfc_server("pencil");
    assert!(server.handle_client_first(b"garbage").is_err());
    assert_eq!(
        server.handle_client_first(RFC_CLIENT_FIRST).err(),
        Some(ScramError::OutOfOrder)
    );
}

#[test]
fn server_nonce_must_be_printable() {
    let secret = rfc_secret("pencil");
    for bad in ["", "a,b", "a b", "\u{e9}", "a\n"] {
        assert!(
            matches!(
                ScramServer::with_nonce(&secret, bad),
                Err(ScramError::Malformed(_))
            ),
            "{bad:?}"
        );
    }
    let mut server = ScramServer::new(&secret);
    let first = server
        .handle_client_first(b"n,,n=,r=abc")
        .unwrap_or_else(|e| panic!("{e}"));
    // r=abc + 24 characters of base64 (18 random bytes).
    let nonce = attributes(&first).next().unwrap_or_default();
    assert_eq!(
        nonce.len(),
        2 + 3 + 24,
        "{}",
        String::from_utf8_lossy(&first)
    );
}

#[test]
fn client_first_errors() {
    use ScramError::*;
    let cases: &[(&[u8], Option<ScramError>)] = &[
        (
            b"",
            Some(Malformed("client-first-message lacks the gs2 header")),
        ),
        (
            b"n",
            Some(Malformed("client-first-message lacks the gs2 header")),
        ),
        (
            b"n,",
            Some(Malformed("client-first-message lacks the gs2 header")),
        ),
        (
            b"p=tls-server-end-point,,n=,r=abc",
            Some(ChannelBindingNotSupported),
        ),
        (b"p=tls-unique,,n=,r=abc", Some(ChannelBindingNotSupported)),
        (
            b"x,,n=,r=abc",
            Some(Malformed("gs2 channel-binding flag must be n, y or p=")),
        ),
        (
            b"N,,n=,r=abc",
            Some(Malformed("gs2 channel-binding flag must be n, y or p=")),
        ),
        (
            b"n,a=bob,n=,r=abc",
            Some(Unsupported("authorization identity (a=)")),
        ),
        (
            b"n,junk,n=,r=abc",
            Some(Malformed("gs2 header's second field must be empty or a=")),
        ),
        (
            b"n,,m=ext,n=,r=abc",
            Some(Unsupported("mandatory extension (m=)")),
        ),
        (
            b"n,,r=abc",
            Some(Malformed("client-first-message lacks the user name (n=)")),
        ),
        (
            b"n,,",
            Some(Malformed("client-first-message lacks the user name (n=)")),
        ),
        (
            b"n,,n=",
            Some(Malformed("client-first-message lacks the nonce (r=)")),
        ),
        (
            b"n,,n=,x=abc",
            Some(Malformed("client-first-message lacks the nonce (r=)")),
        ),
        (
            b"n,,n=,r=",
            Some(Malformed("client nonce must be printable ASCII")),
        ),
        (
            b"n,,n=,r=a\x01b",
            Some(Malformed("client nonce must be printable ASCII")),
        ),
        (
            b"n,,n=,r=a\xffb",
            Some(Malformed("client nonce must be printable ASCII")),
        ),
        (
            b"n,,n=,r=abc,",
            Some(Malformed("attribute is not of the form <letter>=<value>")),
        ),
        (
            b"n,,n=,r=abc,1=x",
            Some(Malformed("attribute is not of the form <letter>=<value>")),
        ),
        // Accepted: optional extensions are ignored, the user name is ignored.
        (b"n,,n=,r=abc,x=1", None),
        (b"n,,n=anyone=2Cat=3Dall,r=abc", None),
        (b"y,,n=\xff\xfe,r=abc", None),
    ];
    let secret = rfc_secret("pencil");
    for (input, expected) in cases {
        let mut server = ScramServer::with_nonce(&secret, "XYZ").unwrap_or_else(|e| panic!("{e}"));
        let got = server.handle_client_first(input);
        match expected {
            Some(err) => assert_eq!(
                got.as_ref().err(),
                Some(err),
                "{}",
                String::from_utf8_lossy(input)
            ),
            None => {
                assert_eq!(
                    got.as_deref(),
                    Ok(&b"r=abcXYZ,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"[..])
                )
            }
        }
    }
}

#[test]
fn client_final_errors() {
    use ScramError::*;
    // A syntactically valid proof (32 zero bytes) that is wrong for the secret.
    let zero_proof = STANDARD.encode([0u8; 32]);
    let cases: Vec<(Vec<u8>, ScramError)> = vec![
        (
            b"".to_vec(),
            Malformed("client-final-message must end with the proof (p=)"),
        ),
        (
            b"c=biws,r=abcXYZ".to_vec(),
            Malformed("client-final-message must end with the proof (p=)"),
        ),
        (
            b"c=biws,r=abcXYZ,p=".to_vec(),
            Malformed("proof must be base64 of 32 bytes"),
        ),
        (
            b"c=biws,r=abcXYZ,p=!!!!".to_vec(),
            Malformed("proof must be base64 of 32 bytes"),
        ),
        (
            b"c=biws,r=abcXYZ,p=AAAA".to_vec(),
            Malformed("proof must be base64 of 32 bytes"),
        ),
        (
            format!("p={zero_proof}").into_bytes(),
            Malformed("client-final-message lacks channel binding and nonce"),
        ),
        (
            format!("r=abcXYZ,c=biws,p={zero_proof}").into_bytes(),
            Malformed("client-final-message must start with channel binding (c=)"),
        ),
        (
            format!("c=bi!s,r=abcXYZ,p={zero_proof}").into_bytes(),
            Malformed("channel binding (c=) is not valid base64"),
        ),
        (
            format!("c=eSws,r=abcXYZ,p={zero_proof}").into_bytes(),
            ChannelBindingMismatch,
        ),
        (
            format!("c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r=abcXYZ,p={zero_proof}").into_bytes(),
            ChannelBindingMismatch,
        ),
        (
            format!("c=,r=abcXYZ,p={zero_proof}").into_bytes(),
            ChannelBindingMismatch,
        ),
        (
            format!("c=biws,p={zero_proof}").into_bytes(),
            Malformed("client-final-message lacks the nonce (r=)"),
        ),
        (
            format!("c=biws,r=abcXYY,p={zero_proof}").into_bytes(),
            NonceMismatch,
        ),
        (
            format!("c=biws,r=abc,p={zero_proof}").into_bytes(),
            NonceMismatch,
        ),
        (
            format!("c=biws,r=abcXYZ!,p={zero_proof}").into_bytes(),
            NonceMismatch,
        ),
        (
            format!("c=biws,r=abcXYZ,junk,p={zero_proof}").into_bytes(),
            Malformed("attribute is not of the form <letter>=<value>"),
        ),
        (
            format!("c=biws,r=abcXYZ,p={zero_proof},x=1").into_bytes(),
            Malformed("client-final-message must end with the proof (p=)"),
        ),
        (
            format!("c=biws,r=abcXYZ,x=1,p={zero_proof}").into_bytes(),
            InvalidProof,
        ),
        (
            format!("c=biws,r=abcXYZ,p={zero_proof}").into_bytes(),
            InvalidProof,
        ),
    ];
    let secret = rfc_secret("pencil");
    for (input, expected) in cases {
        let mut server = ScramServer::with_nonce(&secret, "XYZ").unwrap_or_else(|e| panic!("{e}"));
        assert!(server.handle_client_first(b"n,,n=,r=abc").is_ok());
        let got = server.handle_client_final(&input);
        assert_eq!(
            got.err(),
            Some(expected),
            "{}",
            String::from_utf8_lossy(&input)
        );
    }
}

/// Truncations and single-byte changes of the RFC exchange never panic, and every change
/// to the client-final-message makes it fail.
#[test]
fn mutations_never_panic() {
    let secret = rfc_secret("pencil");
    let server_at_final = || {
        let mut s =
            ScramServer::with_nonce(&secret, RFC_SERVER_NONCE).unwrap_or_else(|e| panic!("{e}"));
        assert!(s.handle_client_first(RFC_CLIENT_FIRST).is_ok());
        s
    };
    for len in 0..RFC_CLIENT_FIRST.len() {
        let mut s =
            ScramServer::with_nonce(&secret, RFC_SERVER_NONCE).unwrap_or_else(|e| panic!("{e}"));
        let _ = s.handle_client_first(&RFC_CLIENT_FIRST[..len]);
    }
    for len in 0..RFC_CLIENT_FINAL.len() {
        assert!(server_at_final()
            .handle_client_final(&RFC_CLIENT_FINAL[..len])
            .is_err());
    }
    for i in 0..RFC_CLIENT_FINAL.len() {
        for byte in [0u8, b',', b'=', b'A', 0xff] {
            let mut input = RFC_CLIENT_FINAL.to_vec();
            if input[i] == byte {
                continue;
            }
            input[i] = byte;
            assert!(
                server_at_final().handle_client_final(&input).is_err(),
                "{i} {byte}"
            );
        }
    }
    for i in 0..RFC_CLIENT_FIRST.len() {
        for byte in [0u8, b',', b'=', b'p', 0xff] {
            let mut input = RFC_CLIENT_FIRST.to_vec();
            input[i] = byte;
            let mut s = ScramServer::with_nonce(&secret, RFC_SERVER_NONCE)
                .unwrap_or_else(|e| panic!("{e}"));
            if s.handle_client_first(&input).is_ok() {
                let _ = s.handle_client_final(RFC_CLIENT_FINAL);
            }
        }
    }
}

/// A full exchange between qcp's SCRAM client and server with `binding` on the server side
/// and, on the client side, channel binding to `client_end_point` (or none).
fn bound_exchange(binding: Binding, client_end_point: Option<&[u8]>) -> Result<(), ScramError> {
    let secret = ScramSecret::from_password("pencil", &rfc_salt(), 4096);
    let mut server = ScramServer::new(&secret);
    server.set_binding(binding);
    let mut client =
        crate::auth::ScramClient::new(crate::auth::ScramCredentials::Password("pencil".into()));
    if let Some(end_point) = client_end_point {
        client = client.with_channel_binding(end_point);
    }
    let server_first = server.handle_client_first(&client.client_first())?;
    let client_final = client.handle_server_first(&server_first)?;
    let outcome = server.handle_client_final(&client_final)?;
    client.handle_server_final(&outcome.server_final)
}

#[test]
fn channel_binding_to_the_certificate_hash() {
    let hash = [7u8; 32];
    // -PLUS, bound to the right certificate.
    assert_eq!(
        bound_exchange(Binding::Required(hash.to_vec()), Some(&hash)),
        Ok(())
    );
    // Bound to another certificate (a man in the middle): refused.
    assert_eq!(
        bound_exchange(Binding::Required(hash.to_vec()), Some(&[8u8; 32])),
        Err(ScramError::ChannelBindingMismatch)
    );
    // -PLUS chosen, but no binding sent.
    assert!(matches!(
        bound_exchange(Binding::Required(hash.to_vec()), None),
        Err(ScramError::Malformed(_))
    ));
    // Plain SCRAM over TLS without binding is fine; binding without TLS is not offered.
    assert_eq!(bound_exchange(Binding::Declined, None), Ok(()));
    assert_eq!(
        bound_exchange(Binding::Unavailable, Some(&hash)),
        Err(ScramError::ChannelBindingNotSupported)
    );
    assert_eq!(
        bound_exchange(Binding::Declined, Some(&hash)),
        Err(ScramError::ChannelBindingNotSupported)
    );
}

#[test]
fn a_client_that_thinks_binding_is_unavailable_is_refused_over_tls() {
    let secret = ScramSecret::from_password("pencil", &rfc_salt(), 4096);
    let mut server = ScramServer::new(&secret);
    server.set_binding(Binding::Declined);
    assert_eq!(
        server.handle_client_first(b"y,,n=,r=abc"),
        Err(ScramError::ChannelBindingDowngrade)
    );
    // Without TLS, `y` is simply true.
    let mut server = ScramServer::new(&secret);
    assert!(server.handle_client_first(b"y,,n=,r=abc").is_ok());
    // Another binding type than tls-server-end-point.
    let mut server = ScramServer::new(&secret);
    server.set_binding(Binding::Required(vec![1; 32]));
    assert_eq!(
        server.handle_client_first(b"p=tls-unique,,n=,r=abc"),
        Err(ScramError::ChannelBindingNotSupported)
    );
}

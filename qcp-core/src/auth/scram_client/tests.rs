use super::*;

// RFC 7677 section 3: user "user", password "pencil".
const RFC_CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const RFC_CLIENT_FIRST: &[u8] = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_FIRST: &[u8] =
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC_CLIENT_FINAL: &[u8] = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC_SERVER_FINAL: &[u8] = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn rfc_salt() -> Vec<u8> {
    STANDARD
        .decode("W22ZaJ0SNY7soEsUEjb6gQ==")
        .unwrap_or_else(|e| panic!("{e}"))
}

fn rfc_keys() -> ScramCredentials {
    let (client_key, server_key) = derive_keys(b"pencil", &rfc_salt(), 4096);
    ScramCredentials::Keys {
        client_key,
        server_key,
        salt: rfc_salt(),
        iterations: 4096,
    }
}

/// A client past client_first, with nonce "abc" and keys for salt "salt", 4096 iterations
/// (no PBKDF2 needed).
fn client_abc() -> ScramClient {
    let credentials = ScramCredentials::Keys {
        client_key: [1; 32],
        server_key: [2; 32],
        salt: b"salt".to_vec(),
        iterations: 4096,
    };
    let mut client = ScramClient::with_nonce(credentials, "abc").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(client.client_first(), b"n,,n=,r=abc");
    client
}

#[test]
fn rfc7677_example_byte_for_byte() {
    for credentials in [ScramCredentials::Password("pencil".into()), rfc_keys()] {
        let mut client = ScramClient::build(credentials, b"user", RFC_CLIENT_NONCE);
        assert_eq!(client.client_first(), RFC_CLIENT_FIRST);
        assert_eq!(
            client.handle_server_first(RFC_SERVER_FIRST).as_deref(),
            Ok(RFC_CLIENT_FINAL)
        );
        assert_eq!(client.handle_server_final(RFC_SERVER_FINAL), Ok(()));
        assert_eq!(
            client.handle_server_final(RFC_SERVER_FINAL),
            Err(ScramError::OutOfOrder)
        );
    }
}

#[test]
fn wrong_server_signature_is_refused() {
    let mut client = ScramClient::build(rfc_keys(), b"user", RFC_CLIENT_NONCE);
    client.client_first();
    assert!(client.handle_server_first(RFC_SERVER_FIRST).is_ok());
    assert_eq!(
        client.handle_server_final(b"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
        Err(ScramError::ServerSignatureMismatch)
    );
}

#[test]
fn keys_for_another_salt_or_iteration_count_are_refused() {
    let other_salt = b"r=abcXYZ,s=c2FsdDI=,i=4096";
    let other_iterations = b"r=abcXYZ,s=c2FsdA==,i=4097";
    for server_first in [&other_salt[..], &other_iterations[..]] {
        let err = client_abc().handle_server_first(server_first).err();
        assert_eq!(err, Some(ScramError::KeysDoNotMatchServerSalt));
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("pg_authid"), "{text}");
    }
    assert!(client_abc()
        .handle_server_first(b"r=abcXYZ,s=c2FsdA==,i=4096")
        .is_ok());
}

#[test]
fn server_first_errors() {
    use ScramError::*;
    let cases: &[(&[u8], ScramError)] = &[
        (b"", Malformed("server-first-message lacks the nonce (r=)")),
        (
            b"m=x,r=abcXYZ,s=c2FsdA==,i=4096",
            Unsupported("mandatory extension (m=)"),
        ),
        (
            b"s=c2FsdA==,r=abcXYZ,i=4096",
            Malformed("server-first-message lacks the nonce (r=)"),
        ),
        (
            b"r=,s=c2FsdA==,i=4096",
            Malformed("server nonce must be printable ASCII"),
        ),
        (
            b"r=abc\x7fXYZ,s=c2FsdA==,i=4096",
            Malformed("server nonce must be printable ASCII"),
        ),
        (b"r=abc,s=c2FsdA==,i=4096", NonceMismatch),
        (b"r=abXYZ,s=c2FsdA==,i=4096", NonceMismatch),
        (b"r=xabcXYZ,s=c2FsdA==,i=4096", NonceMismatch),
        (
            b"r=abcXYZ",
            Malformed("server-first-message lacks the salt (s=)"),
        ),
        (
            b"r=abcXYZ,i=4096,s=c2FsdA==",
            Malformed("server-first-message lacks the salt (s=)"),
        ),
        (
            b"r=abcXYZ,s=c2Fsd!==,i=4096",
            Malformed("salt (s=) is not valid base64"),
        ),
        (
            b"r=abcXYZ,s=c2FsdA,i=4096",
            Malformed("salt (s=) is not valid base64"),
        ),
        (b"r=abcXYZ,s=,i=4096", Malformed("salt (s=) is empty")),
        (
            b"r=abcXYZ,s=c2FsdA==",
            Malformed("server-first-message lacks the iteration count (i=)"),
        ),
        (
            b"r=abcXYZ,s=c2FsdA==,i=",
            Malformed("iteration count (i=) must be a decimal number"),
        ),
        (
            b"r=abcXYZ,s=c2FsdA==,i=-1",
            Malformed("iteration count (i=) must be a decimal number"),
        ),
        (
            b"r=abcXYZ,s=c2FsdA==,i=4k",
            Malformed("iteration count (i=) must be a decimal number"),
        ),
        (
            b"r=abcXYZ,s=c2FsdA==,i= 4096",
            Malformed("iteration count (i=) must be a decimal number"),
        ),
        (b"r=abcXYZ,s=c2FsdA==,i=0", UnsupportedIterations(0)),
        (
            b"r=abcXYZ,s=c2FsdA==,i=100001",
            UnsupportedIterations(100_001),
        ),
        (
            b"r=abcXYZ,s=c2FsdA==,i=4294967295",
            UnsupportedIterations(u32::MAX),
        ),
        (
            b"r=abcXYZ,s=c2FsdA==,i=99999999999999999999",
            UnsupportedIterations(u32::MAX),
        ),
        (
            b"r=abcXYZ,s=c2FsdA==,i=4096,",
            Malformed("attribute is not of the form <letter>=<value>"),
        ),
        (
            b"r=abcXYZ,s=c2FsdA==,i=4096,==",
            Malformed("attribute is not of the form <letter>=<value>"),
        ),
    ];
    for (input, expected) in cases {
        let got = client_abc().handle_server_first(input);
        assert_eq!(
            got.err().as_ref(),
            Some(expected),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
    // An optional extension is ignored; the maximum iteration count is accepted.
    assert!(client_abc()
        .handle_server_first(b"r=abcXYZ,s=c2FsdA==,i=4096,x=y")
        .is_ok());
    assert_eq!(
        parse_server_first(b"r=abcXYZ,s=c2FsdA==,i=100000").map(|f| f.iterations),
        Ok(MAX_ITERATIONS)
    );
}

#[test]
fn server_final_errors() {
    use ScramError::*;
    let cases: &[(&[u8], ScramError)] = &[
        (
            b"",
            Malformed("server-final-message lacks the verifier (v=)"),
        ),
        (
            b"x=1",
            Malformed("server-final-message lacks the verifier (v=)"),
        ),
        (
            b"v=",
            Malformed("server signature must be base64 of 32 bytes"),
        ),
        (
            b"v=!!!!",
            Malformed("server signature must be base64 of 32 bytes"),
        ),
        (
            b"v=AAAA",
            Malformed("server signature must be base64 of 32 bytes"),
        ),
        (b"e=invalid-proof", ServerError("invalid-proof".into())),
        (b"e=other-error,x=1", ServerError("other-error".into())),
        (b"e=bad\x01\xffbytes", ServerError("bad??bytes".into())),
        (
            b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            ServerSignatureMismatch,
        ),
        (
            b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,1",
            Malformed("attribute is not of the form <letter>=<value>"),
        ),
    ];
    for (input, expected) in cases {
        let mut client = client_abc();
        assert!(client
            .handle_server_first(b"r=abcXYZ,s=c2FsdA==,i=4096")
            .is_ok());
        assert_eq!(
            client.handle_server_final(input).as_ref().err(),
            Some(expected)
        );
    }
    let long = [b"e=".as_slice(), &[b'x'; 1000]].concat();
    let mut client = client_abc();
    assert!(client
        .handle_server_first(b"r=abcXYZ,s=c2FsdA==,i=4096")
        .is_ok());
    assert!(matches!(client.handle_server_final(&long), Err(ServerError(t)) if t.len() == 256));
}

#[test]
fn out_of_order_and_nonce_rules() {
    let mut client = ScramClient::new(ScramCredentials::Password("x".into()));
    assert_eq!(
        client.handle_server_first(b"r=abcXYZ,s=c2FsdA==,i=4096"),
        Err(ScramError::OutOfOrder)
    );
    let mut client = ScramClient::new(ScramCredentials::Password("x".into()));
    assert_eq!(
        client.handle_server_final(b"v=AAAA"),
        Err(ScramError::OutOfOrder)
    );

    let mut client = ScramClient::new(ScramCredentials::Password("x".into()));
    let first = client.client_first();
    assert_eq!(client.client_first(), first, "client_first is repeatable");
    // "n,,n=,r=" + base64 of 18 random bytes.
    assert_eq!(first.len(), 8 + 24);
    assert!(first.starts_with(b"n,,n=,r="));
    let mut other = ScramClient::new(ScramCredentials::Password("x".into()));
    assert_ne!(other.client_first(), first);
    assert_eq!(client.mechanism(), "SCRAM-SHA-256");

    for bad in ["", "a,b", "a b", "\u{e9}"] {
        let got = ScramClient::with_nonce(ScramCredentials::Password("x".into()), bad);
        assert!(matches!(got, Err(ScramError::Malformed(_))), "{bad:?}");
    }
}

#[test]
fn cache_runs_pbkdf2_once_per_salt() {
    let cache = Arc::new(SaltedPasswordCache::with_capacity(2));
    assert!(cache.is_empty());
    let keys = cache.keys("pencil", &rfc_salt(), 4096);
    assert_eq!(keys, derive_keys(b"pencil", &rfc_salt(), 4096));
    assert_eq!(cache.keys("pencil", &rfc_salt(), 4096), keys);
    assert_eq!(cache.len(), 1);
    // SASLprep'd passwords share an entry.
    let a = cache.keys("I\u{AD}X", b"salt", 1);
    assert_eq!(cache.keys("IX", b"salt", 1), a);
    assert_eq!(cache.len(), 2);
    assert_ne!(cache.keys("pencil", b"salt", 1), a);
    assert_eq!(cache.len(), 2, "capacity bounds the cache");

    let mut client = ScramClient::build(
        ScramCredentials::Password("pencil".into()),
        b"user",
        RFC_CLIENT_NONCE,
    )
    .with_cache(Arc::clone(&cache));
    client.client_first();
    assert_eq!(
        client.handle_server_first(RFC_SERVER_FIRST).as_deref(),
        Ok(RFC_CLIENT_FINAL)
    );
    assert_eq!(client.handle_server_final(RFC_SERVER_FINAL), Ok(()));
    assert!(format!("{cache:?}").contains("len: 2"));
}

#[test]
fn debug_redacts() {
    let shown = format!(
        "{:?} {:?} {:?}",
        ScramCredentials::Password("hunter2".into()),
        rfc_keys(),
        client_abc()
    );
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("client_key"), "{shown}");
}

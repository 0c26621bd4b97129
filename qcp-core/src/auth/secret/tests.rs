use super::*;

// Written by PostgreSQL 15 (`password_encryption = 'scram-sha-256'`), read from pg_authid.
const ALICE_PENCIL: &str = "SCRAM-SHA-256$4096:0pqs9qPyAWkEY+qgzjeh/A==$AcoCzQ8kJNNM2+Vy/NtKWvoql8ViKkeFocQTT4B/KA0=:zZU8UhP4CZbPZIV5Z2p24u3h5iOpsRNcg/h8v3LwWq8=";
// Password E'I\u00ADX' (SOFT HYPHEN, which SASLprep maps to nothing).
const BOB_SOFT_HYPHEN: &str = "SCRAM-SHA-256$4096:bjFBnVC3ulrD8iE/4KKdAg==$ZptuOo9CjvJyiHzFjahBGUwlczybCuxu9+WrDtCkGvI=:G+sTp/Zo6Ey2Qw9TOog2KRIHK/OB8ldhvo9oYMFSJLg=";
// Password E'p\u00E5ssw\u00F6rd'.
const CAROL_ACCENTS: &str = "SCRAM-SHA-256$4096:pJX63wHqJMuIKa8Ox0KZqw==$bA68tX/5ZIEmJQDn7ke6JBG3yg3CS401mXXVhfj7HZs=:+KU8qA1UxGWXowfy48Q5Y5RNFhjr/xbRcTrlx4WEvwQ=";
// Password E'\u2168' (ROMAN NUMERAL NINE, which NFKC turns into "IX").
const ERIN_ROMAN_NINE: &str = "SCRAM-SHA-256$4096:+zpgaVZN6n1KF0nRyBKUzw==$bhNcwaEVrl8w7xZfvHeaxWJ8SZvj/fyiF+Re2npchGI=:ikaeD9fQfJfw6d5xTwy24LOX+yzCUNKazU0cs6HIDas=";

fn scram(text: &str) -> ScramSecret {
    match Secret::parse(text) {
        Ok(Secret::Scram(s)) => s,
        other => panic!("not a SCRAM secret: {other:?}"),
    }
}

#[test]
fn parses_postgres_scram_secret_and_matches_derivation() {
    let secret = scram(ALICE_PENCIL);
    assert_eq!(secret.iterations, 4096);
    assert_eq!(secret.salt.len(), 16);
    assert_eq!(
        ScramSecret::from_password("pencil", &secret.salt, 4096),
        secret
    );
    assert_ne!(
        ScramSecret::from_password("pencil2", &secret.salt, 4096),
        secret
    );
    assert_eq!(secret.to_string(), ALICE_PENCIL);
    assert_eq!(
        Secret::parse(ALICE_PENCIL).map(|s| s.kind()),
        Ok("SCRAM secret")
    );
}

#[test]
fn sasl_prep_matches_postgres_for_non_ascii_passwords() {
    let bob = scram(BOB_SOFT_HYPHEN);
    assert_eq!(ScramSecret::from_password("I\u{AD}X", &bob.salt, 4096), bob);
    assert_eq!(ScramSecret::from_password("IX", &bob.salt, 4096), bob);

    let erin = scram(ERIN_ROMAN_NINE);
    assert_eq!(
        ScramSecret::from_password("\u{2168}", &erin.salt, 4096),
        erin
    );
    assert_eq!(ScramSecret::from_password("IX", &erin.salt, 4096), erin);

    let carol = scram(CAROL_ACCENTS);
    assert_eq!(
        ScramSecret::from_password("p\u{E5}ssw\u{F6}rd", &carol.salt, 4096),
        carol
    );
    // Decomposed input normalises (NFKC) to the same precomposed string.
    assert_eq!(
        ScramSecret::from_password("pa\u{30A}sswo\u{308}rd", &carol.salt, 4096),
        carol
    );
}

#[test]
fn sasl_prep_rejection_falls_back_to_raw_bytes() {
    use crate::auth::primitives::{salted_password, sasl_prep};
    // U+0007 is prohibited by SASLprep; ASCII is used as is anyway, like PostgreSQL.
    assert_eq!(&*sasl_prep("a\u{7}b"), b"a\x07b");
    // A RandALCat character followed by an LCat one violates the bidi rule: raw bytes.
    let bidi = "\u{627}a";
    assert_eq!(&*sasl_prep(bidi), bidi.as_bytes());
    let salt = b"0123456789abcdef";
    let raw = ScramSecret::from_password(bidi, salt, 1);
    let expected = salted_password(bidi.as_bytes(), salt, 1);
    assert_eq!(
        raw.server_key,
        crate::auth::primitives::server_key(&expected)
    );
    // Non-ASCII space maps to ASCII space.
    assert_eq!(&*sasl_prep("a\u{A0}b"), b"a b");
}

#[test]
fn generate_and_roundtrip() {
    let a = ScramSecret::generate("hunter2");
    let b = ScramSecret::generate("hunter2");
    assert_eq!(a.iterations, DEFAULT_SCRAM_ITERATIONS);
    assert_eq!(a.salt.len(), DEFAULT_SALT_LEN);
    assert_ne!(a.salt, b.salt);
    assert_eq!(Secret::parse(&a.to_string()), Ok(Secret::Scram(a.clone())));
    assert_eq!(
        ScramSecret::from_password("hunter2", &a.salt, a.iterations),
        a
    );
}

#[test]
fn parses_md5_and_plain() {
    let hash = [
        0xd0, 0x54, 0x39, 0x2f, 0x98, 0x5a, 0x26, 0x7d, 0xf7, 0x52, 0xbb, 0x2b, 0x16, 0xbe, 0x2f,
        0x2f,
    ];
    // dave / "secret", as stored by PostgreSQL with password_encryption = md5.
    assert_eq!(
        Secret::parse("md5d054392f985a267df752bb2b16be2f2f"),
        Ok(Secret::Md5(hash))
    );
    assert_eq!(
        Secret::parse("md5D054392F985A267DF752BB2B16BE2F2F"),
        Ok(Secret::Md5(hash))
    );
    assert_eq!(
        Secret::parse("md5d054392f985a267df752bb2b16be2f2f").map(|s| s.kind()),
        Ok("md5 hash")
    );
    for plain in [
        "",
        "hunter2",
        "md5",
        "md5d054392f985a267df752bb2b16be2f2",   // 31 digits
        "md5d054392f985a267df752bb2b16be2f2f0", // 33 digits
        "md5g054392f985a267df752bb2b16be2f2f",  // not hex
        "MD5d054392f985a267df752bb2b16be2f2f",
        "SCRAM-SHA-256", // no `$`: not the SCRAM form at all
        "scram-sha-256$4096:c2FsdA==$a:b",
    ] {
        assert_eq!(
            Secret::parse(plain),
            Ok(Secret::Plain(plain.to_owned())),
            "{plain:?}"
        );
    }
    assert_eq!(Secret::parse("x").map(|s| s.kind()), Ok("plaintext"));
}

#[test]
fn malformed_scram_secrets_are_rejected_without_echo() {
    let key = "AcoCzQ8kJNNM2+Vy/NtKWvoql8ViKkeFocQTT4B/KA0=";
    let cases: Vec<(String, SecretError)> = vec![
        ("SCRAM-SHA-256$".into(), SecretError::ScramFormat),
        (
            format!("SCRAM-SHA-256$4096:c2FsdA=={key}:{key}"),
            SecretError::ScramFormat,
        ),
        (
            format!("SCRAM-SHA-256$4096c2FsdA==${key}:{key}"),
            SecretError::ScramFormat,
        ),
        (
            format!("SCRAM-SHA-256$4096:c2FsdA==${key}{key}"),
            SecretError::ScramFormat,
        ),
        (
            format!("SCRAM-SHA-256$0:c2FsdA==${key}:{key}"),
            SecretError::ScramIterations,
        ),
        (
            format!("SCRAM-SHA-256$-1:c2FsdA==${key}:{key}"),
            SecretError::ScramIterations,
        ),
        (
            format!("SCRAM-SHA-256$+4:c2FsdA==${key}:{key}"),
            SecretError::ScramIterations,
        ),
        (
            format!("SCRAM-SHA-256$:c2FsdA==${key}:{key}"),
            SecretError::ScramIterations,
        ),
        (
            format!("SCRAM-SHA-256$4294967296:c2FsdA==${key}:{key}"),
            SecretError::ScramIterations,
        ),
        (
            format!("SCRAM-SHA-256$4096:${key}:{key}"),
            SecretError::ScramSalt,
        ),
        (
            format!("SCRAM-SHA-256$4096:c2Fsd!==${key}:{key}"),
            SecretError::ScramSalt,
        ),
        (
            format!("SCRAM-SHA-256$4096:c2FsdA${key}:{key}"),
            SecretError::ScramSalt,
        ),
        (
            format!("SCRAM-SHA-256$4096:c2FsdA==$c2FsdA==:{key}"),
            SecretError::ScramStoredKey,
        ),
        (
            format!("SCRAM-SHA-256$4096:c2FsdA==$:{key}"),
            SecretError::ScramStoredKey,
        ),
        (
            format!("SCRAM-SHA-256$4096:c2FsdA==${key}:{key}x"),
            SecretError::ScramServerKey,
        ),
        (
            format!("SCRAM-SHA-256$4096:c2FsdA==${key}:{key}\n"),
            SecretError::ScramServerKey,
        ),
        (
            format!("SCRAM-SHA-256$4096:c2FsdA==${key}:{key}${key}"),
            SecretError::ScramServerKey,
        ),
    ];
    for (text, expected) in cases {
        let err = Secret::parse(&text).expect_err(&text);
        assert_eq!(err, expected, "{text:?}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("c2FsdA"), "error echoes the salt: {shown}");
        assert!(!shown.contains("AcoCzQ8k"), "error echoes a key: {shown}");
    }
}

#[test]
fn debug_redacts() {
    let shown = format!(
        "{:?} {:?} {:?}",
        Secret::Plain("hunter2".into()),
        Secret::parse("md5d054392f985a267df752bb2b16be2f2f"),
        Secret::parse(ALICE_PENCIL),
    );
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("d054392f"), "{shown}");
    assert!(
        !shown.contains("AcoCzQ8k") && !shown.contains("zZU8UhP4"),
        "{shown}"
    );
}

#[test]
fn verify_cleartext_every_form() {
    let plain = Secret::Plain("pencil".into());
    assert!(plain.verify_cleartext("alice", "pencil"));
    assert!(!plain.verify_cleartext("alice", "pencil "));
    let md5 =
        Secret::parse("md5d054392f985a267df752bb2b16be2f2f").unwrap_or_else(|e| panic!("{e}"));
    assert!(md5.verify_cleartext("dave", "secret"));
    assert!(!md5.verify_cleartext("eve", "secret"));
    let scram = Secret::Scram(scram(ALICE_PENCIL));
    assert!(scram.verify_cleartext("alice", "pencil"));
    assert!(!scram.verify_cleartext("alice", "Pencil"));
}

#[test]
fn mock_secret_is_stable_per_user_and_matches_nothing() {
    let key = [7u8; 32];
    let a = ScramSecret::mock("nobody", &key);
    assert_eq!(a, ScramSecret::mock("nobody", &key));
    assert_ne!(a.salt, ScramSecret::mock("other", &key).salt);
    assert_ne!(a.salt, ScramSecret::mock("nobody", &[8u8; 32]).salt);
    assert_eq!(a.salt.len(), DEFAULT_SALT_LEN);
    assert!(!Secret::Scram(a).verify_cleartext("nobody", ""));
}

//! Startup-phase packets: StartupMessage, SSLRequest, GSSENCRequest, CancelRequest.

use super::*;

case!(startup startup_v3_0: pkt(b"\0\x03\0\0user\0alice\0database\0db\0options\0-c x=1\0\0")
=> StartupPacket::Startup(s) => {
    assert_eq!(s.version(), ProtocolVersion::V3_0);
    assert_eq!(s.user(), Some(&b"alice"[..]));
    assert_eq!(s.database(), Some(&b"db"[..]));
    assert_eq!(s.param(b"options"), Some(&b"-c x=1"[..]));
    assert_eq!(s.params().count(), 3);
});
case!(startup startup_v3_2: pkt(b"\0\x03\0\x02user\0u\0\0")
    => StartupPacket::Startup(s) => assert_eq!(s.version(), ProtocolVersion::V3_2));
case!(startup startup_grease_3_9999: pkt(b"\0\x03\x27\x0fuser\0u\0_pq_.test\0on\0\0")
=> StartupPacket::Startup(s) => {
    assert_eq!(s.version(), ProtocolVersion { major: 3, minor: 9999 });
    assert_eq!(s.param_str(b"_pq_.test"), Ok(Some("on")));
});
case!(startup startup_no_params: pkt(b"\0\x03\0\0\0")
=> StartupPacket::Startup(s) => {
    assert_eq!(s.params().count(), 0);
    assert_eq!(s.user(), None);
});
case!(startup startup_database_defaults_to_user: pkt(b"\0\x03\0\0user\0bob\0\0")
    => StartupPacket::Startup(s) => assert_eq!(s.database_or_user(), Some(&b"bob"[..])));
case!(startup startup_length_below_eight: b"\0\0\0\x07\0\x03\0".to_vec()
    => Err(DecodeError::InvalidLength { tag: None, len: 7 }));
case!(startup startup_length_below_four: b"\0\0\0\x03".to_vec()
    => Err(DecodeError::InvalidLength { tag: None, len: 3 }));
case!(startup startup_length_negative: b"\xff\xff\xff\xf0".to_vec()
    => Err(DecodeError::InvalidLength { tag: None, len: -16 }));
case!(startup startup_over_10004: b"\0\0\x27\x15".to_vec()
    => Err(DecodeError::StartupTooLarge { len: 10_005, limit: 10_004 }));
case!(startup startup_partial_length: b"\0\0\0".to_vec() => None);
case!(startup startup_partial_body: pkt(b"\0\x03\0\0user\0u\0\0")[..12].to_vec() => None);
case!(startup startup_missing_final_nul: pkt(b"\0\x03\0\0user\0u\0")
    => Err(DecodeError::MissingNul("StartupMessage.name")));
case!(startup startup_value_missing_nul: pkt(b"\0\x03\0\0user\0u")
    => Err(DecodeError::MissingNul("StartupMessage.value")));
case!(startup startup_bytes_after_terminator: pkt(b"\0\x03\0\0user\0u\0\0x\0")
    => Err(DecodeError::TrailingBytes("StartupMessage")));
case!(startup startup_protocol_2: pkt(b"\0\x02\0\0user\0u\0\0")
    => Err(DecodeError::UnsupportedProtocolVersion(131_072)));
case!(startup startup_protocol_4: pkt(b"\0\x04\0\0\0")
    => Err(DecodeError::UnsupportedProtocolVersion(0x0004_0000)));
case!(startup startup_unknown_special_code: pkt(b"\x04\xd2\x16\x31")
    => Err(DecodeError::UnknownStartupCode(80_877_105)));
case!(startup ssl_request: pkt(b"\x04\xd2\x16\x2f") => StartupPacket::SslRequest => ());
case!(startup ssl_request_trailing: pkt(b"\x04\xd2\x16\x2fQ")
    => Err(DecodeError::TrailingBytes("SSLRequest")));
case!(startup gss_enc_request: pkt(b"\x04\xd2\x16\x30") => StartupPacket::GssEncRequest => ());
case!(startup gss_enc_request_trailing: pkt(b"\x04\xd2\x16\x30\0")
    => Err(DecodeError::TrailingBytes("GSSENCRequest")));
case!(startup cancel_3_0: pkt(b"\x04\xd2\x16\x2e\0\0\x30\x39abcd")
    => StartupPacket::Cancel(c) => assert_eq!((c.pid(), c.secret()), (12345, &b"abcd"[..])));
case!(startup cancel_3_2_32_bytes: pkt(&cat(&[b"\x04\xd2\x16\x2e\0\0\0\x01", &[9; 32]]))
    => StartupPacket::Cancel(c) => assert_eq!(c.secret(), &[9; 32]));
case!(startup cancel_256_bytes: pkt(&cat(&[b"\x04\xd2\x16\x2e\0\0\0\x01", &[9; 256]]))
    => StartupPacket::Cancel(c) => assert_eq!(c.secret().len(), 256));
case!(startup cancel_secret_3_bytes: pkt(b"\x04\xd2\x16\x2e\0\0\0\x01abc")
    => Err(DecodeError::InvalidValue("CancelRequest.secret")));
case!(startup cancel_secret_257_bytes: pkt(&cat(&[b"\x04\xd2\x16\x2e\0\0\0\x01", &[9; 257]]))
    => Err(DecodeError::InvalidValue("CancelRequest.secret")));
case!(startup cancel_truncated_pid: pkt(b"\x04\xd2\x16\x2e\0\0")
    => Err(DecodeError::Truncated("CancelRequest.pid")));

#[test]
fn startup_at_cap_and_custom_cap() {
    // A 10 004-byte packet is fine (PostgreSQL caps the 10 000 bytes after the length), 10 005
    // is not; a caller may lower the cap.
    let filler = vec![b'x'; 10_004 - 4 - 4 - 7];
    let body = cat(&[b"\0\x03\0\0", b"user\0", &filler, b"\0\0"]);
    let wire = pkt(&body);
    assert_eq!(wire.len(), 10_004);
    assert!(StartupPacket::decode(&wire, &Limits::default())
        .unwrap()
        .is_some());
    let mut over = wire.clone();
    over.push(0);
    over[..4].copy_from_slice(&10_005u32.to_be_bytes());
    assert_eq!(
        StartupPacket::decode(&over, &Limits::default()),
        Err(DecodeError::StartupTooLarge {
            len: 10_005,
            limit: 10_004
        })
    );
    assert!(StartupPacket::decode(&wire, &Limits::default())
        .unwrap()
        .is_some());
    let tight = Limits {
        startup: 100,
        ..Limits::default()
    };
    assert_eq!(
        StartupPacket::decode(&wire, &tight),
        Err(DecodeError::StartupTooLarge {
            len: 10_004,
            limit: 100
        })
    );
}

#[test]
fn startup_followed_by_more_bytes() {
    let mut wire = pkt(b"\x04\xd2\x16\x2f");
    wire.extend_from_slice(b"\x16\x03\x01");
    let (p, used) = StartupPacket::decode(&wire, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!((p, used), (StartupPacket::SslRequest, 8));
}

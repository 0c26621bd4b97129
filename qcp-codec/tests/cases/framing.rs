//! Framing: Header, split headers, frame walking, limits; streams and display.

use super::*;

#[test]
fn header_needs_five_bytes() {
    for n in 0..5 {
        assert_eq!(Header::parse(&b"Q\0\0\0\x04"[..n]), Ok(None));
    }
}

#[test]
fn header_length_below_four() {
    for len in 0..4u8 {
        assert_eq!(
            Header::parse(&[b'Q', 0, 0, 0, len]),
            Err(DecodeError::InvalidLength {
                tag: Some(Tag::QUERY),
                len: i64::from(len)
            })
        );
    }
}

#[test]
fn header_negative_length() {
    assert_eq!(
        Header::parse(b"D\xff\xff\xff\xff"),
        Err(DecodeError::InvalidLength {
            tag: Some(Tag::DATA_ROW),
            len: -1
        })
    );
}

#[test]
fn header_over_default_cap() {
    let err = Header::parse_limited(b"d\x40\0\0\0", &Limits::default());
    assert_eq!(
        err,
        Err(DecodeError::MessageTooLarge {
            tag: Some(Tag::COPY_DATA),
            len: 0x4000_0000,
            limit: 0x3FFF_FFFF
        })
    );
    // Reported from the header alone, before the body arrives, by the message decoders too.
    assert_eq!(
        FrontendMessage::decode(b"d\x40\0\0\0", &Limits::default()).err(),
        err.err()
    );
    assert_eq!(
        BackendMessage::decode(b"D\x7f\xff\xff\xff", &Limits::default()).err(),
        Some(DecodeError::MessageTooLarge {
            tag: Some(Tag::DATA_ROW),
            len: 0x7FFF_FFFF,
            limit: 0x3FFF_FFFF
        })
    );
}

#[test]
fn header_at_cap_is_fine() {
    let h = Header::parse_limited(b"d\x3f\xff\xff\xff", &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(h.len, Limits::POSTGRES_MESSAGE);
    assert_eq!(h.frame_len(), 0x4000_0000);
}

#[test]
fn custom_message_limit() {
    let limits = Limits {
        message: 8,
        ..Limits::default()
    };
    assert!(FrontendMessage::decode(&msg(b'Q', b"abc\0"), &limits)
        .unwrap()
        .is_some());
    assert_eq!(
        FrontendMessage::decode(&msg(b'Q', b"abcde\0"), &limits).err(),
        Some(DecodeError::MessageTooLarge {
            tag: Some(Tag::QUERY),
            len: 10,
            limit: 8
        })
    );
}

#[test]
fn split_header_every_cut() {
    let wire = msg(b'Z', b"I");
    let limits = Limits::default();
    for cut in 0..=wire.len() {
        let (a, b) = wire.split_at(cut);
        assert_eq!(
            Header::parse_split(a, b, &limits),
            Ok(Some(Header {
                tag: Tag::READY_FOR_QUERY,
                len: 5
            })),
            "cut at {cut}"
        );
    }
    assert_eq!(Header::parse_split(b"Z\0", b"\0", &limits), Ok(None));
    assert_eq!(
        Header::parse_split(b"Z\0\0", b"\0\x02", &limits),
        Err(DecodeError::InvalidLength {
            tag: Some(Tag::READY_FOR_QUERY),
            len: 2
        })
    );
    assert!(matches!(
        Header::parse_split(b"d", b"\x40\0\0\0", &limits),
        Err(DecodeError::MessageTooLarge { .. })
    ));
}

#[test]
fn header_body_and_to_bytes() {
    let wire = msg(b'C', b"SELECT 1\0");
    let h = Header::parse(&wire).unwrap().unwrap();
    assert_eq!(h.to_bytes(), wire[..5]);
    assert_eq!(h.body(&wire), Some(&b"SELECT 1\0"[..]));
    assert_eq!(h.body(&wire[..wire.len() - 1]), None);
}

#[test]
fn split_frames_counts_complete_frames() {
    let mut buf = cat(&[&msg(b'1', b""), &msg(b'2', b""), &msg(b'D', b"\0\0")]);
    let complete = buf.len();
    buf.extend_from_slice(&msg(b'Z', b"I")[..4]);
    assert_eq!(split_frames(&buf, &Limits::default()), Ok((complete, 3)));
    assert_eq!(split_frames(b"", &Limits::default()), Ok((0, 0)));
    assert_eq!(split_frames(b"Z\0\0\0\x05", &Limits::default()), Ok((0, 0)));
}

#[test]
fn split_frames_rejects_bad_header() {
    let buf = cat(&[&msg(b'1', b""), b"Z\0\0\0\x01"]);
    assert_eq!(
        split_frames(&buf, &Limits::default()),
        Err(DecodeError::InvalidLength {
            tag: Some(Tag::READY_FOR_QUERY),
            len: 1
        })
    );
    // Frames yields the good frame first, then the error, then stops.
    let mut frames = Frames::new(&buf, &Limits::default());
    assert_eq!(
        frames.next().unwrap().unwrap().header.tag,
        Tag::PARSE_COMPLETE
    );
    assert!(frames.next().unwrap().is_err());
    assert!(frames.next().is_none());
    assert_eq!(frames.consumed(), 5);
    assert_eq!(frames.rest(), b"Z\0\0\0\x01");
}

case!(frontend incomplete_body: msg(b'Q', b"SELECT 1\0")[..8].to_vec() => None);
case!(backend incomplete_header: b"Z\0\0".to_vec() => None);
case!(frontend empty_input: Vec::new() => None);

#[test]
fn decodes_a_pipelined_stream() {
    let wire = cat(&[
        &msg(b'P', b"\0SELECT 1\0\0\0"),
        &msg(b'B', b"\0\0\0\0\0\0\0\0"),
        &msg(b'E', b"\0\0\0\0\0"),
        &msg(b'S', b""),
    ]);
    let mut rest = &wire[..];
    let mut tags = Vec::new();
    while let Some((m, used)) = FrontendMessage::decode(rest, &Limits::default()).unwrap() {
        tags.push(m.tag());
        rest = &rest[used..];
    }
    assert!(rest.is_empty());
    assert_eq!(tags, [Tag::PARSE, Tag::BIND, Tag::EXECUTE, Tag::SYNC]);
}

#[test]
fn errors_display_their_site() {
    assert_eq!(
        DecodeError::MissingNul("Query.sql").to_string(),
        "missing NUL terminator in Query.sql"
    );
    assert_eq!(
        DecodeError::UnsupportedProtocolVersion(131_072).to_string(),
        "unsupported protocol version 2.0"
    );
    assert_eq!(
        DecodeError::InvalidLength { tag: None, len: 2 }.to_string(),
        "invalid length 2 in startup packet"
    );
    assert_eq!(format!("{:?}", Tag(0x01)), "Tag(0x01)");
}

#[test]
fn secrets_are_not_printed() {
    let wire = msg(b'K', &cat(&[&be32(1), b"s3cr"]));
    let (m, _) = BackendMessage::decode(&wire, &Limits::default())
        .unwrap()
        .unwrap();
    assert!(!format!("{m:?}").contains("s3cr"));
    let wire = msg(b'p', b"hunter2\0");
    let (m, _) = FrontendMessage::decode(&wire, &Limits::default())
        .unwrap()
        .unwrap();
    assert!(!format!("{m:?}").contains("hunter2"));
}

//! Entry points for fuzz targets and for the corpus-replay test. Not a stable API.
//!
//! Each function takes arbitrary bytes and must never panic except through the `assert!`s
//! that state the codec's properties:
//! - decoders never claim to have used more bytes than they were given;
//! - every iterator of every decoded message can be drained;
//! - re-encoding a decoded message gives back exactly the bytes it was decoded from (every
//!   decoded form in this crate is canonical: bodies keep their wire bytes), and decoding that
//!   again gives an equal message.

use core::hint::black_box;

use crate::auth::{Authentication, PasswordMessage, SaslInitialResponse, SaslResponse};
use crate::backend::{BackendMessage, ErrorResponse};
use crate::frontend::FrontendMessage;
use crate::header::{split_frames, Frames, Header, HEADER_LEN};
use crate::limits::Limits;
use crate::startup::StartupPacket;

/// Decodes `data` as one untagged startup packet and checks it.
///
/// ```
/// qcp_codec::fuzzing::fuzz_startup(b"\0\0\0\x08\x04\xd2\x16\x2f");
/// ```
pub fn fuzz_startup(data: &[u8]) {
    if let Ok(Some((packet, used))) = StartupPacket::decode(data, &Limits::default()) {
        assert!(used <= data.len());
        touch_startup(&packet);
        check_roundtrip_startup(&packet, data.get(..used).unwrap_or_default());
    }
}

/// Decodes `data` as a stream of frontend messages, as far as it goes.
///
/// ```
/// qcp_codec::fuzzing::fuzz_frontend(b"Q\0\0\0\x0dSELECT 1\0S\0\0\0\x04");
/// ```
pub fn fuzz_frontend(data: &[u8]) {
    let limits = Limits::default();
    let mut rest = data;
    while let Ok(Some((msg, used))) = FrontendMessage::decode(rest, &limits) {
        assert!((HEADER_LEN..=rest.len()).contains(&used));
        touch_frontend(&msg);
        rest = rest.get(used..).unwrap_or_default();
    }
}

/// Decodes `data` as a stream of backend messages, as far as it goes.
///
/// ```
/// qcp_codec::fuzzing::fuzz_backend(b"Z\0\0\0\x05I");
/// ```
pub fn fuzz_backend(data: &[u8]) {
    let limits = Limits::default();
    let mut rest = data;
    while let Ok(Some((msg, used))) = BackendMessage::decode(rest, &limits) {
        assert!((HEADER_LEN..=rest.len()).contains(&used));
        touch_backend(&msg);
        rest = rest.get(used..).unwrap_or_default();
    }
}

/// Walks `data` frame by frame and checks that [`split_frames`], [`Frames`] and
/// [`Header::parse_split`] agree.
///
/// ```
/// qcp_codec::fuzzing::fuzz_frames(b"1\0\0\0\x04Z\0\0");
/// ```
pub fn fuzz_frames(data: &[u8]) {
    let limits = Limits {
        message: 1 << 16,
        ..Limits::default()
    };
    let mut frames = Frames::new(data, &limits);
    let mut sum = 0usize;
    let mut failed = None;
    for frame in frames.by_ref() {
        match frame {
            Ok(f) => {
                assert_eq!(f.bytes.len(), f.header.frame_len());
                assert_eq!(f.body().len(), f.header.body_len());
                sum = sum.saturating_add(f.bytes.len());
            }
            Err(e) => failed = Some(e),
        }
    }
    assert_eq!(sum, frames.consumed());
    assert!(frames.consumed() <= data.len());
    let expected = match failed {
        None => Ok((frames.consumed(), frames.frames())),
        Some(e) => Err(e),
    };
    assert_eq!(split_frames(data, &limits), expected);
    let whole = Header::parse_limited(data, &limits);
    for cut in 0..=HEADER_LEN.min(data.len()) {
        let (first, second) = data.split_at_checked(cut).unwrap_or_default();
        assert_eq!(Header::parse_split(first, second, &limits), whole);
    }
}

/// Decodes `data[1..]` as a startup packet (`data[0] % 3 == 0`), frontend stream (1) or
/// backend stream (2), and checks that every decoded message re-encodes to its own bytes.
///
/// ```
/// qcp_codec::fuzzing::fuzz_roundtrip(b"\x02C\0\0\0\x0aBEGIN\0");
/// ```
pub fn fuzz_roundtrip(data: &[u8]) {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let limits = Limits::default();
    match mode % 3 {
        0 => {
            if let Ok(Some((packet, used))) = StartupPacket::decode(data, &limits) {
                check_roundtrip_startup(&packet, data.get(..used).unwrap_or_default());
            }
        }
        1 => {
            let mut rest = data;
            while let Ok(Some((msg, used))) = FrontendMessage::decode(rest, &limits) {
                let wire = rest.get(..used).unwrap_or_default();
                let mut out = Vec::new();
                assert_eq!(msg.encode(&mut out), Ok(()));
                assert_eq!(out, wire);
                assert_eq!(
                    FrontendMessage::decode(&out, &limits),
                    Ok(Some((msg, used)))
                );
                rest = rest.get(used..).unwrap_or_default();
            }
        }
        _ => {
            let mut rest = data;
            while let Ok(Some((msg, used))) = BackendMessage::decode(rest, &limits) {
                let wire = rest.get(..used).unwrap_or_default();
                let mut out = Vec::new();
                assert_eq!(msg.encode(&mut out), Ok(()));
                assert_eq!(out, wire);
                assert_eq!(BackendMessage::decode(&out, &limits), Ok(Some((msg, used))));
                rest = rest.get(used..).unwrap_or_default();
            }
        }
    }
}

fn check_roundtrip_startup(packet: &StartupPacket<'_>, wire: &[u8]) {
    let mut out = Vec::new();
    assert_eq!(packet.encode(&mut out), Ok(()));
    assert_eq!(out, wire);
    assert_eq!(
        StartupPacket::decode(&out, &Limits::default()),
        Ok(Some((*packet, wire.len())))
    );
}

fn touch_startup(packet: &StartupPacket<'_>) {
    match packet {
        StartupPacket::Startup(s) => {
            black_box(s.version());
            for (name, value) in s.params() {
                black_box((name, value));
            }
            black_box((s.user(), s.database(), s.database_or_user()));
            black_box(s.param_str(b"application_name").ok());
        }
        StartupPacket::Cancel(c) => {
            assert!((4..=256).contains(&c.secret().len()));
            black_box((c.pid(), c.secret()));
        }
        StartupPacket::SslRequest | StartupPacket::GssEncRequest => {}
    }
    black_box(format!("{packet:?}"));
}

fn touch_frontend(msg: &FrontendMessage<'_>) {
    black_box(msg.tag());
    match msg {
        FrontendMessage::Query(q) => {
            black_box((q.sql(), q.sql_str().ok()));
        }
        FrontendMessage::Parse(p) => {
            black_box((p.name(), p.name_str().ok(), p.query(), p.query_str().ok()));
            assert_eq!(p.param_types().len(), p.param_types().count());
        }
        FrontendMessage::Bind(b) => {
            black_box((b.portal_str().ok(), b.statement_str().ok()));
            assert_eq!(b.param_formats().len(), b.param_formats().count());
            assert_eq!(b.params().len(), b.params().count());
            assert_eq!(b.result_formats().len(), b.result_formats().count());
        }
        FrontendMessage::Describe(d) => {
            black_box((d.kind(), d.name(), d.name_str().ok()));
        }
        FrontendMessage::Close(c) => {
            black_box((c.kind(), c.name(), c.name_str().ok()));
        }
        FrontendMessage::Execute(e) => {
            black_box((e.portal(), e.portal_str().ok(), e.max_rows()));
        }
        FrontendMessage::FunctionCall(f) => {
            black_box((f.oid(), f.result_format()));
            assert_eq!(f.arg_formats().len(), f.arg_formats().count());
            assert_eq!(f.args().len(), f.args().count());
        }
        FrontendMessage::CopyData(c) => {
            black_box(c.data());
        }
        FrontendMessage::CopyFail(c) => {
            black_box((c.reason(), c.reason_str().ok()));
        }
        FrontendMessage::PasswordFamily(body) => {
            black_box(PasswordMessage::decode(body).map(|p| p.password()).ok());
            if let Ok(s) = SaslInitialResponse::decode(body) {
                black_box((s.mechanism(), s.mechanism_str().ok(), s.data()));
            }
            black_box(SaslResponse::decode(body).map(|s| s.data()).ok());
        }
        _ => {}
    }
    black_box(format!("{msg:?}"));
}

fn touch_error(e: &ErrorResponse<'_>) {
    for field in e.fields() {
        assert_ne!(field.code, 0);
        black_box(field.value_str().ok());
    }
    black_box((e.severity(), e.severity_nonlocalized(), e.sqlstate()));
    black_box((e.message(), e.detail(), e.hint()));
}

fn touch_backend(msg: &BackendMessage<'_>) {
    black_box(msg.tag());
    match msg {
        BackendMessage::Authentication(a) => {
            black_box(a.code());
            if let Authentication::Sasl(m) = a {
                for name in m.iter() {
                    assert!(!name.is_empty());
                }
                black_box(m.contains(b"SCRAM-SHA-256"));
            }
        }
        BackendMessage::BackendKeyData(k) => {
            assert!((4..=256).contains(&k.secret().len()));
            black_box(k.pid());
        }
        BackendMessage::NegotiateProtocolVersion(v) => {
            black_box((v.version(), v.newest_minor(), v.options().count()));
        }
        BackendMessage::ParameterStatus(p) => {
            black_box((p.name(), p.value(), p.name_str().ok(), p.value_str().ok()));
        }
        BackendMessage::ErrorResponse(e) | BackendMessage::NoticeResponse(e) => touch_error(e),
        BackendMessage::RowDescription(rd) => {
            assert_eq!(rd.len(), rd.fields().count());
            for f in rd.fields() {
                black_box(f.name_str().ok());
            }
        }
        BackendMessage::DataRow(row) => {
            assert_eq!(row.len(), row.values().count());
        }
        BackendMessage::CommandComplete(c) => {
            black_box((c.tag(), c.tag_str().ok(), c.rows()));
        }
        BackendMessage::ParameterDescription(p) => {
            assert_eq!(p.len(), p.types().count());
        }
        BackendMessage::NotificationResponse(n) => {
            black_box((n.pid(), n.channel_str().ok(), n.payload_str().ok()));
        }
        BackendMessage::CopyInResponse(c)
        | BackendMessage::CopyOutResponse(c)
        | BackendMessage::CopyBothResponse(c) => {
            black_box(c.format());
            assert_eq!(c.column_formats().len(), c.column_formats().count());
        }
        _ => {}
    }
    black_box(format!("{msg:?}"));
}

//! Entry points for fuzz targets and for the corpus-replay test. Not a stable API.
//!
//! Each function takes arbitrary bytes and must never panic except through the `assert!`s
//! that state the codec's properties:
//! - decoders never claim to have used more bytes than they were given;
//! - every iterator of every decoded message can be drained;
//! - re-encoding a decoded message gives back exactly the bytes it was decoded from (every
//!   decoded form in this crate is canonical: bodies keep their wire bytes), and decoding that
//!   again gives an equal message;
//! - rebuilding a decoded message from what its accessors and iterators yield, with the
//!   [`encode`](crate::encode) functions, also gives back exactly its bytes (so the accessors
//!   lose and invent nothing), and so does re-encoding a `'p'` body through whichever of the
//!   [`auth`](crate::auth) types accepts it.
//!
//! `fuzz/fuzz_targets/*.rs` call these one function each, and `tests/corpus.rs` replays the
//! committed seed corpus `fuzz/corpus/<target>/` through them on the stable toolchain.

use core::hint::black_box;

use crate::auth::{Authentication, PasswordMessage, SaslInitialResponse, SaslResponse};
use crate::backend::{BackendMessage, ErrorResponse};
use crate::encode;
use crate::error::EncodeError;
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
/// backend stream (2), and checks that every decoded message re-encodes to its own bytes, both
/// with its `encode()` and rebuilt from its parts with the [`encode`](crate::encode)
/// functions.
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
                let wire = data.get(..used).unwrap_or_default();
                check_roundtrip_startup(&packet, wire);
                if let Some(rebuilt) = rebuild_startup(&packet) {
                    assert_eq!(rebuilt, wire);
                }
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
                if let FrontendMessage::PasswordFamily(body) = msg {
                    check_roundtrip_password_family(body, wire);
                } else if let Some(rebuilt) = rebuild_frontend(&msg) {
                    assert_eq!(rebuilt, wire);
                }
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
                if let Some(rebuilt) = rebuild_backend(&msg) {
                    assert_eq!(rebuilt, wire);
                }
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

/// A `'p'` body re-encodes to `wire` through every auth type that decodes it.
fn check_roundtrip_password_family(body: &[u8], wire: &[u8]) {
    if let Ok(p) = PasswordMessage::decode(body) {
        assert_eq!(built(|o| p.encode(o)), wire);
        assert_eq!(built(|o| encode::password(o, p.password())), wire);
    }
    if let Ok(s) = SaslInitialResponse::decode(body) {
        assert_eq!(built(|o| s.encode(o)), wire);
        let rebuilt = built(|o| encode::sasl_initial_response(o, s.mechanism(), s.data()));
        assert_eq!(rebuilt, wire);
    }
    if let Ok(s) = SaslResponse::decode(body) {
        assert_eq!(built(|o| s.encode(o)), wire);
        assert_eq!(built(|o| encode::sasl_response(o, s.data())), wire);
    }
}

/// Runs an encoder that must succeed (it is given parts of a message that decoded).
fn built(f: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>) -> Vec<u8> {
    let mut out = Vec::new();
    assert_eq!(f(&mut out), Ok(()));
    out
}

/// The packet rebuilt from its accessors; `None` where the encoder cannot express it
/// (`encode::startup` takes UTF-8 text).
fn rebuild_startup(packet: &StartupPacket<'_>) -> Option<Vec<u8>> {
    Some(match packet {
        StartupPacket::Startup(s) => {
            let mut params = Vec::new();
            for (name, value) in s.params() {
                params.push((
                    core::str::from_utf8(name).ok()?,
                    core::str::from_utf8(value).ok()?,
                ));
            }
            built(|o| encode::startup(o, s.version(), &params))
        }
        StartupPacket::Cancel(c) => built(|o| encode::cancel_request(o, c.pid(), c.secret())),
        StartupPacket::SslRequest => built(|o| {
            encode::ssl_request(o);
            Ok(())
        }),
        StartupPacket::GssEncRequest => built(|o| {
            encode::gss_enc_request(o);
            Ok(())
        }),
    })
}

/// The message rebuilt from its accessors and iterators; `None` for unknown tags.
fn rebuild_frontend(msg: &FrontendMessage<'_>) -> Option<Vec<u8>> {
    let collect16 = |it: crate::fields::FormatCodes<'_>| it.collect::<Vec<i16>>();
    let mut out = Vec::new();
    let o = &mut out;
    let result = match msg {
        FrontendMessage::Query(q) => encode::query(o, q.sql()),
        FrontendMessage::Parse(p) => {
            let types: Vec<u32> = p.param_types().collect();
            encode::parse(o, p.name(), p.query(), &types)
        }
        FrontendMessage::Bind(b) => {
            let params: Vec<Option<&[u8]>> = b.params().collect();
            encode::bind(
                o,
                b.portal(),
                b.statement(),
                &collect16(b.param_formats()),
                &params,
                &collect16(b.result_formats()),
            )
        }
        FrontendMessage::Describe(d) => encode::describe(o, d.kind(), d.name()),
        FrontendMessage::Execute(e) => encode::execute(o, e.portal(), e.max_rows()),
        FrontendMessage::Close(c) => encode::close(o, c.kind(), c.name()),
        FrontendMessage::Sync => {
            encode::sync(o);
            Ok(())
        }
        FrontendMessage::Flush => {
            encode::flush(o);
            Ok(())
        }
        FrontendMessage::Terminate => {
            encode::terminate(o);
            Ok(())
        }
        FrontendMessage::CopyDone => {
            encode::copy_done(o);
            Ok(())
        }
        FrontendMessage::FunctionCall(f) => {
            let args: Vec<Option<&[u8]>> = f.args().collect();
            let formats = collect16(f.arg_formats());
            encode::function_call(o, f.oid(), &formats, &args, f.result_format())
        }
        FrontendMessage::CopyData(d) => encode::copy_data(o, d.data()),
        FrontendMessage::CopyFail(f) => encode::copy_fail(o, f.reason()),
        FrontendMessage::PasswordFamily(_) | FrontendMessage::Unknown { .. } => return None,
    };
    assert_eq!(result, Ok(()));
    Some(out)
}

/// The message rebuilt from its accessors and iterators; `None` where the encoders cannot
/// express it (unknown tags and request codes, a non-UTF-8 SASL mechanism name, a
/// NegotiateProtocolVersion for a major version other than 3).
fn rebuild_backend(msg: &BackendMessage<'_>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let o = &mut out;
    let result = match msg {
        BackendMessage::Authentication(a) => match a {
            Authentication::Ok => {
                encode::authentication_ok(o);
                Ok(())
            }
            Authentication::KerberosV5 => {
                encode::authentication_kerberos_v5(o);
                Ok(())
            }
            Authentication::CleartextPassword => {
                encode::authentication_cleartext_password(o);
                Ok(())
            }
            Authentication::Md5Password { salt } => {
                encode::authentication_md5_password(o, *salt);
                Ok(())
            }
            Authentication::Gss => {
                encode::authentication_gss(o);
                Ok(())
            }
            Authentication::GssContinue(d) => encode::authentication_gss_continue(o, d),
            Authentication::Sspi => {
                encode::authentication_sspi(o);
                Ok(())
            }
            Authentication::Sasl(m) => {
                let mut names = Vec::new();
                for name in m.iter() {
                    names.push(core::str::from_utf8(name).ok()?);
                }
                encode::authentication_sasl(o, &names)
            }
            Authentication::SaslContinue(d) => encode::authentication_sasl_continue(o, d),
            Authentication::SaslFinal(d) => encode::authentication_sasl_final(o, d),
            Authentication::Unknown { .. } => return None,
        },
        BackendMessage::BackendKeyData(k) => encode::backend_key_data(o, k.pid(), k.secret()),
        BackendMessage::NegotiateProtocolVersion(v) => {
            if v.version().major != 3 {
                return None;
            }
            let options: Vec<&[u8]> = v.options().collect();
            encode::negotiate_protocol_version(o, u32::from(v.newest_minor()), &options)
        }
        BackendMessage::ParameterStatus(p) => encode::parameter_status(o, p.name(), p.value()),
        BackendMessage::ReadyForQuery(status) => {
            encode::ready_for_query(o, *status);
            Ok(())
        }
        BackendMessage::ErrorResponse(e) => {
            let fields: Vec<(u8, &[u8])> = e.fields().map(|f| (f.code, f.value)).collect();
            encode::error_response(o, &fields)
        }
        BackendMessage::NoticeResponse(e) => {
            let fields: Vec<(u8, &[u8])> = e.fields().map(|f| (f.code, f.value)).collect();
            encode::notice_response(o, &fields)
        }
        BackendMessage::RowDescription(rd) => {
            let fields: Vec<_> = rd.fields().collect();
            encode::row_description(o, &fields)
        }
        BackendMessage::DataRow(row) => {
            let values: Vec<Option<&[u8]>> = row.values().collect();
            encode::data_row(o, &values)
        }
        BackendMessage::CommandComplete(c) => encode::command_complete(o, c.tag()),
        BackendMessage::EmptyQueryResponse => {
            encode::empty_query_response(o);
            Ok(())
        }
        BackendMessage::ParameterDescription(p) => {
            let types: Vec<u32> = p.types().collect();
            encode::parameter_description(o, &types)
        }
        BackendMessage::NoData => {
            encode::no_data(o);
            Ok(())
        }
        BackendMessage::PortalSuspended => {
            encode::portal_suspended(o);
            Ok(())
        }
        BackendMessage::ParseComplete => {
            encode::parse_complete(o);
            Ok(())
        }
        BackendMessage::BindComplete => {
            encode::bind_complete(o);
            Ok(())
        }
        BackendMessage::CloseComplete => {
            encode::close_complete(o);
            Ok(())
        }
        BackendMessage::NotificationResponse(n) => {
            encode::notification_response(o, n.pid(), n.channel(), n.payload())
        }
        BackendMessage::CopyInResponse(c) => {
            let formats: Vec<i16> = c.column_formats().collect();
            encode::copy_in_response(o, c.format(), &formats)
        }
        BackendMessage::CopyOutResponse(c) => {
            let formats: Vec<i16> = c.column_formats().collect();
            encode::copy_out_response(o, c.format(), &formats)
        }
        BackendMessage::CopyBothResponse(c) => {
            let formats: Vec<i16> = c.column_formats().collect();
            encode::copy_both_response(o, c.format(), &formats)
        }
        BackendMessage::CopyData(d) => encode::copy_data(o, d.data()),
        BackendMessage::CopyDone => {
            encode::copy_done(o);
            Ok(())
        }
        BackendMessage::FunctionCallResponse(v) => encode::function_call_response(o, *v),
        BackendMessage::Unknown { .. } => return None,
    };
    assert_eq!(result, Ok(()));
    Some(out)
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

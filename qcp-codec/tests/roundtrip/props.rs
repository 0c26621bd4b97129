//! Property tests: generated parts, encoded, decoded, checked against the parts and
//! re-encoded; and arbitrary or mutated bytes through the fuzzing entry points.

use super::*;

/// A string without NUL bytes (any other byte, so not always UTF-8).
fn cstr() -> impl Strategy<Value = Vec<u8>> {
    vec(1u8..=255, 0..24)
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..48)
}

fn values() -> impl Strategy<Value = Vec<Option<Vec<u8>>>> {
    vec(option::of(bytes()), 0..8)
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![Just(Target::Statement), Just(Target::Portal)]
}

fn as_refs(v: &[Option<Vec<u8>>]) -> Vec<Option<&[u8]>> {
    v.iter().map(|o| o.as_deref()).collect()
}

/// The parts of one frontend message.
#[derive(Debug, Clone)]
enum Fe {
    Query(Vec<u8>),
    Parse(Vec<u8>, Vec<u8>, Vec<u32>),
    Bind(Vec<u8>, Vec<u8>, Vec<i16>, Vec<Option<Vec<u8>>>, Vec<i16>),
    Describe(Target, Vec<u8>),
    Execute(Vec<u8>, i32),
    Close(Target, Vec<u8>),
    Sync,
    Flush,
    FunctionCall(u32, Vec<i16>, Vec<Option<Vec<u8>>>, i16),
    CopyData(Vec<u8>),
    CopyDone,
    CopyFail(Vec<u8>),
    Terminate,
    Password(Vec<u8>),
    SaslInitial(Vec<u8>, Option<Vec<u8>>),
    SaslResponse(Vec<u8>),
}

fn fe() -> impl Strategy<Value = Fe> {
    prop_oneof![
        cstr().prop_map(Fe::Query),
        (cstr(), cstr(), vec(any::<u32>(), 0..6)).prop_map(|(a, b, c)| Fe::Parse(a, b, c)),
        (
            cstr(),
            cstr(),
            vec(any::<i16>(), 0..4),
            values(),
            vec(any::<i16>(), 0..4)
        )
            .prop_map(|(a, b, c, d, e)| Fe::Bind(a, b, c, d, e)),
        (target(), cstr()).prop_map(|(t, n)| Fe::Describe(t, n)),
        (cstr(), any::<i32>()).prop_map(|(p, m)| Fe::Execute(p, m)),
        (target(), cstr()).prop_map(|(t, n)| Fe::Close(t, n)),
        Just(Fe::Sync),
        Just(Fe::Flush),
        (
            any::<u32>(),
            vec(any::<i16>(), 0..4),
            values(),
            any::<i16>()
        )
            .prop_map(|(a, b, c, d)| Fe::FunctionCall(a, b, c, d)),
        bytes().prop_map(Fe::CopyData),
        Just(Fe::CopyDone),
        cstr().prop_map(Fe::CopyFail),
        Just(Fe::Terminate),
        cstr().prop_map(Fe::Password),
        (cstr(), option::of(bytes())).prop_map(|(m, d)| Fe::SaslInitial(m, d)),
        bytes().prop_map(Fe::SaslResponse),
    ]
}

fn encode_fe(m: &Fe, out: &mut Vec<u8>) {
    match m {
        Fe::Query(s) => encode::query(out, s).unwrap(),
        Fe::Parse(n, q, t) => encode::parse(out, n, q, t).unwrap(),
        Fe::Bind(p, s, pf, v, rf) => encode::bind(out, p, s, pf, &as_refs(v), rf).unwrap(),
        Fe::Describe(t, n) => encode::describe(out, *t, n).unwrap(),
        Fe::Execute(p, m) => encode::execute(out, p, *m).unwrap(),
        Fe::Close(t, n) => encode::close(out, *t, n).unwrap(),
        Fe::Sync => encode::sync(out),
        Fe::Flush => encode::flush(out),
        Fe::FunctionCall(oid, f, a, r) => {
            encode::function_call(out, *oid, f, &as_refs(a), *r).unwrap()
        }
        Fe::CopyData(d) => encode::copy_data(out, d).unwrap(),
        Fe::CopyDone => encode::copy_done(out),
        Fe::CopyFail(r) => encode::copy_fail(out, r).unwrap(),
        Fe::Terminate => encode::terminate(out),
        Fe::Password(p) => encode::password(out, p).unwrap(),
        Fe::SaslInitial(m, d) => encode::sasl_initial_response(out, m, d.as_deref()).unwrap(),
        Fe::SaslResponse(d) => encode::sasl_response(out, d).unwrap(),
    }
}

fn check_fe(parts: &Fe, msg: &FrontendMessage<'_>) {
    match (parts, msg) {
        (Fe::Query(s), FrontendMessage::Query(q)) => assert_eq!(q.sql(), &s[..]),
        (Fe::Parse(n, s, t), FrontendMessage::Parse(p)) => {
            assert_eq!((p.name(), p.query()), (&n[..], &s[..]));
            assert_eq!(p.param_types().collect::<Vec<_>>(), *t);
        }
        (Fe::Bind(p, s, pf, v, rf), FrontendMessage::Bind(b)) => {
            assert_eq!((b.portal(), b.statement()), (&p[..], &s[..]));
            assert_eq!(b.param_formats().collect::<Vec<_>>(), *pf);
            assert_eq!(
                b.params()
                    .map(|o| o.map(<[u8]>::to_vec))
                    .collect::<Vec<_>>(),
                *v
            );
            assert_eq!(b.result_formats().collect::<Vec<_>>(), *rf);
        }
        (Fe::Describe(t, n), FrontendMessage::Describe(d)) => {
            assert_eq!((d.kind(), d.name()), (*t, &n[..]))
        }
        (Fe::Execute(p, m), FrontendMessage::Execute(e)) => {
            assert_eq!((e.portal(), e.max_rows()), (&p[..], *m))
        }
        (Fe::Close(t, n), FrontendMessage::Close(c)) => {
            assert_eq!((c.kind(), c.name()), (*t, &n[..]))
        }
        (Fe::Sync, FrontendMessage::Sync)
        | (Fe::Flush, FrontendMessage::Flush)
        | (Fe::CopyDone, FrontendMessage::CopyDone)
        | (Fe::Terminate, FrontendMessage::Terminate) => {}
        (Fe::FunctionCall(oid, f, a, r), FrontendMessage::FunctionCall(c)) => {
            assert_eq!((c.oid(), c.result_format()), (*oid, *r));
            assert_eq!(c.arg_formats().collect::<Vec<_>>(), *f);
            assert_eq!(
                c.args().map(|o| o.map(<[u8]>::to_vec)).collect::<Vec<_>>(),
                *a
            );
        }
        (Fe::CopyData(d), FrontendMessage::CopyData(c)) => assert_eq!(c.data(), &d[..]),
        (Fe::CopyFail(r), FrontendMessage::CopyFail(c)) => assert_eq!(c.reason(), &r[..]),
        (Fe::Password(p), FrontendMessage::PasswordFamily(b)) => {
            assert_eq!(PasswordMessage::decode(b).unwrap().password(), &p[..]);
        }
        (Fe::SaslInitial(m, d), FrontendMessage::PasswordFamily(b)) => {
            let s = SaslInitialResponse::decode(b).unwrap();
            assert_eq!((s.mechanism(), s.data()), (&m[..], d.as_deref()));
        }
        (Fe::SaslResponse(d), FrontendMessage::PasswordFamily(b)) => {
            assert_eq!(SaslResponse::decode(b).unwrap().data(), &d[..]);
        }
        (parts, msg) => panic!("{parts:?} decoded as {msg:?}"),
    }
}

/// A RowDescription column: name, table OID, column id, type OID, size, modifier, format.
type Column = (Vec<u8>, u32, i16, u32, i16, i32, i16);

/// The parts of one backend message.
#[derive(Debug, Clone)]
enum Be {
    AuthOk,
    AuthCleartext,
    AuthMd5([u8; 4]),
    AuthSasl(Vec<Vec<u8>>),
    AuthSaslContinue(Vec<u8>),
    AuthSaslFinal(Vec<u8>),
    KeyData(i32, Vec<u8>),
    Negotiate(u16, Vec<Vec<u8>>),
    ParameterStatus(Vec<u8>, Vec<u8>),
    Ready(TransactionStatus),
    Error(Vec<(u8, Vec<u8>)>),
    Notice(Vec<(u8, Vec<u8>)>),
    RowDescription(Vec<Column>),
    DataRow(Vec<Option<Vec<u8>>>),
    CommandComplete(Vec<u8>),
    EmptyQuery,
    ParameterDescription(Vec<u32>),
    NoData,
    PortalSuspended,
    ParseComplete,
    BindComplete,
    CloseComplete,
    Notification(i32, Vec<u8>, Vec<u8>),
    CopyIn(i8, Vec<i16>),
    CopyOut(i8, Vec<i16>),
    CopyBoth(i8, Vec<i16>),
    CopyData(Vec<u8>),
    CopyDone,
    FunctionCallResponse(Option<Vec<u8>>),
}

fn error_fields() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
    vec((1u8..=255, cstr()), 0..6)
}

fn be() -> impl Strategy<Value = Be> {
    prop_oneof![
        Just(Be::AuthOk),
        Just(Be::AuthCleartext),
        any::<[u8; 4]>().prop_map(Be::AuthMd5),
        vec("[A-Z0-9-]{1,20}".prop_map(String::into_bytes), 0..3).prop_map(Be::AuthSasl),
        bytes().prop_map(Be::AuthSaslContinue),
        bytes().prop_map(Be::AuthSaslFinal),
        (any::<i32>(), vec(any::<u8>(), 4..=256)).prop_map(|(p, s)| Be::KeyData(p, s)),
        (any::<u16>(), vec(cstr(), 0..4)).prop_map(|(m, o)| Be::Negotiate(m, o)),
        (cstr(), cstr()).prop_map(|(n, v)| Be::ParameterStatus(n, v)),
        prop_oneof![
            Just(TransactionStatus::Idle),
            Just(TransactionStatus::InTransaction),
            Just(TransactionStatus::Failed)
        ]
        .prop_map(Be::Ready),
        error_fields().prop_map(Be::Error),
        error_fields().prop_map(Be::Notice),
        vec(
            (
                cstr(),
                any::<u32>(),
                any::<i16>(),
                any::<u32>(),
                any::<i16>(),
                any::<i32>(),
                any::<i16>()
            ),
            0..5
        )
        .prop_map(Be::RowDescription),
        values().prop_map(Be::DataRow),
        cstr().prop_map(Be::CommandComplete),
        Just(Be::EmptyQuery),
        vec(any::<u32>(), 0..6).prop_map(Be::ParameterDescription),
        Just(Be::NoData),
        Just(Be::PortalSuspended),
        Just(Be::ParseComplete),
        Just(Be::BindComplete),
        Just(Be::CloseComplete),
        (any::<i32>(), cstr(), cstr()).prop_map(|(p, c, l)| Be::Notification(p, c, l)),
        (any::<i8>(), vec(any::<i16>(), 0..5)).prop_map(|(f, c)| Be::CopyIn(f, c)),
        (any::<i8>(), vec(any::<i16>(), 0..5)).prop_map(|(f, c)| Be::CopyOut(f, c)),
        (any::<i8>(), vec(any::<i16>(), 0..5)).prop_map(|(f, c)| Be::CopyBoth(f, c)),
        bytes().prop_map(Be::CopyData),
        Just(Be::CopyDone),
        option::of(bytes()).prop_map(Be::FunctionCallResponse),
    ]
}

fn field_refs(f: &[(u8, Vec<u8>)]) -> Vec<(u8, &[u8])> {
    f.iter().map(|(c, v)| (*c, &v[..])).collect()
}

fn encode_be(m: &Be, out: &mut Vec<u8>) {
    match m {
        Be::AuthOk => encode::authentication_ok(out),
        Be::AuthCleartext => encode::authentication_cleartext_password(out),
        Be::AuthMd5(s) => encode::authentication_md5_password(out, *s),
        Be::AuthSasl(m) => {
            let names: Vec<&str> = m.iter().map(|n| std::str::from_utf8(n).unwrap()).collect();
            encode::authentication_sasl(out, &names).unwrap();
        }
        Be::AuthSaslContinue(d) => encode::authentication_sasl_continue(out, d).unwrap(),
        Be::AuthSaslFinal(d) => encode::authentication_sasl_final(out, d).unwrap(),
        Be::KeyData(p, s) => encode::backend_key_data(out, *p, s).unwrap(),
        Be::Negotiate(m, o) => {
            let opts: Vec<&[u8]> = o.iter().map(|v| &v[..]).collect();
            encode::negotiate_protocol_version(out, u32::from(*m), &opts).unwrap();
        }
        Be::ParameterStatus(n, v) => encode::parameter_status(out, n, v).unwrap(),
        Be::Ready(s) => encode::ready_for_query(out, *s),
        Be::Error(f) => encode::error_response(out, &field_refs(f)).unwrap(),
        Be::Notice(f) => encode::notice_response(out, &field_refs(f)).unwrap(),
        Be::RowDescription(cols) => {
            let cols: Vec<FieldDescription<'_>> = cols
                .iter()
                .map(
                    |(name, table_oid, column_id, type_oid, type_size, type_modifier, format)| {
                        FieldDescription {
                            name,
                            table_oid: *table_oid,
                            column_id: *column_id,
                            type_oid: *type_oid,
                            type_size: *type_size,
                            type_modifier: *type_modifier,
                            format: *format,
                        }
                    },
                )
                .collect();
            encode::row_description(out, &cols).unwrap();
        }
        Be::DataRow(v) => encode::data_row(out, &as_refs(v)).unwrap(),
        Be::CommandComplete(t) => encode::command_complete(out, t).unwrap(),
        Be::EmptyQuery => encode::empty_query_response(out),
        Be::ParameterDescription(t) => encode::parameter_description(out, t).unwrap(),
        Be::NoData => encode::no_data(out),
        Be::PortalSuspended => encode::portal_suspended(out),
        Be::ParseComplete => encode::parse_complete(out),
        Be::BindComplete => encode::bind_complete(out),
        Be::CloseComplete => encode::close_complete(out),
        Be::Notification(p, c, l) => encode::notification_response(out, *p, c, l).unwrap(),
        Be::CopyIn(f, c) => encode::copy_in_response(out, *f, c).unwrap(),
        Be::CopyOut(f, c) => encode::copy_out_response(out, *f, c).unwrap(),
        Be::CopyBoth(f, c) => encode::copy_both_response(out, *f, c).unwrap(),
        Be::CopyData(d) => encode::copy_data(out, d).unwrap(),
        Be::CopyDone => encode::copy_done(out),
        Be::FunctionCallResponse(v) => encode::function_call_response(out, v.as_deref()).unwrap(),
    }
}

fn check_fields(parts: &[(u8, Vec<u8>)], fields: qcp_codec::fields::ErrorFields<'_>) {
    let got: Vec<(u8, Vec<u8>)> = fields
        .map(|ErrorField { code, value }| (code, value.to_vec()))
        .collect();
    assert_eq!(got, parts);
}

fn check_be(parts: &Be, msg: &BackendMessage<'_>) {
    use BackendMessage as B;
    match (parts, msg) {
        (Be::AuthOk, B::Authentication(Authentication::Ok))
        | (Be::AuthCleartext, B::Authentication(Authentication::CleartextPassword)) => {}
        (Be::AuthMd5(s), B::Authentication(Authentication::Md5Password { salt })) => {
            assert_eq!(s, salt)
        }
        (Be::AuthSasl(m), B::Authentication(Authentication::Sasl(got))) => {
            assert_eq!(got.iter().map(<[u8]>::to_vec).collect::<Vec<_>>(), *m);
        }
        (Be::AuthSaslContinue(d), B::Authentication(Authentication::SaslContinue(got)))
        | (Be::AuthSaslFinal(d), B::Authentication(Authentication::SaslFinal(got))) => {
            assert_eq!(*got, &d[..])
        }
        (Be::KeyData(p, s), B::BackendKeyData(k)) => {
            assert_eq!((k.pid(), k.secret()), (*p, &s[..]))
        }
        (Be::Negotiate(m, o), B::NegotiateProtocolVersion(v)) => {
            assert_eq!(
                v.version(),
                ProtocolVersion {
                    major: 3,
                    minor: *m
                }
            );
            assert_eq!(v.options().map(<[u8]>::to_vec).collect::<Vec<_>>(), *o);
        }
        (Be::ParameterStatus(n, v), B::ParameterStatus(p)) => {
            assert_eq!((p.name(), p.value()), (&n[..], &v[..]))
        }
        (Be::Ready(s), B::ReadyForQuery(got)) => assert_eq!(s, got),
        (Be::Error(f), B::ErrorResponse(e)) | (Be::Notice(f), B::NoticeResponse(e)) => {
            check_fields(f, e.fields())
        }
        (Be::RowDescription(cols), B::RowDescription(rd)) => {
            assert_eq!(rd.len(), cols.len());
            for (f, (name, t, c, ty, sz, m, fm)) in rd.fields().zip(cols) {
                assert_eq!(
                    (
                        f.name,
                        f.table_oid,
                        f.column_id,
                        f.type_oid,
                        f.type_size,
                        f.type_modifier,
                        f.format
                    ),
                    (&name[..], *t, *c, *ty, *sz, *m, *fm)
                );
            }
        }
        (Be::DataRow(v), B::DataRow(r)) => {
            assert_eq!(r.len(), v.len());
            assert_eq!(
                r.values()
                    .map(|o| o.map(<[u8]>::to_vec))
                    .collect::<Vec<_>>(),
                *v
            );
        }
        (Be::CommandComplete(t), B::CommandComplete(c)) => assert_eq!(c.tag(), &t[..]),
        (Be::ParameterDescription(t), B::ParameterDescription(p)) => {
            assert_eq!(p.types().collect::<Vec<_>>(), *t)
        }
        (Be::EmptyQuery, B::EmptyQueryResponse)
        | (Be::NoData, B::NoData)
        | (Be::PortalSuspended, B::PortalSuspended)
        | (Be::ParseComplete, B::ParseComplete)
        | (Be::BindComplete, B::BindComplete)
        | (Be::CloseComplete, B::CloseComplete)
        | (Be::CopyDone, B::CopyDone) => {}
        (Be::Notification(p, c, l), B::NotificationResponse(n)) => {
            assert_eq!((n.pid(), n.channel(), n.payload()), (*p, &c[..], &l[..]));
        }
        (Be::CopyIn(f, c), B::CopyInResponse(r))
        | (Be::CopyOut(f, c), B::CopyOutResponse(r))
        | (Be::CopyBoth(f, c), B::CopyBothResponse(r)) => {
            assert_eq!(
                (r.format(), r.column_formats().collect::<Vec<_>>()),
                (*f, c.clone())
            );
        }
        (Be::CopyData(d), B::CopyData(c)) => assert_eq!(c.data(), &d[..]),
        (Be::FunctionCallResponse(v), B::FunctionCallResponse(got)) => {
            assert_eq!(*got, v.as_deref())
        }
        (parts, msg) => panic!("{parts:?} decoded as {msg:?}"),
    }
}

/// The parts of one startup-phase packet.
#[derive(Debug, Clone)]
enum St {
    Startup(u16, Vec<(String, String)>),
    Ssl,
    GssEnc,
    Cancel(i32, Vec<u8>),
}

fn st() -> impl Strategy<Value = St> {
    prop_oneof![
        (any::<u16>(), vec(("[a-z_.]{1,12}", "[^\\x00]{0,12}"), 0..5))
            .prop_map(|(m, p)| St::Startup(m, p)),
        Just(St::Ssl),
        Just(St::GssEnc),
        (any::<i32>(), vec(any::<u8>(), 4..=256)).prop_map(|(p, s)| St::Cancel(p, s)),
    ]
}

proptest! {
    #[test]
    fn frontend_streams_roundtrip(msgs in vec(fe(), 1..12)) {
        let mut wire = Vec::new();
        for m in &msgs {
            encode_fe(m, &mut wire);
        }
        let mut rest = &wire[..];
        for parts in &msgs {
            let (msg, used) = FrontendMessage::decode(rest, &Limits::default()).unwrap().unwrap();
            check_fe(parts, &msg);
            let mut again = Vec::new();
            msg.encode(&mut again).unwrap();
            prop_assert_eq!(&again[..], &rest[..used]);
            rest = &rest[used..];
        }
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn backend_streams_roundtrip(msgs in vec(be(), 1..12)) {
        let mut wire = Vec::new();
        for m in &msgs {
            encode_be(m, &mut wire);
        }
        let mut rest = &wire[..];
        for parts in &msgs {
            let (msg, used) = BackendMessage::decode(rest, &Limits::default()).unwrap().unwrap();
            check_be(parts, &msg);
            let mut again = Vec::new();
            msg.encode(&mut again).unwrap();
            prop_assert_eq!(&again[..], &rest[..used]);
            rest = &rest[used..];
        }
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn startup_packets_roundtrip(parts in st()) {
        let mut wire = Vec::new();
        match &parts {
            St::Startup(minor, params) => {
                let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                encode::startup(&mut wire, ProtocolVersion { major: 3, minor: *minor }, &p).unwrap();
            }
            St::Ssl => encode::ssl_request(&mut wire),
            St::GssEnc => encode::gss_enc_request(&mut wire),
            St::Cancel(pid, secret) => encode::cancel_request(&mut wire, *pid, secret).unwrap(),
        }
        let (packet, used) = StartupPacket::decode(&wire, &Limits::default()).unwrap().unwrap();
        prop_assert_eq!(used, wire.len());
        match (&parts, &packet) {
            (St::Startup(minor, params), StartupPacket::Startup(s)) => {
                prop_assert_eq!(s.version().minor, *minor);
                let got: Vec<(Vec<u8>, Vec<u8>)> = s.params().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
                let want: Vec<(Vec<u8>, Vec<u8>)> = params.iter().map(|(k, v)| (k.clone().into_bytes(), v.clone().into_bytes())).collect();
                prop_assert_eq!(got, want);
            }
            (St::Ssl, StartupPacket::SslRequest) | (St::GssEnc, StartupPacket::GssEncRequest) => {}
            (St::Cancel(pid, secret), StartupPacket::Cancel(c)) => {
                prop_assert_eq!((c.pid(), c.secret()), (*pid, &secret[..]));
            }
            (parts, packet) => panic!("{parts:?} decoded as {packet:?}"),
        }
        let mut again = Vec::new();
        packet.encode(&mut again).unwrap();
        prop_assert_eq!(again, wire);
    }

    /// Arbitrary bytes never panic any decoder, and whatever decodes re-encodes to itself.
    #[test]
    fn arbitrary_bytes_are_safe(data in vec(any::<u8>(), 0..256)) {
        qcp_codec::fuzzing::fuzz_startup(&data);
        qcp_codec::fuzzing::fuzz_frontend(&data);
        qcp_codec::fuzzing::fuzz_backend(&data);
        qcp_codec::fuzzing::fuzz_frames(&data);
        qcp_codec::fuzzing::fuzz_roundtrip(&data);
    }

    /// Arbitrary bodies behind a valid header for every known tag: decoding never panics.
    #[test]
    fn arbitrary_bodies_are_safe(tag in any::<u8>(), body in vec(any::<u8>(), 0..64)) {
        let mut wire = vec![tag];
        wire.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
        wire.extend_from_slice(&body);
        for mode in 0..3u8 {
            let mut data = vec![mode];
            data.extend_from_slice(&wire);
            qcp_codec::fuzzing::fuzz_roundtrip(&data);
        }
        qcp_codec::fuzzing::fuzz_frontend(&wire);
        qcp_codec::fuzzing::fuzz_backend(&wire);
    }

    /// Valid streams with one byte changed: decoding never panics, and whatever still decodes
    /// re-encodes to itself.
    #[test]
    fn mutated_streams_are_safe(
        fes in vec(fe(), 1..4),
        bes in vec(be(), 1..4),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut front = vec![1u8];
        for m in &fes {
            encode_fe(m, &mut front);
        }
        let mut back = vec![2u8];
        for m in &bes {
            encode_be(m, &mut back);
        }
        for mut data in [front, back] {
            let i = at.index(data.len() - 1) + 1;
            data[i] = byte;
            qcp_codec::fuzzing::fuzz_roundtrip(&data);
            qcp_codec::fuzzing::fuzz_frontend(&data[1..]);
            qcp_codec::fuzzing::fuzz_backend(&data[1..]);
            qcp_codec::fuzzing::fuzz_frames(&data[1..]);
        }
    }
}

//! One round trip per message variant, in both directions and for startup packets.

use super::*;

// ---- startup --------------------------------------------------------------------------------

roundtrip!(startup rt_startup: |o| encode::startup(&mut o, ProtocolVersion::V3_2, &[("user", "u"), ("database", "d")]).unwrap()
=> StartupPacket::Startup(s) => {
    assert_eq!(s.version(), ProtocolVersion::V3_2);
    assert_eq!(s.params().collect::<Vec<_>>(), [(&b"user"[..], &b"u"[..]), (b"database", b"d")]);
});
roundtrip!(startup rt_ssl_request: |o| encode::ssl_request(&mut o) => StartupPacket::SslRequest => ());
roundtrip!(startup rt_gss_enc_request: |o| encode::gss_enc_request(&mut o) => StartupPacket::GssEncRequest => ());
roundtrip!(startup rt_cancel: |o| encode::cancel_request(&mut o, -5, &[1; 32]).unwrap()
    => StartupPacket::Cancel(c) => assert_eq!((c.pid(), c.secret()), (-5, &[1u8; 32][..])));

// ---- frontend -------------------------------------------------------------------------------

roundtrip!(frontend rt_query: |o| encode::query(&mut o, "SELECT now()").unwrap()
    => FrontendMessage::Query(q) => assert_eq!(q.sql(), b"SELECT now()"));
roundtrip!(frontend rt_parse: |o| encode::parse(&mut o, "s", "SELECT $1::int", &[0, 23]).unwrap()
=> FrontendMessage::Parse(p) => {
    assert_eq!((p.name(), p.query()), (&b"s"[..], &b"SELECT $1::int"[..]));
    assert_eq!(p.param_types().collect::<Vec<_>>(), [0, 23]);
});
roundtrip!(frontend rt_bind: |o| encode::bind(&mut o, "p", "s", &[0, 1], &[Some(b"a"), None], &[1]).unwrap()
=> FrontendMessage::Bind(b) => {
    assert_eq!((b.portal(), b.statement()), (&b"p"[..], &b"s"[..]));
    assert_eq!(b.param_formats().collect::<Vec<_>>(), [0, 1]);
    assert_eq!(b.params().collect::<Vec<_>>(), [Some(&b"a"[..]), None]);
    assert_eq!(b.result_formats().collect::<Vec<_>>(), [1]);
});
roundtrip!(frontend rt_describe: |o| encode::describe(&mut o, Target::Portal, "p").unwrap()
    => FrontendMessage::Describe(d) => assert_eq!((d.kind(), d.name()), (Target::Portal, &b"p"[..])));
roundtrip!(frontend rt_execute: |o| encode::execute(&mut o, "p", 7).unwrap()
    => FrontendMessage::Execute(e) => assert_eq!((e.portal(), e.max_rows()), (&b"p"[..], 7)));
roundtrip!(frontend rt_close: |o| encode::close(&mut o, Target::Statement, "s").unwrap()
    => FrontendMessage::Close(c) => assert_eq!((c.kind(), c.name()), (Target::Statement, &b"s"[..])));
roundtrip!(frontend rt_sync: |o| encode::sync(&mut o) => FrontendMessage::Sync => ());
roundtrip!(frontend rt_flush: |o| encode::flush(&mut o) => FrontendMessage::Flush => ());
roundtrip!(frontend rt_terminate: |o| encode::terminate(&mut o) => FrontendMessage::Terminate => ());
roundtrip!(frontend rt_function_call: |o| encode::function_call(&mut o, 42, &[1], &[Some(b"\0\0\0\x01"), None], 1).unwrap()
=> FrontendMessage::FunctionCall(f) => {
    assert_eq!((f.oid(), f.result_format()), (42, 1));
    assert_eq!(f.arg_formats().collect::<Vec<_>>(), [1]);
    assert_eq!(f.args().collect::<Vec<_>>(), [Some(&b"\0\0\0\x01"[..]), None]);
});
roundtrip!(frontend rt_copy_data: |o| encode::copy_data(&mut o, b"a\tb\n").unwrap()
    => FrontendMessage::CopyData(c) => assert_eq!(c.data(), b"a\tb\n"));
roundtrip!(frontend rt_copy_done: |o| encode::copy_done(&mut o) => FrontendMessage::CopyDone => ());
roundtrip!(frontend rt_copy_fail: |o| encode::copy_fail(&mut o, "nope").unwrap()
    => FrontendMessage::CopyFail(c) => assert_eq!(c.reason(), b"nope"));
roundtrip!(frontend rt_password: |o| encode::password(&mut o, "md5123").unwrap()
    => FrontendMessage::PasswordFamily(b) => assert_eq!(PasswordMessage::decode(b).unwrap().password(), b"md5123"));
roundtrip!(frontend rt_sasl_initial_response: |o| encode::sasl_initial_response(&mut o, "SCRAM-SHA-256", Some(b"n,,n=,r=x")).unwrap()
=> FrontendMessage::PasswordFamily(b) => {
    let s = SaslInitialResponse::decode(b).unwrap();
    assert_eq!((s.mechanism(), s.data()), (&b"SCRAM-SHA-256"[..], Some(&b"n,,n=,r=x"[..])));
});
roundtrip!(frontend rt_sasl_initial_response_none: |o| encode::sasl_initial_response(&mut o, "X", None).unwrap()
    => FrontendMessage::PasswordFamily(b) => assert_eq!(SaslInitialResponse::decode(b).unwrap().data(), None));
roundtrip!(frontend rt_sasl_response: |o| encode::sasl_response(&mut o, b"c=biws,r=x,p=y").unwrap()
    => FrontendMessage::PasswordFamily(b) => assert_eq!(SaslResponse::decode(b).unwrap().data(), b"c=biws,r=x,p=y"));

// ---- backend --------------------------------------------------------------------------------

roundtrip!(backend rt_auth_ok: |o| encode::authentication_ok(&mut o)
    => BackendMessage::Authentication(Authentication::Ok) => ());
roundtrip!(backend rt_auth_kerberos: |o| encode::authentication_kerberos_v5(&mut o)
    => BackendMessage::Authentication(Authentication::KerberosV5) => ());
roundtrip!(backend rt_auth_cleartext: |o| encode::authentication_cleartext_password(&mut o)
    => BackendMessage::Authentication(Authentication::CleartextPassword) => ());
roundtrip!(backend rt_auth_md5: |o| encode::authentication_md5_password(&mut o, *b"salt")
    => BackendMessage::Authentication(Authentication::Md5Password { salt }) => assert_eq!(&salt, b"salt"));
roundtrip!(backend rt_auth_gss: |o| encode::authentication_gss(&mut o)
    => BackendMessage::Authentication(Authentication::Gss) => ());
roundtrip!(backend rt_auth_gss_continue: |o| encode::authentication_gss_continue(&mut o, b"tok").unwrap()
    => BackendMessage::Authentication(Authentication::GssContinue(d)) => assert_eq!(d, b"tok"));
roundtrip!(backend rt_auth_sspi: |o| encode::authentication_sspi(&mut o)
    => BackendMessage::Authentication(Authentication::Sspi) => ());
roundtrip!(backend rt_auth_sasl: |o| encode::authentication_sasl(&mut o, &["SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"]).unwrap()
=> BackendMessage::Authentication(Authentication::Sasl(m)) => {
    assert_eq!(m.iter().collect::<Vec<_>>(), [&b"SCRAM-SHA-256"[..], b"SCRAM-SHA-256-PLUS"]);
});
roundtrip!(backend rt_auth_sasl_continue: |o| encode::authentication_sasl_continue(&mut o, b"r=1,s=2,i=3").unwrap()
    => BackendMessage::Authentication(Authentication::SaslContinue(d)) => assert_eq!(d, b"r=1,s=2,i=3"));
roundtrip!(backend rt_auth_sasl_final: |o| encode::authentication_sasl_final(&mut o, b"v=x").unwrap()
    => BackendMessage::Authentication(Authentication::SaslFinal(d)) => assert_eq!(d, b"v=x"));
roundtrip!(backend rt_auth_unknown: |o| Authentication::Unknown { code: 77, data: b"z" }.encode(&mut o).unwrap()
    => BackendMessage::Authentication(Authentication::Unknown { code, data }) => assert_eq!((code, data), (77, &b"z"[..])));
roundtrip!(backend rt_backend_key_data: |o| encode::backend_key_data(&mut o, 99, &[3; 32]).unwrap()
    => BackendMessage::BackendKeyData(k) => assert_eq!((k.pid(), k.secret()), (99, &[3u8; 32][..])));
roundtrip!(backend rt_negotiate: |o| encode::negotiate_protocol_version(&mut o, 2, &[b"_pq_.a"]).unwrap()
=> BackendMessage::NegotiateProtocolVersion(v) => {
    assert_eq!(v.version(), ProtocolVersion::V3_2);
    assert_eq!(v.options().collect::<Vec<_>>(), [b"_pq_.a"]);
});
roundtrip!(backend rt_parameter_status: |o| encode::parameter_status(&mut o, "TimeZone", "UTC").unwrap()
    => BackendMessage::ParameterStatus(p) => assert_eq!((p.name(), p.value()), (&b"TimeZone"[..], &b"UTC"[..])));
roundtrip!(backend rt_ready_for_query: |o| encode::ready_for_query(&mut o, TransactionStatus::Failed)
    => BackendMessage::ReadyForQuery(s) => assert_eq!(s, TransactionStatus::Failed));
roundtrip!(backend rt_error_response: |o| encode::error_response(&mut o, &[(b'S', b"FATAL"), (b'C', b"57P01")]).unwrap()
    => BackendMessage::ErrorResponse(e) => assert_eq!((e.severity(), e.sqlstate()), (Some(&b"FATAL"[..]), Some(&b"57P01"[..]))));
roundtrip!(backend rt_notice_response: |o| encode::notice_response(&mut o, &[(b'M', b"hi")]).unwrap()
    => BackendMessage::NoticeResponse(n) => assert_eq!(n.message(), Some(&b"hi"[..])));
roundtrip!(backend rt_row_description: |o| encode::row_description(&mut o, &[FieldDescription {
    name: b"a", table_oid: 1, column_id: 2, type_oid: 3, type_size: 4, type_modifier: 5, format: 1 }]).unwrap()
=> BackendMessage::RowDescription(rd) => {
    let f = rd.fields().next().unwrap();
    assert_eq!((f.name, f.table_oid, f.column_id, f.type_oid, f.type_size, f.type_modifier, f.format), (&b"a"[..], 1, 2, 3, 4, 5, 1));
});
roundtrip!(backend rt_data_row: |o| encode::data_row(&mut o, &[None, Some(b"x")]).unwrap()
    => BackendMessage::DataRow(r) => assert_eq!(r.values().collect::<Vec<_>>(), [None, Some(&b"x"[..])]));
roundtrip!(backend rt_command_complete: |o| encode::command_complete(&mut o, "DELETE 3").unwrap()
    => BackendMessage::CommandComplete(c) => assert_eq!(c.rows(), Some(3)));
roundtrip!(backend rt_empty_query_response: |o| encode::empty_query_response(&mut o) => BackendMessage::EmptyQueryResponse => ());
roundtrip!(backend rt_parameter_description: |o| encode::parameter_description(&mut o, &[25]).unwrap()
    => BackendMessage::ParameterDescription(p) => assert_eq!(p.types().collect::<Vec<_>>(), [25]));
roundtrip!(backend rt_no_data: |o| encode::no_data(&mut o) => BackendMessage::NoData => ());
roundtrip!(backend rt_portal_suspended: |o| encode::portal_suspended(&mut o) => BackendMessage::PortalSuspended => ());
roundtrip!(backend rt_parse_complete: |o| encode::parse_complete(&mut o) => BackendMessage::ParseComplete => ());
roundtrip!(backend rt_bind_complete: |o| encode::bind_complete(&mut o) => BackendMessage::BindComplete => ());
roundtrip!(backend rt_close_complete: |o| encode::close_complete(&mut o) => BackendMessage::CloseComplete => ());
roundtrip!(backend rt_notification: |o| encode::notification_response(&mut o, 5, "ch", "pl").unwrap()
    => BackendMessage::NotificationResponse(n) => assert_eq!((n.pid(), n.channel(), n.payload()), (5, &b"ch"[..], &b"pl"[..])));
roundtrip!(backend rt_copy_in_response: |o| encode::copy_in_response(&mut o, 1, &[1, 1]).unwrap()
    => BackendMessage::CopyInResponse(c) => assert_eq!((c.format(), c.column_formats().collect::<Vec<_>>()), (1, vec![1, 1])));
roundtrip!(backend rt_copy_out_response: |o| encode::copy_out_response(&mut o, 0, &[0]).unwrap()
    => BackendMessage::CopyOutResponse(c) => assert_eq!(c.format(), 0));
roundtrip!(backend rt_copy_both_response: |o| encode::copy_both_response(&mut o, 0, &[]).unwrap()
    => BackendMessage::CopyBothResponse(c) => assert_eq!(c.column_formats().len(), 0));
roundtrip!(backend rt_copy_data_backend: |o| encode::copy_data(&mut o, b"\x00\xff").unwrap()
    => BackendMessage::CopyData(c) => assert_eq!(c.data(), b"\x00\xff"));
roundtrip!(backend rt_copy_done_backend: |o| encode::copy_done(&mut o) => BackendMessage::CopyDone => ());
roundtrip!(backend rt_function_call_response: |o| encode::function_call_response(&mut o, None).unwrap()
    => BackendMessage::FunctionCallResponse(v) => assert_eq!(v, None));
roundtrip!(backend rt_unknown_backend: |o| BackendMessage::Unknown { tag: Tag(b'~'), body: b"raw" }.encode(&mut o).unwrap()
    => BackendMessage::Unknown { tag, body } => assert_eq!((tag, body), (Tag(b'~'), &b"raw"[..])));
roundtrip!(frontend rt_unknown_frontend: |o| FrontendMessage::Unknown { tag: Tag(b'~'), body: b"" }.encode(&mut o).unwrap()
    => FrontendMessage::Unknown { tag, body } => assert_eq!((tag, body), (Tag(b'~'), &b""[..])));

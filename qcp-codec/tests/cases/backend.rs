//! Backend (server to client) messages.

use super::*;

case!(backend auth_ok: msg(b'R', &be32(0))
    => BackendMessage::Authentication(Authentication::Ok) => ());
case!(backend auth_ok_trailing: msg(b'R', &cat(&[&be32(0), b"x"]))
    => Err(DecodeError::TrailingBytes("AuthenticationOk")));
case!(backend auth_truncated_code: msg(b'R', b"\0\0")
    => Err(DecodeError::Truncated("Authentication.code")));
case!(backend auth_kerberos: msg(b'R', &be32(2))
    => BackendMessage::Authentication(Authentication::KerberosV5) => ());
case!(backend auth_cleartext: msg(b'R', &be32(3))
    => BackendMessage::Authentication(Authentication::CleartextPassword) => ());
case!(backend auth_cleartext_trailing: msg(b'R', &cat(&[&be32(3), b"x"]))
    => Err(DecodeError::TrailingBytes("AuthenticationCleartextPassword")));
case!(backend auth_md5: msg(b'R', &cat(&[&be32(5), b"salt"]))
    => BackendMessage::Authentication(Authentication::Md5Password { salt }) => assert_eq!(&salt, b"salt"));
case!(backend auth_md5_truncated_salt: msg(b'R', &cat(&[&be32(5), b"sal"]))
    => Err(DecodeError::Truncated("AuthenticationMD5Password.salt")));
case!(backend auth_md5_trailing: msg(b'R', &cat(&[&be32(5), b"salt!"]))
    => Err(DecodeError::TrailingBytes("AuthenticationMD5Password")));
case!(backend auth_gss: msg(b'R', &be32(7))
    => BackendMessage::Authentication(Authentication::Gss) => ());
case!(backend auth_gss_continue: msg(b'R', &cat(&[&be32(8), b"token"]))
    => BackendMessage::Authentication(Authentication::GssContinue(d)) => assert_eq!(d, b"token"));
case!(backend auth_sspi: msg(b'R', &be32(9))
    => BackendMessage::Authentication(Authentication::Sspi) => ());
case!(backend auth_sasl: msg(b'R', &cat(&[&be32(10), b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"]))
=> BackendMessage::Authentication(Authentication::Sasl(m)) => {
    assert_eq!(m.iter().collect::<Vec<_>>(), [&b"SCRAM-SHA-256-PLUS"[..], b"SCRAM-SHA-256"]);
    assert!(m.contains(b"SCRAM-SHA-256"));
});
case!(backend auth_sasl_no_mechanisms: msg(b'R', &cat(&[&be32(10), b"\0"]))
    => BackendMessage::Authentication(Authentication::Sasl(m)) => assert_eq!(m.iter().count(), 0));
case!(backend auth_sasl_missing_terminator: msg(b'R', &cat(&[&be32(10), b"SCRAM-SHA-256\0"]))
    => Err(DecodeError::MissingNul("AuthenticationSASL.mechanism")));
case!(backend auth_sasl_trailing: msg(b'R', &cat(&[&be32(10), b"SCRAM-SHA-256\0\0x"]))
    => Err(DecodeError::TrailingBytes("AuthenticationSASL")));
case!(backend auth_sasl_continue: msg(b'R', &cat(&[&be32(11), b"r=abc,s=c2FsdA==,i=4096"]))
    => BackendMessage::Authentication(Authentication::SaslContinue(d)) => assert_eq!(d, b"r=abc,s=c2FsdA==,i=4096"));
case!(backend auth_sasl_final: msg(b'R', &cat(&[&be32(12), b"v=sig"]))
    => BackendMessage::Authentication(Authentication::SaslFinal(d)) => assert_eq!(d, b"v=sig"));
case!(backend auth_unknown_code: msg(b'R', &cat(&[&be32(99), b"??"]))
    => BackendMessage::Authentication(Authentication::Unknown { code, data }) => assert_eq!((code, data), (99, &b"??"[..])));

case!(backend backend_key_data_3_0: msg(b'K', &cat(&[&be32(4242), b"abcd"]))
    => BackendMessage::BackendKeyData(k) => assert_eq!((k.pid(), k.secret()), (4242, &b"abcd"[..])));
case!(backend backend_key_data_3_2: msg(b'K', &cat(&[&be32(1), &[7; 32]]))
    => BackendMessage::BackendKeyData(k) => assert_eq!(k.secret(), &[7; 32]));
case!(backend backend_key_data_256: msg(b'K', &cat(&[&be32(1), &[7; 256]]))
    => BackendMessage::BackendKeyData(k) => assert_eq!(k.secret().len(), 256));
case!(backend backend_key_data_secret_3: msg(b'K', &cat(&[&be32(1), b"abc"]))
    => Err(DecodeError::InvalidValue("BackendKeyData.secret")));
case!(backend backend_key_data_secret_257: msg(b'K', &cat(&[&be32(1), &[7; 257]]))
    => Err(DecodeError::InvalidValue("BackendKeyData.secret")));
case!(backend backend_key_data_truncated: msg(b'K', b"\0\0\0")
    => Err(DecodeError::Truncated("BackendKeyData.pid")));

case!(backend negotiate_protocol_version: msg(b'v', &cat(&[&be32(0x0003_0000), &be32(2), b"_pq_.a\0_pq_.b\0"]))
=> BackendMessage::NegotiateProtocolVersion(v) => {
    assert_eq!(v.version(), ProtocolVersion::V3_0);
    assert_eq!(v.newest_minor(), 0);
    assert_eq!(v.options().collect::<Vec<_>>(), [&b"_pq_.a"[..], b"_pq_.b"]);
});
case!(backend negotiate_no_options: msg(b'v', &cat(&[&be32(0x0003_0002), &be32(0)]))
    => BackendMessage::NegotiateProtocolVersion(v) => assert_eq!(v.newest_minor(), 2));
case!(backend negotiate_negative_count: msg(b'v', &cat(&[&be32(0x0003_0000), &be32(-1)]))
    => Err(DecodeError::BadCount("NegotiateProtocolVersion.options")));
case!(backend negotiate_count_cannot_fit: msg(b'v', &cat(&[&be32(0x0003_0000), &be32(3), b"a\0"]))
    => Err(DecodeError::BadCount("NegotiateProtocolVersion.options")));
case!(backend negotiate_missing_nul: msg(b'v', &cat(&[&be32(0x0003_0000), &be32(1), b"_pq_.a"]))
    => Err(DecodeError::MissingNul("NegotiateProtocolVersion.options")));
case!(backend negotiate_trailing: msg(b'v', &cat(&[&be32(0x0003_0000), &be32(1), b"a\0b\0"]))
    => Err(DecodeError::TrailingBytes("NegotiateProtocolVersion")));
case!(backend negotiate_truncated: msg(b'v', &be32(0x0003_0000))
    => Err(DecodeError::Truncated("NegotiateProtocolVersion.options")));

case!(backend parameter_status: msg(b'S', b"client_encoding\0UTF8\0")
    => BackendMessage::ParameterStatus(p) => assert_eq!((p.name_str(), p.value_str()), (Ok("client_encoding"), Ok("UTF8"))));
case!(backend parameter_status_missing_nul: msg(b'S', b"client_encoding\0UTF8")
    => Err(DecodeError::MissingNul("ParameterStatus.value")));
case!(backend parameter_status_missing_value: msg(b'S', b"client_encoding")
    => Err(DecodeError::MissingNul("ParameterStatus.name")));
case!(backend parameter_status_trailing: msg(b'S', b"a\0b\0c")
    => Err(DecodeError::TrailingBytes("ParameterStatus")));

case!(backend ready_idle: msg(b'Z', b"I")
    => BackendMessage::ReadyForQuery(s) => assert_eq!(s, TransactionStatus::Idle));
case!(backend ready_in_transaction: msg(b'Z', b"T")
    => BackendMessage::ReadyForQuery(s) => assert_eq!(s, TransactionStatus::InTransaction));
case!(backend ready_failed: msg(b'Z', b"E")
    => BackendMessage::ReadyForQuery(s) => assert_eq!(s, TransactionStatus::Failed));
case!(backend ready_bad_status: msg(b'Z', b"X")
    => Err(DecodeError::InvalidValue("ReadyForQuery.status")));
case!(backend ready_empty: msg(b'Z', b"")
    => Err(DecodeError::Truncated("ReadyForQuery.status")));
case!(backend ready_trailing: msg(b'Z', b"II")
    => Err(DecodeError::TrailingBytes("ReadyForQuery")));

case!(backend error_response: msg(b'E', b"SERROR\0VERROR\0C42P01\0Mrelation \"t\" does not exist\0P15\0Zfuture\0\0")
=> BackendMessage::ErrorResponse(e) => {
    assert_eq!(e.severity(), Some(&b"ERROR"[..]));
    assert_eq!(e.severity_nonlocalized(), Some(&b"ERROR"[..]));
    assert_eq!(e.sqlstate(), Some(&b"42P01"[..]));
    assert_eq!(e.message(), Some(&b"relation \"t\" does not exist"[..]));
    assert_eq!(e.field(ErrorField::POSITION), Some(&b"15"[..]));
    // Unknown field codes are kept.
    assert_eq!(e.field(b'Z'), Some(&b"future"[..]));
    assert_eq!(e.fields().count(), 6);
});
case!(backend error_response_empty: msg(b'E', b"\0")
    => BackendMessage::ErrorResponse(e) => assert_eq!(e.fields().count(), 0));
case!(backend error_missing_terminator: msg(b'E', b"SERROR\0")
    => Err(DecodeError::Truncated("ErrorResponse.code")));
case!(backend error_value_missing_nul: msg(b'E', b"SERROR")
    => Err(DecodeError::MissingNul("ErrorResponse.value")));
case!(backend error_trailing: msg(b'E', b"SERROR\0\0S")
    => Err(DecodeError::TrailingBytes("ErrorResponse")));
case!(backend notice_response: msg(b'N', b"SNOTICE\0Mhello\0\0")
    => BackendMessage::NoticeResponse(n) => assert_eq!(n.message(), Some(&b"hello"[..])));
case!(backend notice_trailing: msg(b'N', b"\0\0")
    => Err(DecodeError::TrailingBytes("ErrorResponse")));

fn row_description_body() -> Vec<u8> {
    cat(&[
        &be16(2),
        b"id\0",
        &be32(16384),
        &be16(1),
        &be32(23),
        &be16(4),
        &be32(-1),
        &be16(0),
        b"name\0",
        &be32(16384),
        &be16(2),
        &be32(1043),
        &be16(-1),
        &be32(68),
        &be16(1),
    ])
}

case!(backend row_description: msg(b'T', &row_description_body())
=> BackendMessage::RowDescription(rd) => {
    assert_eq!(rd.len(), 2);
    let cols: Vec<_> = rd.fields().collect();
    assert_eq!(cols[0].name_str(), Ok("id"));
    assert_eq!((cols[0].table_oid, cols[0].column_id, cols[0].type_oid), (16384, 1, 23));
    assert_eq!((cols[1].type_size, cols[1].type_modifier, cols[1].format), (-1, 68, 1));
});
case!(backend row_description_empty: msg(b'T', &be16(0))
    => BackendMessage::RowDescription(rd) => assert!(rd.is_empty()));
case!(backend row_description_count_cannot_fit: msg(b'T', &cat(&[&be16(3), &row_description_body()[2..]]))
    => Err(DecodeError::BadCount("RowDescription.fields")));
case!(backend row_description_truncated_field: msg(b'T', &cat(&[&be16(1), b"id\0", &be32(1), &be16(1), &be32(23), &be16(4), &be32(-1), b"\0"]))
    => Err(DecodeError::Truncated("RowDescription.field")));
case!(backend row_description_missing_nul: msg(b'T', &cat(&[&be16(1), &[b'x'; 20]]))
    => Err(DecodeError::MissingNul("RowDescription.name")));
case!(backend row_description_trailing: msg(b'T', &cat(&[&row_description_body(), b"\0"]))
    => Err(DecodeError::TrailingBytes("RowDescription")));

case!(backend data_row: msg(b'D', &cat(&[&be16(3), &be32(1), b"1", &be32(-1), &be32(0)]))
=> BackendMessage::DataRow(row) => {
    assert_eq!(row.len(), 3);
    assert_eq!(row.values().collect::<Vec<_>>(), [Some(&b"1"[..]), None, Some(&b""[..])]);
});
case!(backend data_row_empty: msg(b'D', &be16(0))
    => BackendMessage::DataRow(row) => assert!(row.is_empty()));
case!(backend data_row_count_cannot_fit: msg(b'D', &cat(&[&be16(2), &be32(-1)]))
    => Err(DecodeError::BadCount("DataRow.values")));
case!(backend data_row_count_huge: msg(b'D', &be16(-1))
    => Err(DecodeError::BadCount("DataRow.values")));
case!(backend data_row_value_truncated: msg(b'D', &cat(&[&be16(1), &be32(5), b"abc"]))
    => Err(DecodeError::Truncated("DataRow.values")));
case!(backend data_row_value_huge_length: msg(b'D', &cat(&[&be16(1), &be32(i32::MAX)]))
    => Err(DecodeError::Truncated("DataRow.values")));
case!(backend data_row_length_minus_two: msg(b'D', &cat(&[&be16(1), &be32(-2)]))
    => Err(DecodeError::InvalidValue("DataRow.values")));
case!(backend data_row_trailing: msg(b'D', &cat(&[&be16(1), &be32(-1), b"x"]))
    => Err(DecodeError::TrailingBytes("DataRow")));
case!(backend data_row_truncated_count: msg(b'D', b"\0")
    => Err(DecodeError::Truncated("DataRow.values")));
case!(backend data_row_length_truncated: msg(b'D', &cat(&[&be16(2), &be32(1), b"a", b"\0\0\0"]))
    => Err(DecodeError::Truncated("DataRow.values")));
case!(backend data_row_bad_length_after_values: msg(b'D', &cat(&[&be16(3), &be32(-1), &be32(2), b"ab", &be32(-5)]))
    => Err(DecodeError::InvalidValue("DataRow.values")));

/// `BackendMessage::decode` takes a short cut for DataRow; it must agree with `decode_body`.
#[test]
fn data_row_decode_agrees_with_decode_body() {
    let bodies: [Vec<u8>; 6] = [
        cat(&[&be16(3), &be32(1), b"1", &be32(-1), &be32(0)]),
        be16(0).to_vec(),
        cat(&[&be16(2), &be32(-1)]),
        cat(&[&be16(1), &be32(5), b"abc"]),
        cat(&[&be16(1), &be32(-2)]),
        cat(&[&be16(1), &be32(-1), b"x"]),
    ];
    for body in bodies {
        let wire = msg(b'D', &body);
        let framed = BackendMessage::decode(&wire, &Limits::default()).map(|m| m.map(|(m, _)| m));
        assert_eq!(
            framed,
            BackendMessage::decode_body(Tag::DATA_ROW, &body).map(Some)
        );
    }
}

case!(backend command_complete: msg(b'C', b"SELECT 42\0")
=> BackendMessage::CommandComplete(c) => {
    assert_eq!(c.tag_str(), Ok("SELECT 42"));
    assert_eq!(c.rows(), Some(42));
});
case!(backend command_complete_missing_nul: msg(b'C', b"BEGIN")
    => Err(DecodeError::MissingNul("CommandComplete.tag")));
case!(backend command_complete_trailing: msg(b'C', b"BEGIN\0\0")
    => Err(DecodeError::TrailingBytes("CommandComplete")));

case!(backend empty_query_response: msg(b'I', b"") => BackendMessage::EmptyQueryResponse => ());
case!(backend empty_query_response_trailing: msg(b'I', b"x") => Err(DecodeError::TrailingBytes("EmptyQueryResponse")));
case!(backend no_data: msg(b'n', b"") => BackendMessage::NoData => ());
case!(backend no_data_trailing: msg(b'n', b"x") => Err(DecodeError::TrailingBytes("NoData")));
case!(backend portal_suspended: msg(b's', b"") => BackendMessage::PortalSuspended => ());
case!(backend portal_suspended_trailing: msg(b's', b"x") => Err(DecodeError::TrailingBytes("PortalSuspended")));
case!(backend parse_complete: msg(b'1', b"") => BackendMessage::ParseComplete => ());
case!(backend parse_complete_trailing: msg(b'1', b"x") => Err(DecodeError::TrailingBytes("ParseComplete")));
case!(backend bind_complete: msg(b'2', b"") => BackendMessage::BindComplete => ());
case!(backend bind_complete_trailing: msg(b'2', b"x") => Err(DecodeError::TrailingBytes("BindComplete")));
case!(backend close_complete: msg(b'3', b"") => BackendMessage::CloseComplete => ());
case!(backend close_complete_trailing: msg(b'3', b"x") => Err(DecodeError::TrailingBytes("CloseComplete")));
case!(backend copy_done_backend: msg(b'c', b"") => BackendMessage::CopyDone => ());
case!(backend copy_done_backend_trailing: msg(b'c', b"x") => Err(DecodeError::TrailingBytes("CopyDone")));
case!(backend copy_data_backend: msg(b'd', b"row\n")
    => BackendMessage::CopyData(c) => assert_eq!(c.data(), b"row\n"));

case!(backend parameter_description: msg(b't', &cat(&[&be16(2), &be32(23), &be32(25)]))
=> BackendMessage::ParameterDescription(p) => {
    assert_eq!(p.len(), 2);
    assert_eq!(p.types().collect::<Vec<_>>(), [23, 25]);
});
case!(backend parameter_description_count_cannot_fit: msg(b't', &cat(&[&be16(2), &be32(23)]))
    => Err(DecodeError::BadCount("ParameterDescription.types")));
case!(backend parameter_description_trailing: msg(b't', &cat(&[&be16(1), &be32(23), b"x"]))
    => Err(DecodeError::TrailingBytes("ParameterDescription")));

case!(backend notification: msg(b'A', &cat(&[&be32(77), b"jobs\0payload\0"]))
=> BackendMessage::NotificationResponse(n) => {
    assert_eq!(n.pid(), 77);
    assert_eq!((n.channel_str(), n.payload_str()), (Ok("jobs"), Ok("payload")));
});
case!(backend notification_truncated: msg(b'A', b"\0\0")
    => Err(DecodeError::Truncated("NotificationResponse.pid")));
case!(backend notification_missing_payload: msg(b'A', &cat(&[&be32(77), b"jobs\0"]))
    => Err(DecodeError::MissingNul("NotificationResponse.payload")));
case!(backend notification_trailing: msg(b'A', &cat(&[&be32(77), b"jobs\0\0!"]))
    => Err(DecodeError::TrailingBytes("NotificationResponse")));

case!(backend copy_in_response: msg(b'G', &cat(&[&[0], &be16(2), &be16(0), &be16(0)]))
=> BackendMessage::CopyInResponse(c) => {
    assert_eq!(c.format(), 0);
    assert_eq!(c.column_formats().collect::<Vec<_>>(), [0, 0]);
});
case!(backend copy_out_response: msg(b'H', &cat(&[&[1], &be16(1), &be16(1)]))
    => BackendMessage::CopyOutResponse(c) => assert_eq!(c.format(), 1));
case!(backend copy_both_response: msg(b'W', &cat(&[&[0], &be16(0)]))
    => BackendMessage::CopyBothResponse(c) => assert_eq!(c.column_formats().len(), 0));
case!(backend copy_response_count_cannot_fit: msg(b'G', &cat(&[&[0], &be16(3), &be16(0)]))
    => Err(DecodeError::BadCount("CopyResponse.column_formats")));
case!(backend copy_response_empty: msg(b'H', b"")
    => Err(DecodeError::Truncated("CopyResponse.format")));
case!(backend copy_response_trailing: msg(b'W', &cat(&[&[0], &be16(0), b"x"]))
    => Err(DecodeError::TrailingBytes("CopyResponse")));

case!(backend function_call_response: msg(b'V', &cat(&[&be32(2), b"ok"]))
    => BackendMessage::FunctionCallResponse(v) => assert_eq!(v, Some(&b"ok"[..])));
case!(backend function_call_response_null: msg(b'V', &be32(-1))
    => BackendMessage::FunctionCallResponse(v) => assert_eq!(v, None));
case!(backend function_call_response_minus_two: msg(b'V', &be32(-2))
    => Err(DecodeError::InvalidValue("FunctionCallResponse.value")));
case!(backend function_call_response_truncated: msg(b'V', &cat(&[&be32(3), b"ok"]))
    => Err(DecodeError::Truncated("FunctionCallResponse.value")));
case!(backend function_call_response_trailing: msg(b'V', &cat(&[&be32(1), b"ok"]))
    => Err(DecodeError::TrailingBytes("FunctionCallResponse")));

case!(backend unknown_backend_tag: msg(b'q', b"\x01\x02")
    => BackendMessage::Unknown { tag, body } => assert_eq!((tag, body), (Tag(b'q'), &b"\x01\x02"[..])));
case!(backend frontend_only_tag_is_unknown: msg(b'Q', b"SELECT 1\0")
    => BackendMessage::Unknown { tag, .. } => assert_eq!(tag, Tag::QUERY));

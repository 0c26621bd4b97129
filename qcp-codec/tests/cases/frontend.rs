//! Frontend (client to server) messages, and the `p` family decoded per auth step.

use super::*;

case!(frontend query: msg(b'Q', b"SELECT 1; SELECT 2\0")
    => FrontendMessage::Query(q) => assert_eq!(q.sql_str(), Ok("SELECT 1; SELECT 2")));
case!(frontend query_empty: msg(b'Q', b"\0")
    => FrontendMessage::Query(q) => assert_eq!(q.sql(), b""));
case!(frontend query_missing_nul: msg(b'Q', b"SELECT 1")
    => Err(DecodeError::MissingNul("Query.sql")));
case!(frontend query_trailing: msg(b'Q', b"SELECT 1\0\0")
    => Err(DecodeError::TrailingBytes("Query")));
case!(frontend query_empty_body: msg(b'Q', b"")
    => Err(DecodeError::MissingNul("Query.sql")));

#[test]
fn query_str_rejects_invalid_utf8() {
    let wire = msg(b'Q', b"SELECT '\xff'\0");
    let (FrontendMessage::Query(q), _) = FrontendMessage::decode(&wire, &Limits::default())
        .unwrap()
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(q.sql_str(), Err(DecodeError::InvalidUtf8("Query.sql")));
}

case!(frontend parse: msg(b'P', &cat(&[b"s1\0SELECT $1, $2\0", &be16(2), &be32(23), &be32(0)]))
=> FrontendMessage::Parse(p) => {
    assert_eq!(p.name_str(), Ok("s1"));
    assert_eq!(p.query(), b"SELECT $1, $2");
    assert_eq!(p.param_types().collect::<Vec<_>>(), [23, 0]);
});
case!(frontend parse_unnamed_no_types: msg(b'P', b"\0SELECT 1\0\0\0")
=> FrontendMessage::Parse(p) => {
    assert!(p.name().is_empty());
    assert_eq!(p.param_types().len(), 0);
});
case!(frontend parse_count_cannot_fit: msg(b'P', &cat(&[b"\0SELECT $1\0", &be16(2), &be32(23)]))
    => Err(DecodeError::BadCount("Parse.param_types")));
case!(frontend parse_count_huge: msg(b'P', &cat(&[b"\0q\0", &be16(-1)]))
    => Err(DecodeError::BadCount("Parse.param_types")));
case!(frontend parse_truncated_count: msg(b'P', b"\0SELECT 1\0\0")
    => Err(DecodeError::Truncated("Parse.param_types")));
case!(frontend parse_name_missing_nul: msg(b'P', b"s1")
    => Err(DecodeError::MissingNul("Parse.name")));
case!(frontend parse_query_missing_nul: msg(b'P', b"s1\0SELECT")
    => Err(DecodeError::MissingNul("Parse.query")));
case!(frontend parse_trailing: msg(b'P', &cat(&[b"\0q\0", &be16(1), &be32(23), b"x"]))
    => Err(DecodeError::TrailingBytes("Parse")));

fn bind_body() -> Vec<u8> {
    cat(&[
        b"p1\0s1\0",
        &be16(1),
        &be16(1),
        &be16(3),
        &be32(2),
        b"42",
        &be32(-1),
        &be32(0),
        &be16(2),
        &be16(0),
        &be16(1),
    ])
}

case!(frontend bind: msg(b'B', &bind_body())
=> FrontendMessage::Bind(b) => {
    assert_eq!((b.portal(), b.statement()), (&b"p1"[..], &b"s1"[..]));
    assert_eq!(b.param_formats().collect::<Vec<_>>(), [1]);
    assert_eq!(b.params().collect::<Vec<_>>(), [Some(&b"42"[..]), None, Some(&b""[..])]);
    assert_eq!(b.params().len(), 3);
    assert_eq!(b.result_formats().collect::<Vec<_>>(), [0, 1]);
});
case!(frontend bind_minimal: msg(b'B', b"\0\0\0\0\0\0\0\0")
    => FrontendMessage::Bind(b) => assert_eq!(b.params().count(), 0));
case!(frontend bind_param_formats_cannot_fit: msg(b'B', &cat(&[b"\0\0", &be16(100), &be16(0)]))
    => Err(DecodeError::BadCount("Bind.param_formats")));
case!(frontend bind_params_cannot_fit: msg(b'B', &cat(&[b"\0\0", &be16(0), &be16(3), &be32(-1), &be32(-1)]))
    => Err(DecodeError::BadCount("Bind.params")));
case!(frontend bind_param_truncated: msg(b'B', &cat(&[b"\0\0", &be16(0), &be16(1), &be32(10), b"abc", &be16(0)]))
    => Err(DecodeError::Truncated("Bind.params")));
case!(frontend bind_param_length_minus_two: msg(b'B', &cat(&[b"\0\0", &be16(0), &be16(1), &be32(-2), &be16(0)]))
    => Err(DecodeError::InvalidValue("Bind.params")));
case!(frontend bind_result_formats_cannot_fit: msg(b'B', &cat(&[b"\0\0", &be16(0), &be16(0), &be16(2), &be16(0)]))
    => Err(DecodeError::BadCount("Bind.result_formats")));
case!(frontend bind_missing_result_formats: msg(b'B', &cat(&[b"\0\0", &be16(0), &be16(0)]))
    => Err(DecodeError::Truncated("Bind.result_formats")));
case!(frontend bind_portal_missing_nul: msg(b'B', b"p1")
    => Err(DecodeError::MissingNul("Bind.portal")));
case!(frontend bind_statement_missing_nul: msg(b'B', b"\0s1")
    => Err(DecodeError::MissingNul("Bind.statement")));
case!(frontend bind_trailing: msg(b'B', &cat(&[&bind_body(), b"\0"]))
    => Err(DecodeError::TrailingBytes("Bind")));

case!(frontend describe_statement: msg(b'D', b"Ss1\0")
    => FrontendMessage::Describe(d) => assert_eq!((d.kind(), d.name_str()), (Target::Statement, Ok("s1"))));
case!(frontend describe_portal: msg(b'D', b"P\0")
    => FrontendMessage::Describe(d) => assert_eq!((d.kind(), d.name()), (Target::Portal, &b""[..])));
case!(frontend describe_bad_kind: msg(b'D', b"Xs1\0")
    => Err(DecodeError::InvalidValue("Describe.kind")));
case!(frontend describe_empty: msg(b'D', b"")
    => Err(DecodeError::Truncated("Describe.kind")));
case!(frontend describe_missing_nul: msg(b'D', b"Ss1")
    => Err(DecodeError::MissingNul("Describe.name")));
case!(frontend describe_trailing: msg(b'D', b"Ss1\0\0")
    => Err(DecodeError::TrailingBytes("Describe")));

case!(frontend execute: msg(b'E', &cat(&[b"p1\0", &be32(100)]))
    => FrontendMessage::Execute(e) => assert_eq!((e.portal_str(), e.max_rows()), (Ok("p1"), 100)));
case!(frontend execute_truncated: msg(b'E', b"\0\0\0")
    => Err(DecodeError::Truncated("Execute.max_rows")));
case!(frontend execute_missing_nul: msg(b'E', b"p1")
    => Err(DecodeError::MissingNul("Execute.portal")));
case!(frontend execute_trailing: msg(b'E', b"\0\0\0\0\0\0")
    => Err(DecodeError::TrailingBytes("Execute")));

case!(frontend close_statement: msg(b'C', b"Ss1\0")
    => FrontendMessage::Close(c) => assert_eq!((c.kind(), c.name()), (Target::Statement, &b"s1"[..])));
case!(frontend close_portal: msg(b'C', b"Pp\0")
    => FrontendMessage::Close(c) => assert_eq!(c.kind(), Target::Portal));
case!(frontend close_bad_kind: msg(b'C', b"s\0")
    => Err(DecodeError::InvalidValue("Close.kind")));
case!(frontend close_missing_nul: msg(b'C', b"S")
    => Err(DecodeError::MissingNul("Close.name")));
case!(frontend close_trailing: msg(b'C', b"S\0x")
    => Err(DecodeError::TrailingBytes("Close")));

case!(frontend sync: msg(b'S', b"") => FrontendMessage::Sync => ());
case!(frontend sync_trailing: msg(b'S', b"x") => Err(DecodeError::TrailingBytes("Sync")));
case!(frontend flush: msg(b'H', b"") => FrontendMessage::Flush => ());
case!(frontend flush_trailing: msg(b'H', b"\0") => Err(DecodeError::TrailingBytes("Flush")));
case!(frontend terminate: msg(b'X', b"") => FrontendMessage::Terminate => ());
case!(frontend terminate_trailing: msg(b'X', b"x") => Err(DecodeError::TrailingBytes("Terminate")));
case!(frontend copy_done: msg(b'c', b"") => FrontendMessage::CopyDone => ());
case!(frontend copy_done_trailing: msg(b'c', b"x") => Err(DecodeError::TrailingBytes("CopyDone")));
case!(frontend copy_data: msg(b'd', b"1\tfoo\n")
    => FrontendMessage::CopyData(c) => assert_eq!(c.data(), b"1\tfoo\n"));
case!(frontend copy_data_empty: msg(b'd', b"")
    => FrontendMessage::CopyData(c) => assert!(c.data().is_empty()));
case!(frontend copy_fail: msg(b'f', b"aborted\0")
    => FrontendMessage::CopyFail(c) => assert_eq!(c.reason_str(), Ok("aborted")));
case!(frontend copy_fail_missing_nul: msg(b'f', b"aborted")
    => Err(DecodeError::MissingNul("CopyFail.reason")));
case!(frontend copy_fail_trailing: msg(b'f', b"a\0b")
    => Err(DecodeError::TrailingBytes("CopyFail")));

fn function_call_body() -> Vec<u8> {
    cat(&[
        &be32(1000),
        &be16(1),
        &be16(1),
        &be16(2),
        &be32(4),
        &[0, 0, 0, 7],
        &be32(-1),
        &be16(1),
    ])
}

case!(frontend function_call: msg(b'F', &function_call_body())
=> FrontendMessage::FunctionCall(f) => {
    assert_eq!(f.oid(), 1000);
    assert_eq!(f.arg_formats().collect::<Vec<_>>(), [1]);
    assert_eq!(f.args().collect::<Vec<_>>(), [Some(&[0, 0, 0, 7][..]), None]);
    assert_eq!(f.result_format(), 1);
});
case!(frontend function_call_formats_cannot_fit: msg(b'F', &cat(&[&be32(1), &be16(9), &be16(0)]))
    => Err(DecodeError::BadCount("FunctionCall.arg_formats")));
case!(frontend function_call_args_cannot_fit: msg(b'F', &cat(&[&be32(1), &be16(0), &be16(2), &be32(-1)]))
    => Err(DecodeError::BadCount("FunctionCall.args")));
case!(frontend function_call_missing_result_format: msg(b'F', &cat(&[&be32(1), &be16(0), &be16(0)]))
    => Err(DecodeError::Truncated("FunctionCall.result_format")));
case!(frontend function_call_truncated_oid: msg(b'F', b"\0\0")
    => Err(DecodeError::Truncated("FunctionCall.oid")));
case!(frontend function_call_trailing: msg(b'F', &cat(&[&function_call_body(), b"!"]))
    => Err(DecodeError::TrailingBytes("FunctionCall")));

case!(frontend password_family_is_raw: msg(b'p', b"secret\0")
=> FrontendMessage::PasswordFamily(body) => {
    assert_eq!(PasswordMessage::decode(body).unwrap().password(), b"secret");
});
case!(frontend unknown_tag_kept: msg(b'?', b"whatever")
    => FrontendMessage::Unknown { tag, body } => assert_eq!((tag, body), (Tag(b'?'), &b"whatever"[..])));
case!(frontend backend_only_tag_is_unknown: msg(b'Z', b"I")
    => FrontendMessage::Unknown { tag, .. } => assert_eq!(tag, Tag::READY_FOR_QUERY));

// The 'p' family, decoded by the caller for its auth step.

#[test]
fn password_message() {
    assert_eq!(
        PasswordMessage::decode(b"md5abcdef\0").unwrap().password(),
        b"md5abcdef"
    );
    assert_eq!(
        PasswordMessage::decode(b"pw"),
        Err(DecodeError::MissingNul("PasswordMessage.password"))
    );
    assert_eq!(
        PasswordMessage::decode(b"pw\0x"),
        Err(DecodeError::TrailingBytes("PasswordMessage"))
    );
}

#[test]
fn sasl_initial_response() {
    let body = cat(&[b"SCRAM-SHA-256\0", &be32(8), b"n,,n=,r="]);
    let s = SaslInitialResponse::decode(&body).unwrap();
    assert_eq!(
        (s.mechanism_str(), s.data()),
        (Ok("SCRAM-SHA-256"), Some(&b"n,,n=,r="[..]))
    );
    let body = cat(&[b"X\0", &be32(-1)]);
    let none = SaslInitialResponse::decode(&body).unwrap();
    assert_eq!(none.data(), None);
    assert_eq!(
        SaslInitialResponse::decode(&cat(&[b"X\0", &be32(-2)])),
        Err(DecodeError::InvalidValue("SASLInitialResponse.data"))
    );
    assert_eq!(
        SaslInitialResponse::decode(&cat(&[b"X\0", &be32(9), b"short"])),
        Err(DecodeError::Truncated("SASLInitialResponse.data"))
    );
    assert_eq!(
        SaslInitialResponse::decode(b"X\0\0\0"),
        Err(DecodeError::Truncated("SASLInitialResponse.data"))
    );
    assert_eq!(
        SaslInitialResponse::decode(b"SCRAM"),
        Err(DecodeError::MissingNul("SASLInitialResponse.mechanism"))
    );
    assert_eq!(
        SaslInitialResponse::decode(&cat(&[b"X\0", &be32(0), b"!"])),
        Err(DecodeError::TrailingBytes("SASLInitialResponse"))
    );
}

#[test]
fn sasl_response() {
    assert_eq!(
        SaslResponse::decode(b"c=biws,r=x,p=y").unwrap().data(),
        b"c=biws,r=x,p=y"
    );
    assert_eq!(SaslResponse::decode(b"").unwrap().data(), b"");
}

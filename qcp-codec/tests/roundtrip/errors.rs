//! Encoder errors: each leaves the output buffer as it was.

use super::*;

/// Runs `f` on a buffer holding `b"keep"` and checks it fails with `err` and leaves the buffer.
fn fails(err: EncodeError, f: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>) {
    let mut out = b"keep".to_vec();
    assert_eq!(f(&mut out), Err(err));
    assert_eq!(out, b"keep");
}

#[test]
fn encode_errors() {
    use EncodeError::{InteriorNul, InvalidValue, TooLarge};
    fails(InteriorNul("Query.sql"), |o| encode::query(o, "a\0b"));
    fails(InteriorNul("Parse.name"), |o| {
        encode::parse(o, "\0", "q", &[])
    });
    fails(InteriorNul("Parse.query"), |o| {
        encode::parse(o, "", "q\0", &[])
    });
    fails(InteriorNul("Bind.portal"), |o| {
        encode::bind(o, "\0", "", &[], &[], &[])
    });
    fails(InteriorNul("Bind.statement"), |o| {
        encode::bind(o, "", "\0", &[], &[], &[])
    });
    fails(InteriorNul("Describe.name"), |o| {
        encode::describe(o, Target::Portal, "\0")
    });
    fails(InteriorNul("Execute.portal"), |o| {
        encode::execute(o, "\0", 0)
    });
    fails(InteriorNul("Close.name"), |o| {
        encode::close(o, Target::Statement, "\0")
    });
    fails(InteriorNul("CopyFail.reason"), |o| {
        encode::copy_fail(o, "\0")
    });
    fails(InteriorNul("PasswordMessage.password"), |o| {
        encode::password(o, "\0")
    });
    fails(InteriorNul("SASLInitialResponse.mechanism"), |o| {
        encode::sasl_initial_response(o, "\0", None)
    });
    fails(InteriorNul("StartupMessage.name"), |o| {
        encode::startup(o, ProtocolVersion::V3_0, &[("u\0", "x")])
    });
    fails(InteriorNul("StartupMessage.value"), |o| {
        encode::startup(o, ProtocolVersion::V3_0, &[("u", "\0")])
    });
    fails(InvalidValue("StartupMessage.name"), |o| {
        encode::startup(o, ProtocolVersion::V3_0, &[("", "x")])
    });
    fails(InvalidValue("StartupMessage.version"), |o| {
        encode::startup(o, ProtocolVersion { major: 2, minor: 0 }, &[])
    });
    fails(InvalidValue("CancelRequest.secret"), |o| {
        encode::cancel_request(o, 1, b"abc")
    });
    fails(InvalidValue("CancelRequest.secret"), |o| {
        encode::cancel_request(o, 1, &[0; 257])
    });
    fails(InvalidValue("BackendKeyData.secret"), |o| {
        encode::backend_key_data(o, 1, b"abc")
    });
    fails(InvalidValue("BackendKeyData.secret"), |o| {
        encode::backend_key_data(o, 1, &[0; 257])
    });
    fails(InteriorNul("ParameterStatus.name"), |o| {
        encode::parameter_status(o, "\0", "")
    });
    fails(InteriorNul("ParameterStatus.value"), |o| {
        encode::parameter_status(o, "", "\0")
    });
    fails(InvalidValue("ErrorResponse.code"), |o| {
        encode::error_response(o, &[(0, b"x")])
    });
    fails(InteriorNul("ErrorResponse.value"), |o| {
        encode::notice_response(o, &[(b'M', b"\0")])
    });
    fails(InteriorNul("CommandComplete.tag"), |o| {
        encode::command_complete(o, "\0")
    });
    fails(InvalidValue("AuthenticationSASL.mechanism"), |o| {
        encode::authentication_sasl(o, &[""])
    });
    fails(InteriorNul("AuthenticationSASL.mechanism"), |o| {
        encode::authentication_sasl(o, &["a\0"])
    });
    fails(InvalidValue("NegotiateProtocolVersion.version"), |o| {
        encode::negotiate_protocol_version(o, 196_608, &[])
    });
    fails(InteriorNul("NegotiateProtocolVersion.options"), |o| {
        encode::negotiate_protocol_version(o, 0, &[b"\0"])
    });
    fails(InteriorNul("NotificationResponse.channel"), |o| {
        encode::notification_response(o, 1, "\0", "")
    });
    fails(InteriorNul("NotificationResponse.payload"), |o| {
        encode::notification_response(o, 1, "", "\0")
    });
    fails(InteriorNul("RowDescription.name"), |o| {
        encode::row_description(
            o,
            &[FieldDescription {
                name: b"\0",
                table_oid: 0,
                column_id: 0,
                type_oid: 0,
                type_size: 0,
                type_modifier: 0,
                format: 0,
            }],
        )
    });
    let many = vec![0i16; 65_536];
    fails(TooLarge("Bind.param_formats"), |o| {
        encode::bind(o, "", "", &many, &[], &[])
    });
    fails(TooLarge("Bind.result_formats"), |o| {
        encode::bind(o, "", "", &[], &[], &many)
    });
    fails(TooLarge("CopyResponse.column_formats"), |o| {
        encode::copy_in_response(o, 0, &many)
    });
    fails(TooLarge("FunctionCall.arg_formats"), |o| {
        encode::function_call(o, 0, &many, &[], 0)
    });
    let oids = vec![0u32; 65_536];
    fails(TooLarge("Parse.param_types"), |o| {
        encode::parse(o, "", "", &oids)
    });
    fails(TooLarge("ParameterDescription.types"), |o| {
        encode::parameter_description(o, &oids)
    });
    let nulls: Vec<Option<&[u8]>> = vec![None; 65_536];
    fails(TooLarge("DataRow.values"), |o| encode::data_row(o, &nulls));
}

#[test]
fn max_counts_are_accepted() {
    // PostgreSQL reads 16-bit counts unsigned: 65 535 parameters is legal.
    let oids = vec![23u32; 65_535];
    let mut out = Vec::new();
    encode::parse(&mut out, "", "q", &oids).unwrap();
    let (FrontendMessage::Parse(p), _) = FrontendMessage::decode(&out, &Limits::default())
        .unwrap()
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(p.param_types().len(), 65_535);
    assert!(p.param_types().all(|t| t == 23));
}

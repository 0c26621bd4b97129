//! Captured sessions: every `tests/data/NAME-N.{frontend,backend}.bin` pair (real psql and
//! pgbench traffic against PostgreSQL 15, see `tests/data/README.md`) decoded completely with
//! the public API.
//!
//! For every message of every stream: decoding succeeds, the frames tile the stream with no
//! byte left over, `encode()` gives back exactly the wire bytes, decoding those again gives an
//! equal message, and every repeated part (DataRow values, ErrorResponse fields, RowDescription
//! columns, Bind parameters and formats, startup parameters, SASL mechanisms...) is drained
//! through its iterator and rebuilt with the `encode::*` functions into the same wire bytes.
//! `'p'` bodies are decoded with the auth type that the backend's preceding Authentication
//! request calls for. Then each scenario is checked for the content it is known to hold, so the
//! test cannot pass on streams that decode to nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use qcp_codec::auth::{Authentication, PasswordMessage, SaslInitialResponse, SaslResponse};
use qcp_codec::backend::ErrorResponse;
use qcp_codec::fields::{ErrorField, FieldDescription};
use qcp_codec::{
    encode, split_frames, BackendMessage, CancelRequest, FrontendMessage, Limits, ProtocolVersion,
    Startup, StartupPacket, Tag, TransactionStatus,
};

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

/// Scenarios `tests/data/README.md` describes; each must be there (regenerating keeps names).
const EXPECTED: &[&str] = &[
    "auth_fail-1",
    "cancel-1",
    "cancel-2",
    "copy_fail-1",
    "copy_in-1",
    "copy_out-1",
    "md5_login-1",
    "pgbench_extended-1",
    "pgbench_extended-2",
    "pgbench_prepared-1",
    "pgbench_prepared-2",
    "pgbench_simple-1",
    "pgbench_simple-2",
    "plain_login-1",
    "psql_scram-1",
    "trust_login-1",
];

const FRONTEND_SUFFIX: &str = ".frontend.bin";
const BACKEND_SUFFIX: &str = ".backend.bin";

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
}

/// Both streams of one captured connection.
struct Capture {
    name: String,
    frontend: Vec<u8>,
    backend: Vec<u8>,
}

/// Every capture pair in the data directory, by name. Panics if a stream has no twin.
fn all_captures() -> BTreeMap<String, Capture> {
    let dir = data_dir();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read capture directory {}: {e}", dir.display()));
    let mut names = Vec::new();
    for entry in entries {
        let file_name = entry.expect("directory entry").file_name();
        let file_name = file_name.to_string_lossy();
        if let Some(name) = file_name.strip_suffix(FRONTEND_SUFFIX) {
            names.push(name.to_owned());
        } else if let Some(name) = file_name.strip_suffix(BACKEND_SUFFIX) {
            assert!(
                dir.join(format!("{name}{FRONTEND_SUFFIX}")).is_file(),
                "{file_name} has no {name}{FRONTEND_SUFFIX} twin"
            );
        }
    }
    names
        .into_iter()
        .map(|name| {
            let read = |suffix: &str| {
                let path = dir.join(format!("{name}{suffix}"));
                std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
            };
            let capture = Capture {
                frontend: read(FRONTEND_SUFFIX),
                backend: read(BACKEND_SUFFIX),
                name: name.clone(),
            };
            (name, capture)
        })
        .collect()
}

fn capture(name: &str) -> Capture {
    all_captures()
        .remove(name)
        .unwrap_or_else(|| panic!("capture {name} missing from {}", data_dir().display()))
}

// ---------------------------------------------------------------------------------------------
// Decoding a whole connection
// ---------------------------------------------------------------------------------------------

/// A `'p'` body, decoded as the authentication step requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthReply<'a> {
    Password(PasswordMessage<'a>),
    SaslInitial(SaslInitialResponse<'a>),
    Sasl(SaslResponse<'a>),
}

/// Which `'p'` layout the client must answer an Authentication request with, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Password,
    SaslInitial,
    Sasl,
}

/// The client side of one connection, decoded.
#[derive(Debug, Default)]
struct FrontendStream<'a> {
    startup: Option<Startup<'a>>,
    cancel: Option<CancelRequest<'a>>,
    /// Tagged messages after the StartupMessage, in order (`'p'` still as `PasswordFamily`).
    messages: Vec<FrontendMessage<'a>>,
    /// The decoded `'p'` bodies, in order.
    auth: Vec<AuthReply<'a>>,
}

/// A decoded connection.
struct Session<'a> {
    name: &'a str,
    frontend: FrontendStream<'a>,
    backend: Vec<BackendMessage<'a>>,
}

impl<'a> Session<'a> {
    fn decode(c: &'a Capture) -> Self {
        let backend = decode_backend(&c.name, &c.backend);
        let expect: Vec<Expect> = backend
            .iter()
            .filter_map(|m| match m {
                BackendMessage::Authentication(a) => expected_reply(&c.name, a),
                _ => None,
            })
            .collect();
        let frontend = decode_frontend(&c.name, &c.frontend, &expect);
        Session {
            name: &c.name,
            frontend,
            backend,
        }
    }

    fn backend_tags(&self) -> Vec<Tag> {
        self.backend.iter().map(BackendMessage::tag).collect()
    }

    fn frontend_tags(&self) -> Vec<Tag> {
        self.frontend
            .messages
            .iter()
            .map(FrontendMessage::tag)
            .collect()
    }

    fn count_backend(&self, tag: Tag) -> usize {
        self.backend_tags().iter().filter(|t| **t == tag).count()
    }

    fn count_frontend(&self, tag: Tag) -> usize {
        self.frontend_tags().iter().filter(|t| **t == tag).count()
    }

    fn auth_requests(&self) -> Vec<Authentication<'a>> {
        self.backend
            .iter()
            .filter_map(|m| match m {
                BackendMessage::Authentication(a) => Some(*a),
                _ => None,
            })
            .collect()
    }

    fn errors(&self) -> Vec<ErrorResponse<'a>> {
        self.backend
            .iter()
            .filter_map(|m| match m {
                BackendMessage::ErrorResponse(e) => Some(*e),
                _ => None,
            })
            .collect()
    }

    fn sqlstates(&self) -> Vec<&'a [u8]> {
        self.errors()
            .iter()
            .map(|e| e.sqlstate().expect("every ErrorResponse has a SQLSTATE"))
            .collect()
    }

    fn command_tags(&self) -> Vec<&'a [u8]> {
        self.backend
            .iter()
            .filter_map(|m| match m {
                BackendMessage::CommandComplete(c) => Some(c.tag()),
                _ => None,
            })
            .collect()
    }

    fn startup(&self) -> Startup<'a> {
        self.frontend
            .startup
            .unwrap_or_else(|| panic!("{}: no StartupMessage", self.name))
    }
}

fn expected_reply(name: &str, a: &Authentication<'_>) -> Option<Expect> {
    match a {
        Authentication::Ok | Authentication::SaslFinal(_) => None,
        Authentication::CleartextPassword | Authentication::Md5Password { .. } => {
            Some(Expect::Password)
        }
        Authentication::Sasl(_) => Some(Expect::SaslInitial),
        Authentication::SaslContinue(_) => Some(Expect::Sasl),
        other => panic!("{name}: unexpected authentication request {other:?}"),
    }
}

/// Decodes a backend stream completely, checking every message.
fn decode_backend<'a>(name: &str, stream: &'a [u8]) -> Vec<BackendMessage<'a>> {
    let limits = Limits::default();
    let mut messages = Vec::new();
    let mut offset = 0;
    while offset < stream.len() {
        let rest = &stream[offset..];
        let (msg, used) = match BackendMessage::decode(rest, &limits) {
            Ok(Some(found)) => found,
            Ok(None) => panic!("{name}.backend @{offset}: stream ends inside a message"),
            Err(e) => panic!("{name}.backend @{offset}: {e}"),
        };
        assert!((5..=rest.len()).contains(&used), "{name}.backend @{offset}");
        let wire = &rest[..used];
        let at = format!("{name}.backend @{offset} {msg:?}");
        check_reencode(&at, wire, |out| msg.encode(out));
        assert_eq!(
            BackendMessage::decode(wire, &limits),
            Ok(Some((msg, used))),
            "{at}: decoding the message alone"
        );
        assert_eq!(
            rebuild_backend(&at, &msg),
            wire,
            "{at}: rebuilt from its parts"
        );
        messages.push(msg);
        offset += used;
    }
    assert_eq!(offset, stream.len(), "{name}.backend: bytes left over");
    assert_eq!(
        split_frames(stream, &limits),
        Ok((stream.len(), messages.len())),
        "{name}.backend: framing agrees with decoding"
    );
    messages
}

/// Decodes a frontend stream completely: startup-phase packets, then tagged messages; the
/// n-th `'p'` body is decoded as `expect[n]` says.
fn decode_frontend<'a>(name: &str, stream: &'a [u8], expect: &[Expect]) -> FrontendStream<'a> {
    let limits = Limits::default();
    let mut out = FrontendStream::default();
    let mut offset = 0;
    // Untagged startup phase.
    loop {
        let rest = &stream[offset..];
        let (packet, used) = match StartupPacket::decode(rest, &limits) {
            Ok(Some(found)) => found,
            Ok(None) => panic!("{name}.frontend @{offset}: no complete startup packet"),
            Err(e) => panic!("{name}.frontend @{offset}: {e}"),
        };
        assert!(
            (8..=rest.len()).contains(&used),
            "{name}.frontend @{offset}"
        );
        let wire = &rest[..used];
        let at = format!("{name}.frontend @{offset} {packet:?}");
        check_reencode(&at, wire, |o| packet.encode(o));
        assert_eq!(
            StartupPacket::decode(wire, &limits),
            Ok(Some((packet, used))),
            "{at}: decoding the packet alone"
        );
        offset += used;
        match packet {
            StartupPacket::Startup(s) => {
                assert_eq!(
                    rebuild_startup(&at, &s),
                    wire,
                    "{at}: rebuilt from its parts"
                );
                out.startup = Some(s);
                break;
            }
            StartupPacket::Cancel(c) => {
                let mut rebuilt = Vec::new();
                encode::cancel_request(&mut rebuilt, c.pid(), c.secret()).expect(&at);
                assert_eq!(rebuilt, wire, "{at}: rebuilt from its parts");
                assert_eq!(offset, stream.len(), "{at}: a CancelRequest is sent alone");
                out.cancel = Some(c);
                return out;
            }
            // The client waits for a one-byte answer, then sends another startup packet.
            StartupPacket::SslRequest | StartupPacket::GssEncRequest => {}
        }
    }
    // Tagged messages.
    let mut expect = expect.iter();
    while offset < stream.len() {
        let rest = &stream[offset..];
        let (msg, used) = match FrontendMessage::decode(rest, &limits) {
            Ok(Some(found)) => found,
            Ok(None) => panic!("{name}.frontend @{offset}: stream ends inside a message"),
            Err(e) => panic!("{name}.frontend @{offset}: {e}"),
        };
        assert!(
            (5..=rest.len()).contains(&used),
            "{name}.frontend @{offset}"
        );
        let wire = &rest[..used];
        let at = format!("{name}.frontend @{offset} {msg:?}");
        check_reencode(&at, wire, |o| msg.encode(o));
        assert_eq!(
            FrontendMessage::decode(wire, &limits),
            Ok(Some((msg, used))),
            "{at}: decoding the message alone"
        );
        if let FrontendMessage::PasswordFamily(body) = msg {
            let step = expect
                .next()
                .unwrap_or_else(|| panic!("{at}: 'p' sent without an authentication request"));
            let reply = decode_auth_reply(&at, *step, body);
            let mut rebuilt = Vec::new();
            match reply {
                AuthReply::Password(p) => {
                    check_reencode(&at, wire, |o| p.encode(o));
                    encode::password(&mut rebuilt, p.password())
                }
                AuthReply::SaslInitial(s) => {
                    check_reencode(&at, wire, |o| s.encode(o));
                    encode::sasl_initial_response(&mut rebuilt, s.mechanism(), s.data())
                }
                AuthReply::Sasl(s) => {
                    check_reencode(&at, wire, |o| s.encode(o));
                    encode::sasl_response(&mut rebuilt, s.data())
                }
            }
            .expect(&at);
            assert_eq!(rebuilt, wire, "{at}: rebuilt from its parts");
            out.auth.push(reply);
        } else {
            assert_eq!(
                rebuild_frontend(&at, &msg),
                wire,
                "{at}: rebuilt from its parts"
            );
        }
        out.messages.push(msg);
        offset += used;
    }
    assert_eq!(offset, stream.len(), "{name}.frontend: bytes left over");
    assert_eq!(
        expect.next(),
        None,
        "{name}: an authentication request was never answered"
    );
    out
}

fn decode_auth_reply<'a>(at: &str, step: Expect, body: &'a [u8]) -> AuthReply<'a> {
    let reply = match step {
        Expect::Password => PasswordMessage::decode(body).map(AuthReply::Password),
        Expect::SaslInitial => SaslInitialResponse::decode(body).map(AuthReply::SaslInitial),
        Expect::Sasl => SaslResponse::decode(body).map(AuthReply::Sasl),
    };
    reply.unwrap_or_else(|e| panic!("{at}: as {step:?}: {e}"))
}

/// `encode` must append exactly `wire` to a buffer that already holds something.
fn check_reencode(
    at: &str,
    wire: &[u8],
    encode: impl Fn(&mut Vec<u8>) -> Result<(), qcp_codec::EncodeError>,
) {
    let mut out = b"prefix".to_vec();
    encode(&mut out).unwrap_or_else(|e| panic!("{at}: re-encoding failed: {e}"));
    assert_eq!(&out[..6], b"prefix", "{at}: encode touched earlier bytes");
    assert_eq!(&out[6..], wire, "{at}: encode(decode(bytes)) != bytes");
}

// ---------------------------------------------------------------------------------------------
// Draining iterators and rebuilding each message from its parts
// ---------------------------------------------------------------------------------------------

/// Collects every item, and checks the iterator stays finished.
fn drain<I: Iterator>(at: &str, mut it: I) -> Vec<I::Item> {
    let items: Vec<I::Item> = it.by_ref().collect();
    assert!(it.next().is_none(), "{at}: iterator yields after None");
    items
}

/// Like [`drain`], and checks the announced length matched.
fn drain_exact<I: ExactSizeIterator>(at: &str, it: I) -> Vec<I::Item> {
    let len = it.len();
    let items = drain(at, it);
    assert_eq!(items.len(), len, "{at}: len() disagrees with the items");
    items
}

fn utf8<'s>(at: &str, bytes: &'s [u8]) -> &'s str {
    std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{at}: not UTF-8: {e}"))
}

fn built(at: &str, f: impl FnOnce(&mut Vec<u8>) -> Result<(), qcp_codec::EncodeError>) -> Vec<u8> {
    let mut out = Vec::new();
    f(&mut out).unwrap_or_else(|e| panic!("{at}: rebuilding failed: {e}"));
    out
}

fn rebuild_startup(at: &str, s: &Startup<'_>) -> Vec<u8> {
    let params: Vec<(&str, &str)> = drain(at, s.params())
        .into_iter()
        .map(|(n, v)| (utf8(at, n), utf8(at, v)))
        .collect();
    built(at, |o| encode::startup(o, s.version(), &params))
}

fn rebuild_frontend(at: &str, msg: &FrontendMessage<'_>) -> Vec<u8> {
    built(at, |o| match msg {
        FrontendMessage::Query(q) => encode::query(o, q.sql()),
        FrontendMessage::Parse(p) => {
            encode::parse(o, p.name(), p.query(), &drain_exact(at, p.param_types()))
        }
        FrontendMessage::Bind(b) => encode::bind(
            o,
            b.portal(),
            b.statement(),
            &drain_exact(at, b.param_formats()),
            &drain_exact(at, b.params()),
            &drain_exact(at, b.result_formats()),
        ),
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
        FrontendMessage::FunctionCall(f) => encode::function_call(
            o,
            f.oid(),
            &drain_exact(at, f.arg_formats()),
            &drain_exact(at, f.args()),
            f.result_format(),
        ),
        FrontendMessage::CopyData(d) => encode::copy_data(o, d.data()),
        FrontendMessage::CopyDone => {
            encode::copy_done(o);
            Ok(())
        }
        FrontendMessage::CopyFail(f) => encode::copy_fail(o, f.reason()),
        other => panic!("{at}: unexpected frontend message {other:?}"),
    })
}

fn rebuild_backend(at: &str, msg: &BackendMessage<'_>) -> Vec<u8> {
    built(at, |o| match msg {
        BackendMessage::Authentication(a) => rebuild_auth(at, o, a),
        BackendMessage::BackendKeyData(k) => encode::backend_key_data(o, k.pid(), k.secret()),
        BackendMessage::NegotiateProtocolVersion(v) => {
            encode::negotiate_protocol_version(o, v.newest_minor().into(), &drain(at, v.options()))
        }
        BackendMessage::ParameterStatus(p) => encode::parameter_status(o, p.name(), p.value()),
        BackendMessage::ReadyForQuery(status) => {
            encode::ready_for_query(o, *status);
            Ok(())
        }
        BackendMessage::ErrorResponse(e) => encode::error_response(o, &error_fields(at, e)),
        BackendMessage::NoticeResponse(e) => encode::notice_response(o, &error_fields(at, e)),
        BackendMessage::RowDescription(rd) => {
            let fields: Vec<FieldDescription<'_>> = drain_exact(at, rd.fields());
            assert_eq!(fields.len(), rd.len(), "{at}: RowDescription.len()");
            encode::row_description(o, &fields)
        }
        BackendMessage::DataRow(row) => {
            let values = drain_exact(at, row.values());
            assert_eq!(values.len(), row.len(), "{at}: DataRow.len()");
            encode::data_row(o, &values)
        }
        BackendMessage::CommandComplete(c) => encode::command_complete(o, c.tag()),
        BackendMessage::EmptyQueryResponse => {
            encode::empty_query_response(o);
            Ok(())
        }
        BackendMessage::ParameterDescription(p) => {
            encode::parameter_description(o, &drain_exact(at, p.types()))
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
            encode::copy_in_response(o, c.format(), &drain_exact(at, c.column_formats()))
        }
        BackendMessage::CopyOutResponse(c) => {
            encode::copy_out_response(o, c.format(), &drain_exact(at, c.column_formats()))
        }
        BackendMessage::CopyBothResponse(c) => {
            encode::copy_both_response(o, c.format(), &drain_exact(at, c.column_formats()))
        }
        BackendMessage::CopyData(d) => encode::copy_data(o, d.data()),
        BackendMessage::CopyDone => {
            encode::copy_done(o);
            Ok(())
        }
        BackendMessage::FunctionCallResponse(v) => encode::function_call_response(o, *v),
        other => panic!("{at}: unexpected backend message {other:?}"),
    })
}

fn rebuild_auth(
    at: &str,
    o: &mut Vec<u8>,
    a: &Authentication<'_>,
) -> Result<(), qcp_codec::EncodeError> {
    match a {
        Authentication::Ok => {
            encode::authentication_ok(o);
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
        Authentication::Sasl(m) => {
            let names: Vec<&str> = drain(at, m.iter())
                .into_iter()
                .map(|n| utf8(at, n))
                .collect();
            encode::authentication_sasl(o, &names)
        }
        Authentication::SaslContinue(d) => encode::authentication_sasl_continue(o, d),
        Authentication::SaslFinal(d) => encode::authentication_sasl_final(o, d),
        other => panic!("{at}: unexpected authentication request {other:?}"),
    }
}

fn error_fields<'a>(at: &str, e: &ErrorResponse<'a>) -> Vec<(u8, &'a [u8])> {
    let fields = drain(at, e.fields());
    assert!(!fields.is_empty(), "{at}: an error without fields");
    for f in &fields {
        assert_ne!(f.code, 0, "{at}");
        assert!(e.field(f.code).is_some(), "{at}: field() finds it");
    }
    fields.into_iter().map(|f| (f.code, f.value)).collect()
}

// ---------------------------------------------------------------------------------------------
// Every capture decodes completely
// ---------------------------------------------------------------------------------------------

#[test]
fn every_capture_decodes_completely() {
    let captures = all_captures();
    assert!(
        !captures.is_empty(),
        "no *{FRONTEND_SUFFIX} captures in {}",
        data_dir().display()
    );
    for name in EXPECTED {
        assert!(captures.contains_key(*name), "capture {name} is missing");
    }
    let mut messages = 0;
    for c in captures.values() {
        let s = Session::decode(c);
        messages += s.backend.len() + s.frontend.messages.len();
        check_stream_shape(&s);
    }
    // About 75 KB of traffic: thousands of messages, not a handful.
    assert!(messages > 1_000, "only {messages} messages decoded");
}

/// The shape `tests/data/README.md` promises for every capture.
fn check_stream_shape(s: &Session<'_>) {
    let name = s.name;
    if let Some(c) = s.frontend.cancel {
        assert!(s.frontend.startup.is_none() && s.frontend.messages.is_empty());
        assert!(
            s.backend.is_empty(),
            "{name}: the server answers a cancel with nothing"
        );
        assert_eq!(c.secret().len(), 4, "{name}: protocol 3.0 secret");
        return;
    }
    let startup = s.startup();
    assert_eq!(startup.version(), ProtocolVersion::V3_0, "{name}");
    assert_eq!(
        startup.param(b"client_encoding"),
        Some(&b"UTF8"[..]),
        "{name}"
    );
    assert_eq!(startup.param(b"timezone"), Some(&b"UTC"[..]), "{name}");
    assert!(
        startup.user().is_some_and(|u| u.starts_with(b"qcp_")),
        "{name}"
    );
    assert!(startup.database().is_some(), "{name}");
    let app = startup.param(b"application_name");
    assert!(
        app == Some(b"psql") || app == Some(b"pgbench"),
        "{name}: {app:?}"
    );
    assert_eq!(
        s.backend.first().map(BackendMessage::tag),
        Some(Tag::AUTHENTICATION),
        "{name}"
    );
    if name.starts_with("auth_fail") {
        return;
    }
    assert!(
        s.auth_requests().contains(&Authentication::Ok),
        "{name}: no AuthenticationOk"
    );
    assert_eq!(
        s.frontend.messages.last(),
        Some(&FrontendMessage::Terminate),
        "{name}: ends with Terminate"
    );
    assert!(
        matches!(s.backend.last(), Some(BackendMessage::ReadyForQuery(_))),
        "{name}: ends with ReadyForQuery"
    );
    assert_eq!(s.count_backend(Tag::BACKEND_KEY_DATA), 1, "{name}");
    assert!(s.count_backend(Tag::PARAMETER_STATUS) >= 13, "{name}");
}

// ---------------------------------------------------------------------------------------------
// What each scenario is known to hold
// ---------------------------------------------------------------------------------------------

/// The SCRAM exchange of a successful login: R 10 (offering SCRAM-SHA-256), p, R 11, p, R 12,
/// R 0; the client picks the mechanism the server offered.
fn check_scram_login(s: &Session<'_>) {
    let name = s.name;
    let auth = s.auth_requests();
    let codes: Vec<i32> = auth.iter().map(Authentication::code).collect();
    assert_eq!(codes, [10, 11, 12, 0], "{name}");
    let Authentication::Sasl(mechanisms) = auth[0] else {
        panic!("{name}: {auth:?}")
    };
    assert!(mechanisms.contains(b"SCRAM-SHA-256"), "{name}");
    let [AuthReply::SaslInitial(first), AuthReply::Sasl(last)] = s.frontend.auth[..] else {
        panic!("{name}: {:?}", s.frontend.auth)
    };
    assert_eq!(first.mechanism_str(), Ok("SCRAM-SHA-256"), "{name}");
    assert!(mechanisms.contains(first.mechanism()), "{name}");
    let client_first = first.data().expect("client-first-message");
    assert!(client_first.starts_with(b"n,,n=,r="), "{name}");
    let Authentication::SaslContinue(server_first) = auth[1] else {
        panic!()
    };
    // The server's nonce extends the client's.
    let client_nonce = &client_first[b"n,,n=,r=".len()..];
    assert!(
        server_first.starts_with(&[b"r=", client_nonce].concat()),
        "{name}"
    );
    assert!(last.data().starts_with(b"c=biws,r="), "{name}");
    let Authentication::SaslFinal(server_final) = auth[2] else {
        panic!()
    };
    assert!(server_final.starts_with(b"v="), "{name}");
}

#[test]
fn psql_scram_session() {
    let c = capture("psql_scram-1");
    let s = Session::decode(&c);
    check_scram_login(&s);
    assert_eq!(s.startup().param(b"application_name"), Some(&b"psql"[..]));

    // Division by zero, a missing table, and division by zero again inside a transaction.
    assert_eq!(s.sqlstates(), [&b"22012"[..], b"42P01", b"22012"]);
    for e in s.errors() {
        assert_eq!(e.severity_nonlocalized(), Some(&b"ERROR"[..]));
        assert!(e.message().is_some_and(|m| !m.is_empty()));
        assert!(e.fields().any(|f| f.code == ErrorField::FILE));
    }
    // Notices: DROP TABLE IF EXISTS, RAISE NOTICE 'hi', RAISE WARNING with DETAIL and HINT.
    let notices: Vec<ErrorResponse<'_>> = s
        .backend
        .iter()
        .filter_map(|m| match m {
            BackendMessage::NoticeResponse(n) => Some(*n),
            _ => None,
        })
        .collect();
    assert!(notices.len() >= 3, "{notices:?}");
    assert!(notices.iter().any(|n| n.message() == Some(b"hi")));
    assert!(notices
        .iter()
        .any(|n| n.severity_nonlocalized() == Some(b"WARNING")
            && n.detail().is_some()
            && n.hint().is_some()));

    // LISTEN/NOTIFY: two notifications, from this very backend.
    let pid = s
        .backend
        .iter()
        .find_map(|m| match m {
            BackendMessage::BackendKeyData(k) => Some(k.pid()),
            _ => None,
        })
        .expect("BackendKeyData");
    let notifications: Vec<_> = s
        .backend
        .iter()
        .filter_map(|m| match m {
            BackendMessage::NotificationResponse(n) => Some(*n),
            _ => None,
        })
        .collect();
    assert_eq!(notifications.len(), 2);
    assert!(notifications.iter().all(|n| n.pid() == pid));

    // Rows: NULLs, an empty string, a 10 000-byte value; a query returning no rows.
    let rows: Vec<Vec<Option<&[u8]>>> = s
        .backend
        .iter()
        .filter_map(|m| match m {
            BackendMessage::DataRow(r) => Some(r.values().collect()),
            _ => None,
        })
        .collect();
    assert!(rows.iter().flatten().any(Option::is_none), "a NULL");
    assert!(
        rows.iter().flatten().any(|v| *v == Some(b"")),
        "an empty string"
    );
    assert!(rows
        .iter()
        .flatten()
        .any(|v| v.is_some_and(|v| v.len() == 10_000)));
    assert!(s.command_tags().contains(&&b"SELECT 0"[..]));
    assert!(s.command_tags().contains(&&b"INSERT 0 4"[..]));
    assert!(s.count_backend(Tag::ROW_DESCRIPTION) >= 5);
    assert_eq!(s.count_backend(Tag::EMPTY_QUERY_RESPONSE), 1);

    // Transaction states: idle, in a transaction, failed.
    let statuses: Vec<TransactionStatus> = s
        .backend
        .iter()
        .filter_map(|m| match m {
            BackendMessage::ReadyForQuery(t) => Some(*t),
            _ => None,
        })
        .collect();
    for t in [
        TransactionStatus::Idle,
        TransactionStatus::InTransaction,
        TransactionStatus::Failed,
    ] {
        assert!(statuses.contains(&t), "{t:?}");
    }
    // Each simple Query is answered by exactly one ReadyForQuery (plus the one after login).
    assert_eq!(statuses.len(), s.count_frontend(Tag::QUERY) + 1);

    // SET application_name and SET TIME ZONE report ParameterStatus in mid-session.
    let first_rfq = s
        .backend_tags()
        .iter()
        .position(|t| *t == Tag::READY_FOR_QUERY)
        .unwrap();
    let late_params: Vec<&[u8]> = s.backend[first_rfq..]
        .iter()
        .filter_map(|m| match m {
            BackendMessage::ParameterStatus(p) => Some(p.name()),
            _ => None,
        })
        .collect();
    assert!(late_params.contains(&&b"application_name"[..]));
    assert!(late_params.contains(&&b"TimeZone"[..]));

    // A Query holding three statements.
    assert!(s.frontend.messages.iter().any(|m| matches!(m,
        FrontendMessage::Query(q) if q.sql().iter().filter(|&&b| b == b';').count() >= 2)));
}

#[test]
fn pgbench_login_sessions() {
    for name in [
        "pgbench_simple-1",
        "pgbench_extended-1",
        "pgbench_prepared-1",
    ] {
        let c = capture(name);
        let s = Session::decode(&c);
        check_scram_login(&s);
        assert_eq!(
            s.startup().param(b"application_name"),
            Some(&b"pgbench"[..])
        );
        assert_eq!(s.count_frontend(Tag::QUERY), 2, "{name}");
        assert!(s.count_backend(Tag::DATA_ROW) >= 1, "{name}");
    }
}

#[test]
fn pgbench_simple_transactions() {
    let c = capture("pgbench_simple-2");
    let s = Session::decode(&c);
    check_scram_login(&s);
    // 20 transactions of 7 statements, as simple Queries only.
    assert!(s.count_frontend(Tag::QUERY) >= 140);
    assert_eq!(s.count_frontend(Tag::PARSE), 0);
    let tags = s.command_tags();
    assert_eq!(tags.iter().filter(|t| **t == b"BEGIN").count(), 20);
    assert_eq!(tags.iter().filter(|t| **t == b"UPDATE 1").count(), 60);
    assert_eq!(tags.iter().filter(|t| **t == b"INSERT 0 1").count(), 20);
}

#[test]
fn pgbench_extended_protocol() {
    let c = capture("pgbench_extended-2");
    let s = Session::decode(&c);
    check_scram_login(&s);
    let mut parses = 0;
    let mut binds_with_params = 0;
    for m in &s.frontend.messages {
        match m {
            FrontendMessage::Parse(p) => {
                parses += 1;
                assert_eq!(p.name(), b"", "extended mode uses unnamed statements");
            }
            FrontendMessage::Bind(b) => {
                assert_eq!((b.portal(), b.statement()), (&b""[..], &b""[..]));
                if b.params().len() > 0 {
                    binds_with_params += 1;
                }
            }
            _ => {}
        }
    }
    assert!(parses >= 140, "{parses}");
    assert!(binds_with_params >= 100, "{binds_with_params}");
    for tag in [Tag::DESCRIBE, Tag::EXECUTE, Tag::SYNC] {
        assert!(s.count_frontend(tag) >= 140, "{tag:?}");
    }
    for tag in [Tag::PARSE_COMPLETE, Tag::BIND_COMPLETE, Tag::NO_DATA] {
        assert!(s.count_backend(tag) >= 100, "{tag:?}");
    }
    assert_eq!(
        s.count_frontend(Tag::PARSE),
        s.count_backend(Tag::PARSE_COMPLETE)
    );
}

#[test]
fn pgbench_prepared_statements() {
    let c = capture("pgbench_prepared-2");
    let s = Session::decode(&c);
    check_scram_login(&s);
    let mut parsed: Vec<&[u8]> = Vec::new();
    let mut bound: Vec<&[u8]> = Vec::new();
    for m in &s.frontend.messages {
        match m {
            FrontendMessage::Parse(p) => {
                assert!(p.name().starts_with(b"P_"), "{p:?}");
                assert!(!p.query().is_empty());
                parsed.push(p.name());
            }
            FrontendMessage::Bind(b) => {
                assert!(b.statement().starts_with(b"P_"), "{b:?}");
                bound.push(b.statement());
            }
            _ => {}
        }
    }
    // Each statement is prepared once and bound once per transaction.
    assert_eq!(parsed.len(), 7, "{parsed:?}");
    let mut unique = parsed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), parsed.len());
    assert_eq!(bound.len(), 140);
    assert!(bound.iter().all(|b| parsed.contains(b)));
    assert_eq!(s.count_backend(Tag::PARSE_COMPLETE), 7);
    assert_eq!(s.count_backend(Tag::BIND_COMPLETE), 140);
}

#[test]
fn copy_in() {
    let c = capture("copy_in-1");
    let s = Session::decode(&c);
    check_scram_login(&s);
    let copy_in: Vec<_> = s
        .backend
        .iter()
        .filter_map(|m| match m {
            BackendMessage::CopyInResponse(r) => Some(*r),
            _ => None,
        })
        .collect();
    assert_eq!(copy_in.len(), 1);
    assert_eq!(copy_in[0].format(), 0, "text");
    let data: Vec<u8> = s
        .frontend
        .messages
        .iter()
        .filter_map(|m| match m {
            FrontendMessage::CopyData(d) => Some(d.data()),
            _ => None,
        })
        .flatten()
        .copied()
        .collect();
    assert_eq!(data.iter().filter(|&&b| b == b'\n').count(), 4, "4 rows");
    assert!(
        data.windows(2).any(|w| w == b"\\N"),
        "a NULL in text format"
    );
    assert_eq!(s.count_frontend(Tag::COPY_DONE), 1);
    assert!(s.command_tags().contains(&&b"COPY 4"[..]));
}

#[test]
fn copy_out() {
    let c = capture("copy_out-1");
    let s = Session::decode(&c);
    check_scram_login(&s);
    let formats: Vec<i8> = s
        .backend
        .iter()
        .filter_map(|m| match m {
            BackendMessage::CopyOutResponse(r) => Some(r.format()),
            _ => None,
        })
        .collect();
    assert_eq!(formats, [0, 0, 1], "text, CSV, binary");
    assert!(s.count_backend(Tag::COPY_DATA) >= 3);
    assert_eq!(s.count_backend(Tag::COPY_DONE), 3);
    // The binary COPY starts with its signature.
    assert!(s.backend.iter().any(|m| matches!(m,
        BackendMessage::CopyData(d) if d.data().starts_with(b"PGCOPY\n\xff\r\n\0"))));
}

#[test]
fn copy_fail() {
    let c = capture("copy_fail-1");
    let s = Session::decode(&c);
    check_scram_login(&s);
    assert_eq!(s.count_backend(Tag::COPY_IN_RESPONSE), 1);
    assert!(s.count_frontend(Tag::COPY_DATA) >= 1);
    assert_eq!(s.count_frontend(Tag::COPY_DONE), 1);
    assert_eq!(s.sqlstates(), [&b"22P02"[..]], "invalid input syntax");
}

#[test]
fn cancel() {
    let c1 = capture("cancel-1");
    let c2 = capture("cancel-2");
    let s1 = Session::decode(&c1);
    let s2 = Session::decode(&c2);
    check_scram_login(&s1);
    assert_eq!(s1.sqlstates(), [&b"57014"[..]], "canceling statement");

    // cancel-2 is exactly one 16-byte CancelRequest for cancel-1's backend.
    assert_eq!(c2.frontend.len(), 16);
    assert!(c2.backend.is_empty());
    let cancel = s2.frontend.cancel.expect("a CancelRequest");
    assert!(s2.frontend.startup.is_none() && s2.frontend.messages.is_empty());
    let key = s1
        .backend
        .iter()
        .find_map(|m| match m {
            BackendMessage::BackendKeyData(k) => Some(*k),
            _ => None,
        })
        .expect("BackendKeyData");
    assert_eq!((cancel.pid(), cancel.secret()), (key.pid(), key.secret()));
}

#[test]
fn md5_login() {
    let c = capture("md5_login-1");
    let s = Session::decode(&c);
    let auth = s.auth_requests();
    assert!(matches!(
        auth[..],
        [Authentication::Md5Password { .. }, Authentication::Ok]
    ));
    let [AuthReply::Password(p)] = s.frontend.auth[..] else {
        panic!("{:?}", s.frontend.auth)
    };
    let pw = p.password();
    assert_eq!(pw.len(), 35);
    assert!(pw.starts_with(b"md5") && pw[3..].iter().all(u8::is_ascii_hexdigit));
    assert_eq!(s.startup().user(), Some(&b"qcp_md5"[..]));
}

#[test]
fn cleartext_login() {
    let c = capture("plain_login-1");
    let s = Session::decode(&c);
    assert_eq!(
        s.auth_requests(),
        [Authentication::CleartextPassword, Authentication::Ok]
    );
    let [AuthReply::Password(p)] = s.frontend.auth[..] else {
        panic!("{:?}", s.frontend.auth)
    };
    assert!(!p.password().is_empty() && !p.password().starts_with(b"md5"));
    assert_eq!(s.startup().user(), Some(&b"qcp_plain"[..]));
}

#[test]
fn trust_login() {
    let c = capture("trust_login-1");
    let s = Session::decode(&c);
    assert_eq!(s.auth_requests(), [Authentication::Ok]);
    assert!(s.frontend.auth.is_empty());
    assert_eq!(s.count_frontend(Tag::PASSWORD), 0);
    assert_eq!(s.startup().database(), Some(&b"qcp_other"[..]));
}

#[test]
fn failed_scram_login() {
    let c = capture("auth_fail-1");
    let s = Session::decode(&c);
    let codes: Vec<i32> = s.auth_requests().iter().map(Authentication::code).collect();
    assert_eq!(codes, [10, 11], "no SASLFinal, no AuthenticationOk");
    assert!(matches!(
        s.frontend.auth[..],
        [AuthReply::SaslInitial(_), AuthReply::Sasl(_)]
    ));
    assert_eq!(s.sqlstates(), [&b"28P01"[..]]);
    assert_eq!(s.errors()[0].severity_nonlocalized(), Some(&b"FATAL"[..]));
    assert!(matches!(
        s.backend.last(),
        Some(BackendMessage::ErrorResponse(_))
    ));
    assert_eq!(s.count_frontend(Tag::TERMINATE), 0);
}

//! Rewriting statement messages and acting on the answers, without a server: the bytes qcp
//! would send, and what the answers do.

use qcp_codec::{encode, frontend::Target, FrontendMessage, Header};

use super::*;
use crate::relay::params::{ClientParams, Params};
use crate::relay::statements::State;

struct Fixture {
    registry: Registry,
    client: ClientStatements,
    server: ServerStatements,
    tracker: Tracker,
    hooks: VecDeque<Hook>,
    out: Vec<u8>,
    tally: StatementTally,
    wanted: ClientParams,
    resolution: Resolution,
}

impl Fixture {
    fn new(capacity: usize) -> Self {
        Fixture {
            registry: Registry::default(),
            client: ClientStatements::default(),
            server: ServerStatements::new(capacity),
            tracker: Tracker::new(),
            hooks: VecDeque::new(),
            out: Vec::new(),
            tally: StatementTally::default(),
            wanted: ClientParams::new(std::sync::Arc::new(Params::new())),
            resolution: Resolution::default(),
        }
    }

    /// Rewrites one encoded client message; returns what to do with it. For a rewritten
    /// head, the rest of the message follows in `out`, as the relay forwards it.
    fn send(&mut self, message: &[u8]) -> Consume {
        let header = Header::parse(message).unwrap().unwrap();
        let body = &message[5..];
        assert!(names_statement(header.tag, body));
        let consume = self
            .rewrite(header.tag, body, body.len())
            .expect("rewritten");
        if let Consume::Head(n) = consume {
            self.out.extend_from_slice(&body[n..]);
        }
        consume
    }

    /// Rewrites one client message of which `body` (of `body_len` bytes) is in the buffer.
    fn rewrite(&mut self, tag: Tag, body: &[u8], body_len: usize) -> Result<Consume, RewriteError> {
        Rewriter {
            client: &mut self.client,
            server: &mut self.server,
            registry: &self.registry,
            wanted: &self.wanted,
            resolution: &mut self.resolution,
            tracker: &mut self.tracker,
            hooks: &mut self.hooks,
            out: &mut self.out,
            tally: &mut self.tally,
        }
        .message(tag, body, body_len)
    }

    /// The messages qcp wrote, decoded, as (tag, statement name) pairs; then cleared.
    fn sent(&mut self) -> Vec<(char, String)> {
        let mut out = Vec::new();
        let mut rest = &self.out[..];
        while let Ok(Some(header)) = Header::parse(rest) {
            let frame = header.frame_len().min(rest.len());
            let body = &rest[5..frame];
            let name = match FrontendMessage::decode_body(header.tag, body) {
                Ok(FrontendMessage::Parse(p)) => String::from_utf8_lossy(p.name()).into_owned(),
                Ok(FrontendMessage::Bind(b)) => String::from_utf8_lossy(b.statement()).into_owned(),
                Ok(FrontendMessage::Describe(d)) => String::from_utf8_lossy(d.name()).into_owned(),
                Ok(FrontendMessage::Close(c)) => String::from_utf8_lossy(c.name()).into_owned(),
                _ => String::new(),
            };
            out.push((header.tag.0 as char, name));
            rest = &rest[frame..];
        }
        self.out.clear();
        out
    }

    /// The server answers `tag` (ParseComplete, CloseComplete...); returns what happens to it.
    fn answer(&mut self, tag: Tag, body: &[u8]) -> Action {
        let action = match (self.tracker.head_hooked(), self.hooks.front()) {
            (true, Some(hook)) => action(hook, tag, body),
            _ => Action::Forward,
        };
        let reported = self.tracker.server_message(tag, body.first().copied());
        let code = if tag == Tag::ERROR_RESPONSE {
            error_code(body)
        } else {
            &[]
        };
        settle_reported(
            reported,
            code,
            &mut self.hooks,
            &mut self.client,
            &mut self.server,
        );
        action
    }

    fn sync(&mut self) {
        self.tracker.client_message(Tag::SYNC).unwrap();
    }
}

fn parse(name: &str, sql: &str) -> Vec<u8> {
    let mut out = Vec::new();
    encode::parse(&mut out, name, sql, &[]).unwrap();
    out
}

fn bind(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    encode::bind(&mut out, "", name, &[], &[Some(b"7")], &[]).unwrap();
    out
}

fn close(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    encode::close(&mut out, Target::Statement, name).unwrap();
    out
}

fn describe(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    encode::describe(&mut out, Target::Statement, name).unwrap();
    out
}

fn error_body(code: &str) -> Vec<u8> {
    let bytes = PgError::error("00000", "x").to_bytes();
    let mut body = bytes[5..].to_vec();
    // Swap the code in place: the fields are S, V, C, M.
    let at = body.windows(6).position(|w| w == b"C00000").unwrap();
    body[at + 1..at + 6].copy_from_slice(code.as_bytes());
    body
}

#[test]
fn only_named_statements_are_rewritten() {
    assert!(!names_statement(Tag::PARSE, &parse("", "SELECT 1")[5..]));
    assert!(names_statement(Tag::PARSE, &parse("s", "SELECT 1")[5..]));
    assert!(!names_statement(Tag::BIND, &bind("")[5..]));
    assert!(names_statement(Tag::BIND, &bind("s")[5..]));
    assert!(!names_statement(Tag::DESCRIBE, b"P\0"));
    assert!(!names_statement(Tag::DESCRIBE, b"S\0"));
    assert!(names_statement(Tag::CLOSE, b"Ss\0"));
    assert!(!names_statement(Tag::EXECUTE, b"\0\0\0\0\0"));
}

#[test]
fn parse_is_renamed_and_its_tail_forwarded() {
    let mut f = Fixture::new(10);
    let message = parse("s1", "SELECT $1");
    assert_eq!(f.send(&message), Consume::Head(3));
    let id = f.client.get(b"s1").unwrap().id;
    let internal = format!("qcp_{id}");
    // The header and the new name are qcp's; the rest is the client's, forwarded.
    assert_eq!(f.out, parse(&internal, "SELECT $1"));
    f.out.clear();
    f.sync();
    assert_eq!(f.answer(Tag::PARSE_COMPLETE, b""), Action::Forward);
    assert_eq!(f.server.state(id), Some(State::Ready));
    assert!(f.client.get(b"s1").unwrap().accepted());
}

#[test]
fn bind_on_a_backend_without_the_statement_prepares_it_silently() {
    let mut f = Fixture::new(10);
    f.send(&parse("s1", "SELECT 1"));
    f.sync();
    f.answer(Tag::PARSE_COMPLETE, b"");
    f.answer(Tag::READY_FOR_QUERY, b"I");
    // Another backend: nothing prepared there.
    f.server = ServerStatements::new(10);
    f.tracker.reset();
    f.out.clear();
    let message = bind("s1");
    assert_eq!(f.send(&message), Consume::Head(1 + 3));
    let id = f.client.get(b"s1").unwrap().id;
    let internal = format!("qcp_{id}");
    let sent = f.sent();
    assert_eq!(
        sent,
        vec![('P', internal.clone()), ('B', internal.clone())],
        "a Parse first, then the renamed Bind"
    );
    f.sync();
    assert_eq!(f.answer(Tag::PARSE_COMPLETE, b""), Action::Discard);
    assert_eq!(f.answer(Tag::BIND_COMPLETE, b""), Action::Forward);
    assert_eq!(f.server.state(id), Some(State::Ready));
}

#[test]
fn a_second_parse_of_a_known_text_is_answered_by_a_harmless_close() {
    let mut f = Fixture::new(10);
    f.send(&parse("a", "SELECT 1"));
    f.sync();
    f.answer(Tag::PARSE_COMPLETE, b"");
    f.answer(Tag::READY_FOR_QUERY, b"I");
    f.out.clear();
    assert_eq!(f.send(&parse("b", "SELECT 1")), Consume::Whole);
    assert_eq!(f.sent(), vec![('C', "qcp_0".to_owned())]);
    f.sync();
    assert_eq!(
        f.answer(Tag::CLOSE_COMPLETE, b""),
        Action::Retag(Tag::PARSE_COMPLETE)
    );
    assert!(Arc::ptr_eq(
        f.client.get(b"a").unwrap(),
        f.client.get(b"b").unwrap()
    ));
}

#[test]
fn unknown_and_duplicate_names_fail_in_band_with_postgresql_errors() {
    let mut f = Fixture::new(10);
    assert_eq!(f.send(&bind("nope")), Consume::Whole);
    assert_eq!(f.sent(), vec![('D', "qcp_0".to_owned())]);
    assert_eq!(
        f.answer(Tag::ERROR_RESPONSE, &error_body("26000")),
        Action::Replace
    );
    f.sync();
    f.answer(Tag::READY_FOR_QUERY, b"I");

    f.send(&parse("s1", "SELECT 1"));
    f.sync();
    f.answer(Tag::PARSE_COMPLETE, b"");
    f.answer(Tag::READY_FOR_QUERY, b"I");
    f.out.clear();
    f.send(&parse("s1", "SELECT 2"));
    let sent: String = f.sent().iter().map(|(t, n)| format!("{t}:{n} ")).collect();
    assert_eq!(
        sent, "P:qcp_sentinel P:qcp_sentinel ",
        "the sentinel first, then the client's SQL under its name"
    );
    let hook = f.hooks.back().unwrap();
    let bytes = replacement(hook).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("42P05"), "{text}");
    assert!(
        text.contains("prepared statement \"s1\" already exists"),
        "{text}"
    );

    // Any other error (the client's SQL does not even parse) is PostgreSQL's to tell.
    f.sync();
    f.answer(Tag::PARSE_COMPLETE, b""); // the sentinel
    assert_eq!(
        f.answer(Tag::ERROR_RESPONSE, &error_body("42601")),
        Action::Forward
    );

    let mut g = Fixture::new(10);
    g.send(&describe("gone"));
    let text =
        String::from_utf8_lossy(&replacement(g.hooks.front().unwrap()).unwrap()).into_owned();
    assert!(
        text.contains("26000") && text.contains("\"gone\" does not exist"),
        "{text}"
    );
}

#[test]
fn close_keeps_the_shared_statement_and_a_skipped_close_keeps_the_name() {
    let mut f = Fixture::new(10);
    f.send(&parse("s1", "SELECT 1"));
    f.sync();
    f.answer(Tag::PARSE_COMPLETE, b"");
    f.answer(Tag::READY_FOR_QUERY, b"I");
    let id = f.client.get(b"s1").unwrap().id;
    f.out.clear();
    // An Execute that fails first, then the Close in the same batch.
    f.tracker.client_message(Tag::EXECUTE).unwrap();
    assert_eq!(f.send(&close("s1")), Consume::Whole);
    assert_eq!(f.sent(), vec![('C', "qcp_0".to_owned())]);
    f.sync();
    // Another batch already sent: it must wait for the Close's fate.
    assert_eq!(f.send(&bind("s1")), Consume::NotYet);
    assert!(f.out.is_empty(), "nothing sent for a message that waits");
    f.answer(Tag::ERROR_RESPONSE, &error_body("22012"));
    f.answer(Tag::READY_FOR_QUERY, b"I");
    assert_eq!(
        f.send(&bind("s1")),
        Consume::Head(4),
        "the Close was skipped"
    );
    assert_eq!(f.server.state(id), Some(State::Ready));
}

#[test]
fn eviction_closes_are_swallowed_and_the_bound_holds() {
    let mut f = Fixture::new(2);
    for (name, sql) in [("a", "SELECT 1"), ("b", "SELECT 2"), ("c", "SELECT 3")] {
        f.send(&parse(name, sql));
        f.sync();
    }
    let first = f.client.get(b"a").unwrap().id;
    let sent = f.sent();
    assert_eq!(
        sent.iter().map(|(t, _)| *t).collect::<String>(),
        "PPCP",
        "the third Parse closes the least recently used first: {sent:?}"
    );
    assert_eq!(sent[2].1, format!("qcp_{first}"));
    assert_eq!(f.answer(Tag::PARSE_COMPLETE, b""), Action::Forward);
    f.answer(Tag::READY_FOR_QUERY, b"I");
    assert_eq!(f.answer(Tag::PARSE_COMPLETE, b""), Action::Forward);
    f.answer(Tag::READY_FOR_QUERY, b"I");
    assert_eq!(f.answer(Tag::CLOSE_COMPLETE, b""), Action::Discard);
    assert_eq!(f.answer(Tag::PARSE_COMPLETE, b""), Action::Forward);
    f.answer(Tag::READY_FOR_QUERY, b"I");
    assert_eq!(f.server.state(first), None);
    assert_eq!(f.server.len(), 2);
}

#[test]
fn a_stale_plan_error_makes_the_next_use_prepare_again() {
    let mut f = Fixture::new(10);
    f.send(&parse("s1", "SELECT * FROM t"));
    f.sync();
    f.answer(Tag::PARSE_COMPLETE, b"");
    f.answer(Tag::READY_FOR_QUERY, b"I");
    let id = f.client.get(b"s1").unwrap().id;
    f.out.clear();
    f.send(&bind("s1"));
    f.sync();
    assert_eq!(
        f.answer(Tag::ERROR_RESPONSE, &error_body("0A000")),
        Action::Forward
    );
    f.answer(Tag::READY_FOR_QUERY, b"I");
    assert_eq!(f.server.state(id), Some(State::Unsure));
    f.out.clear();
    f.send(&bind("s1"));
    let tags: String = f.sent().iter().map(|(t, _)| *t).collect();
    assert_eq!(tags, "CPB", "closed, prepared again, then bound");
}

#[test]
fn deallocate_statements_are_recognised_as_postgresql_reads_them() {
    assert_eq!(deallocated_name(b"DEALLOCATE s1\0"), Some(b"s1".to_vec()));
    assert_eq!(
        deallocated_name(b"  deallocate PREPARE S1 ;\0"),
        Some(b"s1".to_vec())
    );
    assert_eq!(
        deallocated_name(b"DEALLOCATE \"My \"\"S\"\"\"\0"),
        Some(b"My \"S\"".to_vec())
    );
    assert_eq!(
        deallocated_name(b"DEALLOCATE prepare\0"),
        Some(b"prepare".to_vec())
    );
    assert_eq!(deallocated_name(b"DEALLOCATE ALL\0"), None);
    assert_eq!(deallocated_name(b"DEALLOCATE a; SELECT 1\0"), None);
    assert_eq!(deallocated_name(b"DEALLOCATEs1\0"), None);
    assert!(may_deallocate(b"\n  Deallocate x"));
    assert!(!may_deallocate(b"SELECT 1"));
    assert!(drops_all_statements(b"DISCARD ALL\0"));
    assert!(drops_all_statements(b"DEALLOCATE ALL\0"));
    assert!(!drops_all_statements(b"DEALLOCATE\0"));
    assert_eq!(error_code(&error_body("26000")), b"26000");
}

#[test]
fn a_statement_evicted_for_the_sentinel_is_prepared_again_in_the_next_batch() {
    let mut f = Fixture::new(2);
    for (name, sql) in [("a", "SELECT 1"), ("b", "SELECT 2")] {
        f.send(&parse(name, sql));
        f.sync();
        f.answer(Tag::PARSE_COMPLETE, b"");
        f.answer(Tag::READY_FOR_QUERY, b"I");
    }
    f.out.clear();
    f.send(&parse("a", "SELECT 1"));
    f.sync();
    f.send(&bind("a"));
    let a = f.client.get(b"a").unwrap().id;
    let sent: Vec<String> = f.sent().iter().map(|(t, n)| format!("{t}:{n}")).collect();
    let internal = format!("qcp_{a}");
    let bind_at = sent
        .iter()
        .position(|m| *m == format!("B:{internal}"))
        .unwrap();
    assert!(
        sent[..bind_at].contains(&format!("P:{internal}")),
        "a is prepared again before its Bind: {sent:?}"
    );
}

#[test]
fn nothing_is_evicted_or_prepared_while_the_server_skips_to_sync() {
    let mut f = Fixture::new(1);
    f.send(&parse("a", "SELECT 1"));
    f.sync();
    f.answer(Tag::PARSE_COMPLETE, b"");
    f.answer(Tag::READY_FOR_QUERY, b"I");
    f.send(&parse("b", "SELECT 2"));
    f.sync();
    f.answer(Tag::CLOSE_COMPLETE, b""); // a was evicted
    f.answer(Tag::PARSE_COMPLETE, b"");
    f.answer(Tag::READY_FOR_QUERY, b"I");
    f.out.clear();
    // An Execute fails: the server now skips everything up to the Sync.
    f.tracker.client_message(Tag::EXECUTE).unwrap();
    f.answer(Tag::ERROR_RESPONSE, &error_body("22012"));
    assert!(f.tracker.skipping());
    // Once looped forever: each Close it sent was skipped at once, which put the statement
    // back, which called for another Close.
    assert_eq!(f.send(&bind("a")), Consume::Head(3));
    let tags: String = f.sent().iter().map(|(t, _)| *t).collect();
    assert_eq!(
        tags, "B",
        "only the renamed Bind, which the server skips too"
    );
}

#[test]
fn a_bind_is_renamed_from_its_names_alone() {
    let mut f = Fixture::new(10);
    f.send(&parse("s1", "SELECT $1"));
    f.sync();
    f.answer(Tag::PARSE_COMPLETE, b"");
    f.answer(Tag::READY_FOR_QUERY, b"I");
    f.out.clear();
    let id = f.client.get(b"s1").unwrap().id;
    let internal = format!("qcp_{id}");
    let mut message = Vec::new();
    encode::bind(&mut message, "p", "s1", &[], &[Some(&[7u8; 100])], &[]).unwrap();
    // Only the names (and one byte more) have arrived; the parameters are still to come.
    let body = &message[5..];
    let consume = f.rewrite(Tag::BIND, &body[..6], body.len()).unwrap();
    assert_eq!(consume, Consume::Head(5));
    // qcp's head, then the rest of the client's message as the relay forwards it.
    f.out.extend_from_slice(&body[5..]);
    let mut renamed = Vec::new();
    encode::bind(&mut renamed, "p", &internal, &[], &[Some(&[7u8; 100])], &[]).unwrap();
    assert_eq!(f.out, renamed);
}

#[test]
fn malformed_statement_messages_are_refused() {
    let mut f = Fixture::new(10);
    let refused = |result: Result<Consume, RewriteError>| match result {
        Err(RewriteError::Malformed(what)) => what,
        other => panic!("not refused: {other:?}"),
    };
    // A name longer than the buffer: its NUL is not there.
    let what = refused(f.rewrite(Tag::DESCRIBE, b"Ss1", 100));
    assert_eq!(what, "statement name is too long");
    let what = refused(f.rewrite(Tag::BIND, b"p", 100));
    assert_eq!(what, "Bind portal name is too long");
    let what = refused(f.rewrite(Tag::BIND, b"\0s1", 100));
    assert_eq!(what, "Bind statement name is too long");
    let what = refused(f.rewrite(Tag::PARSE, b"s1", 2));
    assert_eq!(what, "Parse without a statement name");
    // Bytes after the name, and a Parse whose parameter types do not fit.
    let what = refused(f.rewrite(Tag::CLOSE, b"Ss1\0x", 5));
    assert_eq!(what, "malformed Describe or Close");
    let what = refused(f.rewrite(Tag::PARSE, b"s1\0SELECT 1\0\0\x05", 14));
    assert_eq!(what, "malformed Parse");
    assert!(f.out.is_empty(), "nothing sent for a refused message");
    assert!(f.client.is_empty() && f.registry.live() == 0);
}

#[test]
fn the_sqlstate_is_read_from_the_start_of_a_long_error() {
    let body = error_body("0A000");
    let code_end = body.windows(6).position(|w| w == b"C0A000").unwrap() + 7;
    // The error is larger than the buffer: only its start is there.
    assert_eq!(error_code(&body[..code_end]), b"0A000");
    assert_eq!(
        error_code(&body[..code_end - 1]),
        b"",
        "the code itself is cut"
    );
    assert_eq!(error_code(b""), b"");
    assert_eq!(
        error_code(b"SERROR\0\0C0A000\0"),
        b"",
        "nothing after the end"
    );
}

#[test]
fn the_tally_counts_parses_hits_binds_and_evictions() {
    let mut f = Fixture::new(1);
    f.send(&parse("a", "SELECT 1"));
    f.sync();
    f.answer(Tag::PARSE_COMPLETE, b"");
    f.answer(Tag::READY_FOR_QUERY, b"I");
    // The same text again: found on the server, no Parse sent.
    f.send(&parse("b", "SELECT 1"));
    f.sync();
    f.answer(Tag::CLOSE_COMPLETE, b"");
    f.answer(Tag::READY_FOR_QUERY, b"I");
    f.send(&bind("b"));
    f.sync();
    f.answer(Tag::BIND_COMPLETE, b"");
    f.answer(Tag::READY_FOR_QUERY, b"I");
    // Another text on a backend that holds one: the first is evicted.
    f.send(&parse("c", "SELECT 2"));
    f.sync();
    assert_eq!(
        f.tally,
        StatementTally {
            client_parses: 3,
            server_parses: 2,
            binds: 1,
            hits: 1,
            evictions: 1,
        }
    );
}

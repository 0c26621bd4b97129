//! Whole answers, decoded with qcp-codec; roles; `table()` and `render()`; the greeting.

use qcp_codec::{BackendMessage, Limits};

use super::*;

/// The messages of an answer, decoded: (tag, summary).
fn decode(bytes: &[u8]) -> Vec<(char, String)> {
    let limits = Limits::default();
    let mut rest = bytes;
    let mut out = Vec::new();
    while let Some((msg, used)) = BackendMessage::decode(rest, &limits).unwrap() {
        let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
        out.push(match msg {
            BackendMessage::RowDescription(rd) => (
                'T',
                rd.fields()
                    .map(|f| format!("{}:{}", f.name_str().unwrap(), f.type_oid))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            BackendMessage::DataRow(row) => (
                'D',
                row.values()
                    .map(|v| v.map_or("NULL".into(), |b| text(Some(b))))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            BackendMessage::CommandComplete(c) => ('C', c.tag_str().unwrap().to_owned()),
            BackendMessage::EmptyQueryResponse => ('I', String::new()),
            BackendMessage::ErrorResponse(e) => (
                'E',
                format!(
                    "{} {} {}",
                    text(e.severity()),
                    text(e.sqlstate()),
                    text(e.message())
                ),
            ),
            BackendMessage::NoticeResponse(e) => (
                'N',
                format!(
                    "{} {} {}|{}",
                    text(e.severity()),
                    text(e.sqlstate()),
                    text(e.message()),
                    text(e.detail())
                ),
            ),
            other => panic!("unexpected {other:?}"),
        });
        rest = &rest[used..];
    }
    assert!(rest.is_empty(), "trailing bytes");
    out
}

fn ask(query: &str, role: Role) -> Vec<(char, String)> {
    let mut out = b"prefix".to_vec();
    let answered = answer(query, role, &sample(), &mut out);
    assert!(matches!(answered, Answer::Done(_)), "{answered:?}");
    assert_eq!(&out[..6], b"prefix", "answer appends");
    decode(&out[6..])
}

#[test]
fn show_pools_on_the_wire() {
    let messages = ask("show pools;", Role::Stats);
    let tags: String = messages.iter().map(|(t, _)| *t).collect();
    assert_eq!(tags, "TDDDC", "no ReadyForQuery: the driver adds it");
    assert!(messages[0]
        .1
        .starts_with("database:25,user:25,cl_active:23,"));
    assert!(messages[0].1.contains("pool_mode:25,load_balance_hosts:25"));
    assert_eq!(
        messages[1].1,
        "app,alice,2,1,0,0,1,0,0,1,2,0,1,3,250000,transaction,NULL"
    );
    assert_eq!(messages[4].1, "SHOW");
    let stats = ask("SHOW STATS", Role::Admin);
    assert!(stats[0].1.contains("total_received:1700"), "{}", stats[0].1);
}

#[test]
fn help_is_a_notice_then_show() {
    let messages = ask("SHOW HELP", Role::Admin);
    assert_eq!(messages.len(), 2);
    let (tag, notice) = &messages[0];
    assert_eq!(*tag, 'N');
    assert!(
        notice.starts_with("NOTICE 00000 Console usage|\n\tSHOW "),
        "{notice}"
    );
    for item in Item::all() {
        assert!(notice.contains(item.name()), "{} in {notice}", item.name());
    }
    for verb in Verb::ALL {
        assert!(notice.contains(verb.name()), "{} in {notice}", verb.name());
    }
    assert_eq!(messages[1], ('C', "SHOW".into()));
}

#[test]
fn empty_and_wrong_queries() {
    assert_eq!(ask(" ; ", Role::Admin), [('I', String::new())]);
    let e = ask("SELCT 1", Role::Admin);
    assert_eq!(e.len(), 1);
    assert!(e[0].1.starts_with("ERROR 42601 "), "{e:?}");
    assert!(
        e[0].1.contains("SELCT") && e[0].1.contains("SHOW HELP"),
        "{e:?}"
    );
    let e = ask("SHOW nothing", Role::Admin);
    assert!(e[0].1.starts_with("ERROR 42704 "), "{e:?}");
    assert!(e[0].1.contains("POOLS"), "{e:?}");
}

#[test]
fn acting_commands_by_role() {
    let e = ask("PAUSE app", Role::Stats);
    assert_eq!(e.len(), 1);
    assert!(e[0].1.starts_with("ERROR 42501 permission denied"), "{e:?}");
    assert!(e[0].1.contains("stats_users may only run SHOW"), "{e:?}");
    let e = ask("set a = 1", Role::Stats);
    assert!(e[0].1.starts_with("ERROR 42501 "), "{e:?}");
    // An admin's acting command goes to the driver, nothing written.
    let mut out = Vec::new();
    let act = answer("PAUSE app", Role::Admin, &sample(), &mut out);
    assert_eq!(
        act,
        Answer::Act {
            verb: Verb::Pause,
            argument: Argument::Database("app".into())
        }
    );
    assert!(out.is_empty());
    let act = answer("kill_client 7", Role::Admin, &sample(), &mut out);
    assert_eq!(
        act,
        Answer::Act {
            verb: Verb::KillClient,
            argument: Argument::Client(7)
        }
    );
    // A malformed command is a syntax error for anyone.
    let e = ask("DISABLE", Role::Stats);
    assert!(e[0].1.starts_with("ERROR 42601 "), "{e:?}");
}

#[test]
fn acted_commands_answer_notices_then_their_name_or_the_error() {
    let mut out = Vec::new();
    let code = acted(Verb::Reload, Ok(vec!["timeouts changed".into()]), &mut out);
    assert_eq!(code, None);
    assert_eq!(
        decode(&out),
        [
            ('N', "NOTICE 00000 timeouts changed|".into()),
            ('C', "RELOAD".into())
        ]
    );
    let mut out = b"keep".to_vec();
    let error = PgError::error(sqlstate::CONFIG_FILE_ERROR, "bad file");
    assert_eq!(acted(Verb::Reload, Err(error), &mut out), Some("F0000"));
    assert_eq!(decode(&out[4..]), [('E', "ERROR F0000 bad file".into())]);
}

#[test]
fn tables_for_qcp_ctrl() {
    let snapshot = sample();
    let pools = table(" Pools ", &snapshot).unwrap();
    assert_eq!(pools, show::table(Item::Pools, &snapshot));
    assert_eq!(table("nope", &snapshot).unwrap_err().code, "42704");
    let help = table("help", &snapshot).unwrap();
    assert!(help.rows.len() > 5);
    let text = render(&table("stats", &snapshot).unwrap());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[2].starts_with("app "), "{text}");
    assert!(lines[2].contains("4.88 KiB"), "5000 bytes: {text}");
    assert!(lines[2].contains("60.0 ms"), "60000 µs: {text}");
    assert!(lines[2].contains("200 µs"), "{text}");
    let text = render(&table("pools", &snapshot).unwrap());
    assert!(text.contains("3 s") && text.contains("250.0 ms"), "{text}");
}

#[test]
fn greeting_is_what_psql_expects() {
    let greeting = greeting();
    let get = |name: &str| {
        greeting
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let version = get("server_version");
    assert!(
        version.starts_with(|c: char| c.is_ascii_digit()),
        "{version}"
    );
    assert!(version.ends_with("/qcp"));
    assert_eq!(get("client_encoding"), "UTF8");
    assert_eq!(get("server_encoding"), "UTF8");
    assert_eq!(get("DateStyle"), "ISO");
    assert_eq!(get("TimeZone"), "UTC");
    assert_eq!(get("standard_conforming_strings"), "on");
    assert_eq!(get("is_superuser"), "on");
}

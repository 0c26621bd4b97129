//! The grammar: case, whitespace, `;`, arguments per command, and the errors.

use super::*;

fn act(verb: Verb, argument: Argument) -> Command {
    Command::Act { verb, argument }
}

fn code(query: &str) -> &'static str {
    match parse(query) {
        Err(e) => e.code,
        Ok(c) => panic!("{query:?} parsed as {c:?}"),
    }
}

#[test]
fn show_in_any_case_with_whitespace_and_one_semicolon() {
    for q in [
        "SHOW POOLS",
        "show pools",
        "  Show\tPools ;",
        "\nSHOW POOLS;\n",
        "SHOW \"pools\"",
    ] {
        assert_eq!(parse(q), Ok(Command::Show(Item::Pools)), "{q:?}");
    }
    assert_eq!(
        parse("show stats_averages"),
        Ok(Command::Show(Item::StatsAverages))
    );
    assert_eq!(
        parse("SHOW prepared_statements;"),
        Ok(Command::Show(Item::PreparedStatements))
    );
    assert_eq!(code("SHOW POOLS;;"), sqlstate::SYNTAX_ERROR);
    assert_eq!(code("SHOW POOLS extra"), sqlstate::SYNTAX_ERROR);
    assert_eq!(code("SHOW 'pools'"), sqlstate::SYNTAX_ERROR);
    assert_eq!(code("SHOW = pools"), sqlstate::SYNTAX_ERROR);
    assert_eq!(code("SHOW"), sqlstate::SYNTAX_ERROR);
}

#[test]
fn every_item_parses_from_its_name() {
    for item in Item::all() {
        assert_eq!(
            parse(&format!("show {}", item.name().to_lowercase())),
            Ok(Command::Show(item))
        );
    }
}

#[test]
fn empty_queries() {
    for q in ["", "   ", ";", " ; ", ";;", "\n"] {
        assert_eq!(parse(q), Ok(Command::Empty), "{q:?}");
    }
}

#[test]
fn unknown_command_names_it_and_points_to_help() {
    let e = parse("SELECT * FROM pg_class").unwrap_err();
    assert_eq!(e.code, sqlstate::SYNTAX_ERROR);
    assert!(e.message.contains("\"SELECT\""), "{}", e.message);
    assert!(e.message.contains("SHOW HELP"), "{}", e.message);
    assert_eq!(code("SHOW POOLS # x"), sqlstate::SYNTAX_ERROR);
    assert_eq!(code("-- comment"), sqlstate::SYNTAX_ERROR);
}

#[test]
fn unknown_item_lists_the_known_ones() {
    let e = parse("SHOW poolz").unwrap_err();
    assert_eq!(e.code, sqlstate::UNDEFINED_OBJECT);
    assert!(e.message.contains("\"poolz\""), "{}", e.message);
    for item in Item::all() {
        assert!(e.message.contains(item.name()), "{}", e.message);
    }
    assert_eq!(code("SHOW peers"), sqlstate::FEATURE_NOT_SUPPORTED);
}

#[test]
fn acting_commands_and_their_arguments() {
    assert_eq!(parse("pause"), Ok(act(Verb::Pause, Argument::None)));
    assert_eq!(
        parse("PAUSE MyDb;"),
        Ok(act(Verb::Pause, Argument::Database("MyDb".into())))
    );
    assert_eq!(
        parse("resume \"my-db\"\"x\""),
        Ok(act(Verb::Resume, Argument::Database("my-db\"x".into())))
    );
    assert_eq!(parse("RELOAD"), Ok(act(Verb::Reload, Argument::None)));
    assert_eq!(code("RELOAD now"), sqlstate::SYNTAX_ERROR);
    assert_eq!(parse("suspend"), Ok(act(Verb::Suspend, Argument::None)));
    assert_eq!(parse("kill"), Ok(act(Verb::Kill, Argument::None)));
    assert_eq!(
        parse("KILL_CLIENT 42"),
        Ok(act(Verb::KillClient, Argument::Client(42)))
    );
    assert_eq!(code("KILL_CLIENT"), sqlstate::SYNTAX_ERROR);
    assert_eq!(code("KILL_CLIENT 0x1a"), sqlstate::SYNTAX_ERROR);
    assert_eq!(
        parse("reconnect db1"),
        Ok(act(Verb::Reconnect, Argument::Database("db1".into())))
    );
    assert_eq!(
        parse("DISABLE db1"),
        Ok(act(Verb::Disable, Argument::Database("db1".into())))
    );
    assert_eq!(code("ENABLE"), sqlstate::SYNTAX_ERROR);
    assert_eq!(
        parse("wait_close"),
        Ok(act(Verb::WaitClose, Argument::None))
    );
    assert_eq!(
        parse("SHUTDOWN"),
        Ok(act(
            Verb::Shutdown,
            Argument::Shutdown(ShutdownMode::Immediate)
        ))
    );
    assert_eq!(
        parse("shutdown wait_for_clients"),
        Ok(act(
            Verb::Shutdown,
            Argument::Shutdown(ShutdownMode::WaitForClients)
        ))
    );
    assert_eq!(
        parse("SHUTDOWN WAIT_FOR_SERVERS;"),
        Ok(act(
            Verb::Shutdown,
            Argument::Shutdown(ShutdownMode::WaitForServers)
        ))
    );
    assert_eq!(code("SHUTDOWN later"), sqlstate::SYNTAX_ERROR);
    assert_eq!(code("PAUSE a b"), sqlstate::SYNTAX_ERROR);
    assert_eq!(code("PAUSE 'db'"), sqlstate::SYNTAX_ERROR);
    assert_eq!(code("KILL ="), sqlstate::SYNTAX_ERROR);
}

#[test]
fn set_with_equals_or_to_and_quoted_values() {
    let set = |key: &str, value: &str| {
        Ok(act(
            Verb::Set,
            Argument::Setting {
                key: key.into(),
                value: value.into(),
            },
        ))
    };
    assert_eq!(parse("SET query_wait = 10"), set("query_wait", "10"));
    assert_eq!(parse("set query_wait to 10;"), set("query_wait", "10"));
    assert_eq!(parse("SET a='it''s 1.5 s'"), set("a", "it's 1.5 s"));
    assert_eq!(parse("SET \"a b\" = \"x\""), set("a b", "x"));
    assert_eq!(code("SET a = 1.5"), sqlstate::SYNTAX_ERROR);
    assert_eq!(code("SET a"), sqlstate::SYNTAX_ERROR);
    assert_eq!(code("SET a = 'open"), sqlstate::SYNTAX_ERROR);
    assert_eq!(code("SET = 1"), sqlstate::SYNTAX_ERROR);
    assert_eq!(code("SET \"\" = 1"), sqlstate::SYNTAX_ERROR);
    assert_eq!(code("SET 'a' = 1"), sqlstate::SYNTAX_ERROR);
    assert!(parse("SET a = 1.5").unwrap_err().hint.is_some());
}

#[test]
fn long_queries_are_cut_in_messages() {
    let long = format!("FOO{}", "x".repeat(500));
    let e = parse(&long).unwrap_err();
    assert!(e.message.len() < 200, "{}", e.message);
}

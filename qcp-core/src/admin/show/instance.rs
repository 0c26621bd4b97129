//! The tables about the qcp process itself: SHOW VERSION, CONFIG, MEM, STATE, the command
//! list of SHOW HELP, and qcp's own SHOW ARENA and SHOW PREPARED_STATEMENTS.

use crate::admin::command::{Item, Verb};
use crate::admin::resultset::{Column, ResultSet, Unit, Value};
use crate::stats::Snapshot;

pub(super) fn version(snapshot: &Snapshot) -> ResultSet {
    let mut set = ResultSet::new(&[Column::text("version")]);
    // PgBouncer answers "PgBouncer 1.25.2"; tools only display the text.
    set.push(vec![Value::Text(format!("qcp {}", snapshot.version))]);
    set
}

/// SHOW CONFIG: one row per setting.
const CONFIG: [Column; 4] = [
    Column::text("key"),
    Column::text("value"),
    Column::text("default"),
    Column::text("changeable"),
];

pub(super) fn config(snapshot: &Snapshot) -> ResultSet {
    let mut set = ResultSet::new(&CONFIG);
    for item in &snapshot.config {
        set.push(vec![
            Value::text(&item.key),
            Value::text(&item.value),
            Value::text(&item.default),
            Value::text(if item.changeable { "yes" } else { "no" }),
        ]);
    }
    set
}

/// SHOW MEM: one row per kind of object.
const MEM: [Column; 5] = [
    Column::text("name"),
    Column::int4("size").unit(Unit::Bytes),
    Column::int4("used"),
    Column::int4("free"),
    Column::int4("memtotal").unit(Unit::Bytes),
];

pub(super) fn mem(snapshot: &Snapshot) -> ResultSet {
    let mut set = ResultSet::new(&MEM);
    // The arena's chunks first: they are most of qcp's memory. (An int4 column shows at
    // most 2 GiB; SHOW ARENA has the figures as int8.)
    let arena = &snapshot.arena.stats;
    set.push(vec![
        Value::text("arena_chunk"),
        Value::size(arena.chunk_size),
        Value::size(arena.in_use),
        Value::size(arena.chunks_count.saturating_sub(arena.in_use)),
        Value::size(arena.chunk_size.saturating_mul(arena.chunks_count)),
    ]);
    for row in &snapshot.memory {
        set.push(vec![
            Value::text(&row.name),
            Value::count(row.size),
            Value::count(row.used),
            Value::count(row.free),
            Value::count(row.memtotal),
        ]);
    }
    set
}

pub(super) fn state(snapshot: &Snapshot) -> ResultSet {
    // qcp cannot be paused or suspended yet. While it shuts down it is not active either,
    // so all three say "no": PgBouncer never shows that combination, and it reads as
    // "stopping".
    let active = !snapshot.shutting_down;
    let yes_no = |b: bool| Value::text(if b { "yes" } else { "no" });
    let mut set = ResultSet::new(&[Column::text("key"), Column::text("value")]);
    for (key, value) in [("active", active), ("paused", false), ("suspended", false)] {
        set.push(vec![Value::text(key), yes_no(value)]);
    }
    set
}

/// SHOW ARENA: qcp's traffic memory, one row.
const ARENA: [Column; 10] = [
    Column::int8("chunk_size").unit(Unit::Bytes),
    Column::int8("chunks_total"),
    Column::int8("chunks_used"),
    Column::int8("chunks_free"),
    Column::int8("chunks_reserved"),
    Column::int8("chunks_peak"),
    Column::int8("waiting"),
    Column::int8("waits"),
    Column::int8("exhaustions"),
    Column::int8("acquisitions"),
];

pub(super) fn arena(snapshot: &Snapshot) -> ResultSet {
    let view = &snapshot.arena;
    let stats = &view.stats;
    let mut set = ResultSet::new(&ARENA);
    set.push(vec![
        Value::size(stats.chunk_size),
        Value::size(stats.chunks_count),
        Value::size(stats.in_use),
        Value::size(stats.chunks_count.saturating_sub(stats.in_use)),
        Value::count(view.reserved),
        Value::size(stats.peak),
        // Callers queued for a chunk right now, and how many times one had to queue.
        Value::size(stats.waiting),
        Value::count(stats.exhausted),
        // Requests that found no chunk within query_wait (the client got 53200).
        Value::count(view.exhaustions),
        Value::count(stats.acquisitions),
    ]);
    set
}

/// SHOW PREPARED_STATEMENTS: the named statements each pool's clients use.
const PREPARED: [Column; 4] = [
    Column::text("database"),
    Column::text("user"),
    Column::text("name"),
    Column::text("query"),
];

pub(super) fn prepared_statements(snapshot: &Snapshot) -> ResultSet {
    let mut set = ResultSet::new(&PREPARED);
    for p in &snapshot.prepared {
        set.push(vec![
            Value::text(&p.database),
            Value::text(&p.user),
            Value::text(&p.name),
            Value::text(&p.query),
        ]);
    }
    set
}

/// The acting commands with their arguments, as SHOW HELP lists them.
const ACTS: [(Verb, &str); 14] = [
    (Verb::Set, " key = value"),
    (Verb::Reload, ""),
    (Verb::Pause, " [<db>]"),
    (Verb::Resume, " [<db>]"),
    (Verb::Disable, " <db>"),
    (Verb::Enable, " <db>"),
    (Verb::Reconnect, " [<db>]"),
    (Verb::Kill, " [<db>]"),
    (Verb::KillClient, " <id>"),
    (Verb::Suspend, ""),
    (Verb::Shutdown, ""),
    (Verb::Shutdown, " WAIT_FOR_CLIENTS"),
    (Verb::Shutdown, " WAIT_FOR_SERVERS"),
    (Verb::WaitClose, " [<db>]"),
];

/// One line per command form.
fn help_lines() -> Vec<String> {
    let shows = Item::GROUPS.iter().map(|group| {
        let names: Vec<&str> = group.iter().map(|item| item.name()).collect();
        format!("SHOW {}", names.join("|"))
    });
    let acts = ACTS
        .iter()
        .map(|(verb, arguments)| format!("{}{arguments}", verb.name()));
    shows.chain(acts).collect()
}

/// The DETAIL of SHOW HELP's notice: the command list, a line each, indented by a tab
/// after a first line break (psql then prints it under the "DETAIL:" label).
pub(crate) fn help_detail() -> String {
    help_lines()
        .iter()
        .map(|line| format!("\n\t{line}"))
        .collect()
}

/// The command list as a table, for `qcp-ctrl show help`.
pub(super) fn help() -> ResultSet {
    let mut set = ResultSet::new(&[Column::text("command")]);
    for line in help_lines() {
        set.push(vec![Value::Text(line)]);
    }
    set
}

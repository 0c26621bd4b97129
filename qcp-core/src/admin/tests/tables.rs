//! Each table's columns against PgBouncer 1.25's, and the sample's figures in them.

use super::*;

#[test]
fn columns_match_pgbouncer_1_25() {
    let mut covered = Vec::new();
    for line in FIXTURE.lines() {
        let mut parts = line.split_whitespace();
        if parts.next() != Some("columns") {
            continue;
        }
        let (Some(name), Some(types), Some(names)) = (parts.next(), parts.next(), parts.next())
        else {
            panic!("bad fixture line {line:?}");
        };
        let item = Item::from_name(name).unwrap_or_else(|| panic!("fixture item {name}"));
        let set = show(item);
        let ours: Vec<&str> = set.columns.iter().map(|c| c.name).collect();
        let theirs: Vec<&str> = names.split(',').collect();
        assert_eq!(ours, theirs, "SHOW {name}: column names");
        assert_eq!(types.chars().count(), theirs.len(), "fixture of {name}");
        for (column, letter) in set.columns.iter().zip(types.chars()) {
            assert!(
                matches_letter(column.kind, letter),
                "SHOW {name}: {} is {:?}, PgBouncer says {letter}",
                column.name,
                column.kind
            );
        }
        covered.push(item);
    }
    // Every item PgBouncer has is in the fixture (HELP has no table; ARENA and
    // PREPARED_STATEMENTS are qcp's own).
    for item in Item::all() {
        let own = matches!(item, Item::Help | Item::Arena | Item::PreparedStatements);
        assert_eq!(covered.contains(&item), !own, "{item:?} in the fixture");
    }
}

#[test]
fn row_names_match_pgbouncer_1_25() {
    let mut checked = 0;
    for line in FIXTURE.lines() {
        let mut parts = line.split_whitespace();
        if parts.next() != Some("rows") {
            continue;
        }
        let (Some(name), Some(names)) = (parts.next(), parts.next()) else {
            panic!("bad fixture line {line:?}");
        };
        let set = show(Item::from_name(name).unwrap());
        let first: Vec<String> = (0..set.rows.len())
            .map(|r| cell(&set, r, set.columns[0].name))
            .collect();
        let expected: Vec<&str> = names.split(',').collect();
        assert_eq!(first, expected, "SHOW {name}: rows");
        checked += 1;
    }
    assert_eq!(checked, 3);
}

#[test]
fn every_row_has_a_value_per_column() {
    let snapshot = sample();
    for item in Item::all() {
        let set = show::table(item, &snapshot);
        assert!(!set.rows.is_empty(), "{item:?} has rows for the sample");
        for row in &set.rows {
            assert_eq!(row.len(), set.columns.len(), "{item:?}: {row:?}");
        }
    }
}

#[test]
fn pools_show_the_snapshot_figures() {
    let set = show(Item::Pools);
    assert_eq!(set.rows.len(), 3);
    assert_eq!(cell(&set, 0, "database"), "app");
    assert_eq!(cell(&set, 0, "user"), "alice");
    assert_eq!(cell(&set, 0, "cl_active"), "2");
    assert_eq!(cell(&set, 0, "cl_waiting"), "1");
    assert_eq!(cell(&set, 0, "sv_active"), "1");
    assert_eq!(cell(&set, 0, "sv_idle"), "1");
    assert_eq!(cell(&set, 0, "sv_used"), "2");
    assert_eq!(cell(&set, 0, "sv_login"), "1");
    assert_eq!(cell(&set, 0, "maxwait"), "3");
    assert_eq!(cell(&set, 0, "maxwait_us"), "250000");
    assert_eq!(cell(&set, 0, "pool_mode"), "transaction");
    assert_eq!(cell(&set, 0, "load_balance_hosts"), "NULL");
    assert_eq!(cell(&set, 1, "maxwait"), "0");
    assert_eq!(cell(&set, 1, "cl_waiting"), "0");
    assert_eq!(cell(&set, 2, "user"), "carol");
}

#[test]
fn clients_and_servers_rows() {
    let c = show(Item::Clients);
    assert_eq!(c.rows.len(), 3);
    assert_eq!(cell(&c, 0, "type"), "C");
    assert_eq!(cell(&c, 0, "state"), "active");
    assert_eq!(cell(&c, 1, "state"), "idle", "active and linked to nothing");
    assert_eq!(cell(&c, 2, "state"), "waiting");
    assert_eq!(cell(&c, 0, "replication"), "none");
    assert_eq!(cell(&c, 0, "ptr"), "0x1a");
    assert_eq!(cell(&c, 0, "link"), "0x2b");
    assert_eq!(cell(&c, 1, "link"), "");
    assert_eq!(cell(&c, 0, "addr"), "10.0.0.7");
    assert_eq!(cell(&c, 0, "port"), "50026");
    assert_eq!(cell(&c, 0, "local_port"), "6432");
    assert_eq!(cell(&c, 0, "connect_time"), "2026-12-04 19:48:51 UTC");
    assert_eq!(cell(&c, 0, "request_time"), "2026-12-04 19:49:51 UTC");
    assert_eq!(cell(&c, 2, "wait"), "3");
    assert_eq!(cell(&c, 2, "wait_us"), "250000");
    assert_eq!(cell(&c, 0, "remote_pid"), "0");
    assert_eq!(cell(&c, 0, "application_name"), "job26");
    assert_eq!(cell(&c, 2, "prepared_statements"), "28");
    assert_eq!(cell(&c, 2, "id"), "28");

    let s = show(Item::Servers);
    assert_eq!(s.rows.len(), 2);
    assert_eq!(cell(&s, 0, "type"), "S");
    assert_eq!(cell(&s, 0, "state"), "active");
    assert_eq!(cell(&s, 1, "state"), "idle");
    assert_eq!(cell(&s, 0, "ptr"), "0x2b");
    assert_eq!(cell(&s, 0, "link"), "0x1a", "a client's ptr");
    assert_eq!(cell(&s, 0, "remote_pid"), "70043");
    assert_eq!(cell(&s, 0, "tls"), "TLSv1.3/TLS_AES_256_GCM_SHA384");
    assert_eq!(cell(&s, 0, "wait"), "0");
    // A client's link is the ptr of a server in SHOW SERVERS.
    assert_eq!(cell(&c, 0, "link"), cell(&s, 0, "ptr"));
}

#[test]
fn stats_sum_the_pools_of_each_database() {
    let set = show(Item::Stats);
    let dbs: Vec<String> = (0..set.rows.len())
        .map(|r| cell(&set, r, "database"))
        .collect();
    assert_eq!(dbs, ["app", "billing"]);
    // app = alice + bob.
    assert_eq!(cell(&set, 0, "total_server_assignment_count"), "11");
    assert_eq!(cell(&set, 0, "total_xact_count"), "120");
    assert_eq!(cell(&set, 0, "total_query_count"), "360");
    assert_eq!(cell(&set, 0, "total_received"), "5000");
    assert_eq!(cell(&set, 0, "total_sent"), "10000");
    assert_eq!(cell(&set, 0, "total_xact_time"), "60000");
    assert_eq!(cell(&set, 0, "total_query_time"), "30000");
    assert_eq!(cell(&set, 0, "total_wait_time"), "700");
    assert_eq!(cell(&set, 0, "total_client_parse_count"), "5");
    assert_eq!(cell(&set, 0, "total_server_parse_count"), "2");
    assert_eq!(cell(&set, 0, "total_bind_count"), "42");
    // Rates add up; times are weighted by their pools' rates:
    // (30 × 100 + 10 × 500) / 40 = 200 µs per transaction.
    assert_eq!(cell(&set, 0, "avg_xact_count"), "40");
    assert_eq!(cell(&set, 0, "avg_recv"), "750");
    assert_eq!(cell(&set, 0, "avg_xact_time"), "200");
    // Only alice's pool ran queries in the period.
    assert_eq!(cell(&set, 0, "avg_query_time"), "1000");
    assert_eq!(cell(&set, 0, "avg_wait_time"), "0");
    // billing: no rate to weight by, so its one non-zero average.
    assert_eq!(cell(&set, 1, "total_xact_count"), "7");
    assert_eq!(cell(&set, 1, "avg_xact_time"), "40");

    let t = show(Item::StatsTotals);
    assert_eq!(cell(&t, 0, "xact_count"), "120");
    assert_eq!(cell(&t, 0, "bytes_received"), "5000");
    assert_eq!(cell(&t, 1, "xact_time"), "70");
    let a = show(Item::StatsAverages);
    assert_eq!(cell(&a, 0, "xact_count"), "40");
    assert_eq!(cell(&a, 0, "xact_time"), "200");
    assert_eq!(cell(&a, 0, "bytes_received"), "750");
}

#[test]
fn totals_cover_every_pool() {
    let set = show(Item::Totals);
    let value = |name: &str| {
        let row = (0..set.rows.len())
            .find(|&r| cell(&set, r, "name") == name)
            .unwrap_or_else(|| panic!("no row {name}"));
        cell(&set, row, "value")
    };
    assert_eq!(value("total_xact_count"), "127");
    assert_eq!(value("total_client_bytes"), "5000");
    assert_eq!(value("total_server_bytes"), "10000");
    assert_eq!(value("total_xact_time"), "60070");
    assert_eq!(value("total_ps_bind_count"), "42");
    assert_eq!(value("avg_xact_count"), "40");
    // billing has no rate, so no weight: (30 × 100 + 10 × 500 + 0 × 40) / 40.
    assert_eq!(value("avg_xact_time"), "200");
    assert_eq!(value("avg_client_bytes"), "750");
}

#[test]
fn databases_users_lists_mem_state_arena() {
    let d = show(Item::Databases);
    assert_eq!(cell(&d, 0, "database"), "app_prod");
    assert_eq!(cell(&d, 0, "port"), "5432");
    assert_eq!(cell(&d, 0, "pool_size"), "20");
    assert_eq!(cell(&d, 0, "server_lifetime"), "3600");
    assert_eq!(cell(&d, 0, "force_user"), "NULL");
    assert_eq!(cell(&d, 0, "pool_mode"), "transaction");
    assert_eq!(cell(&d, 0, "current_connections"), "2");
    assert_eq!(cell(&d, 0, "current_client_connections"), "3");

    let u = show(Item::Users);
    assert_eq!(cell(&u, 0, "name"), "alice");
    assert_eq!(cell(&u, 0, "pool_size"), "");
    assert_eq!(cell(&u, 0, "pool_mode"), "NULL");
    assert_eq!(cell(&u, 0, "current_client_connections"), "3");

    let l = show(Item::Lists);
    let items: Vec<String> = (0..l.rows.len()).map(|r| cell(&l, r, "items")).collect();
    assert_eq!(
        items,
        ["1", "1", "0", "3", "0", "0", "3", "4", "0", "2", "0", "0", "0", "0"]
    );

    let m = show(Item::Mem);
    assert_eq!(cell(&m, 0, "name"), "arena_chunk");
    assert_eq!(cell(&m, 0, "size"), "65536");
    assert_eq!(cell(&m, 0, "used"), "10");
    assert_eq!(cell(&m, 0, "free"), "54");
    assert_eq!(cell(&m, 0, "memtotal"), "4194304");
    assert_eq!(cell(&m, 1, "name"), "client");
    assert_eq!(cell(&m, 1, "memtotal"), "2700");

    let s = show(Item::State);
    assert_eq!(cell(&s, 0, "value"), "yes");
    let mut stopping = sample();
    stopping.shutting_down = true;
    let s = show::table(Item::State, &stopping);
    let values: Vec<String> = (0..3).map(|r| cell(&s, r, "value")).collect();
    assert_eq!(values, ["no", "no", "no"]);

    let a = show(Item::Arena);
    let row: Vec<String> = a.columns.iter().map(|c| cell(&a, 0, c.name)).collect();
    assert_eq!(
        row,
        ["65536", "64", "10", "54", "8", "40", "1", "3", "2", "1000"]
    );
    assert!(a.columns.iter().all(|c| c.kind == Kind::Int8));

    let p = show(Item::PreparedStatements);
    assert_eq!(cell(&p, 0, "query"), "SELECT $1");
    let v = show(Item::Version);
    assert_eq!(cell(&v, 0, "version"), "qcp 9.8.7");
    let c = show(Item::Config);
    assert_eq!(cell(&c, 0, "changeable"), "yes");
}

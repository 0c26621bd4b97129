//! `hba_file`: access rules in pg_hba.conf syntax, against real clients. Each rule kind picks
//! the method or refuses, with PostgreSQL 15's own message text; `local` rules apply to a
//! Unix-domain socket; the rules are read again on reload, and a bad file keeps the old ones.
//! (`hostssl` and `cert` are tested with TLS in `tls.rs`.)

use std::path::{Path, PathBuf};

use qcp_core::config::Config;

use crate::support::*;

/// Writes `rules` as the hba file in `dir`.
fn hba_file(dir: &Path, rules: &str) -> PathBuf {
    let path = dir.join("hba.conf");
    std::fs::write(&path, rules).expect("write hba.conf");
    path
}

/// The FATAL message and SQLSTATE of a refused login.
async fn refusal(qcp: &Qcp, user: (&str, &str), database: &str) -> (String, String) {
    let error = connect(&qcp.conninfo(user.0, user.1, database))
        .await
        .expect_err("refused");
    let db = error
        .as_db_error()
        .unwrap_or_else(|| panic!("a server error: {error:?}"));
    (db.code().code().to_owned(), db.message().to_owned())
}

async fn logs_in(qcp: &Qcp, user: (&str, &str), database: &str) {
    let client = connect(&qcp.conninfo(user.0, user.1, database))
        .await
        .unwrap_or_else(|e| panic!("{} logs in to {database}: {e}", user.0));
    client.simple_query("SELECT 1").await.expect("query");
}

const RULES: &str = "\
# TYPE  DATABASE   USER       ADDRESS       METHOD
host    qcp_other  all        127.0.0.1/32  reject
host    all        qcp_trust  127.0.0.1/32  trust
host    all        qcp_scram  127.0.0.1/32  scram-sha-256
host    all        qcp_md5    127.0.0.1     255.255.255.255  md5
host    all        qcp_plain  ::1/128       md5
";

#[tokio::test]
async fn each_rule_kind_picks_the_method_or_refuses_in_postgresqls_words() {
    let dir = scratch_dir("hba");
    let path = hba_file(dir.path(), RULES);
    // auth_method says md5; the rules say otherwise for each user.
    let mut setup = Setup::smart().extra(&format!("hba_file: {}\n", path.display()));
    setup.auth_method = "md5";
    let qcp = setup.start();

    // trust: no password is asked, so a wrong one does not matter.
    logs_in(&qcp, (TRUST_USER, "anything"), DATABASE).await;
    // scram-sha-256 for the SCRAM user (auth_method md5 notwithstanding).
    logs_in(&qcp, SCRAM_USER, DATABASE).await;
    let (code, message) = refusal(&qcp, (SCRAM_USER.0, "wrong"), DATABASE).await;
    assert_eq!(code, "28P01", "{message}");
    // md5, with the address and netmask written as two fields.
    logs_in(&qcp, MD5_USER, DATABASE).await;
    // reject: for any user of that database, as PostgreSQL words it.
    let (code, message) = refusal(&qcp, SCRAM_USER, OTHER_DATABASE).await;
    assert_eq!(code, "28000");
    assert_eq!(
        message,
        format!(
            "pg_hba.conf rejects connection for host \"127.0.0.1\", user \"{}\", database \"{OTHER_DATABASE}\", no encryption",
            SCRAM_USER.0
        )
    );
    // No rule matches (the plain user's rule is for ::1 only).
    let (code, message) = refusal(&qcp, PLAIN_USER, DATABASE).await;
    assert_eq!(code, "28000");
    assert_eq!(
        message,
        format!(
            "no pg_hba.conf entry for host \"127.0.0.1\", user \"{}\", database \"{DATABASE}\", no encryption",
            PLAIN_USER.0
        )
    );
    // The admin console is a database like any other for the rules.
    let (code, message) = refusal(&qcp, PLAIN_USER, "qcp").await;
    assert_eq!(code, "28000", "{message}");
}

#[tokio::test]
async fn the_rules_are_read_again_and_a_bad_file_keeps_the_old_ones() {
    let dir = scratch_dir("hba");
    let path = hba_file(dir.path(), "host all qcp_scram 127.0.0.1/32 reject\n");
    let qcp = Setup::smart()
        .extra(&format!("hba_file: {}\n", path.display()))
        .start();
    let (code, _) = refusal(&qcp, SCRAM_USER, DATABASE).await;
    assert_eq!(code, "28000");

    hba_file(
        dir.path(),
        "host all qcp_scram 127.0.0.1/32 scram-sha-256\n",
    );
    qcp.reload_hba().expect("the new rules load");
    logs_in(&qcp, SCRAM_USER, DATABASE).await;

    hba_file(dir.path(), "host all qcp_scram 127.0.0.1/32 kerberos\n");
    let error = qcp.reload_hba().expect_err("a bad file is refused");
    assert!(
        error.contains("line 1") && error.contains("kerberos"),
        "{error}"
    );
    logs_in(&qcp, SCRAM_USER, DATABASE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_rules_apply_to_the_unix_socket() {
    let dir = scratch_dir("hba");
    let path = hba_file(
        dir.path(),
        "local all qcp_md5 reject\nlocal all all scram-sha-256\nhost all all all trust\n",
    );
    let socket_dir = scratch_dir("hba-socket");
    let listening = format!("{}:6432", socket_dir.path().display());
    let yaml = Setup::smart()
        .extra(&format!("hba_file: {}\n", path.display()))
        .yaml(dir.path())
        .replace(
            "listening_address: 127.0.0.1:0\n",
            &format!("listening_address: {listening}\n"),
        );
    let config = Config::from_yaml(&yaml, "test config").expect("config");
    let instance = qcp_core::start(config).expect("qcp starts");
    let host = socket_dir.path().display().to_string();
    let conninfo = |user: (&str, &str)| {
        format!(
            "host={host} port=6432 user={} password={} dbname={DATABASE}",
            user.0, user.1
        )
    };
    let client = connect(&conninfo(SCRAM_USER)).await.expect("local scram");
    client.simple_query("SELECT 1").await.expect("query");
    // scram-sha-256, not the host rule's trust: a wrong password fails.
    let error = connect(&conninfo((SCRAM_USER.0, "wrong")))
        .await
        .expect_err("wrong password");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("28P01"), "{error}");
    let error = connect(&conninfo(MD5_USER)).await.expect_err("rejected");
    let message = error.as_db_error().map(|e| e.message().to_owned());
    assert_eq!(
        message.as_deref(),
        Some(&*format!(
            "pg_hba.conf rejects connection for host \"[local]\", user \"{}\", database \"{DATABASE}\", no encryption",
            MD5_USER.0
        ))
    );
    drop(client);
    stop_instance(instance);
}

#[test]
fn a_bad_hba_file_stops_the_configuration_with_its_line() {
    let dir = scratch_dir("hba");
    let path = hba_file(dir.path(), "# ok\nhost all all 10.0.0.0/40 trust\n");
    let yaml = Setup::smart()
        .extra(&format!("hba_file: {}\n", path.display()))
        .yaml(dir.path());
    let error = Config::from_yaml(&yaml, "test.yaml")
        .expect_err("refused")
        .to_string();
    assert!(error.contains("hba_file"), "{error}");
    assert!(error.contains("line 2"), "{error}");
    assert!(error.contains("CIDR length"), "{error}");
    let missing = Setup::smart()
        .extra("hba_file: /nonexistent/hba.conf\n")
        .yaml(dir.path());
    let error = Config::from_yaml(&missing, "test.yaml")
        .expect_err("refused")
        .to_string();
    assert!(
        error.contains("cannot read /nonexistent/hba.conf"),
        "{error}"
    );
}

//! qcp-core's integration tests, in one test binary so that `support/` is compiled once.
//! All but `config` run against the real PostgreSQL that `scripts/test.sh` starts (the
//! `QCP_TEST_PG_*` variables, see `support`).

// The harness: the shared and private PostgreSQL clusters, in-process qcp, a byte-level client.
mod support;

// The admin console (SHOW with PgBouncer's columns, who may use it) and `qcp-ctrl show`.
mod admin_console;
// auth_user/auth_query: roles from the database, changed passwords, refusals, pooling.
mod auth_query;
// Configuration loading: defaults, every kind of mistake and its message, `describe`.
mod config;
// hba_file: each rule kind matched and refused with PostgreSQL's words, local rules, reload.
mod hba;
// Logging in: each client and server authentication method, login errors, SCRAM pass-through.
mod login;
// worker_threads: 2: clients on two engine threads share a pool, in Smart and Session mode.
mod engine_threads;
// /metrics scraped during a pgbench run: the Prometheus format, and figures that add up.
mod metrics;
// Start-up values and SET client_encoding in the server's spelling, both modes, no SET per turn.
mod params_spelling;
// The console's acting commands: PAUSE/RESUME (a switchover under pgbench), KILL, KILL_CLIENT,
// DISABLE/ENABLE, RECONNECT/WAIT_CLOSE, also through the control socket.
mod operations;
// Reload: pool sizes, servers, users, timeouts changed under connected clients; bad files.
mod reload;
// Killed and restarted servers, a server that is down, an exhausted arena, graceful shutdown.
mod resilience;
// Smoke tests: queries through qcp in Session and Smart mode.
mod session_basic;
// Session mode: getting, resetting and reusing server connections, waiting, big messages, cancels.
mod session_mode;
// Smart mode: cancel requests reach the client's running query and nothing else.
mod smart_cancel;
// Smart mode: COPY FROM STDIN / TO STDOUT in both protocols, and FunctionCall.
mod smart_copy;
// Smart mode: protocol negotiation, refused start-ups, login errors, pool wait timeouts.
mod smart_handshake;
// Smart mode: session parameters follow the client from one server connection to the next.
mod smart_params;
// Smart mode: pgbench consistency runs (simple, extended, pipeline) through a pool of 4.
mod smart_pgbench;
// Smart mode at the byte level: when a client gets and gives back its server connection.
mod smart_pipeline;
// Smart mode: named protocol-level prepared statements, with pool_size 1 and 2.
mod smart_prepared;
// Smart mode: random prepared-statement pipelines compared with a direct connection.
mod smart_prepared_differential;
// Smart mode: statements shared between clients whose search_path differs, or changes.
mod smart_search_path;
// The start-up phase at the byte level: encryption requests, versions, limits, cancel requests.
mod startup;
// Malformed and odd start-up packets, answered by qcp exactly as by PostgreSQL itself.
mod startup_differential;
// TLS: libpq and rustls clients to qcp (sslmode, client certificates, direct TLS), qcp to
// PostgreSQL (verify-full, verify-ca, disable).
mod tls;
// Unix-domain sockets: clients to qcp and qcp to the server, stale and occupied socket files.
mod unix_socket;

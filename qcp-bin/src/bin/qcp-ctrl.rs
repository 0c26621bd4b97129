//! `qcp-ctrl`: controls a running qcp instance through its control socket.

use std::path::PathBuf;
use std::process::ExitCode;

use argh::FromArgs;
use qcp_core::config::{Config, DEFAULT_CONTROL_SOCKET};

/// Control a running qcp instance. Without options it talks to the instance on the default
/// control socket (/tmp/qcp.sock); --config FILE uses that file's control_socket, --socket
/// PATH names the socket directly. `passwd` needs no running instance.
#[derive(FromArgs)]
struct Args {
    /// the qcp configuration file whose control_socket to use
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,

    /// the control socket path
    #[argh(option, short = 's')]
    socket: Option<PathBuf>,

    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Quit(Quit),
    Status(Status),
    Reload(Reload),
    Pause(Pause),
    Resume(Resume),
    Reconnect(Reconnect),
    WaitClose(WaitClose),
    Kill(Kill),
    KillClient(KillClient),
    Disable(Disable),
    Enable(Enable),
    Shutdown(Shutdown),
    Show(Show),
    Passwd(Passwd),
}

/// Stop qcp gracefully: it stops accepting clients, lets transactions in flight finish, tells
/// idle clients it is shutting down (57P01), and exits once they are gone or the shutdown
/// grace period (timeouts.shutdown) is over.
#[derive(FromArgs)]
#[argh(subcommand, name = "quit")]
struct Quit {}

/// Show the listening address, mode, uptime, clients (active, waiting, idle), server
/// connections per pool and arena use.
#[derive(FromArgs)]
#[argh(subcommand, name = "status")]
struct Status {}

/// Make qcp read its configuration file again and apply it without dropping clients:
/// servers, pool sizes, users and passwords, limits, timeouts, logging, TLS files, hba_file.
/// Connections to a removed or changed server close when their client releases them.
/// listening_address, unix_socket_mode, arena, worker_threads, control_socket and
/// metrics_address need a restart and keep their value. An invalid file changes nothing:
/// qcp-ctrl prints the error (setting, line, fix) and exits 1. SIGHUP does the same.
#[derive(FromArgs)]
#[argh(subcommand, name = "reload")]
struct Reload {}

/// Hold new requests of DATABASE (every database without one): clients wait (up to
/// timeouts.query_wait) instead of getting a server connection. Returns once every server
/// connection of it is back in the pool (Smart: transactions finished; Session: clients left).
#[derive(FromArgs)]
#[argh(subcommand, name = "pause")]
struct Pause {
    /// the database (default: all)
    #[argh(positional)]
    database: Option<String>,
}

/// Undo pause (or kill): the waiting clients get their server connections.
#[derive(FromArgs)]
#[argh(subcommand, name = "resume")]
struct Resume {
    /// the database (default: all)
    #[argh(positional)]
    database: Option<String>,
}

/// Replace every server connection of DATABASE: idle ones close now, the others when their
/// client releases them.
#[derive(FromArgs)]
#[argh(subcommand, name = "reconnect")]
struct Reconnect {
    /// the database (default: all)
    #[argh(positional)]
    database: Option<String>,
}

/// Wait until the server connections that reconnect, kill or a reload replaced are closed.
#[derive(FromArgs)]
#[argh(subcommand, name = "wait-close")]
struct WaitClose {
    /// the database (default: all)
    #[argh(positional)]
    database: Option<String>,
}

/// Close every client (FATAL 57P01) and server connection of DATABASE at once, and pause
/// it: new clients wait until resume.
#[derive(FromArgs)]
#[argh(subcommand, name = "kill")]
struct Kill {
    /// the database (default: all)
    #[argh(positional)]
    database: Option<String>,
}

/// Close one client (FATAL 57P01), by the id that `qcp-ctrl show clients` prints.
#[derive(FromArgs)]
#[argh(subcommand, name = "kill-client")]
struct KillClient {
    /// the client's id
    #[argh(positional)]
    id: u64,
}

/// Refuse new logins to DATABASE (clients connected stay).
#[derive(FromArgs)]
#[argh(subcommand, name = "disable")]
struct Disable {
    /// the database
    #[argh(positional)]
    database: String,
}

/// Accept new logins to DATABASE again.
#[derive(FromArgs)]
#[argh(subcommand, name = "enable")]
struct Enable {
    /// the database
    #[argh(positional)]
    database: String,
}

/// Stop qcp: at once by default; with --wait-for-servers once transactions finished (as
/// quit, idle clients are told to leave); with --wait-for-clients stop accepting and exit
/// once every client has left on its own.
#[derive(FromArgs)]
#[argh(subcommand, name = "shutdown")]
struct Shutdown {
    /// let each client finish and leave on its own
    #[argh(switch)]
    wait_for_clients: bool,
    /// let transactions finish, then close the clients
    #[argh(switch)]
    wait_for_servers: bool,
}

/// Print one of the admin console's tables in human units: pools (clients active and
/// waiting, server connections by state, the longest wait), clients, servers (one row per
/// connection), or stats (per database: transactions, queries, bytes, times); also any other
/// SHOW item of the console (databases, users, config, arena, mem, lists, state, totals...).
#[derive(FromArgs)]
#[argh(subcommand, name = "show")]
struct Show {
    /// what to show: pools, clients, servers, stats, ...
    #[argh(positional)]
    what: String,
}

/// Print a `users` entry for USER with a SCRAM-SHA-256 secret of a password (asked twice
/// without echo on a terminal, else read from the first line of standard input), so the
/// configuration need not hold the plaintext password. qcp logs in to servers with a secret
/// by reusing the client's SCRAM proof, which works when the server holds the same secret:
/// set it there with ALTER ROLE USER PASSWORD 'SCRAM-SHA-256$...' (PostgreSQL stores a
/// secret given that way as is), or copy the server's own secret from pg_authid instead.
#[derive(FromArgs)]
#[argh(subcommand, name = "passwd")]
struct Passwd {
    /// the user name
    #[argh(positional)]
    user: String,

    /// PBKDF2 iterations of the secret (default 4096, PostgreSQL's)
    #[argh(option, default = "4096")]
    iterations: u32,
}

/// A console command for `database`, quoted as an identifier so that any name passes.
fn console(verb: &str, database: Option<&str>) -> String {
    match database {
        Some(name) => format!("{verb} \"{}\"", name.replace('"', "\"\"")),
        None => verb.to_owned(),
    }
}

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    if let Command::Passwd(passwd) = &args.command {
        let entry = qcp_bin::passwd::read_password(&passwd.user).and_then(|password| {
            qcp_bin::passwd::users_entry(&passwd.user, &password, passwd.iterations)
        });
        return match entry {
            Ok(entry) => {
                print!("{entry}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("qcp-ctrl passwd: {error}");
                ExitCode::from(2)
            }
        };
    }
    let reload = matches!(args.command, Command::Reload(_));
    let socket = match (&args.socket, &args.config) {
        (Some(socket), _) => socket.clone(),
        (None, Some(path)) => match Config::load(path) {
            Ok(config) => config.control_socket,
            // The file being reloaded may be the invalid one: qcp itself says what is wrong
            // with it (and logs it), so reach qcp if the file names its socket at all.
            Err(error) => match Config::control_socket_in(path).filter(|_| reload) {
                Some(socket) => socket,
                None => {
                    eprintln!("qcp-ctrl: {error}");
                    return ExitCode::from(2);
                }
            },
        },
        (None, None) => PathBuf::from(DEFAULT_CONTROL_SOCKET),
    };
    let command = match args.command {
        Command::Quit(_) => "quit".to_owned(),
        Command::Status(_) => "status".to_owned(),
        Command::Reload(_) => "reload".to_owned(),
        Command::Pause(c) => console("PAUSE", c.database.as_deref()),
        Command::Resume(c) => console("RESUME", c.database.as_deref()),
        Command::Reconnect(c) => console("RECONNECT", c.database.as_deref()),
        Command::WaitClose(c) => console("WAIT_CLOSE", c.database.as_deref()),
        Command::Kill(c) => console("KILL", c.database.as_deref()),
        Command::KillClient(c) => format!("KILL_CLIENT {}", c.id),
        Command::Disable(c) => console("DISABLE", Some(&c.database)),
        Command::Enable(c) => console("ENABLE", Some(&c.database)),
        Command::Shutdown(c) => {
            match (c.wait_for_clients, c.wait_for_servers) {
                (true, true) => {
                    eprintln!("qcp-ctrl shutdown: choose one of --wait-for-clients and --wait-for-servers");
                    return ExitCode::from(2);
                }
                (true, false) => "SHUTDOWN WAIT_FOR_CLIENTS".to_owned(),
                (false, true) => "SHUTDOWN WAIT_FOR_SERVERS".to_owned(),
                (false, false) => "SHUTDOWN".to_owned(),
            }
        }
        Command::Show(show) => format!("show {}", show.what),
        Command::Passwd(_) => return ExitCode::FAILURE,
    };
    match qcp_bin::control(&socket, &command) {
        Ok(answer) if answer.starts_with("error") => {
            eprint!("qcp-ctrl: {answer}");
            ExitCode::FAILURE
        }
        Ok(answer) => {
            print!("{answer}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("qcp-ctrl: {error}");
            ExitCode::FAILURE
        }
    }
}

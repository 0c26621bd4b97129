//! `qcp`: the QCP PostgreSQL connection pooler.

use std::path::PathBuf;
use std::process::ExitCode;

use argh::FromArgs;
use qcp_core::config::Config;

/// QCP (Quantum Connection Pool): a PostgreSQL connection pooler. It accepts clients on
/// `listening_address` and relays them to the PostgreSQL servers listed under `servers`, in
/// Session or Smart (transaction) mode. Every setting is described in config-example.yaml.
/// Stop it with `qcp-ctrl quit`, SIGINT or SIGTERM; `qcp-ctrl reload` or SIGHUP reads the
/// configuration file again and applies it without dropping clients.
#[derive(FromArgs)]
struct Args {
    /// the YAML configuration file (default: config.yaml)
    #[argh(option, short = 'c', default = "PathBuf::from(\"config.yaml\")")]
    config: PathBuf,

    /// validate the configuration, print the effective settings and exit
    #[argh(switch)]
    check: bool,

    /// print the version and exit
    #[argh(switch, short = 'V')]
    version: bool,
}

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    if args.version {
        println!("qcp {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("qcp: {error}");
            return ExitCode::from(2);
        }
    };
    if args.check {
        if let Err(error) = qcp_bin::check_log_output(&config) {
            eprintln!("qcp: {error}");
            return ExitCode::from(2);
        }
        println!("{}: configuration is valid", args.config.display());
        print!("{}", config.describe());
        return ExitCode::SUCCESS;
    }
    let logging = match qcp_bin::init_logging(&config) {
        Ok(logging) => logging,
        Err(error) => {
            eprintln!("qcp: {error}");
            return ExitCode::from(2);
        }
    };
    // A reload (SIGHUP, qcp-ctrl reload, RELOAD) reads the same file again, and changes
    // the logging settings through the subscriber installed above.
    let options = qcp_core::StartOptions {
        config_file: Some(args.config.clone()),
        log_hook: Some(std::sync::Arc::new(move |config: &Config| {
            logging.apply(config)
        })),
        handle_signals: true,
    };
    let instance = match qcp_core::start_with(config, options) {
        Ok(instance) => instance,
        Err(error) => {
            tracing::error!(%error, "qcp could not start");
            eprintln!("qcp: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Under systemd (Type=notify), qcp is ready once it listens; elsewhere NOTIFY_SOCKET is
    // unset and this does nothing.
    if let Err(error) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        tracing::warn!(%error, "could not tell systemd that qcp is ready");
    }
    instance.wait();
    ExitCode::SUCCESS
}

//! Pieces shared by the `qcp` and `qcp-ctrl` programs: logging set-up, the control-socket
//! client, and `qcp-ctrl passwd` (in `passwd`).

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use qcp_core::config::{Config, LogFormat, LogOutput};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::Layered;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, Layer, Registry};

pub mod passwd;

/// The installed log subscriber, whose settings a reload can change.
pub struct Logging {
    level: reload::Handle<LevelFilter, Registry>,
    output: reload::Handle<BoxedLayer, Base>,
}

/// The registry with the level filter in front: a filter for every layer, not one of
/// tracing-subscriber's per-layer filters, which cannot be swapped by a reload.
type Base = Layered<reload::Layer<LevelFilter, Registry>, Registry>;
type BoxedLayer = Box<dyn Layer<Base> + Send + Sync>;

impl Logging {
    /// Puts `log_level`, `log_output` and `log_format` of `config` in force; on an error
    /// (a log file that cannot be opened) the previous ones stay.
    pub fn apply(&self, config: &Config) -> Result<(), String> {
        let output = log_layer(config)?;
        let failed = |error: reload::Error| format!("cannot change the logging settings: {error}");
        self.output.reload(output).map_err(failed)?;
        self.level.reload(config.log_level).map_err(failed)
    }
}

/// Installs the global tracing subscriber as `log_level`, `log_output` and `log_format`
/// say. A log file is created if missing and appended to. The returned [`Logging`]
/// changes them later (a reload).
pub fn init_logging(config: &Config) -> Result<Logging, String> {
    let (level_layer, level) = reload::Layer::new(config.log_level);
    let (output_layer, output) = reload::Layer::new(log_layer(config)?);
    tracing_subscriber::registry()
        .with(level_layer)
        .with(output_layer)
        .try_init()
        .map_err(|error| format!("cannot set up logging: {error}"))?;
    Ok(Logging { level, output })
}

/// The layer that writes log lines as `config` says.
fn log_layer(config: &Config) -> Result<BoxedLayer, String> {
    let writer: BoxMakeWriter = match &config.log_output {
        LogOutput::Stdout => BoxMakeWriter::new(io::stdout),
        LogOutput::Stderr => BoxMakeWriter::new(io::stderr),
        LogOutput::File(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|error| log_file_error(path, &error))?;
            BoxMakeWriter::new(Mutex::new(file))
        }
    };
    // Colours only on a terminal-bound stream, never in a file.
    let ansi = !matches!(config.log_output, LogOutput::File(_));
    let base = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_writer(writer);
    Ok(match config.log_format {
        LogFormat::Text => base.with_ansi(ansi).boxed(),
        // One object per line: timestamp, level, fields (the message among them) and the
        // span (a client's peer, user and database).
        LogFormat::Json => base.json().with_current_span(true).boxed(),
    })
}

/// Checks that the log file of `log_output` could be opened, without creating it: what
/// `qcp --check` adds to the configuration's own checks, so a file qcp could not start with
/// never passes the check.
pub fn check_log_output(config: &Config) -> Result<(), String> {
    let LogOutput::File(path) = &config.log_output else {
        return Ok(());
    };
    let result = if path.exists() {
        OpenOptions::new().append(true).open(path).map(drop)
    } else {
        match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            Some(dir) if !dir.is_dir() => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("the directory {} does not exist", dir.display()),
            )),
            _ => Ok(()),
        }
    };
    result.map_err(|error| log_file_error(path, &error))
}

fn log_file_error(path: &Path, error: &io::Error) -> String {
    format!(
        "cannot open the log file {} (log_output.file): {error}; choose a writable path",
        path.display()
    )
}

/// Sends one command to the qcp instance listening on `socket` and returns its answer.
pub fn control(socket: &Path, command: &str) -> Result<String, String> {
    let mut stream = UnixStream::connect(socket).map_err(|error| {
        format!(
            "no qcp instance answers on {} ({error}); is qcp running? Pass --config FILE or --socket PATH to pick another instance",
            socket.display()
        )
    })?;
    // PAUSE and WAIT_CLOSE answer once the server connections are back or closed, which
    // takes as long as the clients' transactions: no time limit for those.
    let waits = ["PAUSE", "WAIT_CLOSE"].iter().any(|verb| {
        command.len() >= verb.len() && command[..verb.len()].eq_ignore_ascii_case(verb)
    });
    let limit = (!waits).then_some(Duration::from_secs(10));
    let _ = stream.set_read_timeout(limit);
    stream
        .write_all(format!("{command}\n").as_bytes())
        .map_err(|error| format!("cannot send the command to {}: {error}", socket.display()))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|error| format!("no answer from {}: {error}", socket.display()))?;
    Ok(answer)
}

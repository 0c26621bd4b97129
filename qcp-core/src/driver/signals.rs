//! SIGINT and SIGTERM start the same graceful shutdown as `qcp-ctrl quit`; SIGHUP reloads
//! the configuration file (see `reload.rs`).

use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing::info;

use super::shared::Shared;

/// Watches for SIGINT, SIGTERM and SIGHUP on a small thread of its own; a second stop signal
/// while the shutdown runs exits at once.
pub fn stop_on_signals(shared: Arc<Shared>) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("qcp-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if signal == SIGHUP {
                    super::reload::on_sighup(&shared);
                    continue;
                }
                if shared.is_shutting_down() {
                    info!(signal, "second stop signal: exiting now");
                    std::process::exit(1);
                }
                info!(signal, "stop signal received: shutting down");
                shared.begin_shutdown();
            }
        })?;
    Ok(())
}

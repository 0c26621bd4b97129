//! SIGINT and SIGTERM start the same graceful shutdown as `qcp-ctrl quit`; SIGHUP reads the
//! TLS certificates and keys and the `hba_file` again.

use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing::{info, warn};

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
                    match shared.reload_tls() {
                        Ok(()) => info!("SIGHUP: TLS certificates and keys read again"),
                        Err(error) => {
                            warn!(%error, "SIGHUP: kept the previous TLS certificates and keys")
                        }
                    }
                    match shared.reload_hba() {
                        Ok(()) => info!("SIGHUP: hba_file read again"),
                        Err(error) => warn!(%error, "SIGHUP: kept the previous hba_file rules"),
                    }
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

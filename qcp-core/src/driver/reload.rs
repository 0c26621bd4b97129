//! Reload: the configuration file read again and put in force while clients stay
//! connected (`qcp-ctrl reload`, SIGHUP, the console's RELOAD).
//!
//! Everything is checked before anything changes: the file (every setting, with its line),
//! the TLS files it names, the `hba_file`, and the logging settings. A file that fails any
//! check changes nothing, and the error says what to fix. Then, at once:
//! - the configuration, the users and the server list are swapped as a whole; later logins,
//!   checkouts and timeouts use the new values (`Shared::config` is read where a setting is
//!   used);
//! - each pool gets its new servers and sizes (`Pool::reconfigure`): idle connections to a
//!   removed or changed server, or above a lowered `pool_size`, are closed now, and those in
//!   use when their client releases them; clients are never cut;
//! - pools whose database no server serves any more take no new logins.
//!
//! Users keep their in-memory state (a SCRAM key learnt from a login) when their entry is
//! unchanged. A client that logged in before keeps the credentials it logged in with.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use tracing::{info, warn};

use super::shared::{Shared, UserEntry, Users};
use crate::config::{Config, ReloadPlan};
use crate::tls::TlsSetup;

/// Applies `log_level`, `log_output` and `log_format` of a reloaded configuration; an error
/// (a log file that cannot be opened) makes the reload change nothing.
pub type LogHook = dyn Fn(&Config) -> Result<(), String> + Send + Sync;

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// Settings with a new value now.
    pub changed: Vec<&'static str>,
    /// Settings the file changes that need a restart (their old value stays).
    pub restart_needed: Vec<&'static str>,
    /// Idle server connections closed at once (their server went or their pool shrank).
    pub closed: usize,
}

impl fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changed.is_empty() {
            write!(f, "configuration read again: nothing changed")?;
        } else {
            write!(
                f,
                "configuration reloaded: {} changed",
                self.changed.join(", ")
            )?;
        }
        if self.closed > 0 {
            write!(f, "; {} idle server connection(s) closed", self.closed)?;
        }
        if !self.restart_needed.is_empty() {
            write!(
                f,
                "; {} changed in the file but need a restart of qcp, and keep their running value",
                self.restart_needed.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Reads the configuration file again and puts it in force (see the module's comment);
/// `by` says who asked, for the log. The error says what is wrong with the file and how to
/// fix it; nothing changed then.
pub async fn reload(shared: &Shared, by: &str) -> Result<ReloadReport, String> {
    let _one_at_a_time = shared.reloading.lock().await;
    let result = apply(shared);
    match &result {
        Ok(report) => info!(by, "{report}"),
        Err(error) => warn!(
            by,
            "reload failed, the running configuration is unchanged: {error}"
        ),
    }
    result
}

/// What SIGHUP does: a reload of the configuration file; for an instance started without
/// one, the TLS files and the `hba_file` are read again.
pub fn on_sighup(shared: &Shared) {
    if shared.config_file().is_some() {
        // Logged by `reload`.
        let _ = async_std::task::block_on(reload(shared, "SIGHUP"));
        return;
    }
    match shared.reload_tls() {
        Ok(()) => info!("SIGHUP: TLS certificates and keys read again"),
        Err(error) => warn!(%error, "SIGHUP: kept the previous TLS certificates and keys"),
    }
    match shared.reload_hba() {
        Ok(()) => info!("SIGHUP: hba_file read again"),
        Err(error) => warn!(%error, "SIGHUP: kept the previous hba_file rules"),
    }
}

fn apply(shared: &Shared) -> Result<ReloadReport, String> {
    let path = shared.config_file().ok_or_else(|| {
        "qcp was started without a configuration file, so there is nothing to read again".to_owned()
    })?;
    let file = Config::load(&path).map_err(|error| error.to_string())?;
    let running = shared.config_full();
    let plan = ReloadPlan::between(&running, file);
    let (servers, retired) = shared.servers().update(&plan.config.servers);
    let tls = TlsSetup::load(&plan.config)
        .map_err(|error| format!("cannot set up TLS: {error}"))?
        .with_ids(servers.order().to_vec());
    let hba = plan
        .config
        .load_hba()
        .map_err(|error| format!("cannot read the access rules (hba_file): {error}"))?;
    if plan.logging_changed() {
        if let Some(hook) = shared.log_hook() {
            hook(&plan.config)?;
        }
    }
    // Past this point nothing can fail.
    let users = users(&shared.users(), &plan.config);
    if plan.changed.contains(&"auth_query") || plan.changed.contains(&"users") {
        shared.auth_cache.clear();
    }
    let ReloadPlan {
        config,
        changed,
        restart_needed,
    } = plan;
    shared.install_files(tls, hba);
    shared.install(config, servers.clone(), users);
    let now = Instant::now();
    let mut closed = 0;
    for entry in shared.pools() {
        let serving = servers.serving(&entry.pool.key().database);
        for conn in entry.pool.reconfigure(&serving, now) {
            conn.close();
            closed += 1;
        }
    }
    shared.forget_pools(|key| servers.serving(&key.database).is_empty());
    if !retired.is_empty() {
        // WAIT_CLOSE waits for these.
        shared
            .controls
            .mark_reset(None, std::time::SystemTime::now());
        info!(
            servers = retired.len(),
            "servers removed or changed: their connections close when released"
        );
    }
    Ok(ReloadReport {
        changed,
        restart_needed,
        closed,
    })
}

/// The users of `config`, keeping the entry (and what logins taught it) of each user whose
/// settings did not change.
fn users(running: &Users, config: &Config) -> Users {
    config
        .users
        .iter()
        .map(|user| {
            let entry = running
                .get(&user.name)
                .filter(|entry| entry.secret == user.secret)
                .cloned()
                .unwrap_or_else(|| Arc::new(UserEntry::from_config(user)));
            (user.name.clone(), entry)
        })
        .collect::<HashMap<_, _>>()
}

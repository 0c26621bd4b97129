//! What a reload of the configuration file changes, and what it cannot change while qcp
//! runs.
//!
//! Most settings are read where they are used, so a new value reaches every later use:
//! servers and pool sizes, users, limits, timeouts, the console's users, TLS files, the
//! access rules, logging. A few are bound to what qcp set up at start-up (the listening
//! socket, the arena's one allocation, the relay threads, the control socket, the metrics
//! listener); a reload keeps their old values and says that they need a restart.

use super::Config;

/// The settings only a restart can change (top-level names in the file).
pub const RESTART_ONLY: [&str; 6] = [
    "listening_address",
    "unix_socket_mode",
    "arena",
    "worker_threads",
    "control_socket",
    "metrics_address",
];

/// Whether a reload can change the setting `key` (a name as `qcp --check` prints it, such
/// as `timeouts.query_wait` or `servers[0].pool_size`).
pub fn reloadable(key: &str) -> bool {
    let top = key.split(['.', '[']).next().unwrap_or(key);
    !RESTART_ONLY.contains(&top)
}

/// The outcome of comparing the running configuration with the file read again.
#[derive(Debug)]
pub struct ReloadPlan {
    /// What to put in force: the new file, with the restart-only settings as they were.
    pub config: Config,
    /// Settings whose new value takes effect now (the file's names).
    pub changed: Vec<&'static str>,
    /// Settings the file changes that only a restart can change; they keep their old value.
    pub restart_needed: Vec<&'static str>,
}

impl ReloadPlan {
    /// Compares `running` with `file`, the configuration just read.
    pub fn between(running: &Config, mut file: Config) -> ReloadPlan {
        let mut restart_needed = Vec::new();
        macro_rules! keep {
            ($($field:ident),*) => {$(
                if file.$field != running.$field {
                    restart_needed.push(stringify!($field));
                    file.$field = running.$field.clone();
                }
            )*};
        }
        keep!(
            listening_address,
            unix_socket_mode,
            arena,
            worker_threads,
            control_socket,
            metrics_address
        );
        let mut changed = Vec::new();
        macro_rules! compare {
            ($($field:ident),*) => {$(
                if file.$field != running.$field {
                    changed.push(stringify!($field));
                }
            )*};
        }
        compare!(
            relay_mode,
            log_level,
            log_output,
            log_format,
            servers,
            users,
            auth_method,
            timeouts,
            limits,
            client_tls,
            admin_users,
            stats_users,
            stats_period,
            hba_file,
            auth_query
        );
        ReloadPlan {
            config: file,
            changed,
            restart_needed,
        }
    }

    /// Whether the logging settings changed.
    pub fn logging_changed(&self) -> bool {
        self.changed
            .iter()
            .any(|name| matches!(*name, "log_level" | "log_output" | "log_format"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        let base =
            "servers:\n  - address: 127.0.0.1:5432\nusers:\n  - name: app\n    password: pw\n";
        Config::from_yaml(&format!("{base}{yaml}"), "test").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn an_unchanged_file_changes_nothing() {
        let running = config("");
        let plan = ReloadPlan::between(&running, config(""));
        assert!(plan.changed.is_empty());
        assert!(plan.restart_needed.is_empty());
        assert_eq!(plan.config, running);
    }

    #[test]
    fn restart_only_settings_keep_their_value_and_are_reported() {
        let running = config("worker_threads: 1\n");
        let file = config(
            "worker_threads: 2\nlistening_address: 127.0.0.1:7000\ntimeouts:\n  query_wait: 5\n",
        );
        let plan = ReloadPlan::between(&running, file);
        assert_eq!(
            plan.restart_needed,
            vec!["listening_address", "worker_threads"]
        );
        assert_eq!(plan.changed, vec!["timeouts"]);
        assert_eq!(plan.config.worker_threads, 1);
        assert_eq!(plan.config.listening_address, running.listening_address);
        assert_eq!(plan.config.timeouts.query_wait.as_secs(), 5);
        assert!(!plan.logging_changed());
        assert!(plan.restart_needed.iter().all(|s| RESTART_ONLY.contains(s)));
    }

    #[test]
    fn every_restart_only_setting_is_kept() {
        let running = config("");
        let file = config(
            "listening_address: 127.0.0.1:7001\nunix_socket_mode: 0700\narena:\n  chunks_count: 7\n\
             worker_threads: 3\ncontrol_socket: /tmp/other.sock\nmetrics_address: 127.0.0.1:9999\n",
        );
        let plan = ReloadPlan::between(&running, file);
        assert_eq!(plan.restart_needed, RESTART_ONLY);
        assert_eq!(plan.config, running);
        assert!(!reloadable("arena.chunk_size"));
        assert!(reloadable("servers[0].pool_size"));
        assert!(reloadable("timeouts.query_wait"));
    }

    #[test]
    fn logging_changes_are_seen() {
        let plan = ReloadPlan::between(&config(""), config("log_level: Debug\n"));
        assert_eq!(plan.changed, vec!["log_level"]);
        assert!(plan.logging_changed());
    }
}

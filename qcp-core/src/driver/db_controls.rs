//! What the console's PAUSE, DISABLE, KILL and RECONNECT set per database, kept apart from
//! the pools so that a pool created later (a new user of a paused database) follows it.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

/// The operator's settings per database.
#[derive(Debug, Default)]
pub struct DbControls {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// PAUSE without a database.
    all_paused: bool,
    /// PAUSE db.
    paused: HashSet<String>,
    /// DISABLE db.
    disabled: HashSet<String>,
    /// RECONNECT (or KILL, or a reload that retired servers): connections opened before
    /// this time are being replaced (what WAIT_CLOSE waits for), per database...
    reset_at: HashMap<String, SystemTime>,
    /// ...and for every database.
    all_reset_at: Option<SystemTime>,
}

/// Why RESUME could not be done.
#[derive(Debug, PartialEq, Eq)]
pub enum ResumeError {
    /// Nothing of that is paused.
    NotPaused,
    /// RESUME db while the whole of qcp is paused.
    AllPaused,
}

impl DbControls {
    /// Whether clients of `database` are held.
    pub fn is_paused(&self, database: &str) -> bool {
        let state = self.lock();
        state.all_paused || state.paused.contains(database)
    }

    /// PAUSE `database` (`None`: every database); false if it was paused already.
    pub fn pause(&self, database: Option<&str>) -> bool {
        let mut state = self.lock();
        match database {
            None => !std::mem::replace(&mut state.all_paused, true),
            Some(name) => !state.all_paused && state.paused.insert(name.to_owned()),
        }
    }

    /// RESUME `database` (`None`: everything paused).
    pub fn resume(&self, database: Option<&str>) -> Result<(), ResumeError> {
        let mut state = self.lock();
        match database {
            None if !state.all_paused && state.paused.is_empty() => Err(ResumeError::NotPaused),
            None => {
                state.all_paused = false;
                state.paused.clear();
                Ok(())
            }
            Some(_) if state.all_paused => Err(ResumeError::AllPaused),
            Some(name) if state.paused.remove(name) => Ok(()),
            Some(_) => Err(ResumeError::NotPaused),
        }
    }

    /// DISABLE (`true`) or ENABLE (`false`) new logins to `database`; false if nothing
    /// changed.
    pub fn set_disabled(&self, database: &str, disabled: bool) -> bool {
        let mut state = self.lock();
        if disabled {
            state.disabled.insert(database.to_owned())
        } else {
            state.disabled.remove(database)
        }
    }

    /// Whether new logins to `database` are refused.
    pub fn is_disabled(&self, database: &str) -> bool {
        self.lock().disabled.contains(database)
    }

    /// Connections of `database` (`None`: all) opened before `at` are being replaced.
    pub fn mark_reset(&self, database: Option<&str>, at: SystemTime) {
        let mut state = self.lock();
        match database {
            None => state.all_reset_at = Some(at),
            Some(name) => {
                state.reset_at.insert(name.to_owned(), at);
            }
        }
    }

    /// The latest time before which connections of `database` are being replaced.
    pub fn reset_mark(&self, database: &str) -> Option<SystemTime> {
        let state = self.lock();
        state
            .reset_at
            .get(database)
            .copied()
            .max(state.all_reset_at)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_and_resume_per_database_and_for_all() {
        let controls = DbControls::default();
        assert!(controls.pause(Some("app")));
        assert!(!controls.pause(Some("app")), "paused already");
        assert!(controls.is_paused("app") && !controls.is_paused("other"));
        assert_eq!(controls.resume(Some("other")), Err(ResumeError::NotPaused));
        assert_eq!(controls.resume(Some("app")), Ok(()));
        assert!(!controls.is_paused("app"));
        assert!(controls.pause(None));
        assert!(controls.is_paused("anything"));
        assert_eq!(controls.resume(Some("app")), Err(ResumeError::AllPaused));
        assert_eq!(controls.resume(None), Ok(()));
        assert_eq!(controls.resume(None), Err(ResumeError::NotPaused));
    }

    #[test]
    fn disable_and_reset_marks() {
        let controls = DbControls::default();
        assert!(controls.set_disabled("app", true));
        assert!(controls.is_disabled("app"));
        assert!(controls.set_disabled("app", false));
        assert!(!controls.set_disabled("app", false));
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(10);
        controls.mark_reset(None, t);
        controls.mark_reset(Some("app"), t + std::time::Duration::from_secs(1));
        assert_eq!(controls.reset_mark("other"), Some(t));
        assert!(controls.reset_mark("app") > Some(t));
    }
}

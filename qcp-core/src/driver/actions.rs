//! The admin console's acting commands, carried out on the running instance.

use super::shared::Shared;
use crate::admin::{Argument, Verb};
use crate::errors::{sqlstate, PgError};

/// Carries out `verb` on `argument`; `Ok` holds the lines the admin is told as notices.
pub async fn perform(
    shared: &Shared,
    verb: Verb,
    argument: Argument,
) -> Result<Vec<String>, PgError> {
    match (verb, argument) {
        (Verb::Reload, _) => match super::reload::reload(shared, "the console's RELOAD").await {
            Ok(report) => Ok(vec![report.to_string()]),
            Err(error) => Err(
                PgError::error(sqlstate::CONFIG_FILE_ERROR, error).with_hint(
                    "fix the file and run RELOAD again; the running configuration is unchanged",
                ),
            ),
        },
        (verb, _) => Err(PgError::error(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!("{} is not supported yet", verb.name()),
        )),
    }
}

//! YAML in, [`Config`] out. The only user of `serde_yaml` in qcp (it is archived; to switch
//! parsers, change this file alone).

use serde::de::IgnoredAny;

use super::error::{expected_form, ConfigError, ConfigErrorKind};
use super::locate::{locate, locate_nth};
use super::raw::RawConfig;
use super::validate::build;
use super::Config;

/// Parses and checks `text`; `origin` names it in error messages.
pub(super) fn from_yaml(text: &str, origin: &str) -> Result<Config, ConfigError> {
    // First only the YAML syntax, so a syntax error is told apart from a bad setting.
    serde_yaml::from_str::<Option<IgnoredAny>>(text)
        .map_err(|e| yaml_error(&e, text, origin, ConfigErrorKind::Syntax))?;
    // An empty file (or one with only comments) is `None`: every setting takes its default.
    let raw = serde_yaml::from_str::<Option<RawConfig>>(text)
        .map_err(|e| yaml_error(&e, text, origin, ConfigErrorKind::Invalid))?
        .unwrap_or_default();
    let config = build(raw).map_err(|invalid| {
        let line = locate(text, &invalid.setting);
        ConfigError::new(
            ConfigErrorKind::Invalid,
            origin,
            Some(invalid.setting),
            line,
            invalid.message,
            invalid.fix,
        )
    })?;
    // Certificates and keys are read now too, so that `qcp --check` finds a bad file.
    crate::tls::TlsSetup::load(&config).map_err(|error| {
        let line = locate(text, &error.setting);
        ConfigError::new(
            ConfigErrorKind::Invalid,
            origin,
            Some(error.setting),
            line,
            error.message,
            error.fix,
        )
    })?;
    // So is the access-rules file.
    config.load_hba().map_err(|message| {
        ConfigError::new(
            ConfigErrorKind::Invalid,
            origin,
            Some("hba_file".to_owned()),
            locate(text, "hba_file"),
            message,
            "Fix the file (pg_hba.conf syntax: TYPE DATABASE USER [ADDRESS] METHOD per line), or point hba_file at the right one.".to_owned(),
        )
    })?;
    Ok(config)
}

/// See [`Config::control_socket_in`].
pub(super) fn control_socket_in(text: &str) -> Option<std::path::PathBuf> {
    #[derive(serde::Deserialize)]
    struct OnlyTheSocket {
        control_socket: Option<std::path::PathBuf>,
    }
    let only = serde_yaml::from_str::<Option<OnlyTheSocket>>(text).ok()?;
    Some(
        only.and_then(|o| o.control_socket)
            .unwrap_or_else(|| super::DEFAULT_CONTROL_SOCKET.into()),
    )
}

/// Splits serde_yaml's `path: message at line L column C` into its parts and adds the fix.
fn yaml_error(
    error: &serde_yaml::Error,
    yaml: &str,
    origin: &str,
    kind: ConfigErrorKind,
) -> ConfigError {
    let line = error.location().map(|l| l.line());
    let mut text = error.to_string();
    if let Some(l) = error.location() {
        let suffix = format!(" at line {} column {}", l.line(), l.column());
        if let Some(stripped) = text.strip_suffix(&suffix) {
            text = stripped.to_owned();
        }
    }
    if text.contains("more than one document") {
        let fix = "Keep a single YAML document: remove the `---` line and what follows it.";
        return ConfigError::new(kind, origin, None, line, text, fix.to_owned());
    }
    if kind == ConfigErrorKind::Syntax {
        let fix = "Check the YAML syntax near that line: indentation, a missing `:` after a key, \
                   or an unclosed quote.";
        return ConfigError::new(kind, origin, None, line, text, fix.to_owned());
    }
    let (path, message) = match text.split_once(": ") {
        Some((path, message)) if is_path(path) => (Some(path.to_owned()), message.to_owned()),
        _ => (None, text),
    };
    let key = message.split('`').nth(1).unwrap_or("");
    let join = |key: &str| match &path {
        Some(parent) => format!("{parent}.{key}"),
        None => key.to_owned(),
    };
    if message.starts_with("unknown field") {
        let fix = "Remove it or correct its spelling; config-example.yaml documents every setting.";
        return ConfigError::new(
            ConfigErrorKind::UnknownKey,
            origin,
            Some(join(key)),
            line,
            message,
            fix.to_owned(),
        );
    }
    if message.starts_with("missing field") {
        let setting = join(key);
        let fix = format!("Add `{key}`. {}", expected_form(&setting));
        return ConfigError::new(kind, origin, Some(setting), line, message, fix);
    }
    if message.starts_with("duplicate field") {
        // The parser points at the start of the mapping; point at the repeated key instead.
        let setting = join(key);
        let line = locate_nth(yaml, &setting, 1).or(line);
        let fix = format!("Write `{key}` once.");
        return ConfigError::new(kind, origin, Some(setting), line, message, fix);
    }
    let wrong_type = [
        "invalid type",
        "invalid value",
        "unknown variant",
        "invalid length",
    ]
    .iter()
    .any(|p| message.starts_with(p));
    let kind = if wrong_type {
        ConfigErrorKind::WrongType
    } else {
        kind
    };
    let fix = expected_form(path.as_deref().unwrap_or(""));
    ConfigError::new(kind, origin, path, line, message, fix)
}

/// Whether `text` looks like serde_yaml's path to a value (`servers[0].address`).
fn is_path(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.[]?".contains(c))
}

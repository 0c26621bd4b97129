//! `qcp-ctrl passwd USER`: a SCRAM-SHA-256 secret for the configuration's `users`, so that
//! plaintext passwords need not be stored there.

use std::io::{self, BufRead, IsTerminal};

use qcp_core::auth::ScramSecret;

/// The most iterations `--iterations` accepts (PBKDF2 at login costs this many HMACs).
pub const MAX_ITERATIONS: u32 = 1_000_000;

/// The YAML entry of `users` for `user` with the SCRAM secret of `password` (a random salt,
/// `iterations` rounds), as PostgreSQL's `CREATE ROLE ... PASSWORD` would store it.
pub fn users_entry(user: &str, password: &str, iterations: u32) -> Result<String, String> {
    if user.is_empty() {
        return Err("the user name is empty".to_owned());
    }
    if password.is_empty() {
        return Err("an empty password cannot be used to log in; choose one".to_owned());
    }
    if !(1..=MAX_ITERATIONS).contains(&iterations) {
        return Err(format!(
            "--iterations must be 1 to {MAX_ITERATIONS} (PostgreSQL's default is 4096)"
        ));
    }
    let secret = ScramSecret::generate_with(password, iterations);
    Ok(format!(
        "  - name: {}\n    password: \"{secret}\"\n",
        yaml_quoted(user)
    ))
}

/// Reads the password: from the terminal twice, without echo, when standard input is one;
/// else the first line of standard input (for scripts).
pub fn read_password(user: &str) -> Result<String, String> {
    if io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {user}: "))
            .map_err(|e| format!("cannot read the password: {e}"))?;
        let again = rpassword::prompt_password("Again: ")
            .map_err(|e| format!("cannot read the password: {e}"))?;
        if first != again {
            return Err("the two passwords differ; nothing was written".to_owned());
        }
        return Ok(first);
    }
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// A YAML double-quoted scalar (user names may hold `:` or `#`).
fn yaml_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use qcp_core::config::Config;

    use super::*;

    #[test]
    fn the_entry_loads_and_its_secret_verifies_the_password() {
        let entry = users_entry("app: \"x\"", "s3cret", 4096).unwrap();
        let yaml = format!(
            "auth_method: scram-sha-256\nservers: [{{address: 127.0.0.1:5432}}]\nusers:\n{entry}"
        );
        let config = Config::from_yaml(&yaml, "t.yaml").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let user = &config.users[0];
        assert_eq!(user.name, "app: \"x\"");
        let secret = user.secret.as_ref().unwrap();
        assert_eq!(secret.kind(), "SCRAM secret");
        assert!(secret.verify_cleartext(&user.name, "s3cret"));
        assert!(!secret.verify_cleartext(&user.name, "s3cret "));
        // A new salt every time.
        assert_ne!(entry, users_entry("app: \"x\"", "s3cret", 4096).unwrap());
    }

    #[test]
    fn empty_names_passwords_and_absurd_iterations_are_refused() {
        assert!(users_entry("", "p", 4096).is_err());
        assert!(users_entry("u", "", 4096)
            .unwrap_err()
            .contains("empty password"));
        assert!(users_entry("u", "p", 0).is_err());
        assert!(users_entry("u", "p", MAX_ITERATIONS + 1).is_err());
    }
}

//! Whether SQL text may change how names resolve on the backend that runs it, read from the
//! words of the text alone (no parsing, no server round trip).
//!
//! Run on every simple Query and Parse in Smart mode, so it is built to cost little on text
//! that changes nothing: one `memchr2` pass for `_` and `;`, a few byte comparisons at each
//! hit, and the first words of each statement. It errs on the side of "may change": a false
//! alarm only costs the client its statement sharing, a miss could hand another client a
//! statement planned for the wrong schema. What it cannot see: a function or `DO` block that
//! changes `search_path` or the role inside, a name built by concatenation, a change through
//! a FunctionCall message.

/// True if running `sql` may change the backend's name resolution: its `search_path`, its
/// current role (`$user` in the path), its session user, or its temporary schema (searched
/// first). Recognised, case-insensitively:
///
/// - `search_path`, `session_authorization`, `pg_temp` anywhere (SET, RESET, `set_config`,
///   `SET LOCAL`, a function's SET clause, or only a mention: all count);
/// - `set_config(` with `role` in its first argument;
/// - at the start of a statement (the text's, or after a `;`): `SET [SESSION | LOCAL] ROLE |
///   SCHEMA | SESSION AUTHORIZATION`, `RESET ALL | ROLE | SESSION AUTHORIZATION`, any
///   `DISCARD`, and `CREATE ... TEMP | TEMPORARY ...`.
pub fn changes_resolution(sql: &[u8]) -> bool {
    if statement_changes(sql) {
        return true;
    }
    let at_mark = |at: usize| {
        // `at` is a position in `sql`, so the split always succeeds.
        let (before, hit) = sql.split_at_checked(at).unwrap_or((sql, &[]));
        let after = hit.get(1..).unwrap_or_default();
        match hit.first() {
            Some(b';') => statement_changes(after),
            _ => underscore_changes(before, after),
        }
    };
    memchr::memchr2_iter(b'_', b';', sql).any(at_mark)
}

/// At a `_` between `before` and `after`.
fn underscore_changes(before: &[u8], after: &[u8]) -> bool {
    // Most underscores join other words (`user_id`): one byte tells.
    let Some(next) = after.first().map(u8::to_ascii_lowercase) else {
        return false;
    };
    let around = |head: &[u8], tail: &[u8]| ends_with(before, head) && starts_with(after, tail);
    match next {
        b'p' => around(b"search", b"path"),
        b'a' => around(b"session", b"authorization"),
        b't' => around(b"pg", b"temp"),
        b'c' if around(b"set", b"config") => {
            // set_config('role', ...): the first argument runs to the first comma.
            let arguments = after.get(b"config".len()..).unwrap_or_default();
            let first = arguments
                .split(|&b| b == b',' || b == b';')
                .next()
                .unwrap_or_default();
            contains(first, b"role")
        }
        _ => false,
    }
}

/// At the start of a statement: the commands that change resolution without naming any of
/// the words `underscore_changes` looks for.
fn statement_changes(text: &[u8]) -> bool {
    let text = skip_blanks(text);
    // The command word decides, and most statements are none of these: a few byte
    // comparisons before any word is read.
    let command = |keyword: &[u8]| {
        starts_with(text, keyword) && !text.get(keyword.len()).is_some_and(|&b| is_word_byte(b))
    };
    let is = |word: &[u8], keyword: &[u8]| word.eq_ignore_ascii_case(keyword);
    let mut words = Words { rest: text };
    if command(b"set") {
        // SET [SESSION | LOCAL] ROLE | SCHEMA | SESSION AUTHORIZATION
        return words
            .skip(1)
            .take(3)
            .any(|w| is(w, b"role") || is(w, b"schema") || is(w, b"authorization"));
    }
    if command(b"reset") {
        return words
            .nth(1)
            .is_some_and(|w| is(w, b"all") || is(w, b"role") || is(w, b"session"));
    }
    if command(b"create") {
        // CREATE [OR REPLACE] [GLOBAL | LOCAL] TEMP | TEMPORARY ...
        return words
            .skip(1)
            .take(4)
            .any(|w| is(w, b"temp") || is(w, b"temporary"));
    }
    command(b"discard")
}

/// `text` after leading white space and comments.
fn skip_blanks(mut text: &[u8]) -> &[u8] {
    loop {
        match text {
            [b, rest @ ..] if b.is_ascii_whitespace() => text = rest,
            [b'-', b'-', rest @ ..] => {
                let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
                text = rest.get(end..).unwrap_or_default();
            }
            [b'/', b'*', rest @ ..] => {
                text = memchr::memmem::find(rest, b"*/")
                    .and_then(|end| rest.get(end.saturating_add(2)..))
                    .unwrap_or_default();
            }
            _ => return text,
        }
    }
}

/// The words of one statement, from its start: identifiers and keywords (a double-quoted
/// identifier without its quotes), skipping white space, comments and punctuation, ending at
/// a `;`.
struct Words<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let rest = skip_blanks(self.rest);
            match rest.first()? {
                b';' => return None,
                &b if is_word_byte(b) => {
                    let end = rest
                        .iter()
                        .position(|&b| !is_word_byte(b))
                        .unwrap_or(rest.len());
                    let (word, after) = rest.split_at_checked(end).unwrap_or((rest, &[]));
                    self.rest = after;
                    return Some(word);
                }
                b'"' => {
                    let quoted = rest.get(1..).unwrap_or_default();
                    let end = memchr::memchr(b'"', quoted).unwrap_or(quoted.len());
                    let (word, after) = quoted.split_at_checked(end).unwrap_or((quoted, &[]));
                    self.rest = after.get(1..).unwrap_or_default();
                    return Some(word);
                }
                _ => self.rest = rest.get(1..).unwrap_or_default(),
            }
        }
    }
}

/// A byte of an unquoted identifier or keyword.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn starts_with(text: &[u8], prefix: &[u8]) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

fn ends_with(text: &[u8], suffix: &[u8]) -> bool {
    text.len()
        .checked_sub(suffix.len())
        .and_then(|start| text.get(start..))
        .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
}

fn contains(text: &[u8], needle: &[u8]) -> bool {
    text.windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle))
}

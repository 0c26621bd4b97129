//! Simple queries that touch named prepared statements: `DEALLOCATE name`, which qcp answers
//! itself for a statement the client prepared through the protocol, and the command tags after
//! which the backend has none left.

/// True when a simple Query (as much of its text as was looked at) may be a `DEALLOCATE`:
/// the relay then looks at all of it.
pub fn may_deallocate(sql: &[u8]) -> bool {
    sql.trim_ascii_start()
        .get(..b"deallocate".len())
        .is_some_and(|head| head.eq_ignore_ascii_case(b"deallocate"))
}

/// The statement name in a simple Query that is exactly `DEALLOCATE [PREPARE] name` (an
/// optional `;`, spaces around), as PostgreSQL reads it: an unquoted name is folded to
/// lower case, a double-quoted one is taken as written. `None` for anything else, including
/// `DEALLOCATE ALL`, which the server runs itself.
pub fn deallocated_name(query: &[u8]) -> Option<Vec<u8>> {
    let sql = query.strip_suffix(b"\0").unwrap_or(query).trim_ascii();
    let sql = sql.strip_suffix(b";").unwrap_or(sql).trim_ascii_end();
    let rest = strip_keyword(sql, b"deallocate")?;
    let rest = match strip_keyword(rest, b"prepare") {
        Some(after) if !after.is_empty() => after,
        _ => rest,
    };
    if rest.eq_ignore_ascii_case(b"all") {
        return None;
    }
    if let Some(quoted) = rest.strip_prefix(b"\"") {
        let inner = quoted.strip_suffix(b"\"")?;
        let mut name = Vec::with_capacity(inner.len());
        let mut bytes = inner.iter();
        while let Some(&b) = bytes.next() {
            if b == b'"' {
                // Inside, a quote is only valid doubled.
                if bytes.next() != Some(&b'"') {
                    return None;
                }
            }
            name.push(b);
        }
        return (!name.is_empty()).then_some(name);
    }
    let first = *rest.first()?;
    let identifier = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
    if first.is_ascii_digit() || first == b'$' || !rest.iter().all(|&b| identifier(b)) {
        return None;
    }
    Some(rest.to_ascii_lowercase())
}

/// `text` after a leading case-insensitive `keyword` and the white space after it.
fn strip_keyword<'t>(text: &'t [u8], keyword: &[u8]) -> Option<&'t [u8]> {
    let (head, rest) = text.split_at_checked(keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    match rest.first() {
        None => Some(rest),
        Some(b) if b.is_ascii_whitespace() => Some(rest.trim_ascii_start()),
        Some(_) => None,
    }
}

/// True when a CommandComplete tag says the backend dropped every prepared statement.
pub fn drops_all_statements(command_tag: &[u8]) -> bool {
    let tag = command_tag.strip_suffix(b"\0").unwrap_or(command_tag);
    tag == b"DEALLOCATE ALL" || tag == b"DISCARD ALL"
}

//! Finds the line of a setting (`arena.total_size`, `users[1].password`) in YAML text.
//!
//! Errors found after parsing (values that contradict each other, a pool size of 0) no longer
//! have the parser's position, so this walks block-style YAML by indentation instead: each key
//! is looked up among the lines at its mapping's indentation, each `[i]` among the `-` items of
//! a list. When a setting is absent or written in flow style (`{a: 1}`), the line of its
//! deepest present parent is returned, and `None` when not even the top-level key is found.

/// One mapping entry or list item: a line, or part of one (`- a: 1` yields `-` and `a: 1`).
struct Entry<'a> {
    line: usize,
    col: usize,
    text: &'a str,
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// The 1-based line of `setting` in `text` (see the module docs).
pub(super) fn locate(text: &str, setting: &str) -> Option<usize> {
    locate_nth(text, setting, 0)
}

/// Like [`locate`], for the `nth` (from 0) time the last key of `setting` appears in its
/// mapping: `locate_nth(text, "arena.chunk_size", 1)` finds a repeated key.
pub(super) fn locate_nth(text: &str, setting: &str, nth: usize) -> Option<usize> {
    let segments = parse_setting(setting)?;
    find(&entries(text), &segments, nth)
}

fn parse_setting(setting: &str) -> Option<Vec<Segment<'_>>> {
    let mut segments = Vec::new();
    for part in setting.split('.') {
        let (key, mut indices) = part.split_once('[').map_or((part, ""), |(k, i)| (k, i));
        if !key.is_empty() {
            segments.push(Segment::Key(key));
        }
        while let Some((index, rest)) = indices.split_once(']') {
            segments.push(Segment::Index(index.parse().ok()?));
            indices = rest.strip_prefix('[').unwrap_or(rest);
        }
    }
    Some(segments)
}

fn entries(text: &str) -> Vec<Entry<'_>> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start_matches(' ');
        let content = trimmed.trim_end();
        if content.is_empty() || content.starts_with('#') || content == "---" || content == "..." {
            continue;
        }
        let mut col = raw.len() - trimmed.len();
        let mut rest = content;
        while rest == "-" || rest.starts_with("- ") {
            out.push(Entry {
                line: n + 1,
                col,
                text: "-",
            });
            let after = rest.get(1..).unwrap_or("");
            let body = after.trim_start_matches(' ');
            col += 1 + after.len() - body.len();
            rest = body;
        }
        if !rest.is_empty() {
            out.push(Entry {
                line: n + 1,
                col,
                text: rest,
            });
        }
    }
    out
}

fn find(block: &[Entry<'_>], segments: &[Segment<'_>], nth: usize) -> Option<usize> {
    let (segment, rest) = segments.split_first()?;
    let base = block.first()?.col;
    let at_base = |e: &&Entry<'_>| e.col == base;
    let found = match segment {
        Segment::Key(key) => block
            .iter()
            .enumerate()
            .filter(|(_, e)| at_base(e) && is_key(e.text, key))
            .nth(if rest.is_empty() { nth } else { 0 })
            .map(|(n, _)| n),
        Segment::Index(i) => block
            .iter()
            .enumerate()
            .filter(|(_, e)| at_base(e) && e.text == "-")
            .nth(*i)
            .map(|(n, _)| n),
    }?;
    let entry = block.get(found)?;
    let after = block.get(found + 1..).unwrap_or(&[]);
    // YAML lets a list under a key sit at the key's own indentation ("servers:\n- a").
    let list_at_base = matches!(segment, Segment::Key(_))
        && after
            .first()
            .is_some_and(|e| e.col == base && e.text == "-");
    let end = after
        .iter()
        .position(|e| e.col < base || (e.col == base && !(list_at_base && e.text == "-")))
        .unwrap_or(after.len());
    let child = after.get(..end).unwrap_or(&[]);
    if rest.is_empty() {
        return Some(entry.line);
    }
    find(child, rest, nth).or(Some(entry.line))
}

/// Whether `text` starts the mapping entry `key:` (plain, single- or double-quoted key).
fn is_key(text: &str, key: &str) -> bool {
    let unquoted = [("", ""), ("\"", "\""), ("'", "'")]
        .iter()
        .find_map(|(open, close)| {
            text.strip_prefix(open)?
                .strip_prefix(key)?
                .strip_prefix(close)
        });
    unquoted.is_some_and(|after| {
        let after = after.trim_start_matches(' ');
        after == ":" || after.starts_with(": ")
    })
}

#[cfg(test)]
mod tests {
    use super::locate;

    const TEXT: &str = "\
# comment
listening_address: 0.0.0.0:8080
arena:
  chunk_size: 512

  total_size: 3 GB
servers:
  - address: a:1
    pool_size: 0
  -
    address: b:2
    databases: [x]
users:
- name: u
  password: p
- name: v
timeouts: {query_wait: 1}
";

    #[test]
    fn finds_settings() {
        assert_eq!(locate(TEXT, "listening_address"), Some(2));
        assert_eq!(locate(TEXT, "arena"), Some(3));
        assert_eq!(locate(TEXT, "arena.total_size"), Some(6));
        assert_eq!(locate(TEXT, "servers[0]"), Some(8));
        assert_eq!(locate(TEXT, "servers[0].address"), Some(8));
        assert_eq!(locate(TEXT, "servers[0].pool_size"), Some(9));
        assert_eq!(locate(TEXT, "servers[1].address"), Some(11));
        assert_eq!(locate(TEXT, "servers[1].databases[0]"), Some(12));
        assert_eq!(locate(TEXT, "users[0].password"), Some(15));
        assert_eq!(locate(TEXT, "users[1].name"), Some(16));
    }

    #[test]
    fn falls_back_to_the_parent() {
        assert_eq!(locate(TEXT, "users[1].password"), Some(16));
        assert_eq!(locate(TEXT, "arena.chunks_count"), Some(3));
        assert_eq!(locate(TEXT, "timeouts.query_wait"), Some(17));
        assert_eq!(locate(TEXT, "limits.max_message_size"), None);
        assert_eq!(locate("", "servers"), None);
    }

    #[test]
    fn finds_repeated_keys() {
        let text = "arena:\n  chunk_size: 1\n  chunk_size: 2\nservers: []\n";
        assert_eq!(super::locate_nth(text, "arena.chunk_size", 1), Some(3));
        assert_eq!(super::locate_nth(text, "arena.chunk_size", 2), Some(1));
    }

    #[test]
    fn does_not_match_prefixes_or_values() {
        let text = "chunk_sizes: 1\nx: chunk_size: 2\n'chunk_size' : 3\n";
        assert_eq!(locate(text, "chunk_size"), Some(3));
    }
}

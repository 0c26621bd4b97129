//! A [`ResultSet`] as an aligned text table, for `qcp-ctrl show pools|clients|servers|stats`.
//!
//! The console sends plain numbers (tools compute with them); a person reads
//! `12.3 ms` and `1.50 MiB` faster than `12345` and `1572864`, so this rendering applies
//! each column's [`Unit`]. Numbers are right-aligned, text left-aligned, NULL is empty.

use humansize::{format_size, BINARY};

use super::resultset::{Column, ResultSet, Unit, Value};

/// Spaces between columns.
const GAP: &str = "  ";

/// The table as text: a header line, a line of dashes, a line per row; each line ends with
/// a newline and has no trailing spaces.
pub fn render(set: &ResultSet) -> String {
    let cells: Vec<Vec<String>> = set
        .rows
        .iter()
        .map(|row| {
            set.columns
                .iter()
                .enumerate()
                .map(|(i, column)| row.get(i).map(|v| cell(v, column)).unwrap_or_default())
                .collect()
        })
        .collect();
    let widths: Vec<usize> = set
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            cells
                .iter()
                .filter_map(|row| row.get(i))
                .map(|text| width(text))
                .fold(width(column.name), usize::max)
        })
        .collect();

    let mut out = String::new();
    let header: Vec<String> = set.columns.iter().map(|c| c.name.to_owned()).collect();
    line(&mut out, &set.columns, &widths, &header);
    let dashes: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    line(&mut out, &set.columns, &widths, &dashes);
    for row in &cells {
        line(&mut out, &set.columns, &widths, row);
    }
    out
}

/// Appends one line of `texts`, each padded to its column's width.
fn line(out: &mut String, columns: &[Column], widths: &[usize], texts: &[String]) {
    let mut text = String::new();
    for (i, ((column, &w), cell)) in columns.iter().zip(widths).zip(texts).enumerate() {
        if i > 0 {
            text.push_str(GAP);
        }
        let pad = " ".repeat(w.saturating_sub(width(cell)));
        if column.kind.is_number() {
            text.push_str(&pad);
            text.push_str(cell);
        } else {
            text.push_str(cell);
            text.push_str(&pad);
        }
    }
    out.push_str(text.trim_end());
    out.push('\n');
}

/// Characters, not bytes: `µ` takes one column on a terminal.
fn width(text: &str) -> usize {
    text.chars().count()
}

/// One value as a person reads it.
fn cell(value: &Value, column: &Column) -> String {
    match value {
        Value::Null => String::new(),
        Value::Text(text) => text.clone(),
        Value::Int(n) => match (column.unit, u64::try_from(*n)) {
            (Unit::Bytes, Ok(bytes)) => format_size(bytes, BINARY),
            (Unit::Micros, Ok(us)) => micros(us),
            (Unit::Seconds, Ok(s)) => format!("{s} s"),
            _ => n.to_string(),
        },
    }
}

/// Microseconds in the largest unit that keeps the number at or above one:
/// `850 µs`, `12.3 ms`, `4.2 s`.
fn micros(us: u64) -> String {
    // Below 999.95 ms, so that rounding to one decimal never prints "1000.0 ms".
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 999_950 {
        format!("{:.1} ms", to_f64(us) / 1e3)
    } else {
        format!("{:.1} s", to_f64(us) / 1e6)
    }
}

/// Precision lost above 2^53 µs (285 years) does not matter to one decimal.
#[allow(clippy::cast_precision_loss)]
fn to_f64(n: u64) -> f64 {
    n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_and_applies_units() {
        let mut set = ResultSet::new(&[
            Column::text("database"),
            Column::numeric("total_received").unit(Unit::Bytes),
            Column::numeric("avg_query_time").unit(Unit::Micros),
            Column::int4("maxwait").unit(Unit::Seconds),
            Column::text("load_balance_hosts"),
            Column::int4("cl_active"),
        ]);
        set.push(vec![
            Value::text("app"),
            Value::Int(1_572_864),
            Value::Int(12_345),
            Value::Int(3),
            Value::Null,
            Value::Int(7),
        ]);
        set.push(vec![
            Value::text("analytics_long_name"),
            Value::Int(512),
            Value::Int(850),
            Value::Int(0),
            Value::text("x"),
            Value::Int(12),
        ]);
        let text = render(&set);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(
            lines[0],
            "database             total_received  avg_query_time  maxwait  load_balance_hosts  cl_active"
        );
        assert!(lines[1].starts_with("-------------------  --------------"));
        assert_eq!(
            lines[2],
            "app                        1.50 MiB         12.3 ms      3 s                              7"
        );
        assert_eq!(
            lines[3],
            "analytics_long_name           512 B          850 µs      0 s  x                          12"
        );
        // Every line has the same width in characters (µ counts as one).
        let widths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|&w| w == widths[0]), "{widths:?}");
    }

    #[test]
    fn micros_pick_a_unit() {
        assert_eq!(micros(0), "0 µs");
        assert_eq!(micros(999), "999 µs");
        assert_eq!(micros(1_000), "1.0 ms");
        assert_eq!(micros(12_345), "12.3 ms");
        assert_eq!(micros(999_949), "999.9 ms");
        assert_eq!(micros(999_950), "1.0 s");
        assert_eq!(micros(4_200_000), "4.2 s");
    }

    #[test]
    fn trailing_null_leaves_no_trailing_spaces() {
        let mut set = ResultSet::new(&[Column::text("a"), Column::text("long_name")]);
        set.push(vec![Value::text("x"), Value::Null]);
        assert_eq!(render(&set), "a  long_name\n-  ---------\nx\n");
    }
}

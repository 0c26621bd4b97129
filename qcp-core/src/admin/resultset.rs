//! A console table and its wire form.
//!
//! A [`ResultSet`] is plain data: columns (name, PostgreSQL type, unit) and rows of values.
//! The same table goes to a console client as RowDescription + DataRow + CommandComplete
//! ([`ResultSet::encode`]) and to `qcp-ctrl show` as aligned text (`human.rs`), so both
//! always show the same figures.
//!
//! The column types are PgBouncer's: every value is sent in text format, typed `text`,
//! `int4`, `int8` or `numeric` so that drivers convert it as they do PgBouncer's.

use qcp_codec::{encode, fields::FieldDescription, EncodeError};

/// A column's PostgreSQL type, as PgBouncer's RowDescription letters give it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `text` (PgBouncer's `s`, and `T` for its timestamps, which it also sends as text).
    Text,
    /// `int4` (PgBouncer's `i`).
    Int4,
    /// `int8` (PgBouncer's `q`).
    Int8,
    /// `numeric` (PgBouncer's `N`, for its 64-bit counters).
    Numeric,
}

impl Kind {
    /// The type's OID in `pg_type`.
    pub fn type_oid(self) -> u32 {
        match self {
            Kind::Text => 25,
            Kind::Int4 => 23,
            Kind::Int8 => 20,
            Kind::Numeric => 1700,
        }
    }

    /// `pg_type.typlen`: bytes of a value, -1 for variable width.
    pub fn type_size(self) -> i16 {
        match self {
            Kind::Text | Kind::Numeric => -1,
            Kind::Int4 => 4,
            Kind::Int8 => 8,
        }
    }

    /// Numbers are right-aligned in text tables.
    pub fn is_number(self) -> bool {
        !matches!(self, Kind::Text)
    }
}

/// What a number counts, for human rendering only (the wire always carries the plain
/// number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    /// A count, or text.
    Plain,
    /// Bytes (or bytes per second).
    Bytes,
    /// Microseconds.
    Micros,
    /// Seconds.
    Seconds,
}

/// One column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Column {
    /// Its name, as PgBouncer spells it.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// What its numbers count.
    pub unit: Unit,
}

impl Column {
    /// A column of `kind` counting `unit`.
    pub const fn new(name: &'static str, kind: Kind, unit: Unit) -> Self {
        Column { name, kind, unit }
    }

    /// A text column.
    pub const fn text(name: &'static str) -> Self {
        Column::new(name, Kind::Text, Unit::Plain)
    }

    /// An `int4` count.
    pub const fn int4(name: &'static str) -> Self {
        Column::new(name, Kind::Int4, Unit::Plain)
    }

    /// An `int8` count.
    pub const fn int8(name: &'static str) -> Self {
        Column::new(name, Kind::Int8, Unit::Plain)
    }

    /// A `numeric` count.
    pub const fn numeric(name: &'static str) -> Self {
        Column::new(name, Kind::Numeric, Unit::Plain)
    }

    /// The same column counting `unit`.
    pub const fn unit(self, unit: Unit) -> Self {
        Column::new(self.name, self.kind, unit)
    }

    /// Its RowDescription entry: no table, text format.
    fn field(&self) -> FieldDescription<'static> {
        FieldDescription {
            name: self.name.as_bytes(),
            table_oid: 0,
            column_id: 0,
            type_oid: self.kind.type_oid(),
            type_size: self.kind.type_size(),
            type_modifier: -1,
            format: 0,
        }
    }
}

/// One cell.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// Text.
    Text(String),
    /// A number (counters above `i64::MAX` are shown as `i64::MAX`).
    Int(i64),
    /// SQL NULL.
    Null,
}

impl Value {
    /// A text cell.
    pub fn text(text: impl Into<String>) -> Self {
        Value::Text(text.into())
    }

    /// A count or size; saturates at `i64::MAX`.
    pub fn count(n: u64) -> Self {
        Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }

    /// A `usize` count or size; saturates at `i64::MAX`.
    pub fn size(n: usize) -> Self {
        Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }

    /// The value as it goes on the wire in a column of `kind`, `None` for NULL.
    ///
    /// An `int4` column cannot hold more than `i32::MAX`: a larger number is sent as
    /// `i32::MAX` (a driver would refuse the text of a bigger one; PgBouncer itself lets it
    /// wrap negative).
    pub fn wire_text(&self, kind: Kind) -> Option<String> {
        match self {
            Value::Text(text) => Some(text.clone()),
            Value::Int(n) if kind == Kind::Int4 => {
                let clamped = (*n).clamp(i64::from(i32::MIN), i64::from(i32::MAX));
                Some(clamped.to_string())
            }
            Value::Int(n) => Some(n.to_string()),
            Value::Null => None,
        }
    }
}

/// A table: columns and rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResultSet {
    /// The columns, in order.
    pub columns: Vec<Column>,
    /// The rows; each has one value per column.
    pub rows: Vec<Vec<Value>>,
}

impl ResultSet {
    /// An empty table with these columns.
    pub fn new(columns: &[Column]) -> Self {
        ResultSet {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn push(&mut self, row: Vec<Value>) {
        self.rows.push(row);
    }

    /// The position of the column called `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The value in `row` of the column called `name`.
    pub fn get(&self, row: usize, name: &str) -> Option<&Value> {
        self.rows.get(row)?.get(self.column(name)?)
    }

    /// Appends RowDescription, one DataRow per row and CommandComplete(`tag`) to `out`.
    ///
    /// Each DataRow carries exactly one value per column (a short row is padded with
    /// NULLs, extra values are dropped), so the stream stays well formed whatever a table
    /// builder did. On error, the messages already appended stay in `out`: the caller
    /// truncates.
    pub fn encode(&self, tag: &str, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let fields: Vec<FieldDescription<'static>> =
            self.columns.iter().map(Column::field).collect();
        encode::row_description(out, &fields)?;
        for row in &self.rows {
            let texts: Vec<Option<String>> = self
                .columns
                .iter()
                .enumerate()
                .map(|(i, column)| row.get(i).and_then(|v| v.wire_text(column.kind)))
                .collect();
            let values: Vec<Option<&[u8]>> = texts
                .iter()
                .map(|t| t.as_deref().map(str::as_bytes))
                .collect();
            encode::data_row(out, &values)?;
        }
        encode::command_complete(out, tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qcp_codec::{BackendMessage, Limits};

    #[test]
    fn encodes_pgbouncer_type_codes_and_text_values() {
        let mut set = ResultSet::new(&[
            Column::text("name"),
            Column::int4("small"),
            Column::int8("big"),
            Column::numeric("counter"),
        ]);
        set.push(vec![
            Value::text("a"),
            Value::Int(5_000_000_000),
            Value::Int(5_000_000_000),
            Value::Null,
        ]);
        set.push(vec![Value::text("short")]);
        let mut out = Vec::new();
        set.encode("SHOW", &mut out).unwrap();

        let limits = Limits::default();
        let mut rest = &out[..];
        let mut rows = Vec::new();
        let mut tag = None;
        let mut types = Vec::new();
        while let Some((msg, used)) = BackendMessage::decode(rest, &limits).unwrap() {
            match msg {
                BackendMessage::RowDescription(rd) => {
                    for f in rd.fields() {
                        assert_eq!(
                            (f.table_oid, f.column_id, f.type_modifier, f.format),
                            (0, 0, -1, 0)
                        );
                        types.push((f.name_str().unwrap().to_owned(), f.type_oid, f.type_size));
                    }
                }
                BackendMessage::DataRow(row) => rows.push(
                    row.values()
                        .map(|v| v.map(|b| String::from_utf8(b.to_vec()).unwrap()))
                        .collect::<Vec<_>>(),
                ),
                BackendMessage::CommandComplete(c) => tag = Some(c.tag_str().unwrap().to_owned()),
                other => panic!("unexpected {other:?}"),
            }
            rest = &rest[used..];
        }
        assert!(rest.is_empty());
        assert_eq!(
            types,
            [
                ("name".to_owned(), 25, -1),
                ("small".to_owned(), 23, 4),
                ("big".to_owned(), 20, 8),
                ("counter".to_owned(), 1700, -1),
            ]
        );
        assert_eq!(
            rows,
            [
                vec![
                    Some("a".to_owned()),
                    Some("2147483647".to_owned()),
                    Some("5000000000".to_owned()),
                    None
                ],
                vec![Some("short".to_owned()), None, None, None],
            ]
        );
        assert_eq!(tag.as_deref(), Some("SHOW"));
    }

    #[test]
    fn counts_saturate() {
        assert_eq!(Value::count(u64::MAX), Value::Int(i64::MAX));
        assert_eq!(Value::count(7), Value::Int(7));
        assert_eq!(Value::size(7), Value::Int(7));
    }
}

//! ClickHouse type names (as `…WithNamesAndTypes` spells them) to MySQL column definitions, so
//! that clients read integers, floats, decimals, dates and datetimes as such and `Nullable`
//! columns as nullable. Types MySQL has no counterpart for (arrays, tuples, UUIDs, enums, …)
//! arrive as strings in ClickHouse's text form.

use bytes::BytesMut;

use crate::protocol::messages::ColumnDef;

pub const TYPE_DECIMAL: u8 = 0xf6;
pub const TYPE_TINY: u8 = 0x01;
pub const TYPE_SHORT: u8 = 0x02;
pub const TYPE_LONG: u8 = 0x03;
pub const TYPE_FLOAT: u8 = 0x04;
pub const TYPE_DOUBLE: u8 = 0x05;
pub const TYPE_NULL: u8 = 0x06;
pub const TYPE_LONGLONG: u8 = 0x08;
pub const TYPE_DATE: u8 = 0x0a;
pub const TYPE_DATETIME: u8 = 0x0c;
pub const TYPE_VAR_STRING: u8 = 0xfd;

const FLAG_NOT_NULL: u16 = 1;
const FLAG_UNSIGNED: u16 = 32;
const FLAG_BINARY: u16 = 128;
const FLAG_NUM: u16 = 32768;
const COLLATION_BINARY: u16 = 63;
/// MySQL's decimals for floats and strings whose scale is not fixed.
const NOT_FIXED_DEC: u8 = 31;

/// A result column as the client will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: Vec<u8>,
    pub kind: u8,
    pub flags: u16,
    pub length: u32,
    pub decimals: u8,
    pub collation: u16,
}

impl Column {
    /// A string column in `collation` (the client's).
    pub fn string(name: &[u8], collation: u16, nullable: bool) -> Column {
        Column {
            name: name.to_vec(),
            kind: TYPE_VAR_STRING,
            flags: if nullable { 0 } else { FLAG_NOT_NULL },
            length: 65535,
            decimals: NOT_FIXED_DEC,
            collation,
        }
    }

    pub fn encode(&self, type_info: bool) -> BytesMut {
        ColumnDef {
            name: &self.name,
            collation: self.collation,
            length: self.length,
            kind: self.kind,
            flags: self.flags,
            decimals: self.decimals,
        }
        .encode(type_info)
    }
}

/// The column for ClickHouse type `ch_type`; strings take `collation`.
pub fn column(name: &[u8], ch_type: &str, collation: u16) -> Column {
    let (inner, nullable) = unwrap_nullable(ch_type.trim());
    let null_flag = if nullable { 0 } else { FLAG_NOT_NULL };
    let numeric = |kind: u8, length: u32, unsigned: bool, decimals: u8| Column {
        name: name.to_vec(),
        kind,
        flags: null_flag | FLAG_BINARY | FLAG_NUM | if unsigned { FLAG_UNSIGNED } else { 0 },
        length,
        decimals,
        collation: COLLATION_BINARY,
    };
    match inner {
        "UInt8" => numeric(TYPE_TINY, 3, true, 0),
        "Int8" => numeric(TYPE_TINY, 4, false, 0),
        "UInt16" => numeric(TYPE_SHORT, 5, true, 0),
        "Int16" => numeric(TYPE_SHORT, 6, false, 0),
        "UInt32" => numeric(TYPE_LONG, 10, true, 0),
        "Int32" => numeric(TYPE_LONG, 11, false, 0),
        "UInt64" => numeric(TYPE_LONGLONG, 20, true, 0),
        "Int64" => numeric(TYPE_LONGLONG, 20, false, 0),
        "Float32" => numeric(TYPE_FLOAT, 12, false, NOT_FIXED_DEC),
        "Float64" => numeric(TYPE_DOUBLE, 22, false, NOT_FIXED_DEC),
        "Date" => Column {
            flags: null_flag | FLAG_BINARY,
            ..numeric(TYPE_DATE, 10, false, 0)
        },
        t if t == "DateTime" || t.starts_with("DateTime(") => Column {
            flags: null_flag | FLAG_BINARY,
            ..numeric(TYPE_DATETIME, 19, false, 0)
        },
        "Nothing" => Column {
            flags: FLAG_BINARY,
            ..numeric(TYPE_NULL, 0, false, 0)
        },
        t => match decimal(t) {
            // The display width counts the sign and the point, as MySQL's does.
            Some((precision, scale)) => numeric(TYPE_DECIMAL, precision + 2, false, scale),
            None => Column::string(name, collation, nullable),
        },
    }
}

/// `Nullable(T)` → (T, true); `LowCardinality(T)` is T to a client.
fn unwrap_nullable(t: &str) -> (&str, bool) {
    let mut t = t;
    let mut nullable = false;
    loop {
        if let Some(inner) = wrapped(t, "Nullable") {
            nullable = true;
            t = inner;
        } else if let Some(inner) = wrapped(t, "LowCardinality") {
            t = inner;
        } else {
            return (t, nullable);
        }
    }
}

fn wrapped<'a>(t: &'a str, wrapper: &str) -> Option<&'a str> {
    t.strip_prefix(wrapper)?
        .strip_prefix('(')?
        .strip_suffix(')')
        .map(str::trim)
}

/// `Decimal(P, S)`, `Decimal32(S)`, `Decimal64(S)`, `Decimal128(S)` → (P, S).
fn decimal(t: &str) -> Option<(u32, u8)> {
    let (precision, args) = if let Some(a) = wrapped(t, "Decimal32") {
        (Some(9), a)
    } else if let Some(a) = wrapped(t, "Decimal64") {
        (Some(18), a)
    } else if let Some(a) = wrapped(t, "Decimal128") {
        (Some(38), a)
    } else {
        (None, wrapped(t, "Decimal")?)
    };
    let mut parts = args.split(',').map(str::trim);
    match precision {
        Some(p) => Some((p, parts.next()?.parse().ok()?)),
        None => {
            let p = parts.next()?.parse().ok()?;
            let s = parts.next()?.parse().ok()?;
            Some((p, s))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_clickhouse_types() {
        let c = column(b"a", "UInt64", 45);
        assert_eq!(
            (c.kind, c.flags & FLAG_UNSIGNED != 0),
            (TYPE_LONGLONG, true)
        );
        assert_ne!(c.flags & FLAG_NOT_NULL, 0);
        let c = column(b"a", "Nullable(Int32)", 45);
        assert_eq!((c.kind, c.flags & FLAG_NOT_NULL), (TYPE_LONG, 0));
        let c = column(b"d", "Decimal(18, 2)", 45);
        assert_eq!((c.kind, c.length, c.decimals), (TYPE_DECIMAL, 20, 2));
        let c = column(b"d", "Decimal64(4)", 45);
        assert_eq!((c.kind, c.length, c.decimals), (TYPE_DECIMAL, 20, 4));
        assert_eq!(column(b"x", "Date", 45).kind, TYPE_DATE);
        assert_eq!(column(b"x", "DateTime('UTC')", 45).kind, TYPE_DATETIME);
        assert_eq!(column(b"x", "Float32", 45).kind, TYPE_FLOAT);
        assert_eq!(column(b"x", "Nullable(Nothing)", 45).kind, TYPE_NULL);
        let s = column(b"s", "LowCardinality(Nullable(String))", 45);
        assert_eq!((s.kind, s.collation, s.flags), (TYPE_VAR_STRING, 45, 0));
        assert_eq!(column(b"u", "UUID", 33).kind, TYPE_VAR_STRING);
        assert_eq!(column(b"e", "Enum8('a' = 1)", 33).kind, TYPE_VAR_STRING);
    }
}

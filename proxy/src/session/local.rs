//! Statements the proxy answers itself: `SELECT LAST_INSERT_ID()`, `ROW_COUNT()`,
//! `FOUND_ROWS()` and `CONNECTION_ID()` in all their spellings (from what the session's own
//! responses carried, so no connection has to stay pinned after a statement), and
//! `SELECT @@socket` (NULL, so clients that prefer a unix socket on localhost do not reconnect
//! to the backend's socket around the proxy).
//!
//! Column definitions are the server's, byte for byte (captured from MariaDB 10.11): the column
//! is named after the expression as written (or its alias); functions are NOT NULL, variables
//! are not; `ROW_COUNT()` and `FOUND_ROWS()` are signed, `CONNECTION_ID()` is a 10-digit LONG.

use bytes::{BufMut, BytesMut};

use super::sql::{LocalQuery, Reads};
use crate::protocol::constants::status;
use crate::protocol::messages::{encode_ok, ColumnDef, Ok as OkPacket};
use crate::protocol::wire::put_lenenc_bytes;

const TYPE_LONG: u8 = 0x03;
const TYPE_LONGLONG: u8 = 0x08;
const TYPE_VAR_STRING: u8 = 0xfd;
const FLAG_NOT_NULL: u16 = 1;
const FLAG_UNSIGNED: u16 = 32;
const FLAG_BINARY: u16 = 128;
const COLLATION_BINARY: u16 = 63;
const COLLATION_UTF8MB3: u16 = 33;
/// MariaDB's decimals for strings ("not fixed").
const NOT_FIXED_DEC: u8 = 39;

fn column_def(
    type_info: bool,
    name: &str,
    collation: u16,
    length: u32,
    kind: u8,
    flags: u16,
    decimals: u8,
) -> BytesMut {
    ColumnDef {
        name: name.as_bytes(),
        collation,
        length,
        kind,
        flags,
        decimals,
    }
    .encode(type_info)
}

/// The column a local query returns (`type_info`: see `column_def`).
pub fn column_for(q: &LocalQuery, type_info: bool) -> BytesMut {
    match q.reads {
        Reads::LastInsertId => column_def(
            type_info,
            &q.column,
            COLLATION_BINARY,
            21,
            TYPE_LONGLONG,
            FLAG_NOT_NULL | FLAG_UNSIGNED | FLAG_BINARY,
            0,
        ),
        Reads::LastInsertIdVar => column_def(
            type_info,
            &q.column,
            COLLATION_BINARY,
            21,
            TYPE_LONGLONG,
            FLAG_UNSIGNED | FLAG_BINARY,
            0,
        ),
        Reads::RowCount | Reads::FoundRows => column_def(
            type_info,
            &q.column,
            COLLATION_BINARY,
            21,
            TYPE_LONGLONG,
            FLAG_NOT_NULL | FLAG_BINARY,
            0,
        ),
        Reads::ConnectionId => column_def(
            type_info,
            &q.column,
            COLLATION_BINARY,
            10,
            TYPE_LONG,
            FLAG_NOT_NULL | FLAG_UNSIGNED | FLAG_BINARY,
            0,
        ),
        Reads::Socket => column_def(
            type_info,
            &q.column,
            COLLATION_UTF8MB3,
            0,
            TYPE_VAR_STRING,
            0,
            NOT_FIXED_DEC,
        ),
    }
}

/// The value of a locally answered query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    Null,
    Unsigned(u64),
    Signed(i64),
}

impl Value {
    fn text(self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Unsigned(v) => Some(v.to_string()),
            Value::Signed(v) => Some(v.to_string()),
        }
    }
}

/// How a client wants terminators.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub deprecate_eof: bool,
    pub session_track: bool,
    pub status: u16,
    /// Column definitions carry MariaDB's data-type block (`Flavor::type_info`).
    pub type_info: bool,
}

impl Shape {
    fn eof(&self) -> Vec<u8> {
        let mut v = vec![0xfe, 0, 0];
        v.extend_from_slice(&self.status.to_le_bytes());
        v
    }

    /// The end of rows: an OK with the EOF header, or a classic EOF.
    fn terminator(&self) -> Vec<u8> {
        if self.deprecate_eof {
            let ok = OkPacket {
                status: self.status,
                ..OkPacket::default()
            };
            let mut p = encode_ok(&ok, self.session_track).to_vec();
            if let Some(h) = p.first_mut() {
                *h = 0xfe;
            }
            p
        } else {
            self.eof()
        }
    }
}

/// The packets (payloads, sequence ids from 1) of a one-row text result set.
pub fn text_result(q: &LocalQuery, value: Value, shape: Shape) -> Vec<Vec<u8>> {
    let mut out = vec![vec![1u8], column_for(q, shape.type_info).to_vec()];
    if !shape.deprecate_eof {
        out.push(shape.eof());
    }
    let mut row = BytesMut::new();
    match value.text() {
        Some(v) => put_lenenc_bytes(&mut row, v.as_bytes()),
        None => row.put_u8(0xfb),
    }
    out.push(row.to_vec());
    out.push(shape.terminator());
    out
}

/// PREPARE_OK and its column definition for a statement answered locally.
pub fn prepare_ok(q: &LocalQuery, id: u32, shape: Shape) -> Vec<Vec<u8>> {
    let mut head = vec![0x00];
    head.extend_from_slice(&id.to_le_bytes());
    head.extend_from_slice(&1u16.to_le_bytes()); // columns
    head.extend_from_slice(&0u16.to_le_bytes()); // params
    head.push(0);
    head.extend_from_slice(&0u16.to_le_bytes()); // warnings
    let mut out = vec![head, column_for(q, shape.type_info).to_vec()];
    if !shape.deprecate_eof {
        out.push(shape.eof());
    }
    out
}

/// The binary result set of an executed local statement.
pub fn binary_result(q: &LocalQuery, value: Value, shape: Shape) -> Vec<Vec<u8>> {
    let mut out = vec![vec![1u8], column_for(q, shape.type_info).to_vec()];
    if !shape.deprecate_eof {
        out.push(shape.eof());
    }
    // Header, then a NULL bitmap of (columns + 7 + 2) / 8 bytes with an offset of 2 bits.
    let mut row = vec![0x00, 0x00];
    match (q.reads, value) {
        (_, Value::Null) => row[1] = 0x04,
        (Reads::ConnectionId, Value::Unsigned(v)) => {
            row.extend_from_slice(&u32::try_from(v).unwrap_or(u32::MAX).to_le_bytes())
        }
        (_, Value::Unsigned(v)) => row.extend_from_slice(&v.to_le_bytes()),
        (_, Value::Signed(v)) => row.extend_from_slice(&v.to_le_bytes()),
    }
    out.push(row);
    out.push(shape.terminator());
    out
}

/// The status bits a locally built packet may carry.
pub fn visible_status(st: u16) -> u16 {
    st & (status::IN_TRANS | status::AUTOCOMMIT | status::IN_TRANS_READONLY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_insert_id_column_matches_mariadb() {
        // Captured from MariaDB 10.11 for `SELECT LAST_INSERT_ID()`.
        let q = LocalQuery {
            column: "LAST_INSERT_ID()".into(),
            reads: Reads::LastInsertId,
        };
        let def = column_for(&q, false);
        let mut want = vec![3, b'd', b'e', b'f', 0, 0, 0, 16];
        want.extend_from_slice(b"LAST_INSERT_ID()");
        want.extend_from_slice(&[0, 0x0c, 63, 0, 21, 0, 0, 0, 8, 0xa1, 0, 0, 0, 0]);
        assert_eq!(def.to_vec(), want);
        // With EXTENDED_TYPE_INFO, MariaDB adds an empty data-type block after org_name.
        let typed = column_for(&q, true);
        let name_end = 8 + "LAST_INSERT_ID()".len() + 1;
        want.insert(name_end, 0);
        assert_eq!(typed.to_vec(), want);
        let shape = Shape {
            deprecate_eof: true,
            session_track: false,
            status: status::AUTOCOMMIT,
            type_info: false,
        };
        let packets = text_result(&q, Value::Unsigned(42), shape);
        assert_eq!(packets.len(), 4);
        assert_eq!(packets[2], vec![2, b'4', b'2']);
        assert_eq!(packets[3][0], 0xfe);
        let bin = binary_result(&q, Value::Unsigned(7), shape);
        assert_eq!(bin[2], vec![0, 0, 7, 0, 0, 0, 0, 0, 0, 0]);
    }
}

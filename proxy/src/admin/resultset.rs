//! Text-protocol result sets as ProxySQL's admin sends them: every column a VAR_STRING with empty
//! schema and table names, every value a string or NULL. Tools such as Dolphie rely on getting
//! strings (they call `.isnumeric()` on values).

use bytes::{BufMut, BytesMut};

use crate::protocol::constants::status;
use crate::protocol::messages::{encode_ok, Ok as OkPacket};
use crate::protocol::packet::put_packet;
use crate::protocol::wire::{put_lenenc_bytes, put_lenenc_int};

const TYPE_VAR_STRING: u8 = 0xfd;
const UTF8_GENERAL_CI: u16 = 33;
const NULL_VALUE: u8 = 0xfb;

/// A result computed by the admin plane.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl ResultSet {
    /// A one-column, one-row result (version queries and the like).
    pub fn single(column: &str, value: impl Into<String>) -> ResultSet {
        ResultSet {
            columns: vec![column.to_string()],
            rows: vec![vec![Some(value.into())]],
        }
    }

    /// Appends the whole response, starting at sequence id `seq`, to `out`. `deprecate_eof` is
    /// whether the client negotiated CLIENT_DEPRECATE_EOF (then the terminator is an OK with the
    /// EOF header and no EOF follows the column definitions).
    pub fn encode(&self, out: &mut BytesMut, mut seq: u8, deprecate_eof: bool) {
        let mut payload = BytesMut::new();
        put_lenenc_int(&mut payload, self.columns.len() as u64);
        seq = put_packet(out, seq, &payload);
        for (i, name) in self.columns.iter().enumerate() {
            payload.clear();
            let width = self
                .rows
                .iter()
                .filter_map(|r| r.get(i).and_then(|v| v.as_ref()).map(String::len))
                .max()
                .unwrap_or(0)
                .max(1);
            column_definition(&mut payload, name, width);
            seq = put_packet(out, seq, &payload);
        }
        if !deprecate_eof {
            seq = put_packet(out, seq, &eof());
        }
        for row in &self.rows {
            payload.clear();
            for value in row {
                match value {
                    Some(v) => put_lenenc_bytes(&mut payload, v.as_bytes()),
                    None => payload.put_u8(NULL_VALUE),
                }
            }
            seq = put_packet(out, seq, &payload);
        }
        if deprecate_eof {
            let mut ok = encode_ok(
                &OkPacket {
                    status: status::AUTOCOMMIT,
                    ..OkPacket::default()
                },
                false,
            );
            ok[0] = 0xfe;
            put_packet(out, seq, &ok);
        } else {
            put_packet(out, seq, &eof());
        }
    }
}

fn column_definition(out: &mut BytesMut, name: &str, width: usize) {
    put_lenenc_bytes(out, b"def");
    put_lenenc_bytes(out, b"");
    put_lenenc_bytes(out, b"");
    put_lenenc_bytes(out, b"");
    put_lenenc_bytes(out, name.as_bytes());
    put_lenenc_bytes(out, name.as_bytes());
    out.put_u8(0x0c);
    out.put_u16_le(UTF8_GENERAL_CI);
    out.put_u32_le(u32::try_from(width).unwrap_or(u32::MAX));
    out.put_u8(TYPE_VAR_STRING);
    out.put_u16_le(0);
    out.put_u8(0);
    out.put_u16_le(0);
}

fn eof() -> [u8; 5] {
    let s = status::AUTOCOMMIT.to_le_bytes();
    [0xfe, 0, 0, s[0], s[1]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::packet::{Header, HEADER_LEN};

    fn packets(buf: &[u8]) -> Vec<Vec<u8>> {
        let mut out = vec![];
        let mut rest = buf;
        while let Some(h) = Header::peek(rest) {
            out.push(rest[HEADER_LEN..HEADER_LEN + h.len].to_vec());
            rest = &rest[HEADER_LEN + h.len..];
        }
        out
    }

    #[test]
    fn classic_and_deprecate_eof_framing() {
        let rs = ResultSet {
            columns: vec!["a".into(), "b".into()],
            rows: vec![vec![Some("1".into()), None]],
        };
        let mut classic = BytesMut::new();
        rs.encode(&mut classic, 1, false);
        let p = packets(&classic);
        // count, 2 defs, EOF, 1 row, EOF
        assert_eq!(p.len(), 6);
        assert_eq!(p[0], vec![2]);
        assert_eq!(p[4], vec![1, b'1', NULL_VALUE]);
        assert_eq!(p[5][0], 0xfe);
        let mut modern = BytesMut::new();
        rs.encode(&mut modern, 1, true);
        assert_eq!(packets(&modern).len(), 5);
    }
}

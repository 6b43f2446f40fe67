//! The generic server messages: OK, ERR and EOF, parsed from backends and built for clients.

use bytes::{BufMut, BytesMut};

use super::constants::status;
use super::wire::{put_lenenc_bytes, put_lenenc_int, Reader};

/// What an OK packet (or an OK-shaped terminator) says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ok {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
    /// The new default schema, when the server reported a change (session tracking).
    pub schema: Option<String>,
    /// System variables the server reported changed (session tracking), name and value.
    pub vars: Vec<(String, String)>,
}

/// Session-state-change type for system variables.
const TRACK_SYSTEM_VARIABLES: u8 = 0;
/// Session-state-change type for the default schema.
const TRACK_SCHEMA: u8 = 1;

impl Ok {
    /// Parses an OK payload (header byte 0x00 or 0xfe). `session_track` is whether the connection
    /// negotiated CLIENT_SESSION_TRACK, which changes how the tail of the packet is laid out.
    pub fn parse(payload: &[u8], session_track: bool) -> Option<Ok> {
        let mut r = Reader::new(payload);
        let header = r.u8()?;
        if header != 0x00 && header != 0xfe {
            return None;
        }
        let mut ok = Ok {
            affected_rows: r.lenenc_int()?,
            last_insert_id: r.lenenc_int()?,
            status: r.u16()?,
            warnings: r.u16()?,
            schema: None,
            vars: Vec::new(),
        };
        if session_track && !r.is_empty() {
            let _info = r.lenenc_bytes()?;
            if ok.status & status::SESSION_STATE_CHANGED != 0 && !r.is_empty() {
                let mut changes = Reader::new(r.lenenc_bytes()?);
                while !changes.is_empty() {
                    let kind = changes.u8()?;
                    let data = changes.lenenc_bytes()?;
                    if kind == TRACK_SCHEMA {
                        let name = Reader::new(data).lenenc_bytes()?;
                        ok.schema = Some(String::from_utf8_lossy(name).into_owned());
                    } else if kind == TRACK_SYSTEM_VARIABLES {
                        let mut d = Reader::new(data);
                        let name = d.lenenc_bytes()?;
                        let value = d.lenenc_bytes()?;
                        ok.vars.push((
                            String::from_utf8_lossy(name).into_owned(),
                            String::from_utf8_lossy(value).into_owned(),
                        ));
                    }
                }
            }
        }
        Some(ok)
    }
}

/// The warning count of a classic EOF packet.
pub fn parse_eof_warnings(payload: &[u8]) -> Option<u16> {
    let mut r = Reader::new(payload);
    (r.u8()? == 0xfe).then_some(())?;
    r.u16()
}

/// The classic EOF packet: 0xfe, warnings, status.
pub fn parse_eof_status(payload: &[u8]) -> Option<u16> {
    let mut r = Reader::new(payload);
    (r.u8()? == 0xfe).then_some(())?;
    r.u16()?;
    r.u16()
}

/// An ERR packet's code, SQLSTATE and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Err {
    pub code: u16,
    pub state: String,
    pub message: String,
}

impl Err {
    pub fn new(code: (u16, &str), message: impl Into<String>) -> Err {
        Err {
            code: code.0,
            state: code.1.to_string(),
            message: message.into(),
        }
    }

    pub fn parse(payload: &[u8]) -> Option<Err> {
        let mut r = Reader::new(payload);
        (r.u8()? == 0xff).then_some(())?;
        let code = r.u16()?;
        let rest = r.rest();
        let (state, message) = match rest.split_first() {
            Some((b'#', tail)) if tail.len() >= 5 => (&tail[..5], &tail[5..]),
            _ => (&b"HY000"[..], rest),
        };
        Some(Err {
            code,
            state: String::from_utf8_lossy(state).into_owned(),
            message: String::from_utf8_lossy(message).into_owned(),
        })
    }

    pub fn encode(&self) -> BytesMut {
        let mut out = BytesMut::with_capacity(9 + self.message.len());
        out.put_u8(0xff);
        out.put_u16_le(self.code);
        out.put_u8(b'#');
        let mut state = [b'H', b'Y', b'0', b'0', b'0'];
        for (d, s) in state.iter_mut().zip(self.state.bytes()) {
            *d = s;
        }
        out.put_slice(&state);
        out.put_slice(self.message.as_bytes());
        out
    }
}

impl std::fmt::Display for Err {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ERROR {} ({}): {}", self.code, self.state, self.message)
    }
}

/// Builds an OK payload for a client with the given capabilities.
pub fn encode_ok(ok: &Ok, session_track: bool) -> BytesMut {
    let mut out = BytesMut::with_capacity(16);
    out.put_u8(0x00);
    put_lenenc_int(&mut out, ok.affected_rows);
    put_lenenc_int(&mut out, ok.last_insert_id);
    out.put_u16_le(ok.status);
    out.put_u16_le(ok.warnings);
    if session_track {
        put_lenenc_bytes(&mut out, b"");
    }
    out
}

/// A column definition (protocol 4.1) with empty schema and table names; `type_info`: with
/// MariaDB's data-type block, empty as the server sends it for plain types.
pub struct ColumnDef<'a> {
    pub name: &'a [u8],
    pub collation: u16,
    pub length: u32,
    pub kind: u8,
    pub flags: u16,
    pub decimals: u8,
}

impl ColumnDef<'_> {
    pub fn encode(&self, type_info: bool) -> BytesMut {
        let mut out = BytesMut::with_capacity(32 + self.name.len());
        put_lenenc_bytes(&mut out, b"def");
        put_lenenc_bytes(&mut out, b"");
        put_lenenc_bytes(&mut out, b"");
        put_lenenc_bytes(&mut out, b"");
        put_lenenc_bytes(&mut out, self.name);
        put_lenenc_bytes(&mut out, b"");
        if type_info {
            put_lenenc_bytes(&mut out, b"");
        }
        put_lenenc_int(&mut out, 0x0c);
        out.put_u16_le(self.collation);
        out.put_u32_le(self.length);
        out.put_u8(self.kind);
        out.put_u16_le(self.flags);
        out.put_u8(self.decimals);
        out.put_u16_le(0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_round_trips_with_and_without_session_track() {
        let ok = Ok {
            affected_rows: 3,
            last_insert_id: 70_000,
            status: status::AUTOCOMMIT,
            warnings: 1,
            schema: None,
            vars: vec![],
        };
        for track in [false, true] {
            assert_eq!(Ok::parse(&encode_ok(&ok, track), track), Some(ok.clone()));
        }
    }

    #[test]
    fn ok_with_schema_change_is_read() {
        // OK from MariaDB after `USE mysql` with session_track_schema=ON.
        let payload = [
            0x00, 0x00, 0x00, 0x02, 0x40, 0x00, 0x00, 0x00, 0x08, 0x01, 0x06, 0x05, b'm', b'y',
            b's', b'q', b'l',
        ];
        let ok = Ok::parse(&payload, true).unwrap();
        assert_eq!(ok.schema.as_deref(), Some("mysql"));
        // OK after `SET time_zone='+01:00'` with session_track_system_variables='*'.
        let mut tz = vec![0x00, 0x00, 0x00, 0x02, 0x40, 0x00, 0x00, 0x00];
        let entry = [&[9u8][..], b"time_zone", &[6], b"+01:00"].concat();
        let state = [&[0u8, entry.len() as u8][..], &entry].concat();
        tz.push(state.len() as u8);
        tz.extend_from_slice(&state);
        let ok = Ok::parse(&tz, true).unwrap();
        assert_eq!(
            ok.vars,
            vec![("time_zone".to_string(), "+01:00".to_string())]
        );
        assert_eq!(
            ok.status & status::SESSION_STATE_CHANGED,
            status::SESSION_STATE_CHANGED
        );
    }

    #[test]
    fn err_round_trips_and_tolerates_missing_state() {
        let e = Err::new((1064, "42000"), "You have an error");
        assert_eq!(Err::parse(&e.encode()), Some(e));
        let bare = [0xff, 0x10, 0x04, b'o', b'o', b'p', b's'];
        assert_eq!(Err::parse(&bare).unwrap().message, "oops");
        assert_eq!(Err::parse(&[0xff, 1]), None);
    }

    #[test]
    fn truncated_ok_is_none() {
        assert_eq!(Ok::parse(&[0x00, 0x01], false), None);
        assert_eq!(Ok::parse(&[0x00, 0, 0, 0, 0, 0, 0, 5], true), None);
    }
}

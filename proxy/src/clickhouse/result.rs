//! A `TabSeparatedWithNamesAndTypes` body turned into a MySQL text result set as it arrives:
//! bytes go in frame by frame ([`ResultWriter::feed`]), framed packets come out
//! ([`ResultWriter::take`]) to be written before the next frame is read, so a result of any size
//! passes through a buffer of one frame plus one partial line. A line longer than the limit
//! (`max_allowed_packet`) ends the result with an error instead of growing the buffer.

use bytes::{BufMut, BytesMut};

use super::tsv;
use super::types::{self, Column};
use crate::protocol::messages::{encode_ok, Err as ErrPacket, Ok as OkPacket};
use crate::protocol::packet::put_packet;
use crate::protocol::wire::put_lenenc_bytes;

/// ER_UNKNOWN_ERROR: ClickHouse's exceptions have no MySQL number of their own.
pub const CLICKHOUSE_ERROR: (u16, &str) = (1105, "HY000");

/// How the client wants terminators and metadata.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub deprecate_eof: bool,
    pub session_track: bool,
    pub status: u16,
    /// Column definitions carry MariaDB's data-type block.
    pub type_info: bool,
    /// Collation of string columns (the client's).
    pub collation: u16,
}

impl Frame {
    fn eof(&self) -> Vec<u8> {
        let mut v = vec![0xfe, 0, 0];
        v.extend_from_slice(&self.status.to_le_bytes());
        v
    }

    fn ok(&self) -> BytesMut {
        let ok = OkPacket {
            status: self.status,
            ..OkPacket::default()
        };
        encode_ok(&ok, self.session_track)
    }

    fn terminator(&self) -> Vec<u8> {
        if self.deprecate_eof {
            let mut p = self.ok().to_vec();
            if let Some(h) = p.first_mut() {
                *h = 0xfe;
            }
            p
        } else {
            self.eof()
        }
    }
}

/// Why a result ended early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// ClickHouse's exception (its message).
    ClickHouse(String),
    /// The body is not what the format promises.
    Malformed(String),
}

impl Fault {
    pub fn into_err(self) -> ErrPacket {
        match self {
            Fault::ClickHouse(m) => ErrPacket::new(CLICKHOUSE_ERROR, format!("ClickHouse: {m}")),
            Fault::Malformed(m) => ErrPacket::new(
                CLICKHOUSE_ERROR,
                format!("ClickHouse: unreadable result: {m}"),
            ),
        }
    }
}

enum Stage {
    Names,
    Types(Vec<Vec<u8>>),
    Rows(usize),
}

pub struct ResultWriter {
    frame: Frame,
    stage: Stage,
    /// Bytes of a line whose end has not arrived yet.
    line: Vec<u8>,
    /// Framed packets not yet taken.
    out: BytesMut,
    seq: u8,
    max_line: usize,
    rows: u64,
    saw_bytes: bool,
    high_water: usize,
}

impl ResultWriter {
    pub fn new(frame: Frame, max_line: usize) -> ResultWriter {
        ResultWriter {
            frame,
            stage: Stage::Names,
            line: Vec::new(),
            out: BytesMut::new(),
            seq: 1,
            max_line,
            rows: 0,
            saw_bytes: false,
            high_water: 0,
        }
    }

    /// Rows converted so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The most bytes held at once (partial line plus untaken packets).
    pub fn high_water(&self) -> usize {
        self.high_water
    }

    /// The packets ready for the client, framed.
    pub fn take(&mut self) -> BytesMut {
        self.out.split()
    }

    fn packet(&mut self, payload: &[u8]) {
        self.seq = put_packet(&mut self.out, self.seq, payload);
    }

    fn measure(&mut self) {
        self.high_water = self.high_water.max(self.line.len() + self.out.len());
    }

    /// Converts the complete lines in `chunk`; keeps the tail for the next one.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), Fault> {
        if !chunk.is_empty() {
            self.saw_bytes = true;
        }
        while let Some(end) = chunk.iter().position(|b| *b == b'\n') {
            let (head, rest) = chunk.split_at(end);
            chunk = &rest[1..];
            if self.line.is_empty() {
                self.on_line(head)?;
            } else {
                self.grow(head)?;
                let line = std::mem::take(&mut self.line);
                self.on_line(&line)?;
                self.line = line;
                self.line.clear();
            }
            self.measure();
        }
        self.grow(chunk)?;
        self.measure();
        Ok(())
    }

    fn grow(&mut self, bytes: &[u8]) -> Result<(), Fault> {
        if self.line.len() + bytes.len() > self.max_line {
            return Err(Fault::Malformed(format!(
                "a row longer than {} bytes (max_allowed_packet)",
                self.max_line
            )));
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn on_line(&mut self, line: &[u8]) -> Result<(), Fault> {
        if let Some(message) = tsv::exception(line) {
            return Err(Fault::ClickHouse(message));
        }
        match &mut self.stage {
            Stage::Names => {
                let names = tsv::fields(line)
                    .map(|f| tsv::unescape(f).unwrap_or_default())
                    .collect();
                self.stage = Stage::Types(names);
            }
            Stage::Types(names) => {
                let names = std::mem::take(names);
                let kinds: Vec<String> = tsv::fields(line)
                    .map(|f| String::from_utf8_lossy(&tsv::unescape(f).unwrap_or_default()).into())
                    .collect();
                if kinds.len() != names.len() {
                    return Err(Fault::Malformed(format!(
                        "{} column names but {} types",
                        names.len(),
                        kinds.len()
                    )));
                }
                let columns: Vec<Column> = names
                    .iter()
                    .zip(&kinds)
                    .map(|(n, k)| types::column(n, k, self.frame.collation))
                    .collect();
                self.header(&columns);
            }
            Stage::Rows(width) => {
                let width = *width;
                let mut row = BytesMut::with_capacity(line.len() + width * 2);
                let mut n = 0;
                for f in tsv::fields(line) {
                    n += 1;
                    match tsv::unescape(f) {
                        Some(v) => put_lenenc_bytes(&mut row, &v),
                        None => row.put_u8(0xfb),
                    }
                }
                if n != width {
                    return Err(Fault::Malformed(format!(
                        "a row of {n} fields in a result of {width} columns"
                    )));
                }
                self.packet(&row);
                self.rows += 1;
            }
        }
        Ok(())
    }

    /// Column count, definitions, and the EOF unless the client deprecated it.
    pub fn header(&mut self, columns: &[Column]) {
        let mut count = BytesMut::new();
        crate::protocol::wire::put_lenenc_int(&mut count, columns.len() as u64);
        self.packet(&count);
        for c in columns {
            let def = c.encode(self.frame.type_info);
            self.packet(&def);
        }
        if !self.frame.deprecate_eof {
            let eof = self.frame.eof();
            self.packet(&eof);
        }
        self.stage = Stage::Rows(columns.len());
    }

    /// A row of already-unescaped values (for answers built by the proxy).
    pub fn row(&mut self, values: &[Option<&[u8]>]) {
        let mut row = BytesMut::new();
        for v in values {
            match v {
                Some(v) => put_lenenc_bytes(&mut row, v),
                None => row.put_u8(0xfb),
            }
        }
        self.packet(&row);
        self.rows += 1;
    }

    /// The end of the body: the terminator, or an OK when the statement returned no result
    /// (DDL, INSERT). A body that stopped inside the header or a row is malformed.
    pub fn finish(&mut self) -> Result<(), Fault> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.on_line(&line)?;
        }
        match self.stage {
            Stage::Names if !self.saw_bytes => {
                let ok = self.frame.ok();
                self.packet(&ok);
                Ok(())
            }
            Stage::Rows(_) => {
                let end = self.frame.terminator();
                self.packet(&end);
                Ok(())
            }
            _ => Err(Fault::Malformed("the body ended inside the header".into())),
        }
    }

    /// The end of a COM_FIELD_LIST answer with no columns.
    pub fn end_field_list(&mut self) {
        let end = self.frame.terminator();
        self.packet(&end);
    }

    /// Ends the result with an error packet where the next packet would go.
    pub fn fail(&mut self, err: &ErrPacket) {
        let payload = err.encode();
        self.packet(&payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::wire::Reader;

    fn frame() -> Frame {
        Frame {
            deprecate_eof: true,
            session_track: false,
            status: 2,
            type_info: false,
            collation: 45,
        }
    }

    /// The payloads of the framed packets in `bytes`.
    fn payloads(bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut r = Reader::new(bytes);
        while let Some(len) = r.u24() {
            r.u8();
            out.push(r.bytes(len as usize).unwrap_or_default().to_vec());
        }
        out
    }

    #[test]
    fn rows_split_across_frames_come_out_whole() {
        let mut w = ResultWriter::new(frame(), 1024);
        let body = b"a\tn\nUInt8\tNullable(String)\n1\t\\N\n2\tx\\ty\n";
        for piece in body.chunks(3) {
            assert_eq!(w.feed(piece), Ok(()));
        }
        assert_eq!(w.finish(), Ok(()));
        let p = payloads(&w.take());
        // count, 2 definitions, 2 rows, terminator.
        assert_eq!(p.len(), 6);
        assert_eq!(p[0], vec![2]);
        assert_eq!(p[3], vec![1, b'1', 0xfb]);
        assert_eq!(p[4], vec![1, b'2', 3, b'x', b'\t', b'y']);
        assert_eq!(p[5][0], 0xfe);
        assert_eq!(w.rows(), 2);
    }

    #[test]
    fn empty_body_is_ok_and_exceptions_are_errors() {
        let mut w = ResultWriter::new(frame(), 1024);
        assert_eq!(w.finish(), Ok(()));
        assert_eq!(payloads(&w.take())[0][0], 0x00);
        let mut w = ResultWriter::new(frame(), 1024);
        let r = w.feed(b"x\nUInt8\n1\nCode: 395, e.displayText() = DB::Exception: boom\n");
        assert!(matches!(r, Err(Fault::ClickHouse(m)) if m.contains("boom")));
        assert_eq!(w.rows(), 1);
    }

    #[test]
    fn a_built_result_ends_with_its_terminator() {
        let mut w = ResultWriter::new(frame(), 1024);
        w.header(&[types::Column::string(b"v", 45, true)]);
        w.row(&[Some(b"x".as_slice())]);
        assert_eq!(w.finish(), Ok(()));
        let p = payloads(&w.take());
        assert_eq!(p.len(), 4);
        assert_eq!(
            p[3][0], 0xfe,
            "rows end with the (OK-shaped) terminator, not an OK"
        );
    }

    #[test]
    fn a_line_over_the_limit_is_refused_not_buffered() {
        let mut w = ResultWriter::new(frame(), 16);
        assert_eq!(w.feed(b"x\nString\n"), Ok(()));
        let r = w.feed(&[b'y'; 32]);
        assert!(matches!(r, Err(Fault::Malformed(_))));
        assert!(w.high_water() < 64);
    }
}

//! Finding the end of a server response while its bytes stream through.
//!
//! The proxy never decodes rows. It reads each packet header, looks at the first payload byte
//! where the protocol says a terminator may appear, and reads whole payloads only for the small
//! packets that carry status (OK, ERR, EOF, column counts, PREPARE_OK). Row and column-definition
//! payloads, however large, are skipped as they pass, so memory stays bounded by the read buffer.

use super::constants::{status, MAX_PAYLOAD};
use super::messages::{parse_eof_status, parse_eof_warnings, Err, Ok};
use super::packet::{Header, HEADER_LEN};
use super::wire::Reader;

/// The shape of response a command gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// One OK, ERR or EOF packet (COM_PING, COM_INIT_DB, COM_RESET_CONNECTION, COM_SET_OPTION, …).
    Simple,
    /// Result sets, OK, ERR or a LOCAL INFILE request, chained by MORE_RESULTS_EXISTS
    /// (COM_QUERY, COM_STMT_EXECUTE).
    Results,
    /// Binary rows up to a terminator (COM_STMT_FETCH).
    Fetch,
    /// PREPARE_OK and its parameter and column definitions (COM_STMT_PREPARE).
    Prepare,
    /// Column definitions up to a terminator (COM_FIELD_LIST).
    FieldList,
    /// One packet of free text (COM_STATISTICS).
    Statistics,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// First packet of a result: OK, ERR, LOCAL INFILE or a column count.
    ResultStart,
    /// Skipping `left` definitions; then `next`.
    Definitions {
        left: u64,
        next: AfterDefs,
    },
    /// Expecting the EOF after definitions (no CLIENT_DEPRECATE_EOF); then `next`.
    DefinitionsEof {
        next: AfterDefs,
    },
    /// Rows (or field-list definitions) until a terminator.
    Rows {
        field_list: bool,
    },
    PrepareStart,
    Simple,
    Statistics,
    /// The client is sending a file; the server answers once it has it.
    LocalInfile,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterDefs {
    Rows,
    PrepareColumns { columns: u64 },
    Finish,
}

/// Where a response stands after the bytes fed so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More bytes needed.
    More,
    /// The server asked for a LOCAL INFILE; the client's file comes next.
    LocalInfile,
    /// The response is complete.
    Done,
}

/// What the response said, gathered from its status-bearing packets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Status flags of the last OK/EOF (transaction state, autocommit, cursor).
    pub status: Option<u16>,
    /// The last OK packet of the response.
    pub ok: Option<Ok>,
    pub error: Option<Err>,
    /// PREPARE_OK: statement id, columns, params.
    pub prepared: Option<(u32, u16, u16)>,
    /// The last schema change reported by session tracking.
    pub schema: Option<String>,
    /// The last non-zero insert id of the response's OK packets.
    pub last_insert_id: u64,
    /// System variable changes reported by session tracking, in order.
    pub vars: Vec<(String, String)>,
    /// Rows of the result sets (counted from packet headers, never decoded).
    pub rows: u64,
    /// Affected rows summed over the response's OK packets.
    pub affected_rows: u64,
    /// How the last statement of the response ended: what `ROW_COUNT()` and the diagnostics
    /// area of the server session reflect afterwards.
    pub last: Last,
    /// The warning count of the response's last OK or EOF packet.
    pub warnings: u16,
}

/// The kind of the last result of a response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Last {
    /// No status packet seen (yet).
    #[default]
    Nothing,
    /// An OK packet with its affected rows.
    Ok { affected_rows: u64 },
    /// A result set (rows up to a terminator).
    Rows,
    /// An ERR packet.
    Error,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResponseError {
    #[error("unexpected {0:#04x} packet in a response")]
    Unexpected(u8),
    #[error("malformed {0} packet in a response")]
    Malformed(&'static str),
    #[error("status packet of {0} bytes is too large to inspect")]
    TooLarge(usize),
}

/// Largest status packet the tracker will hold whole (OK packets with long info strings fit).
const MAX_INSPECT: usize = 1 << 20;

/// Follows one command's response as its bytes arrive.
#[derive(Debug)]
pub struct Tracker {
    state: State,
    deprecate_eof: bool,
    session_track: bool,
    /// Payload bytes of the current physical packet still to pass without inspection.
    pending: usize,
    /// The previous physical packet was 16 MiB − 1 bytes, so the next one continues it.
    continuation: bool,
    /// Sequence id of the last packet header seen, so an error can follow it in order.
    last_seq: Option<u8>,
    outcome: Outcome,
}

impl Tracker {
    pub fn new(expect: Expect, deprecate_eof: bool, session_track: bool) -> Tracker {
        let state = match expect {
            Expect::Simple => State::Simple,
            Expect::Results => State::ResultStart,
            Expect::Fetch => State::Rows { field_list: false },
            Expect::Prepare => State::PrepareStart,
            Expect::FieldList => State::Rows { field_list: true },
            Expect::Statistics => State::Statistics,
        };
        Tracker {
            state,
            deprecate_eof,
            session_track,
            pending: 0,
            continuation: false,
            last_seq: None,
            outcome: Outcome::default(),
        }
    }

    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// The sequence id a packet the proxy adds after this response's bytes must carry.
    pub fn next_seq(&self) -> u8 {
        self.last_seq.map_or(1, |s| s.wrapping_add(1))
    }

    /// Whether the bytes passed so far end on a packet boundary: only then may the proxy add a
    /// packet of its own (an error) after them. Mid-row, all it can do is close.
    pub fn at_packet_boundary(&self) -> bool {
        self.pending == 0 && !self.continuation
    }

    pub fn into_outcome(self) -> Outcome {
        self.outcome
    }

    /// After the client's LOCAL INFILE data has gone to the server, its OK or ERR comes next.
    pub fn infile_sent(&mut self) {
        if self.state == State::LocalInfile {
            self.state = State::ResultStart;
        }
    }

    /// Consumes as much of `buf` as belongs to this response and can be judged now. Returns how
    /// many bytes may be forwarded and where the response stands. Bytes after a completed
    /// response are never consumed.
    pub fn advance(&mut self, buf: &[u8]) -> Result<(usize, Progress), ResponseError> {
        let mut pos = 0;
        loop {
            // A skipped payload is passed before anything else, even when it was the last packet.
            if self.pending > 0 {
                let take = self.pending.min(buf.len() - pos);
                pos += take;
                self.pending -= take;
                if self.pending > 0 {
                    return Ok((pos, Progress::More));
                }
            }
            match self.state {
                State::Done if !self.continuation => return Ok((pos, Progress::Done)),
                State::LocalInfile => return Ok((pos, Progress::LocalInfile)),
                _ => {}
            }
            let Some(header) = Header::peek(&buf[pos..]) else {
                return Ok((pos, Progress::More));
            };
            self.last_seq = Some(header.seq);
            if self.continuation {
                // The tail of a big row or definition: pass it, nothing in it is a marker.
                self.continuation = header.continues();
                self.pending = header.len;
                pos += HEADER_LEN;
                continue;
            }
            if header.len > 0 && buf.len() < pos + HEADER_LEN + 1 {
                return Ok((pos, Progress::More));
            }
            let first = if header.len > 0 {
                buf[pos + HEADER_LEN]
            } else {
                0
            };
            if !self.needs_whole(first, header) {
                self.continuation = header.continues();
                self.pending = header.len;
                pos += HEADER_LEN;
                self.after_skipped();
                continue;
            }
            if header.len > MAX_INSPECT || header.continues() {
                return Err(ResponseError::TooLarge(header.len));
            }
            let end = pos + HEADER_LEN + header.len;
            if buf.len() < end {
                return Ok((pos, Progress::More));
            }
            self.inspect(&buf[pos + HEADER_LEN..end])?;
            pos = end;
        }
    }

    /// Whether the packet starting with `first` carries status and must be read whole.
    fn needs_whole(&self, first: u8, header: Header) -> bool {
        match self.state {
            State::Definitions { .. } | State::Statistics => false,
            State::Rows { .. } => (first == 0xfe && !header.continues()) || first == 0xff,
            _ => true,
        }
    }

    /// Bookkeeping after a packet that was passed without inspection.
    fn after_skipped(&mut self) {
        match self.state {
            State::Definitions { left, next } => {
                // A 16 MiB definition is not a thing servers send; count each logical packet once.
                if self.continuation {
                    return;
                }
                let left = left.saturating_sub(1);
                self.state = if left > 0 {
                    State::Definitions { left, next }
                } else {
                    self.after_definitions(next)
                };
            }
            State::Statistics => self.state = State::Done,
            // One logical row per packet that does not continue a previous one.
            State::Rows { field_list: false } => self.outcome.rows += 1,
            _ => {}
        }
    }

    fn after_definitions(&self, next: AfterDefs) -> State {
        if self.deprecate_eof {
            self.continue_after_definitions(next)
        } else {
            State::DefinitionsEof { next }
        }
    }

    fn continue_after_definitions(&self, next: AfterDefs) -> State {
        match next {
            AfterDefs::Rows => State::Rows { field_list: false },
            AfterDefs::PrepareColumns { columns: 0 } | AfterDefs::Finish => State::Done,
            AfterDefs::PrepareColumns { columns } => State::Definitions {
                left: columns,
                next: AfterDefs::Finish,
            },
        }
    }

    fn inspect(&mut self, payload: &[u8]) -> Result<(), ResponseError> {
        let first = payload.first().copied().unwrap_or(0);
        if first == 0xff && self.state != State::Statistics {
            let err = Err::parse(payload).ok_or(ResponseError::Malformed("ERR"))?;
            self.outcome.error = Some(err);
            self.outcome.last = Last::Error;
            self.state = State::Done;
            return Ok(());
        }
        match self.state {
            State::ResultStart => match first {
                0x00 => {
                    let ok = self.read_ok(payload)?;
                    self.outcome.last = Last::Ok {
                        affected_rows: ok.affected_rows,
                    };
                    self.state = self.after_status(ok.status, false);
                }
                0xfb => self.state = State::LocalInfile,
                _ => {
                    let columns = Reader::new(payload)
                        .lenenc_int()
                        .ok_or(ResponseError::Malformed("column count"))?;
                    if columns == 0 {
                        return Err(ResponseError::Malformed("column count"));
                    }
                    self.state = State::Definitions {
                        left: columns,
                        next: AfterDefs::Rows,
                    };
                }
            },
            State::DefinitionsEof { next } => {
                if first != 0xfe {
                    return Err(ResponseError::Unexpected(first));
                }
                let st = parse_eof_status(payload).ok_or(ResponseError::Malformed("EOF"))?;
                self.outcome.status = Some(st);
                self.outcome.warnings = parse_eof_warnings(payload).unwrap_or(0);
                self.outcome.last = Last::Rows;
                // An opened cursor ends the response here: rows come later with COM_STMT_FETCH.
                self.state = if next == AfterDefs::Rows && st & status::CURSOR_EXISTS != 0 {
                    State::Done
                } else {
                    self.continue_after_definitions(next)
                };
            }
            State::Rows { field_list } => {
                // Only terminators are inspected here.
                let st = if self.deprecate_eof {
                    self.read_ok(payload)?.status
                } else {
                    let st = parse_eof_status(payload).ok_or(ResponseError::Malformed("EOF"))?;
                    self.outcome.status = Some(st);
                    self.outcome.warnings = parse_eof_warnings(payload).unwrap_or(0);
                    st
                };
                if !field_list {
                    self.outcome.last = Last::Rows;
                }
                self.state = self.after_status(st, field_list);
            }
            State::PrepareStart => {
                if first != 0x00 {
                    return Err(ResponseError::Unexpected(first));
                }
                let mut r = Reader::new(payload.get(1..).unwrap_or_default());
                let (id, columns, params) = (|| Some((r.u32()?, r.u16()?, r.u16()?)))()
                    .ok_or(ResponseError::Malformed("PREPARE_OK"))?;
                self.outcome.prepared = Some((id, columns, params));
                let columns = u64::from(columns);
                self.state = if params > 0 {
                    State::Definitions {
                        left: u64::from(params),
                        next: AfterDefs::PrepareColumns { columns },
                    }
                } else if columns > 0 {
                    State::Definitions {
                        left: columns,
                        next: AfterDefs::Finish,
                    }
                } else {
                    State::Done
                };
            }
            State::Simple => {
                match first {
                    0x00 => {
                        self.read_ok(payload)?;
                    }
                    0xfe => {
                        let st = if self.deprecate_eof && payload.len() > 5 {
                            self.read_ok(payload)?.status
                        } else {
                            self.outcome.warnings = parse_eof_warnings(payload).unwrap_or(0);
                            parse_eof_status(payload).ok_or(ResponseError::Malformed("EOF"))?
                        };
                        self.outcome.status = Some(st);
                    }
                    other => return Err(ResponseError::Unexpected(other)),
                }
                self.state = State::Done;
            }
            State::Definitions { .. } | State::Statistics | State::LocalInfile | State::Done => {
                return Err(ResponseError::Unexpected(first));
            }
        }
        Ok(())
    }

    fn read_ok(&mut self, payload: &[u8]) -> Result<Ok, ResponseError> {
        let ok = Ok::parse(payload, self.session_track).ok_or(ResponseError::Malformed("OK"))?;
        self.outcome.status = Some(ok.status);
        self.outcome.warnings = ok.warnings;
        self.outcome.affected_rows = self.outcome.affected_rows.saturating_add(ok.affected_rows);
        if ok.schema.is_some() {
            self.outcome.schema.clone_from(&ok.schema);
        }
        if ok.last_insert_id != 0 {
            self.outcome.last_insert_id = ok.last_insert_id;
        }
        self.outcome.vars.extend(ok.vars.iter().cloned());
        self.outcome.ok = Some(ok.clone());
        Ok(ok)
    }

    fn after_status(&self, st: u16, field_list: bool) -> State {
        if !field_list && st & status::MORE_RESULTS_EXISTS != 0 {
            State::ResultStart
        } else {
            State::Done
        }
    }
}

/// Which response shape a client command gets, or `None` for commands the server never answers.
pub fn expect_for(command: u8) -> Option<Expect> {
    use super::constants::com;
    match command {
        com::QUERY | com::STMT_EXECUTE => Some(Expect::Results),
        com::STMT_FETCH => Some(Expect::Fetch),
        com::STMT_PREPARE => Some(Expect::Prepare),
        com::FIELD_LIST => Some(Expect::FieldList),
        com::STATISTICS => Some(Expect::Statistics),
        com::STMT_CLOSE | com::STMT_SEND_LONG_DATA | com::QUIT => None,
        _ => Some(Expect::Simple),
    }
}

/// Payloads larger than a physical packet would be cut; keep test inputs honest.
const _: () = assert!(MAX_INSPECT < MAX_PAYLOAD);

#[cfg(test)]
mod tests;

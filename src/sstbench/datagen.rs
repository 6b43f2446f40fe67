//! Deterministic test data with the shape of what an SST moves.
//!
//! - `innodb`: 16 KiB InnoDB INDEX pages (compact row format) of a sysbench `sbtest` table:
//!   FIL header and trailer, page header, infimum/supremum, clustered-index records
//!   (`id`, `DB_TRX_ID`, `DB_ROLL_PTR`, `k`, `c CHAR(120)`, `pad CHAR(60)`, with `c` and `pad` made
//!   of 11-digit groups joined by `-` as sysbench's templates make them), a page directory and
//!   some free space; every 8th page is a page of the secondary index `k_1` (`k`, `id`), every
//!   64th an allocated but unused (zero) page.
//! - `text`: the same pages holding text-heavy rows (title, author, timestamps, a body of
//!   words), like a CMS or comments table.
//! - `compressed`: incompressible bytes, like already-compressed tables or blobs.
//!
//! The same seed, profile and size always give the same bytes.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub const PAGE: usize = 16 * 1024;
const FIL_HEADER: usize = 38;
const FIL_TRAILER: usize = 8;
/// PAGE_NEW_SUPREMUM_END: where user records start on a compact page.
const RECORDS_START: usize = 120;
const INFIMUM: usize = 99;
const SUPREMUM: usize = 112;
const REC_EXTRA: usize = 5;
const FIL_PAGE_INDEX: u16 = 17855;
const FIL_NULL: u32 = 0xffff_ffff;

/// What the generated data looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Innodb,
    Text,
    Compressed,
}

impl Profile {
    pub const ALL: [Profile; 3] = [Profile::Innodb, Profile::Text, Profile::Compressed];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Innodb => "innodb",
            Profile::Text => "text",
            Profile::Compressed => "compressed",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown profile {s:?} (known: innodb, text, compressed)"))
    }
}

/// SplitMix64: tiny, fast, and stable forever (unlike a library RNG's stream across versions).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x6a09_e667_f3bc_c908)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Generates `size` bytes of `profile` data as a stream, one page at a time.
pub struct Generator {
    profile: Profile,
    rng: Rng,
    remaining: u64,
    page: Box<[u8; PAGE]>,
    pos: usize,
    state: TableState,
}

/// What runs on from page to page, as in a real table.
struct TableState {
    page_no: u32,
    next_id: u32,
    table_rows: u32,
    next_k: u32,
    lsn: u64,
    trx_id: u64,
    space_id: u32,
}

impl Generator {
    pub fn new(profile: Profile, size: u64, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let space_id = rng.range(5, 5000) as u32;
        Generator {
            profile,
            remaining: size,
            page: Box::new([0u8; PAGE]),
            pos: PAGE,
            state: TableState {
                page_no: 4,
                next_id: 1,
                // About 74 rows per clustered page; the k column spans the table's ids.
                table_rows: ((size / PAGE as u64).max(1) * 74).min(u32::MAX as u64 / 2) as u32,
                next_k: 1,
                lsn: rng.range(1 << 24, 1 << 32),
                trx_id: rng.range(1000, 100_000),
                space_id,
            },
            rng,
        }
    }

    fn next_page(&mut self) {
        let page = &mut *self.page;
        match self.profile {
            Profile::Compressed => self.rng.fill(page),
            Profile::Innodb | Profile::Text => {
                let st = &mut self.state;
                let page_no = st.page_no;
                st.page_no += 1;
                page.fill(0);
                if page_no % 64 == 63 {
                    // Allocated in an extent, never used: all zeros, as InnoDB leaves it.
                } else if page_no % 8 == 7 {
                    secondary_page(page, &mut self.rng, st);
                } else {
                    let text = self.profile == Profile::Text;
                    clustered_page(page, &mut self.rng, st, text);
                }
            }
        }
        self.pos = 0;
    }
}

impl Read for Generator {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        if self.pos == PAGE {
            self.next_page();
        }
        let n = buf
            .len()
            .min(PAGE - self.pos)
            .min(self.remaining.min(usize::MAX as u64) as usize);
        buf[..n].copy_from_slice(&self.page[self.pos..self.pos + n]);
        self.pos += n;
        self.remaining -= n as u64;
        Ok(n)
    }
}

fn put16(p: &mut [u8], at: usize, v: u16) {
    p[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn put32(p: &mut [u8], at: usize, v: u32) {
    p[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn put64(p: &mut [u8], at: usize, v: u64) {
    p[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

/// InnoDB stores signed integers big-endian with the sign bit flipped, so they sort as bytes.
fn int_field(v: u32) -> [u8; 4] {
    (v ^ 0x8000_0000).to_be_bytes()
}

/// Writes `count` random digits into `out`.
fn digits(rng: &mut Rng, out: &mut Vec<u8>, count: usize) {
    let mut left = count;
    while left > 0 {
        let mut v = rng.next_u64();
        for _ in 0..left.min(19) {
            out.push(b'0' + (v % 10) as u8);
            v /= 10;
        }
        left -= left.min(19);
    }
}

/// sysbench's `c` / `pad` value: `groups` groups of 11 digits joined by '-', space-padded to
/// `width` as a CHAR(width) column is stored.
fn sysbench_string(rng: &mut Rng, out: &mut Vec<u8>, groups: usize, width: usize) {
    let start = out.len();
    for g in 0..groups {
        if g > 0 {
            out.push(b'-');
        }
        digits(rng, out, 11);
    }
    out.resize(start + width, b' ');
}

/// Common words, weighted towards the front by how they are drawn.
const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "with",
    "as",
    "was",
    "on",
    "be",
    "at",
    "by",
    "this",
    "had",
    "not",
    "are",
    "but",
    "from",
    "or",
    "have",
    "an",
    "they",
    "which",
    "one",
    "you",
    "were",
    "all",
    "we",
    "when",
    "there",
    "can",
    "more",
    "if",
    "no",
    "out",
    "so",
    "said",
    "what",
    "up",
    "its",
    "about",
    "into",
    "than",
    "them",
    "only",
    "other",
    "new",
    "some",
    "could",
    "time",
    "these",
    "two",
    "may",
    "then",
    "first",
    "any",
    "like",
    "now",
    "such",
    "our",
    "over",
    "also",
    "back",
    "after",
    "use",
    "how",
    "work",
    "well",
    "way",
    "even",
    "because",
    "order",
    "customer",
    "delivery",
    "product",
    "price",
    "stock",
    "update",
    "warehouse",
    "shipping",
    "payment",
    "invoice",
    "account",
    "address",
    "review",
    "quality",
    "service",
    "database",
    "server",
    "cluster",
    "replica",
    "backup",
    "network",
    "latency",
    "transaction",
    "please",
    "thanks",
    "great",
    "problem",
    "question",
    "answer",
    "support",
    "return",
    "size",
    "colour",
    "black",
    "white",
    "small",
    "large",
    "package",
    "arrived",
    "yesterday",
    "today",
];

fn text_words(rng: &mut Rng, out: &mut Vec<u8>, count: usize) {
    for i in 0..count {
        if i > 0 {
            out.push(b' ');
        }
        // The product of two uniforms favours low indexes: a rough Zipf.
        let n = WORDS.len() as u64;
        let idx = (rng.range(1, n) * rng.range(1, n) / n).saturating_sub(1) as usize;
        out.extend_from_slice(WORDS[idx.min(WORDS.len() - 1)].as_bytes());
    }
}

/// The clustered index's hidden columns: DB_TRX_ID (6 bytes) and DB_ROLL_PTR (7 bytes: insert
/// flag, rollback segment, undo page, offset).
fn system_columns(rng: &mut Rng, st: &TableState, out: &mut Vec<u8>) {
    out.extend_from_slice(&st.trx_id.to_be_bytes()[2..]);
    let roll = (1u64 << 55)
        | (rng.range(1, 127) << 48)
        | (rng.range(300, 60_000) << 16)
        | rng.range(0, 16383);
    out.extend_from_slice(&roll.to_be_bytes()[1..]);
}

/// One sbtest row's fields after the record header: id, DB_TRX_ID, DB_ROLL_PTR, k, c, pad.
fn sbtest_row(rng: &mut Rng, st: &mut TableState, id: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&int_field(id));
    // sysbench prepare inserts in multi-row statements: many rows share a transaction.
    if id.is_multiple_of(1000) {
        st.trx_id += rng.range(1, 40);
    }
    system_columns(rng, st, out);
    out.extend_from_slice(&int_field(rng.range(1, st.table_rows as u64) as u32));
    sysbench_string(rng, out, 10, 120);
    sysbench_string(rng, out, 5, 60);
}

/// A text-heavy row: id, DB_TRX_ID, DB_ROLL_PTR, created/updated timestamps, status, title,
/// author, body (variable length, as VARCHAR/TEXT stored inline).
fn text_row(rng: &mut Rng, st: &mut TableState, id: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&int_field(id));
    st.trx_id += rng.range(0, 3);
    system_columns(rng, st, out);
    let created = 1_600_000_000 + u64::from(id) * 37 + rng.range(0, 30);
    out.extend_from_slice(&(created as u32).to_be_bytes());
    out.extend_from_slice(&((created + rng.range(0, 86_400)) as u32).to_be_bytes());
    out.push(rng.range(0, 3) as u8);
    let title = rng.range(3, 9) as usize;
    text_words(rng, out, title);
    out.push(0);
    out.extend_from_slice(format!("user{}", rng.range(1, 50_000)).as_bytes());
    out.push(0);
    let body = rng.range(10, 110) as usize;
    text_words(rng, out, body);
}

/// Writes the FIL header and trailer and the INDEX page header around records already placed.
#[allow(clippy::too_many_arguments)]
fn finish_page(
    page: &mut [u8],
    rng: &mut Rng,
    st: &mut TableState,
    page_no: u32,
    index_id: u64,
    records: &[usize],
    heap_top: usize,
    level_max_trx: u64,
) {
    st.lsn += rng.range(2_000, 200_000);
    put32(page, 4, page_no);
    put32(page, 8, if page_no > 4 { page_no - 1 } else { FIL_NULL });
    put32(page, 12, page_no + 1);
    put64(page, 16, st.lsn);
    put16(page, 24, FIL_PAGE_INDEX);
    put32(page, 34, st.space_id);

    // The page directory: infimum, every 4th record, supremum; slots grow down from the trailer.
    let mut slots = vec![INFIMUM];
    slots.extend(records.iter().skip(3).step_by(4).copied());
    slots.push(SUPREMUM);
    for (i, &rec) in slots.iter().enumerate() {
        put16(page, PAGE - FIL_TRAILER - 2 * (i + 1), rec as u16);
    }
    let n = records.len();
    let h = FIL_HEADER;
    put16(page, h, slots.len() as u16); // PAGE_N_DIR_SLOTS
    put16(page, h + 2, heap_top as u16); // PAGE_HEAP_TOP
    put16(page, h + 4, 0x8000 | (n as u16 + 2)); // PAGE_N_HEAP, compact
    put16(page, h + 10, records.last().copied().unwrap_or(0) as u16); // PAGE_LAST_INSERT
    put16(page, h + 12, 2); // PAGE_DIRECTION: right
    put16(page, h + 14, n.saturating_sub(1) as u16); // PAGE_N_DIRECTION
    put16(page, h + 16, n as u16); // PAGE_N_RECS
    put64(page, h + 18, level_max_trx); // PAGE_MAX_TRX_ID
    put64(page, h + 28, index_id); // PAGE_INDEX_ID

    // Infimum and supremum records.
    page[INFIMUM - REC_EXTRA] = 0x01;
    put16(page, INFIMUM - 4, 0x0002); // heap 0, REC_STATUS_INFIMUM
    let first = records.first().copied().unwrap_or(SUPREMUM);
    put16(page, INFIMUM - 2, (first as i32 - INFIMUM as i32) as u16);
    page[INFIMUM..INFIMUM + 8].copy_from_slice(b"infimum\0");
    page[SUPREMUM - REC_EXTRA] = 0x01 + (n % 8) as u8;
    put16(page, SUPREMUM - 4, 0x000b); // heap 1, REC_STATUS_SUPREMUM
    page[SUPREMUM..SUPREMUM + 8].copy_from_slice(b"supremum");

    // Checksums: any 4 bytes that change with the content do for compression purposes.
    let checksum = rng.next_u64() as u32;
    put32(page, 0, checksum);
    put32(page, PAGE - FIL_TRAILER, checksum);
    put32(page, PAGE - 4, st.lsn as u32);
}

/// Places records made by `row` on the page until they reach `fill_limit`, linking each to the
/// next. Rows of the clustered index (`clustered`) take the table's next ids. Returns the record
/// origins and the heap top.
fn place_records(
    page: &mut [u8],
    rng: &mut Rng,
    st: &mut TableState,
    mut row: impl FnMut(&mut Rng, &mut TableState, u32, &mut Vec<u8>),
    fill_limit: usize,
    clustered: bool,
) -> (Vec<usize>, usize) {
    let mut records = Vec::new();
    let mut at = RECORDS_START;
    let mut fields = Vec::with_capacity(1024);
    loop {
        fields.clear();
        row(rng, st, st.next_id, &mut fields);
        let end = at + REC_EXTRA + fields.len();
        let dir_room = 2 * (records.len() / 4 + 3);
        if end + dir_room > fill_limit {
            break;
        }
        if clustered {
            st.next_id += 1;
        }
        let origin = at + REC_EXTRA;
        let heap_no = records.len() as u16 + 2;
        page[at] = if records.len() % 4 == 3 { 0x04 } else { 0x00 }; // n_owned
        put16(page, at + 1, heap_no << 3); // heap number, REC_STATUS_ORDINARY
        page[origin..end].copy_from_slice(&fields);
        if let Some(&prev) = records.last() {
            put16(page, prev - 2, (origin - prev) as u16);
        }
        records.push(origin);
        at = end;
    }
    if let Some(&last) = records.last() {
        put16(page, last - 2, (SUPREMUM as i32 - last as i32) as u16);
    }
    (records, at)
}

fn clustered_page(page: &mut [u8], rng: &mut Rng, st: &mut TableState, text: bool) {
    let page_no = st.page_no - 1;
    // Sequential inserts fill pages to 15/16; later updates leave some emptier.
    let free = PAGE / 16 + rng.range(0, (PAGE / 12) as u64) as usize;
    let limit = PAGE - FIL_TRAILER - free;
    let (records, top) = if text {
        place_records(page, rng, st, text_row, limit, true)
    } else {
        place_records(page, rng, st, sbtest_row, limit, true)
    };
    finish_page(
        page,
        rng,
        st,
        page_no,
        40 + u64::from(text),
        &records,
        top,
        0,
    );
}

/// A leaf of the secondary index `k_1`: (k, id) pairs in k order.
fn secondary_page(page: &mut [u8], rng: &mut Rng, st: &mut TableState) {
    let page_no = st.page_no - 1;
    let free = rng.range(0, (PAGE / 3) as u64) as usize;
    let limit = PAGE - FIL_TRAILER - free;
    let table_rows = st.table_rows as u64;
    let (records, top) = place_records(
        page,
        rng,
        st,
        |rng, st, _, out| {
            // Many rows share a k value in sysbench tables; ids under one k are random.
            st.next_k = st.next_k.saturating_add(rng.range(0, 1) as u32);
            out.extend_from_slice(&int_field(st.next_k));
            out.extend_from_slice(&int_field(rng.range(1, table_rows) as u32));
        },
        limit,
        false,
    );
    let max_trx = st.trx_id;
    finish_page(page, rng, st, page_no, 41, &records, top, max_trx);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(profile: Profile, size: u64, seed: u64) -> Vec<u8> {
        let mut out = Vec::new();
        Generator::new(profile, size, seed)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn same_seed_same_bytes_exact_size() {
        for profile in Profile::ALL {
            let a = generate(profile, 300_001, 7);
            assert_eq!(a.len(), 300_001);
            assert!(a == generate(profile, 300_001, 7), "{profile}");
            assert!(a != generate(profile, 300_001, 8), "{profile}");
        }
    }

    #[test]
    fn innodb_pages_look_like_sbtest_pages() {
        let data = generate(Profile::Innodb, 8 * PAGE as u64, 1);
        let page = &data[..PAGE];
        assert_eq!(u16::from_be_bytes([page[24], page[25]]), FIL_PAGE_INDEX);
        assert_eq!(&page[INFIMUM..INFIMUM + 7], b"infimum");
        assert_eq!(&page[SUPREMUM..SUPREMUM + 8], b"supremum");
        let n_recs = u16::from_be_bytes([page[54], page[55]]) as usize;
        assert!((60..=80).contains(&n_recs), "{n_recs} rows");
        // Walk the record list from infimum to supremum.
        let mut at = INFIMUM;
        let mut seen = 0;
        loop {
            let next = i16::from_be_bytes([page[at - 2], page[at - 1]]) as isize;
            at = (at as isize + next) as usize;
            if at == SUPREMUM {
                break;
            }
            seen += 1;
            // c: 10 digit groups joined by '-', padded to 120.
            let c = &page[at + 4 + 6 + 7 + 4..at + 4 + 6 + 7 + 4 + 120];
            assert_eq!(c[11], b'-');
            assert_eq!(c[119], b' ');
            assert!(c[..11].iter().all(u8::is_ascii_digit));
        }
        assert_eq!(seen, n_recs);
        // Page numbers run on from 4 (after the tablespace's own pages); page number 7 is a
        // leaf of the secondary index, with many small (k, id) records.
        let page_nos: Vec<u32> = (0..8)
            .map(|i| u32::from_be_bytes(data[i * PAGE + 4..i * PAGE + 8].try_into().unwrap()))
            .collect();
        assert_eq!(page_nos, (4..12).collect::<Vec<_>>());
        let secondary = &data[3 * PAGE..4 * PAGE];
        assert!(u16::from_be_bytes([secondary[54], secondary[55]]) > 500);
    }

    #[test]
    fn profiles_compress_as_their_kind_does() {
        let ratio = |p: Profile| {
            let data = generate(p, 2 << 20, 3);
            let mut out = Vec::new();
            crate::sstbench::codecs::compress(
                crate::sstbench::codecs::Method::Gzip,
                1,
                data.as_slice(),
                &mut out,
            )
            .unwrap();
            data.len() as f64 / out.len() as f64
        };
        let innodb = ratio(Profile::Innodb);
        let text = ratio(Profile::Text);
        let compressed = ratio(Profile::Compressed);
        // Random digits cost ~3.3 bits each: gzip gets a bit over 2x, like real sbtest data.
        assert!((1.8..3.5).contains(&innodb), "innodb {innodb}");
        assert!(text > innodb, "text {text} vs innodb {innodb}");
        assert!(compressed < 1.01, "compressed {compressed}");
    }
}

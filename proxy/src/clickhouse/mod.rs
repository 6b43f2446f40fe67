//! ClickHouse behind the proxy: a server row with `backend = 'clickhouse'` is ClickHouse's HTTP
//! interface, and a statement routed to its hostgroup (after the query rules, rewrite included)
//! runs there instead of being forwarded. MySQL clients keep the MySQL protocol: the result comes
//! back as a text result set, its column types mapped from ClickHouse's
//! (`TabSeparatedWithNamesAndTypes`, which ClickHouse 18.16 has), an exception as an error
//! packet carrying ClickHouse's message.
//!
//! - [`http`]: one POST per statement, the body read frame by frame;
//! - [`types`]: ClickHouse type names to MySQL column definitions;
//! - [`tsv`]: lines and fields of the TSV stream;
//! - [`result`]: the stream turned into MySQL packets with a bounded buffer;
//! - [`probe`]: what MySQL clients ask on their own (`SELECT @@version_comment`, `SET NAMES`,
//!   `SHOW DATABASES`, `USE`), answered or translated so the `mariadb` CLI and drivers work.

pub mod http;
pub mod probe;
pub mod result;
pub mod tsv;
pub mod types;

use crate::counter::Counter;

pub use http::Endpoint;
pub use result::{Frame, ResultWriter};

/// Figures of the ClickHouse path, in `stats_mysql_global` (`ClickHouse_*`).
#[derive(Debug, Default)]
pub struct ClickHouseStats {
    /// Statements sent to ClickHouse.
    pub queries: Counter,
    /// Statements ClickHouse (or the HTTP exchange) failed.
    pub errors: Counter,
    /// Rows converted to MySQL rows.
    pub rows: Counter,
    /// The most bytes one result held in the proxy at once (partial line and packets not yet
    /// written to the client): what bounded streaming means, measured.
    pub max_buffered_bytes: Counter,
}

//! The views, one file each. A table view turns the model into [`TableData`] (cells with their
//! sort keys and style roles); filtering, sorting, selection and drawing are shared, so every view
//! gets `/`, sort and drill-down the same way.

pub mod backups;
pub mod capacity;
mod digests;
mod events;
pub mod failover;
pub mod fleet;
mod hostgroups;
mod overview;
mod pools;
mod rules;
mod servers;
mod sessions;
pub mod sst;
mod users;
mod variables;

use std::cmp::Ordering;

use ratatui::layout::Constraint;

use crate::control::{ServerStatus, ServerTarget};

use super::model::Model;

use crate::display::{date_clock, human, micros, unavailable, UNKNOWN};
pub use overview::render as render_overview;
pub use servers::detail as server_detail;

/// Every screen of the console, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum View {
    Overview,
    Hostgroups,
    Servers,
    Pools,
    Sessions,
    Digests,
    Rules,
    Users,
    Variables,
    Events,
    /// Guided failover, switchover and rejoin. The digits are used up by the ten views before
    /// it: `F` jumps here (see `event::BINDINGS`); later views (backups, SST benchmarks) get
    /// letters too, and Tab/Shift-Tab cycle through `ALL`.
    Failover,
    /// The backups of a store: list, start with sizing advice, progress, verify, restore, prune (`B`).
    Backups,
    /// SST compression benchmark (`C`): the `sst-bench` engine run from the console.
    Sst,
    /// The USL capacity model per server and hostgroup (`U`).
    Capacity,
    /// The proxies of a fleet cluster, its operation lock and its revision history (`E`, for
    /// etcd): needs `console --etcd … --cluster …`.
    Fleet,
}

impl View {
    pub const ALL: [View; 15] = [
        View::Overview,
        View::Hostgroups,
        View::Servers,
        View::Pools,
        View::Sessions,
        View::Digests,
        View::Rules,
        View::Users,
        View::Variables,
        View::Events,
        View::Failover,
        View::Backups,
        View::Sst,
        View::Capacity,
        View::Fleet,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Hostgroups => "Hostgroups",
            View::Servers => "Servers",
            View::Pools => "Pools",
            View::Sessions => "Sessions",
            View::Digests => "Digests",
            View::Rules => "Rules",
            View::Users => "Users",
            View::Variables => "Variables",
            View::Events => "Events",
            View::Failover => "Failover",
            View::Backups => "Backups",
            View::Sst => "SST",
            View::Capacity => "Capacity",
            View::Fleet => "Fleet",
        }
    }

    /// The tab label for narrow terminals.
    pub fn short(self) -> &'static str {
        match self {
            View::Overview => "Ovw",
            View::Hostgroups => "HGs",
            View::Servers => "Srv",
            View::Pools => "Pool",
            View::Sessions => "Sess",
            View::Digests => "Dig",
            View::Rules => "Rule",
            View::Users => "User",
            View::Variables => "Var",
            View::Events => "Evt",
            View::Failover => "Fail",
            View::Backups => "Bkp",
            View::Sst => "SST",
            View::Capacity => "Cap",
            View::Fleet => "Flt",
        }
    }

    /// The key that jumps to this view: 1 to 9, then 0 for the tenth, then letters.
    pub fn key(self) -> char {
        match View::ALL.iter().position(|v| *v == self) {
            Some(i) if i < 10 => char::from_digit(((i + 1) % 10) as u32, 10).unwrap_or('?'),
            _ if self == View::Backups => 'B',
            _ if self == View::Sst => 'C',
            _ if self == View::Capacity => 'U',
            _ if self == View::Fleet => 'E',
            _ => 'F',
        }
    }

    /// One line for the help screen: what the view shows.
    pub fn about(self) -> &'static str {
        match self {
            View::Overview => "QPS, connections, multiplexing, pinning, errors",
            View::Hostgroups => "server counts by status per hostgroup",
            View::Servers => "status and why, tier, weight, lag, latency, connections",
            View::Pools => "connection pools per server and hostgroup",
            View::Sessions => "client sessions and their queries; K kills one",
            View::Digests => "by total time; rates per second; Load = queries running at once",
            View::Rules => "query rules with hits",
            View::Users => "frontend users",
            View::Variables => "global variables; changes since start highlighted",
            View::Events => "routing decisions: shun, fence, drain, failover steps",
            View::Failover => "topology, GTIDs, lag; plan and run failover, switchover, rejoin",
            View::Backups => "a store's backups; start with sizing advice, verify, restore, prune",
            View::Sst => {
                "SST compression benchmark: methods through a throttled link, [sst] advice"
            }
            View::Capacity => "USL fit per server: measured X by N, the curve, peak N*, cap",
            View::Fleet => {
                "fleet proxies: revision, lag, health, fences; lock; revisions with diffs"
            }
        }
    }
}

/// What a view is narrowed to after a drill-down.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Scope {
    #[default]
    All,
    Hostgroup(u32),
    Server(ServerTarget),
}

impl Scope {
    pub fn matches(&self, hostgroup: u32, host: &str, port: u16) -> bool {
        match self {
            Scope::All => true,
            Scope::Hostgroup(hg) => *hg == hostgroup,
            Scope::Server(t) => {
                t.host == host && t.port == port && t.hostgroup.is_none_or(|hg| hg == hostgroup)
            }
        }
    }

    pub fn label(&self) -> Option<String> {
        match self {
            Scope::All => None,
            Scope::Hostgroup(hg) => Some(format!("hostgroup {hg}")),
            Scope::Server(t) => Some(t.to_string()),
        }
    }
}

/// What a row stands for, for drill-down and actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowKey {
    None,
    Hostgroup(u32),
    Server(ServerTarget),
    Session(u64),
    Rule(u32),
    Backup(String),
    /// A fleet revision.
    Revision(u64),
}

/// How a cell is drawn; the theme turns it into a style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Text,
    Muted,
    Status(ServerStatus),
    Changed,
    Warning,
    Error,
}

/// Sorting value of a cell: numbers sort as numbers, missing values last.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    Num(f64),
    Text(String),
    Missing,
}

impl SortKey {
    pub fn compare(&self, other: &SortKey) -> Ordering {
        match (self, other) {
            (SortKey::Num(a), SortKey::Num(b)) => a.total_cmp(b),
            (SortKey::Text(a), SortKey::Text(b)) => a.cmp(b),
            (SortKey::Missing, SortKey::Missing) => Ordering::Equal,
            (SortKey::Missing, _) => Ordering::Greater,
            (_, SortKey::Missing) => Ordering::Less,
            (SortKey::Num(_), SortKey::Text(_)) => Ordering::Less,
            (SortKey::Text(_), SortKey::Num(_)) => Ordering::Greater,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub text: String,
    pub sort: SortKey,
    pub role: Role,
}

impl Cell {
    /// Text from the proxy (query text, user and host names): control characters are replaced.
    pub fn text(s: &str) -> Cell {
        let clean = crate::display::sanitize(s);
        Cell {
            sort: SortKey::Text(clean.to_lowercase()),
            text: clean,
            role: Role::Text,
        }
    }

    pub fn num(v: u64) -> Cell {
        Cell {
            text: v.to_string(),
            sort: SortKey::Num(v as f64),
            role: Role::Text,
        }
    }

    /// A number shown in a human form (`1.2k`, `35ms`) but sorted by its value.
    pub fn shown(text: String, value: f64) -> Cell {
        Cell {
            text,
            sort: SortKey::Num(value),
            role: Role::Text,
        }
    }

    pub fn missing(text: &str) -> Cell {
        Cell {
            text: text.to_owned(),
            sort: SortKey::Missing,
            role: Role::Muted,
        }
    }

    pub fn status(s: ServerStatus) -> Cell {
        Cell {
            text: short_status(s).to_owned(),
            sort: SortKey::Text(s.as_str().to_owned()),
            role: Role::Status(s),
        }
    }

    pub fn role(mut self, role: Role) -> Cell {
        self.role = role;
        self
    }
}

/// Status text that fits a column; the state is always written, not only coloured.
pub fn short_status(s: ServerStatus) -> &'static str {
    match s {
        ServerStatus::ShunnedReplicationLag => "SHUNNED_LAG",
        other => other.as_str(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub title: &'static str,
    pub width: Constraint,
    /// Hidden when the table is narrower than this (0: always shown), so that at 80 columns
    /// the status and the numbers that matter keep their full width.
    pub hide_below: u16,
}

pub const fn col(title: &'static str, width: Constraint) -> Column {
    Column {
        title,
        width,
        hide_below: 0,
    }
}

/// A column shown only on terminals at least 120 columns wide.
pub const fn wide(title: &'static str, width: Constraint) -> Column {
    Column {
        title,
        width,
        hide_below: 120,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RowData {
    pub cells: Vec<Cell>,
    pub key: RowKey,
}

/// A table view's content before filtering and sorting.
#[derive(Debug, Clone, PartialEq)]
pub struct TableData {
    pub columns: Vec<Column>,
    pub rows: Vec<RowData>,
    /// The column sorted by until the operator picks one, and whether descending.
    pub default_sort: (usize, bool),
    /// Shown above the table: what is unavailable on this admin interface, and why.
    pub notes: Vec<String>,
}

/// The table of a view, or `None` for the overview and the SST view (drawn on their own).
pub fn table(view: View, model: &Model, scope: &Scope) -> Option<TableData> {
    let Some(snap) = model.current() else {
        // The failover view's topology comes from the servers, not from the admin snapshot.
        return (view == View::Failover).then(|| failover::table(&model.ops));
    };
    Some(match view {
        // The fleet view reads etcd, not the admin snapshot (see `App::table_data`).
        View::Overview | View::Sst | View::Fleet => return None,
        View::Hostgroups => hostgroups::table(snap),
        View::Servers => servers::table(snap, scope),
        View::Pools => pools::table(snap, scope),
        View::Sessions => sessions::table(snap, scope),
        View::Digests => digests::table(model, snap, scope),
        View::Rules => rules::table(model, snap),
        View::Users => users::table(snap),
        View::Variables => variables::table(model, snap),
        View::Events => events::table(model, snap, scope),
        View::Capacity => capacity::table(snap, scope),
        View::Failover => failover::table(&model.ops),
        // Drawn from the app's backup state, not from the admin snapshot (see `table_of`).
        View::Backups => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_values_sort_last_and_numbers_numerically() {
        let mut keys = [SortKey::Missing, SortKey::Num(10.0), SortKey::Num(9.0)];
        keys.sort_by(SortKey::compare);
        assert_eq!(
            keys,
            [SortKey::Num(9.0), SortKey::Num(10.0), SortKey::Missing]
        );
    }

    #[test]
    fn a_server_scope_without_hostgroup_matches_every_hostgroup() {
        let scope = Scope::Server(ServerTarget::new(None, "db1", 3306));
        assert!(scope.matches(10, "db1", 3306));
        assert!(scope.matches(20, "db1", 3306));
        assert!(!scope.matches(10, "db1", 3307));
        let narrow = Scope::Server(ServerTarget::new(Some(10), "db1", 3306));
        assert!(!narrow.matches(20, "db1", 3306));
    }
}

/// How the operator arranged one view: selection, sort and filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewState {
    pub selected: usize,
    /// Column and descending; `None` until the operator sorts.
    pub sort: Option<(usize, bool)>,
    pub filter: String,
}

impl ViewState {
    /// The sort in force: the operator's, or the view's default.
    pub fn sort_or(&self, data: &TableData) -> (usize, bool) {
        self.sort.unwrap_or(data.default_sort)
    }
}

/// The rows to show, filtered (case-insensitive substring of any cell) and sorted (stable, so
/// equal keys keep the view's own order).
pub fn arrange<'a>(data: &'a TableData, state: &ViewState) -> Vec<&'a RowData> {
    let needle = state.filter.to_lowercase();
    let mut rows: Vec<&RowData> = data
        .rows
        .iter()
        .filter(|r| {
            needle.is_empty()
                || r.cells
                    .iter()
                    .any(|c| c.text.to_lowercase().contains(&needle))
        })
        .collect();
    let (col, desc) = state.sort_or(data);
    rows.sort_by(|a, b| {
        let (ka, kb) = (a.cells.get(col), b.cells.get(col));
        match (ka, kb) {
            (Some(a), Some(b)) => {
                let o = a.sort.compare(&b.sort);
                // Missing values stay last in both directions.
                match (&a.sort, &b.sort, desc) {
                    (SortKey::Missing, _, _) | (_, SortKey::Missing, _) => o,
                    (_, _, true) => o.reverse(),
                    _ => o,
                }
            }
            _ => Ordering::Equal,
        }
    });
    rows
}

//! Everything the console shows, read in one pass: a plain data struct so views and subcommands
//! render from it without a connection (and tests build it by hand).

use serde::{Deserialize, Serialize};

use super::capacity::{CapacityPointRow, CapacityRow};
use super::client::Capabilities;
use super::rows::{
    DigestRow, EventRow, GlobalStatRow, MultiplexRow, PinnedRow, PoolRow, ProcessRow, QueryRuleRow,
    RuleHitsRow, ServerRow, ServerStateRow, UserRow, VariableRow,
};

/// One read of the admin tables. `None` marks a switchyard table the admin interface lacks.
/// Serialisable, so subcommands can print it as JSON and a recording can replay it later.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// Unix milliseconds when the read started; rates and "time left" are computed from it.
    pub taken_at_ms: u64,
    pub capabilities: Capabilities,
    pub servers: Vec<ServerRow>,
    pub server_states: Option<Vec<ServerStateRow>>,
    pub pools: Vec<PoolRow>,
    pub global: Vec<GlobalStatRow>,
    pub digests: Vec<DigestRow>,
    pub rules: Vec<QueryRuleRow>,
    pub rule_hits: Vec<RuleHitsRow>,
    pub users: Vec<UserRow>,
    pub variables: Vec<VariableRow>,
    pub processlist: Vec<ProcessRow>,
    pub events: Option<Vec<EventRow>>,
    pub multiplexing: Option<Vec<MultiplexRow>>,
    pub pinned: Option<Vec<PinnedRow>>,
    /// The USL fits and their points (`None`/empty without switchyard's tables; absent in
    /// recordings made before they existed).
    #[serde(default)]
    pub capacity: Option<Vec<CapacityRow>>,
    #[serde(default)]
    pub capacity_points: Vec<CapacityPointRow>,
}

impl Snapshot {
    /// A `stats_mysql_global` counter; absent or non-numeric reads as `None`.
    pub fn global_u64(&self, name: &str) -> Option<u64> {
        self.global
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(name))
            .and_then(|g| g.value.trim().parse().ok())
    }

    /// switchyard's extra state of one server row, when the admin interface has it.
    pub fn server_state(&self, hostgroup: u32, host: &str, port: u16) -> Option<&ServerStateRow> {
        self.server_states
            .as_ref()?
            .iter()
            .find(|s| s.hostgroup_id == hostgroup && s.hostname == host && s.port == port)
    }

    /// The pool row of one server in one hostgroup.
    pub fn pool(&self, hostgroup: u32, host: &str, port: u16) -> Option<&PoolRow> {
        self.pools
            .iter()
            .find(|p| p.hostgroup == hostgroup && p.srv_host == host && p.srv_port == port)
    }

    pub fn rule_hits(&self, rule_id: u32) -> Option<u64> {
        self.rule_hits
            .iter()
            .find(|h| h.rule_id == rule_id)
            .map(|h| h.hits)
    }
}

//! `/metrics` in the Prometheus text exposition format. Names are those of ProxySQL's exporter
//! where the meaning is the same (so existing dashboards and alerts work); what ProxySQL has no
//! metric for is prefixed `switchyard_`.

use std::collections::BTreeMap;
use std::fmt::Write;

use std::sync::Arc;

use crate::admin::Admin;
use crate::config::ServerStatus;
use crate::hostgroups::Server;
use crate::shared::{Runtime, Shared};
use crate::stats::GlobalStats;

/// Collects metric families; each gets its HELP and TYPE once, before its samples.
struct Out {
    text: String,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: u64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// Label values escape backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// ProxySQL's `proxysql_connpool_conns_status` values.
fn status_code(s: ServerStatus) -> u8 {
    match s {
        ServerStatus::Online => 1,
        ServerStatus::Shunned => 2,
        ServerStatus::OfflineSoft => 3,
        ServerStatus::OfflineHard => 4,
        ServerStatus::ShunnedReplicationLag => 5,
    }
}

pub fn render(admin: &Admin) -> String {
    let runtime = admin.shared.runtime();
    // Per server and hostgroup, labelled as ProxySQL does.
    let servers: Vec<_> = runtime.hostgroups.servers().collect();
    let mut o = Out {
        text: String::with_capacity(8192),
    };
    clients(&mut o, admin);
    backends(&mut o, &admin.shared.stats, &servers);
    connpool_counts(&mut o, &servers);
    connpool_state(&mut o, admin, &servers);
    hostgroups(&mut o, &admin.shared, &runtime);
    activity(&mut o, admin);
    o.text
}

/// `proxysql_connpool_*` labels: hostgroup and `host:port`.
fn label(s: &Server) -> (String, String) {
    (s.row.hostgroup_id.to_string(), s.address())
}

/// The proxy and its clients: version, uptime, questions, client connections, logins.
fn clients(o: &mut Out, admin: &Admin) {
    let g = &admin.shared.stats;
    o.family(
        "proxysql_version_info",
        "gauge",
        "Version of the proxy (switchyard, compatible with ProxySQL's admin interface).",
    );
    o.sample(
        "proxysql_version_info",
        &[
            ("version", &crate::variables::admin_version()),
            ("version_comment", "switchyard"),
        ],
        1,
    );
    o.one(
        "proxysql_uptime_seconds_total",
        "counter",
        "Seconds since the proxy started.",
        admin.uptime_secs(),
    );
    o.one(
        "proxysql_questions_total",
        "counter",
        "Client commands received.",
        g.questions.get(),
    );
    o.family(
        "proxysql_client_connections_total",
        "counter",
        "Client connections by outcome.",
    );
    o.sample(
        "proxysql_client_connections_total",
        &[("status", "created")],
        g.client_connections_created.get(),
    );
    o.sample(
        "proxysql_client_connections_total",
        &[("status", "aborted")],
        g.client_connections_aborted.get(),
    );
    o.one(
        "proxysql_client_connections_connected",
        "gauge",
        "Client connections open now.",
        g.client_connections_connected.get(),
    );
    let sessions = admin.shared.sessions.snapshot();
    o.one(
        "proxysql_client_connections_non_idle",
        "gauge",
        "Client connections running a command now.",
        sessions.iter().filter(|s| s.is_busy()).count() as u64,
    );
    o.one(
        "proxysql_active_transactions",
        "gauge",
        "Client sessions inside a transaction now.",
        sessions.iter().filter(|s| s.in_transaction()).count() as u64,
    );
    o.one(
        "proxysql_slow_queries_total",
        "counter",
        "Statements that ran longer than mysql-long_query_time.",
        g.slow_queries.get(),
    );
    o.one(
        "proxysql_generated_error_packets_total",
        "counter",
        "Error packets the proxy sent on its own (not a backend's errors passed through).",
        g.generated_error_packets.get(),
    );
    o.one(
        "proxysql_access_denied_wrong_password_total",
        "counter",
        "Logins refused for a wrong password or an unknown user.",
        g.access_denied_wrong_password.get(),
    );
    o.one(
        "proxysql_access_denied_max_connections_total",
        "counter",
        "Logins refused at mysql-max_connections.",
        g.access_denied_max_connections.get(),
    );
    o.one(
        "proxysql_access_denied_max_user_connections_total",
        "counter",
        "Logins refused at the user's max_connections.",
        g.access_denied_max_user_connections.get(),
    );
}

/// Backend connections over every server.
fn backends(o: &mut Out, g: &GlobalStats, servers: &[&Arc<Server>]) {
    o.family(
        "proxysql_server_connections_total",
        "counter",
        "Backend connections by outcome.",
    );
    o.sample(
        "proxysql_server_connections_total",
        &[("status", "created")],
        g.server_connections_created.get(),
    );
    o.sample(
        "proxysql_server_connections_total",
        &[("status", "aborted")],
        g.server_connections_aborted.get(),
    );
    let connected: u64 = servers
        .iter()
        .map(|s| s.stats.conn_used.get() + s.pool.idle_count() as u64)
        .sum();
    o.one(
        "proxysql_server_connections_connected",
        "gauge",
        "Backend connections open now (in use and idle).",
        connected,
    );
}

/// Per server: connections by state, attempts, queries, bytes.
fn connpool_counts(o: &mut Out, servers: &[&Arc<Server>]) {
    o.family(
        "proxysql_connpool_conns",
        "gauge",
        "Backend connections in the pool by state.",
    );
    for s in servers {
        let (hg, ep) = label(s);
        o.sample(
            "proxysql_connpool_conns",
            &[("hostgroup", &hg), ("endpoint", &ep), ("status", "used")],
            s.stats.conn_used.get(),
        );
        o.sample(
            "proxysql_connpool_conns",
            &[("hostgroup", &hg), ("endpoint", &ep), ("status", "free")],
            s.pool.idle_count(),
        );
    }
    o.family(
        "proxysql_connpool_conns_total",
        "counter",
        "Backend connection attempts by outcome.",
    );
    for s in servers {
        let (hg, ep) = label(s);
        o.sample(
            "proxysql_connpool_conns_total",
            &[("hostgroup", &hg), ("endpoint", &ep), ("status", "ok")],
            s.stats.conn_ok.get(),
        );
        o.sample(
            "proxysql_connpool_conns_total",
            &[("hostgroup", &hg), ("endpoint", &ep), ("status", "err")],
            s.stats.conn_err.get(),
        );
    }
    o.family(
        "proxysql_connpool_conns_queries_total",
        "counter",
        "Queries sent to the backend.",
    );
    for s in servers {
        let (hg, ep) = label(s);
        o.sample(
            "proxysql_connpool_conns_queries_total",
            &[("hostgroup", &hg), ("endpoint", &ep)],
            s.stats.queries.get(),
        );
    }
    o.family(
        "proxysql_connpool_data_bytes_total",
        "counter",
        "Bytes exchanged with the backend.",
    );
    for s in servers {
        let (hg, ep) = label(s);
        o.sample(
            "proxysql_connpool_data_bytes_total",
            &[
                ("hostgroup", &hg),
                ("endpoint", &ep),
                ("traffic_flow", "sent"),
            ],
            s.stats.bytes_data_sent.get(),
        );
        o.sample(
            "proxysql_connpool_data_bytes_total",
            &[
                ("hostgroup", &hg),
                ("endpoint", &ep),
                ("traffic_flow", "recv"),
            ],
            s.stats.bytes_data_recv.get(),
        );
    }
}

/// Per server: the monitor's latency, the status, the most connections used.
fn connpool_state(o: &mut Out, admin: &Admin, servers: &[&Arc<Server>]) {
    o.family(
        "proxysql_connpool_conns_latency_us",
        "gauge",
        "The monitor's last successful ping of the server, in microseconds (absent until one).",
    );
    for s in servers {
        let (hg, ep) = label(s);
        let ping = admin
            .monitor
            .latest(&(s.row.hostname.clone(), s.row.port))
            .and_then(|l| l.ping_us);
        if let Some(us) = ping {
            o.sample(
                "proxysql_connpool_conns_latency_us",
                &[("hostgroup", &hg), ("endpoint", &ep)],
                us,
            );
        }
    }
    o.family(
        "proxysql_connpool_conns_status",
        "gauge",
        "Server status: 1 ONLINE, 2 SHUNNED, 3 OFFLINE_SOFT, 4 OFFLINE_HARD.",
    );
    for s in servers {
        let (hg, ep) = label(s);
        o.sample(
            "proxysql_connpool_conns_status",
            &[("hostgroup", &hg), ("endpoint", &ep)],
            status_code(s.status()),
        );
    }
    o.family(
        "proxysql_connpool_conns_max_used",
        "gauge",
        "Most backend connections in use at once (switchyard; ProxySQL's MaxConnUsed column).",
    );
    for s in servers {
        let (hg, ep) = label(s);
        o.sample(
            "proxysql_connpool_conns_max_used",
            &[("hostgroup", &hg), ("endpoint", &ep)],
            s.stats.max_conn_used.get(),
        );
    }
}

/// Per hostgroup: servers that can take traffic, readiness, backend errors.
fn hostgroups(o: &mut Out, shared: &Shared, runtime: &Runtime) {
    let g = &shared.stats;
    o.family(
        "switchyard_hostgroup_online_servers",
        "gauge",
        "ONLINE servers with weight above zero, per hostgroup.",
    );
    for hg in runtime.hostgroups.by_id.values() {
        let n = hg
            .servers
            .iter()
            .filter(|s| s.is_online() && s.row.weight > 0)
            .count();
        o.sample(
            "switchyard_hostgroup_online_servers",
            &[("hostgroup", &hg.id.to_string())],
            n,
        );
    }
    o.one(
        "switchyard_ready",
        "gauge",
        "1 when /readyz answers 200.",
        u64::from(crate::ready::readiness(shared).is_ok()),
    );

    o.family(
        "proxysql_mysql_error_total",
        "counter",
        "Backend errors by hostgroup, server and code.",
    );
    let mut errors: BTreeMap<(u32, String, u16, u16), u64> = BTreeMap::new();
    for (k, v) in g.errors.rows(false) {
        *errors
            .entry((k.hostgroup, k.hostname, k.port, k.errno))
            .or_default() += v.count_star;
    }
    for ((hg, host, port, code), n) in errors {
        o.sample(
            "proxysql_mysql_error_total",
            &[
                ("hostgroup", &hg.to_string()),
                ("address", &host),
                ("port", &port.to_string()),
                ("code", &code.to_string()),
            ],
            n,
        );
    }
}

/// Statements by kind, routing events, scheduler runs.
fn activity(o: &mut Out, admin: &Admin) {
    let g = &admin.shared.stats;
    o.family(
        "switchyard_commands_total",
        "counter",
        "Client statements by kind (stats_mysql_commands_counters).",
    );
    for (name, c) in g.commands.iter() {
        let n = c.total_cnt.get();
        if n > 0 {
            o.sample("switchyard_commands_total", &[("command", name)], n);
        }
    }

    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for e in admin.events().snapshot() {
        *kinds.entry(e.kind.into_owned()).or_default() += 1;
    }
    o.family(
        "switchyard_events",
        "gauge",
        "Routing and scheduler events kept in stats_switchyard_events, by kind.",
    );
    for (kind, n) in kinds {
        o.sample("switchyard_events", &[("kind", &kind)], n);
    }

    let jobs = admin.scheduler.snapshot();
    o.family(
        "switchyard_scheduler_runs_total",
        "counter",
        "Runs of each scheduler row.",
    );
    for j in &jobs {
        o.sample(
            "switchyard_scheduler_runs_total",
            &[("id", &j.row.id.to_string())],
            j.stats.runs.get(),
        );
    }
    o.family(
        "switchyard_scheduler_failures_total",
        "counter",
        "Failed runs (non-zero exit, timeout, spawn error) of each scheduler row.",
    );
    for j in &jobs {
        o.sample(
            "switchyard_scheduler_failures_total",
            &[("id", &j.row.id.to_string())],
            j.stats.failures.get(),
        );
    }
}

//! A realistic proxy for the console tests: a writer hostgroup, a reader hostgroup with one
//! server of each troubled kind (shunned, fenced, draining) and a reporting hostgroup, read
//! several times so that rates and sparklines have history.

#![allow(dead_code)] // each test binary uses part of this

use switchyard::control::{
    Capabilities, CapacityPointRow, CapacityRow, DigestRow, Estimate, EventRow, GlobalStatRow,
    MultiplexRow, PinnedRow, PoolRow, ProcessRow, QueryRuleRow, RuleHitsRow, ServerRow,
    ServerStateRow, ServerStatus, Snapshot, UserRow, VariableRow,
};
use switchyard::tui::app::App;

/// 2025-11-22 03:12:00 UTC, a bad night.
pub const T0_MS: u64 = 1_763_781_120_000;
pub const STEP_MS: u64 = 2_000;

fn server(hg: u32, host: &str, status: ServerStatus, weight: u32, lag: u32) -> ServerRow {
    ServerRow {
        hostgroup_id: hg,
        hostname: host.into(),
        port: 3306,
        status,
        weight,
        max_connections: 1000,
        max_replication_lag: lag,
        use_ssl: false,
        max_latency_ms: 0,
        comment: String::new(),
        backend: Default::default(),
    }
}

fn state(hg: u32, host: &str, tier: u32) -> ServerStateRow {
    ServerStateRow {
        hostgroup_id: hg,
        hostname: host.into(),
        port: 3306,
        tier,
        shun_reason: String::new(),
        shunned_until: None,
        fenced_by: String::new(),
        fenced_at: None,
        drain_started_at: None,
        replication_lag_ms: None,
        ping_latency_us: None,
    }
}

#[allow(clippy::too_many_arguments)]
fn pool(
    hg: u32,
    host: &str,
    status: ServerStatus,
    used: u64,
    free: u64,
    err: u64,
    queries: u64,
    latency: u64,
) -> PoolRow {
    PoolRow {
        hostgroup: hg,
        srv_host: host.into(),
        srv_port: 3306,
        status,
        conn_used: used,
        conn_free: free,
        conn_ok: 1200 + used * 3,
        conn_err: err,
        max_conn_used: used + 12,
        queries,
        bytes_data_sent: queries * 310,
        bytes_data_recv: queries * 2900,
        latency_us: (latency > 0).then_some(latency),
    }
}

fn digest(
    hg: u32,
    user: &str,
    text: &str,
    count: u64,
    sum_time: u64,
    rows: u64,
    i: u64,
) -> DigestRow {
    DigestRow {
        hostgroup: i64::from(hg),
        schemaname: "shop".into(),
        username: user.into(),
        client_address: String::new(),
        digest: format!("0x{:016X}", count.wrapping_mul(0x9E37_79B9) ^ u64::from(hg)),
        digest_text: text.into(),
        count_star: count + i * count / 50,
        first_seen: T0_MS / 1000 - 86_400,
        last_seen: T0_MS / 1000 + i * 2,
        sum_time: sum_time + i * sum_time / 40,
        min_time: 90,
        max_time: 2_400_000,
        sum_rows_affected: 0,
        sum_rows_sent: rows + i * rows / 50,
    }
}

fn global(pairs: &[(&str, u64)]) -> Vec<GlobalStatRow> {
    pairs
        .iter()
        .map(|(n, v)| GlobalStatRow {
            name: (*n).into(),
            value: v.to_string(),
        })
        .collect()
}

fn session(
    id: u64,
    user: &str,
    hg: i64,
    host: &str,
    command: &str,
    time_ms: u64,
    info: &str,
) -> ProcessRow {
    ProcessRow {
        session_id: id,
        user: user.into(),
        db: "shop".into(),
        cli_host: format!("10.0.8.{}", id % 100),
        hostgroup: Some(hg),
        srv_host: host.into(),
        srv_port: Some(3306),
        command: command.into(),
        time_ms,
        info: info.into(),
    }
}

/// The `i`-th read (0-based), two seconds apart.
pub fn snapshot(i: u64) -> Snapshot {
    use ServerStatus::*;
    let now_ms = T0_MS + i * STEP_MS;
    let now = now_ms / 1000;
    let wave = (i * 7) % 5; // small deterministic variation for the sparklines
    let frontend = 480 + wave * 12;
    let servers = vec![
        server(10, "db1.prod", Online, 1000, 0),
        server(20, "db2.prod", Online, 1000, 10),
        server(20, "db3.prod", Shunned, 1000, 10),
        server(20, "db4.prod", OfflineHard, 1000, 10),
        server(20, "db5.prod", OfflineSoft, 500, 10),
        server(20, "db6.prod", Online, 100, 10),
        server(30, "report1.prod", Online, 1, 60),
    ];
    let mut states = vec![
        state(10, "db1.prod", 0),
        state(20, "db2.prod", 0),
        state(20, "db3.prod", 0),
        state(20, "db4.prod", 0),
        state(20, "db5.prod", 0),
        state(20, "db6.prod", 1),
        state(30, "report1.prod", 0),
    ];
    states[1].replication_lag_ms = Some(300);
    states[2].shun_reason = "5 connect errors in 1s".into();
    states[2].shunned_until = Some(T0_MS / 1000 + 45);
    states[2].replication_lag_ms = None;
    states[3].fenced_by = "admin:oncall@10.0.4.2".into();
    states[3].fenced_at = Some(T0_MS / 1000 - 725);
    states[4].drain_started_at = Some(T0_MS / 1000 - 95);
    states[4].replication_lag_ms = Some(1_200);
    states[5].replication_lag_ms = Some(800);
    states[6].replication_lag_ms = Some(75_000);
    let drain_left = 9u64.saturating_sub(i);
    let pools = vec![
        pool(
            10,
            "db1.prod",
            Online,
            22 + wave,
            18,
            0,
            9_800_000 + i * 2_400,
            410,
        ),
        pool(
            20,
            "db2.prod",
            Online,
            14 + wave,
            26,
            2,
            21_000_000 + i * 5_100,
            380,
        ),
        pool(20, "db3.prod", Shunned, 0, 0, 57 + i, 4_100_000, 0),
        pool(20, "db4.prod", OfflineHard, 0, 0, 3, 8_300_000, 0),
        pool(
            20,
            "db5.prod",
            OfflineSoft,
            drain_left,
            0,
            0,
            12_700_000 + i * 40,
            520,
        ),
        pool(20, "db6.prod", Online, 6, 14, 0, 2_200_000 + i * 900, 640),
        pool(30, "report1.prod", Online, 1, 3, 0, 81_000 + i * 3, 2_150),
    ];
    let backend_used: u64 = pools.iter().map(|p| p.conn_used).sum();
    Snapshot {
        taken_at_ms: now_ms,
        capabilities: Capabilities::all(),
        servers,
        server_states: Some(states),
        pools,
        global: global(&[
            ("ProxySQL_Uptime", 864_000 + now - T0_MS / 1000),
            ("Questions", 51_000_000 + i * 8_400 + wave * 300),
            ("Active_Transactions", 17 + wave),
            ("Client_Connections_connected", frontend),
            ("Client_Connections_created", 90_000 + i * 10),
            ("Server_Connections_connected", backend_used + 61),
            ("generated_error_packets", 1_204 + i * 3),
            ("Access_Denied_Wrong_Password", 12),
            ("Slow_queries", 310 + i),
        ]),
        digests: vec![
            digest(
                10,
                "app",
                "UPDATE orders SET state = ? WHERE id = ?",
                4_200_000,
                9_100_000_000,
                0,
                i,
            ),
            digest(
                20,
                "app",
                "SELECT * FROM orders WHERE customer_id = ? ORDER BY created_at DESC LIMIT ?",
                18_000_000,
                7_400_000_000,
                95_000_000,
                i,
            ),
            digest(
                20,
                "app",
                "SELECT name, price FROM items WHERE id IN (...)",
                31_000_000,
                2_100_000_000,
                64_000_000,
                i,
            ),
            digest(
                30,
                "report",
                "SELECT DATE(created_at), SUM(total) FROM orders GROUP BY ?\u{1b}[31m\u{7}",
                1_900,
                4_800_000_000,
                38_000,
                i,
            ),
            digest(10, "app", "BEGIN", 4_300_000, 210_000_000, 0, i),
            digest(10, "app", "COMMIT", 4_300_000, 1_900_000_000, 0, i),
        ],
        rules: vec![
            QueryRuleRow {
                rule_id: 10,
                active: true,
                username: None,
                schemaname: None,
                flag_in: 0,
                digest: None,
                match_digest: Some("^SELECT .* FOR UPDATE".into()),
                match_pattern: None,
                replace_pattern: None,
                destination_hostgroup: Some(10),
                multiplex: None,
                apply: true,
                comment: Some("locking reads to the writer".into()),
            },
            QueryRuleRow {
                rule_id: 20,
                active: true,
                username: None,
                schemaname: None,
                flag_in: 0,
                digest: None,
                match_digest: Some("^SELECT".into()),
                match_pattern: None,
                replace_pattern: None,
                destination_hostgroup: Some(20),
                multiplex: None,
                apply: true,
                comment: Some("reads to replicas".into()),
            },
            QueryRuleRow {
                rule_id: 30,
                active: false,
                username: Some("report".into()),
                schemaname: None,
                flag_in: 0,
                digest: None,
                match_digest: None,
                match_pattern: Some("^SELECT".into()),
                replace_pattern: None,
                destination_hostgroup: Some(30),
                multiplex: Some(0),
                apply: true,
                comment: None,
            },
        ],
        rule_hits: vec![
            RuleHitsRow {
                rule_id: 10,
                hits: 402_000 + i * 40,
            },
            RuleHitsRow {
                rule_id: 20,
                hits: 49_000_000 + i * 6_100,
            },
            RuleHitsRow {
                rule_id: 30,
                hits: 0,
            },
        ],
        users: vec![
            UserRow {
                username: "app".into(),
                active: true,
                use_ssl: false,
                default_hostgroup: 10,
                default_schema: Some("shop".into()),
                transaction_persistent: true,
                fast_forward: false,
                frontend: true,
                backend: true,
                max_connections: 2000,
                comment: "main application".into(),
            },
            UserRow {
                username: "report".into(),
                active: true,
                use_ssl: true,
                default_hostgroup: 30,
                default_schema: None,
                transaction_persistent: true,
                fast_forward: false,
                frontend: true,
                backend: true,
                max_connections: 20,
                comment: String::new(),
            },
            UserRow {
                username: "legacy".into(),
                active: false,
                use_ssl: false,
                default_hostgroup: 10,
                default_schema: None,
                transaction_persistent: false,
                fast_forward: true,
                frontend: true,
                backend: true,
                max_connections: 10,
                comment: "to remove".into(),
            },
        ],
        variables: vec![
            VariableRow {
                name: "admin-version".into(),
                value: "0.1.0".into(),
            },
            VariableRow {
                name: "mysql-max_connections".into(),
                value: if i >= 3 { "4096" } else { "2048" }.into(),
            },
            VariableRow {
                name: "mysql-monitor_ping_interval".into(),
                value: "10000".into(),
            },
            VariableRow {
                name: "mysql-server_version".into(),
                value: "8.0.11".into(),
            },
            VariableRow {
                name: "mysql-shun_on_failures".into(),
                value: "5".into(),
            },
        ],
        processlist: vec![
            session(
                4101,
                "app",
                20,
                "db2.prod",
                "Query",
                12_400 + i * 2_000,
                "SELECT * FROM orders WHERE customer_id = 42 ORDER BY created_at DESC",
            ),
            session(
                4102,
                "app",
                10,
                "db1.prod",
                "Query",
                35,
                "UPDATE orders SET state = 'paid' WHERE id = 9",
            ),
            session(4103, "app", 10, "db1.prod", "Sleep", 81_000, ""),
            session(
                4104,
                "report",
                30,
                "report1.prod",
                "Query",
                95_000 + i * 2_000,
                "SELECT DATE(created_at), SUM(total)\n  FROM orders\u{1b}]0;pwned\u{7} GROUP BY 1",
            ),
            session(
                4105,
                "app",
                20,
                "db5.prod",
                "Query",
                1_200,
                "SELECT name FROM items WHERE id = 7",
            ),
        ],
        events: Some(vec![
            EventRow {
                event_id: 1,
                time_ms: T0_MS - 725_000,
                hostgroup: Some(20),
                server: "db4.prod:3306".into(),
                kind: "fence".into(),
                reason: "disk failure, replaced tomorrow".into(),
                actor: "admin:oncall@10.0.4.2".into(),
            },
            EventRow {
                event_id: 2,
                time_ms: T0_MS - 95_000,
                hostgroup: Some(20),
                server: "db5.prod:3306".into(),
                kind: "drain".into(),
                reason: "kernel upgrade".into(),
                actor: "admin:oncall@10.0.4.2".into(),
            },
            EventRow {
                event_id: 3,
                time_ms: T0_MS - 15_000,
                hostgroup: Some(20),
                server: "db3.prod:3306".into(),
                kind: "shun".into(),
                reason: "5 connect errors in 1s".into(),
                actor: "monitor".into(),
            },
        ]),
        multiplexing: Some(vec![
            MultiplexRow {
                hostgroup: 10,
                frontend_sessions: frontend / 2,
                backend_connections: 22 + wave,
                pinned_sessions: 17,
            },
            MultiplexRow {
                hostgroup: 20,
                frontend_sessions: frontend / 2,
                backend_connections: 20 + wave + drain_left,
                pinned_sessions: 4,
            },
        ]),
        pinned: Some(vec![
            PinnedRow {
                hostgroup: 10,
                reason: "transaction".into(),
                sessions: 14,
            },
            PinnedRow {
                hostgroup: 10,
                reason: "user_variable".into(),
                sessions: 3,
            },
            PinnedRow {
                hostgroup: 20,
                reason: "temporary_table".into(),
                sessions: 2,
            },
            PinnedRow {
                hostgroup: 20,
                reason: "get_lock".into(),
                sessions: 2,
            },
        ]),
        capacity: Some(capacity_rows()),
        capacity_points: capacity_points(),
    }
}

/// USL on db1.prod: λ 900, σ 0.04, κ 0.0015 (N* 24.8).
const USL: (f64, f64, f64) = (900.0, 0.04, 0.0015);

fn usl_x(n: f64) -> f64 {
    let (l, s, k) = USL;
    l * n / (1.0 + s * (n - 1.0) + k * n * (n - 1.0))
}

/// The fits: db1.prod with a peak, its hostgroup, and db2.prod without enough spread.
pub fn capacity_rows() -> Vec<CapacityRow> {
    let (l, s, k) = USL;
    let peak_n = ((1.0 - s) / k).sqrt();
    let fitted = CapacityRow {
        hostgroup: 10,
        srv_host: "db1.prod".into(),
        srv_port: 3306,
        points: 14,
        n_max: Some(48.0),
        lambda: Some(Estimate {
            value: l,
            error: Some(11.0),
        }),
        sigma: Some(Estimate {
            value: s,
            error: Some(0.004),
        }),
        kappa: Some(Estimate {
            value: k,
            error: Some(0.0002),
        }),
        peak_n: Some(peak_n),
        peak_x: Some(usl_x(peak_n)),
        current_n: Some(12.0),
        current_x: Some(usl_x(12.0)),
        load_pct: Some(12.0 / peak_n * 100.0),
        r2: Some(0.98),
        mean_err_pct: Some(2.4),
        max_err_pct: Some(6.1),
        fit: "peak".into(),
        cap: Some(25),
        running: 11,
        max_running: Some(50),
    };
    vec![
        CapacityRow {
            srv_host: String::new(),
            srv_port: 0,
            cap: None,
            max_running: None,
            ..fitted.clone()
        },
        fitted,
        CapacityRow {
            hostgroup: 20,
            srv_host: "db2.prod".into(),
            srv_port: 3306,
            points: 4,
            n_max: None,
            lambda: None,
            sigma: None,
            kappa: None,
            peak_n: None,
            peak_x: None,
            current_n: Some(3.1),
            current_x: Some(2_400.0),
            load_pct: None,
            r2: None,
            mean_err_pct: None,
            max_err_pct: None,
            fit: "not enough points: 4 of 5".into(),
            cap: None,
            running: 3,
            max_running: Some(9),
        },
    ]
}

/// The measured points of db1.prod and of its hostgroup: the curve at 1..48, a little off it.
pub fn capacity_points() -> Vec<CapacityPointRow> {
    let levels = [
        1.0, 2.0, 4.0, 8.0, 12.0, 16.0, 24.0, 32.0, 40.0, 48.0, 3.0, 6.0, 20.0, 36.0,
    ];
    [("db1.prod", 3306), ("", 0)]
        .into_iter()
        .flat_map(|(host, port)| {
            levels
                .iter()
                .enumerate()
                .map(move |(i, &n)| CapacityPointRow {
                    hostgroup: 10,
                    srv_host: host.into(),
                    srv_port: port,
                    time_ms: T0_MS - 2_000 * (14 - i as u64),
                    n,
                    x: usl_x(n) * if i % 2 == 0 { 1.03 } else { 0.97 },
                })
        })
        .collect()
}

/// A console that has read the proxy `reads` times.
pub fn app_with_reads(reads: u64, read_only: bool) -> App {
    let mut app = App::new("admin@127.0.0.1:6032", read_only);
    for i in 0..reads {
        app.on_snapshot(snapshot(i));
    }
    app
}

/// The same proxy seen through a ProxySQL admin: none of switchyard's tables.
pub fn proxysql_snapshot(i: u64) -> Snapshot {
    let mut s = snapshot(i);
    s.capabilities = Capabilities::from_tables([
        "runtime_mysql_servers",
        "stats_mysql_connection_pool",
        "stats_mysql_global",
    ]);
    s.server_states = None;
    s.events = None;
    s.multiplexing = None;
    s.pinned = None;
    s
}

/// The failover view's data: a primary that went down (fenced in the proxy), two replicas, one
/// of them delayed and never to be promoted.
pub mod failover {
    use switchyard::ops::gtid::{Flavor, Position};
    use switchyard::ops::topology::ReplicaStatus;
    use switchyard::ops::{
        Endpoint, Kind, Plan, PlanState, ServerView, Step, StepRecord, StepState, Topology,
    };

    pub fn ep(port: u16) -> Endpoint {
        Endpoint::new("127.0.0.1", port)
    }

    fn pos(text: &str) -> Position {
        Position::parse(Flavor::MariaDb, text).expect("GTID position")
    }

    fn replica(port: u16, from: u16, executed: &str, received: &str, lag: u64) -> ServerView {
        ServerView {
            proxy_rows: vec![(20, "ONLINE".into())],
            reachable: true,
            flavor: Some(Flavor::MariaDb),
            server_id: Some(u32::from(port)),
            read_only: Some(true),
            executed: Some(pos(executed)),
            replica: Some(ReplicaStatus {
                source: ep(from),
                io_running: "Connecting".into(),
                sql_running: true,
                received: pos(received),
                sql_delay_secs: 0,
                seconds_behind: Some(lag),
                net_timeout_secs: 60,
                last_io_error: String::new(),
                last_sql_error: String::new(),
            }),
            ..ServerView::unprobed(ep(port))
        }
    }

    pub fn topology() -> Topology {
        let primary = ServerView {
            proxy_rows: vec![(10, "OFFLINE_HARD".into()), (20, "OFFLINE_HARD".into())],
            error: Some("connect timed out after 3 s".into()),
            ..ServerView::unprobed(ep(3306))
        };
        let mut delayed = replica(3308, 3306, "0-1-1180", "0-1-1204", 3600);
        delayed.never_promote = true;
        if let Some(r) = delayed.replica.as_mut() {
            r.sql_delay_secs = 3600;
        }
        Topology {
            writer_hostgroup: 10,
            reader_hostgroups: vec![20],
            servers: vec![
                primary,
                replica(3307, 3306, "0-1-1203", "0-1-1204", 0),
                delayed,
            ],
        }
    }

    fn rec(step: Step, statements: &[&str], state: StepState, detail: &[&str]) -> StepRecord {
        StepRecord {
            description: step.describe(),
            step,
            statements: statements.iter().map(|s| s.to_string()).collect(),
            state,
            started_ms: (state != StepState::Pending).then_some(super::T0_MS),
            finished_ms: matches!(state, StepState::Done | StepState::Failed)
                .then_some(super::T0_MS + 42),
            detail: detail.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// A failover stopped at its catch-up step.
    pub fn stopped_plan() -> Plan {
        let (old, cand, other) = (ep(3306), ep(3307), ep(3308));
        Plan {
            id: "20251122T031200.000Z".into(),
            kind: Kind::Failover,
            state: PlanState::Failed,
            flavor: Flavor::MariaDb,
            writer_hostgroup: 10,
            reader_hostgroup: Some(20),
            old_primary: old.clone(),
            candidate: cand.clone(),
            proxies: vec!["admin@127.0.0.1:6032".into()],
            created_ms: super::T0_MS,
            finished_ms: None,
            steps: vec![
                rec(
                    Step::ConfirmPrimaryDown {
                        primary: old.clone(),
                    },
                    &[],
                    StepState::Done,
                    &["took 3004 ms"],
                ),
                rec(
                    Step::Fence {
                        server: old.clone(),
                        reason: "failover".into(),
                    },
                    &["proxy admin@127.0.0.1:6032: UPDATE mysql_servers SET status='OFFLINE_HARD' WHERE hostname='127.0.0.1' AND port=3306"],
                    StepState::Done,
                    &["proxy admin@127.0.0.1:6032: done"],
                ),
                rec(
                    Step::CatchUp {
                        candidate: cand.clone(),
                        from: None,
                    },
                    &["127.0.0.1:3307: SELECT MASTER_GTID_WAIT('0-1-1204', 60)"],
                    StepState::Failed,
                    &["error: 127.0.0.1:3307: MASTER_GTID_WAIT timed out after 60 s"],
                ),
                rec(
                    Step::Regroup {
                        replica: other,
                        new_primary: cand.clone(),
                    },
                    &["127.0.0.1:3308: CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=3307, MASTER_USE_GTID=slave_pos"],
                    StepState::Pending,
                    &[],
                ),
                rec(
                    Step::Promote {
                        candidate: cand.clone(),
                    },
                    &["127.0.0.1:3307: STOP SLAVE", "127.0.0.1:3307: SET GLOBAL read_only=0"],
                    StepState::Pending,
                    &[],
                ),
                rec(
                    Step::Repoint {
                        new_primary: cand,
                        old_primary: old,
                        old_to_reader: None,
                    },
                    &["proxy admin@127.0.0.1:6032: LOAD MYSQL SERVERS TO RUNTIME"],
                    StepState::Pending,
                    &[],
                ),
            ],
            error: Some("step 3 (catch_up) failed: 127.0.0.1:3307: MASTER_GTID_WAIT timed out after 60 s".into()),
            force: false,
        }
    }
}

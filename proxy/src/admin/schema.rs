//! The admin tables: ProxySQL's names, columns, defaults and checks, so that ProxySQL tools and
//! habits (and `SHOW CREATE TABLE`) see what they expect, plus switchyard's own tables.

/// A config table that exists in MEMORY (`main`), DISK (`disk`) and as a `runtime_` twin.
pub struct ConfigTable {
    pub name: &'static str,
    /// Column list and constraints, shared by all three copies.
    pub body: &'static str,
}

/// Every config table, in the order they are created and copied.
pub const CONFIG_TABLES: &[ConfigTable] = &[
    ConfigTable {
        name: "mysql_servers",
        body: "(hostgroup_id INT CHECK (hostgroup_id>=0) NOT NULL DEFAULT 0 , hostname VARCHAR NOT NULL , port INT CHECK (port >= 0 AND port <= 65535) NOT NULL DEFAULT 3306 , gtid_port INT CHECK ((gtid_port <> port OR gtid_port=0) AND gtid_port >= 0 AND gtid_port <= 65535) NOT NULL DEFAULT 0 , status VARCHAR CHECK (UPPER(status) IN ('ONLINE','SHUNNED','OFFLINE_SOFT', 'OFFLINE_HARD')) NOT NULL DEFAULT 'ONLINE' , weight INT CHECK (weight >= 0 AND weight <=10000000) NOT NULL DEFAULT 1 , compression INT CHECK (compression IN(0,1)) NOT NULL DEFAULT 0 , max_connections INT CHECK (max_connections >=0) NOT NULL DEFAULT 1000 , max_replication_lag INT CHECK (max_replication_lag >= 0 AND max_replication_lag <= 126144000) NOT NULL DEFAULT 0 , use_ssl INT CHECK (use_ssl IN(0,1)) NOT NULL DEFAULT 0 , max_latency_ms INT UNSIGNED CHECK (max_latency_ms>=0) NOT NULL DEFAULT 0 , comment VARCHAR NOT NULL DEFAULT '' , PRIMARY KEY (hostgroup_id, hostname, port) )",
    },
    ConfigTable {
        name: "switchyard_mysql_servers",
        body: "(hostgroup_id INT CHECK (hostgroup_id>=0) NOT NULL , hostname VARCHAR NOT NULL , port INT CHECK (port >= 0 AND port <= 65535) NOT NULL , tier INT CHECK (tier >= 0 AND tier <= 255) NOT NULL DEFAULT 0 , backend VARCHAR CHECK (LOWER(backend) IN ('mysql','clickhouse')) NOT NULL DEFAULT 'mysql' , PRIMARY KEY (hostgroup_id, hostname, port) )",
    },
    ConfigTable {
        name: "switchyard_fences",
        body: "(hostname VARCHAR NOT NULL , port INT NOT NULL , reason VARCHAR NOT NULL DEFAULT '' , actor VARCHAR NOT NULL DEFAULT '' , fenced_at INT NOT NULL DEFAULT 0 , PRIMARY KEY (hostname, port))",
    },
    ConfigTable {
        name: "mysql_users",
        body: "(username VARCHAR NOT NULL , password VARCHAR , active INT CHECK (active IN (0,1)) NOT NULL DEFAULT 1 , use_ssl INT CHECK (use_ssl IN (0,1)) NOT NULL DEFAULT 0 , default_hostgroup INT NOT NULL DEFAULT 0 , default_schema VARCHAR , schema_locked INT CHECK (schema_locked IN (0,1)) NOT NULL DEFAULT 0 , transaction_persistent INT CHECK (transaction_persistent IN (0,1)) NOT NULL DEFAULT 1 , fast_forward INT CHECK (fast_forward IN (0,1)) NOT NULL DEFAULT 0 , backend INT CHECK (backend IN (0,1)) NOT NULL DEFAULT 1 , frontend INT CHECK (frontend IN (0,1)) NOT NULL DEFAULT 1 , max_connections INT CHECK (max_connections >=0) NOT NULL DEFAULT 10000 , attributes VARCHAR CHECK (JSON_VALID(attributes) OR attributes = '') NOT NULL DEFAULT '' , comment VARCHAR NOT NULL DEFAULT '' , PRIMARY KEY (username, backend) , UNIQUE (username, frontend))",
    },
    ConfigTable {
        name: "mysql_query_rules",
        body: "(rule_id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL , active INT CHECK (active IN (0,1)) NOT NULL DEFAULT 0 , username VARCHAR , schemaname VARCHAR , flagIN INT CHECK (flagIN >= 0) NOT NULL DEFAULT 0 , client_addr VARCHAR , proxy_addr VARCHAR , proxy_port INT CHECK (proxy_port >= 0 AND proxy_port <= 65535) , digest VARCHAR , match_digest VARCHAR , match_pattern VARCHAR , negate_match_pattern INT CHECK (negate_match_pattern IN (0,1)) NOT NULL DEFAULT 0 , re_modifiers VARCHAR DEFAULT 'CASELESS' , flagOUT INT CHECK (flagOUT >= 0) , replace_pattern VARCHAR CHECK(CASE WHEN replace_pattern IS NULL THEN 1 WHEN replace_pattern IS NOT NULL AND match_pattern IS NOT NULL THEN 1 ELSE 0 END) , destination_hostgroup INT DEFAULT NULL , cache_ttl INT CHECK(cache_ttl > 0) , cache_empty_result INT CHECK (cache_empty_result IN (0,1)) DEFAULT NULL , cache_timeout INT CHECK(cache_timeout >= 0) , reconnect INT CHECK (reconnect IN (0,1)) DEFAULT NULL , timeout INT UNSIGNED CHECK (timeout >= 0) , retries INT CHECK (retries>=0 AND retries <=1000) , delay INT UNSIGNED CHECK (delay >=0) , next_query_flagIN INT UNSIGNED , mirror_flagOUT INT UNSIGNED , mirror_hostgroup INT UNSIGNED , error_msg VARCHAR , OK_msg VARCHAR , sticky_conn INT CHECK (sticky_conn IN (0,1)) , multiplex INT CHECK (multiplex IN (0,1,2)) , gtid_from_hostgroup INT UNSIGNED , log INT CHECK (log IN (0,1)) , apply INT CHECK(apply IN (0,1)) NOT NULL DEFAULT 0 , attributes VARCHAR CHECK (JSON_VALID(attributes) OR attributes = '') NOT NULL DEFAULT '' , comment VARCHAR)",
    },
    ConfigTable {
        name: "mysql_replication_hostgroups",
        body: "(writer_hostgroup INT CHECK (writer_hostgroup>=0) NOT NULL PRIMARY KEY , reader_hostgroup INT NOT NULL CHECK (reader_hostgroup<>writer_hostgroup AND reader_hostgroup>=0) , check_type VARCHAR CHECK (LOWER(check_type) IN ('read_only','innodb_read_only','super_read_only','read_only|innodb_read_only','read_only&innodb_read_only')) NOT NULL DEFAULT 'read_only' , comment VARCHAR NOT NULL DEFAULT '' , UNIQUE (reader_hostgroup))",
    },
    ConfigTable {
        name: "mysql_galera_hostgroups",
        body: "(writer_hostgroup INT CHECK (writer_hostgroup>=0) NOT NULL PRIMARY KEY , backup_writer_hostgroup INT CHECK (backup_writer_hostgroup>=0 AND backup_writer_hostgroup<>writer_hostgroup) NOT NULL , reader_hostgroup INT NOT NULL CHECK (reader_hostgroup<>writer_hostgroup AND backup_writer_hostgroup<>reader_hostgroup AND reader_hostgroup>0) , offline_hostgroup INT NOT NULL CHECK (offline_hostgroup<>writer_hostgroup AND offline_hostgroup<>reader_hostgroup AND backup_writer_hostgroup<>offline_hostgroup AND offline_hostgroup>=0) , active INT CHECK (active IN (0,1)) NOT NULL DEFAULT 1 , max_writers INT NOT NULL CHECK (max_writers >= 0) DEFAULT 1 , writer_is_also_reader INT CHECK (writer_is_also_reader IN (0,1,2)) NOT NULL DEFAULT 0 , max_transactions_behind INT CHECK (max_transactions_behind>=0) NOT NULL DEFAULT 0 , comment VARCHAR , UNIQUE (reader_hostgroup) , UNIQUE (offline_hostgroup) , UNIQUE (backup_writer_hostgroup))",
    },
    ConfigTable {
        name: "mysql_hostgroup_attributes",
        body: "(hostgroup_id INT NOT NULL PRIMARY KEY , max_num_online_servers INT CHECK (max_num_online_servers>=0 AND max_num_online_servers <= 1000000) NOT NULL DEFAULT 1000000 , autocommit INT CHECK (autocommit IN (-1, 0, 1)) NOT NULL DEFAULT -1 , free_connections_pct INT CHECK (free_connections_pct >= 0 AND free_connections_pct <= 100) NOT NULL DEFAULT 10 , init_connect VARCHAR NOT NULL DEFAULT '' , multiplex INT CHECK (multiplex IN (0, 1)) NOT NULL DEFAULT 1 , connection_warming INT CHECK (connection_warming IN (0, 1)) NOT NULL DEFAULT 0 , throttle_connections_per_sec INT CHECK (throttle_connections_per_sec >= 1 AND throttle_connections_per_sec <= 1000000) NOT NULL DEFAULT 1000000 , ignore_session_variables VARCHAR CHECK (JSON_VALID(ignore_session_variables) OR ignore_session_variables = '') NOT NULL DEFAULT '' , hostgroup_settings VARCHAR CHECK (JSON_VALID(hostgroup_settings) OR hostgroup_settings = '') NOT NULL DEFAULT '' , servers_defaults VARCHAR CHECK (JSON_VALID(servers_defaults) OR servers_defaults = '') NOT NULL DEFAULT '' , comment VARCHAR NOT NULL DEFAULT '')",
    },
    ConfigTable {
        name: "global_variables",
        body: "(variable_name VARCHAR NOT NULL PRIMARY KEY , variable_value VARCHAR NOT NULL)",
    },
    ConfigTable {
        name: "scheduler",
        body: "(id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL , active INT CHECK (active IN (0,1)) NOT NULL DEFAULT 1 , interval_ms INTEGER CHECK (interval_ms>=100 AND interval_ms<=100000000) NOT NULL , filename VARCHAR NOT NULL , arg1 VARCHAR , arg2 VARCHAR , arg3 VARCHAR , arg4 VARCHAR , arg5 VARCHAR , comment VARCHAR NOT NULL DEFAULT '')",
    },
];

/// Stats tables (schema `stats`), rebuilt from live state before a statement that names them.
pub const STATS_TABLES: &[(&str, &str)] = &[
    ("stats_mysql_connection_pool", POOL_COLUMNS),
    ("stats_mysql_connection_pool_reset", POOL_COLUMNS),
    (
        "stats_mysql_global",
        "(Variable_Name VARCHAR NOT NULL PRIMARY KEY , Variable_Value VARCHAR NOT NULL)",
    ),
    ("stats_mysql_query_digest", DIGEST_COLUMNS),
    ("stats_mysql_query_digest_reset", DIGEST_COLUMNS),
    (
        "stats_mysql_commands_counters",
        "(Command VARCHAR NOT NULL PRIMARY KEY , Total_Time_us INT NOT NULL , Total_cnt INT NOT NULL , cnt_100us INT NOT NULL , cnt_500us INT NOT NULL , cnt_1ms INT NOT NULL , cnt_5ms INT NOT NULL , cnt_10ms INT NOT NULL , cnt_50ms INT NOT NULL , cnt_100ms INT NOT NULL , cnt_500ms INT NOT NULL , cnt_1s INT NOT NULL , cnt_5s INT NOT NULL , cnt_10s INT NOT NULL , cnt_INFs)",
    ),
    (
        "stats_mysql_processlist",
        "(ThreadID INT NOT NULL , SessionID INTEGER PRIMARY KEY , user VARCHAR , db VARCHAR , cli_host VARCHAR , cli_port INT , hostgroup INT , l_srv_host VARCHAR , l_srv_port INT , srv_host VARCHAR , srv_port INT , command VARCHAR , time_ms INT NOT NULL , info VARCHAR , status_flags INT , extended_info VARCHAR)",
    ),
    (
        "stats_mysql_users",
        "(username VARCHAR PRIMARY KEY , frontend_connections INT NOT NULL , frontend_max_connections INT NOT NULL)",
    ),
    ("stats_mysql_errors", ERRORS_COLUMNS),
    ("stats_mysql_errors_reset", ERRORS_COLUMNS),
    (
        "stats_mysql_query_rules",
        "(rule_id INTEGER PRIMARY KEY , hits INT NOT NULL)",
    ),
    (
        "stats_switchyard_servers",
        "(hostgroup_id INT NOT NULL , hostname VARCHAR NOT NULL , port INT NOT NULL , tier INT NOT NULL DEFAULT 0 , shun_reason VARCHAR NOT NULL DEFAULT '' , shunned_until INT , fenced_by VARCHAR NOT NULL DEFAULT '' , fenced_at INT , drain_started_at INT , replication_lag_ms INT , ping_latency_us INT , status VARCHAR NOT NULL DEFAULT 'ONLINE' , shunned_since INT , degraded VARCHAR NOT NULL DEFAULT '' , quarantine VARCHAR NOT NULL DEFAULT '' , fence_reason VARCHAR NOT NULL DEFAULT '' , PRIMARY KEY (hostgroup_id, hostname, port))",
    ),
    (
        "stats_switchyard_events",
        "(event_id INTEGER PRIMARY KEY , time_ms INT NOT NULL , hostgroup INT , server VARCHAR NOT NULL DEFAULT '' , kind VARCHAR NOT NULL , reason VARCHAR NOT NULL DEFAULT '' , actor VARCHAR NOT NULL DEFAULT '')",
    ),
    (
        "stats_switchyard_multiplexing",
        "(hostgroup INT PRIMARY KEY , frontend_sessions INT NOT NULL , backend_connections INT NOT NULL , pinned_sessions INT NOT NULL , backend_connections_open INT NOT NULL DEFAULT 0 , connection_borrows INT NOT NULL DEFAULT 0 , local_answers INT NOT NULL DEFAULT 0)",
    ),
    (
        "stats_switchyard_pinned_sessions",
        "(hostgroup INT NOT NULL , reason VARCHAR NOT NULL , sessions INT NOT NULL , pins_total INT NOT NULL DEFAULT 0 , PRIMARY KEY (hostgroup, reason))",
    ),
    (
        "stats_switchyard_scheduler",
        "(id INTEGER PRIMARY KEY , active INT NOT NULL , interval_ms INT NOT NULL , filename VARCHAR NOT NULL , runs INT NOT NULL , failures INT NOT NULL , timeouts INT NOT NULL , consecutive_failures INT NOT NULL , last_exit INT , last_duration_ms INT , last_run_at INT , last_error VARCHAR NOT NULL DEFAULT '')",
    ),
    (
        "stats_switchyard_columns",
        "(table_name VARCHAR NOT NULL , column_name VARCHAR NOT NULL , applies VARCHAR NOT NULL , note VARCHAR NOT NULL , PRIMARY KEY (table_name, column_name))",
    ),
    (
        "stats_switchyard_capacity",
        "(hostgroup INT NOT NULL , srv_host VARCHAR NOT NULL , srv_port INT NOT NULL , points INT NOT NULL , n_max REAL , lambda REAL , lambda_err REAL , sigma REAL , sigma_err REAL , kappa REAL , kappa_err REAL , peak_n REAL , peak_x REAL , current_n REAL , current_x REAL , load_pct REAL , r2 REAL , mean_err_pct REAL , max_err_pct REAL , fit VARCHAR NOT NULL , cap INT , running INT NOT NULL , max_running INT , PRIMARY KEY (hostgroup, srv_host, srv_port))",
    ),
    (
        "stats_switchyard_capacity_points",
        "(hostgroup INT NOT NULL , srv_host VARCHAR NOT NULL , srv_port INT NOT NULL , time_ms INT NOT NULL , n REAL NOT NULL , x REAL NOT NULL)",
    ),
    (
        "stats_switchyard_variables",
        "(variable_name VARCHAR NOT NULL PRIMARY KEY , memory_value VARCHAR , runtime_value VARCHAR , applies VARCHAR NOT NULL , pending_restart INT NOT NULL)",
    ),
];

/// The monitor's log tables (schema `monitor`), as ProxySQL names them; bounded and rebuilt from
/// the monitor's memory before a statement that names them.
pub const MONITOR_TABLES: &[(&str, &str)] = &[
    (
        "mysql_server_connect_log",
        "(hostname VARCHAR NOT NULL , port INT NOT NULL DEFAULT 3306 , time_start_us INT NOT NULL DEFAULT 0 , connect_success_time_us INT DEFAULT 0 , connect_error VARCHAR)",
    ),
    (
        "mysql_server_ping_log",
        "(hostname VARCHAR NOT NULL , port INT NOT NULL DEFAULT 3306 , time_start_us INT NOT NULL DEFAULT 0 , ping_success_time_us INT DEFAULT 0 , ping_error VARCHAR)",
    ),
    (
        "mysql_server_read_only_log",
        "(hostname VARCHAR NOT NULL , port INT NOT NULL DEFAULT 3306 , time_start_us INT NOT NULL DEFAULT 0 , success_time_us INT DEFAULT 0 , read_only INT DEFAULT 1 , error VARCHAR)",
    ),
    (
        "mysql_server_replication_lag_log",
        "(hostname VARCHAR NOT NULL , port INT NOT NULL DEFAULT 3306 , time_start_us INT NOT NULL DEFAULT 0 , success_time_us INT DEFAULT 0 , repl_lag INT DEFAULT 0 , error VARCHAR)",
    ),
    (
        "mysql_server_galera_log",
        "(hostname VARCHAR NOT NULL , port INT NOT NULL DEFAULT 3306 , time_start_us INT NOT NULL DEFAULT 0 , success_time_us INT DEFAULT 0 , primary_partition VARCHAR NOT NULL DEFAULT 'NO' , read_only VARCHAR NOT NULL DEFAULT 'YES' , wsrep_local_recv_queue INT DEFAULT 0 , wsrep_local_state INT DEFAULT 0 , wsrep_desync VARCHAR NOT NULL DEFAULT 'NO' , wsrep_reject_queries VARCHAR NOT NULL DEFAULT 'NO' , wsrep_sst_donor_rejects_queries VARCHAR NOT NULL DEFAULT 'NO' , pxc_maint_mode VARCHAR NOT NULL DEFAULT 'NO' , error VARCHAR)",
    ),
];

const POOL_COLUMNS: &str = "(hostgroup INT , srv_host VARCHAR , srv_port INT , status VARCHAR , ConnUsed INT , ConnFree INT , ConnOK INT , ConnERR INT , MaxConnUsed INT , Queries INT , Queries_GTID_sync INT , Bytes_data_sent INT , Bytes_data_recv INT , Latency_us INT)";

const DIGEST_COLUMNS: &str = "(hostgroup INT , schemaname VARCHAR NOT NULL , username VARCHAR NOT NULL , client_address VARCHAR NOT NULL , digest VARCHAR NOT NULL , digest_text VARCHAR , count_star INTEGER NOT NULL , first_seen INTEGER NOT NULL , last_seen INTEGER NOT NULL , sum_time INTEGER NOT NULL , min_time INTEGER NOT NULL , max_time INTEGER NOT NULL , sum_rows_affected INTEGER NOT NULL , sum_rows_sent INTEGER NOT NULL , PRIMARY KEY(hostgroup, schemaname, username, client_address, digest))";

const ERRORS_COLUMNS: &str = "(hostgroup INT NOT NULL , hostname VARCHAR NOT NULL , port INT NOT NULL , username VARCHAR NOT NULL , client_address VARCHAR NOT NULL , schemaname VARCHAR NOT NULL , errno INT NOT NULL , count_star INTEGER NOT NULL , first_seen INTEGER NOT NULL , last_seen INTEGER NOT NULL , last_error VARCHAR NOT NULL DEFAULT '' , PRIMARY KEY (hostgroup, hostname, port, username, schemaname, errno) )";

/// The SQL that creates every table in a fresh store whose `disk` and `stats` are attached.
/// Columns added to a config table after DISK files were written without them: (table,
/// column, definition). A DISK file from an older switchyard gets them at start (SQLite appends
/// them, which is where the table's body puts them), so `INSERT … SELECT *` copies still line up.
pub const ADDED_COLUMNS: &[(&str, &str, &str)] = &[(
    "switchyard_mysql_servers",
    "backend",
    "VARCHAR CHECK (LOWER(backend) IN ('mysql','clickhouse')) NOT NULL DEFAULT 'mysql'",
)];

pub fn create_all() -> String {
    let mut sql = String::new();
    for t in CONFIG_TABLES {
        for prefix in ["main.", "main.runtime_", "disk."] {
            sql.push_str(&format!(
                "CREATE TABLE IF NOT EXISTS {prefix}{} {};\n",
                t.name, t.body
            ));
        }
    }
    for (name, body) in STATS_TABLES {
        sql.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS stats.{name} {body};\n"
        ));
    }
    for (name, body) in MONITOR_TABLES {
        sql.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS monitor.{name} {body};\n"
        ));
    }
    sql
}

//! Protocol constants: capability and status flags, command bytes, error codes the proxy sends.

pub mod cap {
    pub const LONG_PASSWORD: u32 = 1;
    /// MariaDB's name for bit 0: set by MySQL servers and clients, clear in a MariaDB greeting
    /// or response that carries extended capabilities (see `ext`).
    pub const MYSQL: u32 = LONG_PASSWORD;
    pub const FOUND_ROWS: u32 = 1 << 1;
    pub const LONG_FLAG: u32 = 1 << 2;
    pub const CONNECT_WITH_DB: u32 = 1 << 3;
    pub const NO_SCHEMA: u32 = 1 << 4;
    pub const COMPRESS: u32 = 1 << 5;
    pub const ODBC: u32 = 1 << 6;
    pub const LOCAL_FILES: u32 = 1 << 7;
    pub const IGNORE_SPACE: u32 = 1 << 8;
    pub const PROTOCOL_41: u32 = 1 << 9;
    pub const INTERACTIVE: u32 = 1 << 10;
    pub const SSL: u32 = 1 << 11;
    pub const IGNORE_SIGPIPE: u32 = 1 << 12;
    pub const TRANSACTIONS: u32 = 1 << 13;
    pub const RESERVED: u32 = 1 << 14;
    pub const SECURE_CONNECTION: u32 = 1 << 15;
    pub const MULTI_STATEMENTS: u32 = 1 << 16;
    pub const MULTI_RESULTS: u32 = 1 << 17;
    pub const PS_MULTI_RESULTS: u32 = 1 << 18;
    pub const PLUGIN_AUTH: u32 = 1 << 19;
    pub const CONNECT_ATTRS: u32 = 1 << 20;
    pub const PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 1 << 21;
    pub const CAN_HANDLE_EXPIRED_PASSWORDS: u32 = 1 << 22;
    pub const SESSION_TRACK: u32 = 1 << 23;
    pub const DEPRECATE_EOF: u32 = 1 << 24;

    /// What the proxy offers clients. No COMPRESS (not implemented). LONG_PASSWORD (MYSQL) is set
    /// here; the greeting clears it when the backends are MariaDB servers, so MariaDB clients see
    /// the extended capabilities in `ext::PROXY_OFFERS` (see `server::learn_announce`).
    pub const PROXY_OFFERS: u32 = LONG_PASSWORD
        | FOUND_ROWS
        | LONG_FLAG
        | CONNECT_WITH_DB
        | NO_SCHEMA
        | ODBC
        | LOCAL_FILES
        | IGNORE_SPACE
        | PROTOCOL_41
        | INTERACTIVE
        | SSL
        | IGNORE_SIGPIPE
        | TRANSACTIONS
        | RESERVED
        | SECURE_CONNECTION
        | MULTI_STATEMENTS
        | MULTI_RESULTS
        | PS_MULTI_RESULTS
        | PLUGIN_AUTH
        | CONNECT_ATTRS
        | PLUGIN_AUTH_LENENC_CLIENT_DATA
        | SESSION_TRACK
        | DEPRECATE_EOF;

    /// Client capabilities that change what a server sends or accepts. A backend connection must
    /// have the same bits as the client it serves, or the bytes passed through would be misread.
    pub const FLAVOR_MASK: u32 = FOUND_ROWS
        | LONG_FLAG
        | NO_SCHEMA
        | LOCAL_FILES
        | IGNORE_SPACE
        | INTERACTIVE
        | MULTI_STATEMENTS
        | MULTI_RESULTS
        | PS_MULTI_RESULTS
        | SESSION_TRACK
        | DEPRECATE_EOF;

    /// MariaDB's extended capabilities: the upper 32 bits of its 64-bit capability set, sent as
    /// a fourth 32-bit word in the greeting's reserved filler and at the end of the client's
    /// reserved filler, only when bit 0 (`MYSQL`) is clear on the sender's side.
    pub mod ext {
        /// Bit 32: progress report packets (0xff + code 0xffff) inside a response.
        pub const PROGRESS: u32 = 1;
        /// Bit 33: COM_MULTI (several commands in one packet, gone from 10.6 on).
        pub const COM_MULTI: u32 = 1 << 1;
        /// Bit 34: COM_STMT_BULK_EXECUTE.
        pub const STMT_BULK_OPERATIONS: u32 = 1 << 2;
        /// Bit 35: column definitions carry a data-type block (type name, format such as json).
        pub const EXTENDED_TYPE_INFO: u32 = 1 << 3;
        /// Bit 36: result sets may omit column definitions the client already has.
        pub const CACHE_METADATA: u32 = 1 << 4;
        /// Bit 37: one result per row of a bulk execution.
        pub const BULK_UNIT_RESULTS: u32 = 1 << 5;

        /// The extended capabilities the proxy passes through, when its backends offer them.
        /// Only EXTENDED_TYPE_INFO: it adds a block inside each column definition, which the
        /// response tracker skips without decoding, and the proxy's own column definitions
        /// (`session::local`) add the empty block. Not offered: PROGRESS (a progress packet
        /// starts with 0xff, and the tracker would end the response there as an ERR),
        /// CACHE_METADATA (a metadata-follows byte after the column count, and definitions that
        /// may be missing, which the tracker would miscount; a cached copy is also per
        /// connection, wrong once a client moves to another one), STMT_BULK_OPERATIONS and
        /// BULK_UNIT_RESULTS (COM_STMT_BULK_EXECUTE is not routed through the proxy's statement
        /// handling) and COM_MULTI (not implemented, and removed from the server).
        pub const PROXY_OFFERS: u32 = EXTENDED_TYPE_INFO;

        /// Extended capabilities that change what a server sends: part of the flavor.
        pub const FLAVOR_MASK: u32 = PROXY_OFFERS;
    }
}

pub mod status {
    pub const IN_TRANS: u16 = 0x0001;
    pub const AUTOCOMMIT: u16 = 0x0002;
    pub const MORE_RESULTS_EXISTS: u16 = 0x0008;
    pub const CURSOR_EXISTS: u16 = 0x0040;
    pub const LAST_ROW_SENT: u16 = 0x0080;
    pub const IN_TRANS_READONLY: u16 = 0x2000;
    pub const SESSION_STATE_CHANGED: u16 = 0x4000;
}

pub mod com {
    pub const QUIT: u8 = 0x01;
    pub const INIT_DB: u8 = 0x02;
    pub const QUERY: u8 = 0x03;
    pub const FIELD_LIST: u8 = 0x04;
    pub const STATISTICS: u8 = 0x09;
    pub const PROCESS_KILL: u8 = 0x0c;
    pub const PING: u8 = 0x0e;
    pub const CHANGE_USER: u8 = 0x11;
    pub const STMT_PREPARE: u8 = 0x16;
    pub const STMT_EXECUTE: u8 = 0x17;
    pub const STMT_SEND_LONG_DATA: u8 = 0x18;
    pub const STMT_CLOSE: u8 = 0x19;
    pub const STMT_RESET: u8 = 0x1a;
    pub const SET_OPTION: u8 = 0x1b;
    pub const STMT_FETCH: u8 = 0x1c;
    pub const RESET_CONNECTION: u8 = 0x1f;
}

/// Error codes and SQLSTATEs the proxy itself answers with (the server's own codes where one fits).
pub mod errors {
    pub const ACCESS_DENIED: (u16, &str) = (1045, "28000");
    pub const HOST_IS_BLOCKED: (u16, &str) = (1129, "HY000");
    pub const TOO_MANY_USER_CONNECTIONS: (u16, &str) = (1203, "42000");
    pub const NET_PACKET_TOO_LARGE: (u16, &str) = (1153, "08S01");
    pub const NET_PACKETS_OUT_OF_ORDER: (u16, &str) = (1156, "08S01");
    pub const UNKNOWN_COM: (u16, &str) = (1047, "08S01");
    pub const HANDSHAKE: (u16, &str) = (1043, "08S01");
    pub const SERVER_SHUTDOWN: (u16, &str) = (1053, "08S01");
    /// ProxySQL's code for "no backend within the connect timeout"; scripts already match on it.
    pub const NO_BACKEND: (u16, &str) = (9001, "HY000");
    pub const BACKEND_LOST: (u16, &str) = (2013, "HY000");
}

/// Largest payload of one physical packet; a payload of exactly this size continues in the next.
pub const MAX_PAYLOAD: usize = 0xff_ff_ff;

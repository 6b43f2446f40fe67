//! What can go wrong between a proxy (or the CLI) and the fleet's etcd.

/// A fleet operation's failure.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// No endpoint answered (connection refused, timeout, no quorum behind it).
    #[error("etcd unreachable ({endpoints}): {reason}")]
    Unreachable { endpoints: String, reason: String },
    /// etcd answered with an error (its gRPC message).
    #[error("etcd refused {call}: {message}")]
    Etcd { call: &'static str, message: String },
    /// An answer that is not what the etcd v3 JSON gateway sends.
    #[error("unexpected answer from etcd to {call}: {reason}")]
    Protocol { call: &'static str, reason: String },
    /// A stored document that does not parse (written by something else, or a newer version).
    #[error("{key}: not a switchyard fleet document: {reason}")]
    Document { key: String, reason: String },
    /// The change was based on a revision that is no longer the current one: somebody else
    /// published in between (compare-and-swap lost).
    #[error("stale: the change is based on revision {base}, but the fleet is at revision {current}; look at `fleet diff` and apply again on top of {current}")]
    Stale { base: u64, current: u64 },
    #[error("revision {0} does not exist")]
    NoRevision(u64),
    #[error("bad fleet settings: {0}")]
    Settings(String),
}

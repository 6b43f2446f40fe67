//! Query processing: the digest of each statement, the query rules and what they decide
//! (destination hostgroup, rewrite, local reply, cache, timeout, mirror, …), the result cache and
//! the digest statistics. The session makes one call, [`QueryProcessor::process`], and acts on
//! the [`Decision`]; nothing here does I/O.

pub(crate) mod cache;
pub mod digest;
pub mod lex;
pub mod rules;
pub mod statement;
pub(crate) mod stats;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use crate::config::QueryRuleRow;
use crate::stats::Counter;

pub use cache::{CacheKey, Capture, QueryCache};
pub use rules::{Actions, RuleError, RuleSet};
pub use stats::{DigestKey, DigestStats, Execution};

/// Names of the `global_variables` this module reads on `LOAD MYSQL VARIABLES TO RUNTIME`.
pub mod vars {
    /// Cap on `stats_mysql_query_digest` entries (ProxySQL has none).
    pub const DIGESTS_MAX_ENTRIES: &str = "mysql-query_digests_max_entries";
    /// Total size of the result cache, MiB (ProxySQL's name).
    pub const CACHE_SIZE_MB: &str = "mysql-query_cache_size_MB";
    /// Largest response the result cache keeps, bytes.
    pub const CACHE_MAX_ENTRY: &str = "mysql-query_cache_max_entry_size";
}

/// The query and its session, as the rules see them.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub text: &'a str,
    pub username: &'a str,
    pub schema: Option<&'a str>,
    pub client_addr: IpAddr,
    /// Where the client connected to (the proxy's listening address).
    pub proxy_addr: Option<SocketAddr>,
    /// The previous query's `next_query_flagIN`, else 0.
    pub flag_in: u32,
}

/// What to do with one query.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    pub digest: u64,
    pub digest_text: String,
    pub actions: Actions,
}

impl Decision {
    /// The text to send to the backend.
    pub fn text<'a>(&'a self, original: &'a str) -> &'a str {
        self.actions.rewritten.as_deref().unwrap_or(original)
    }
}

/// The proxy's query processor: runtime rules, digests, cache.
#[derive(Debug, Default)]
pub struct QueryProcessor {
    rules: RwLock<Arc<RuleSet>>,
    pub digests: DigestStats,
    pub cache: QueryCache,
    /// Statements ended by a rule `timeout` (`KILL QUERY` accepted by the server).
    pub killed_queries: Counter,
    /// Statements copied to a `mirror_hostgroup`, and those skipped (no server, no free slot).
    pub mirrored: Counter,
    pub mirror_skipped: Counter,
    /// Statements sent again after their backend was lost before answering (rule `retries`).
    pub retried: Counter,
}

impl QueryProcessor {
    /// Compiles `rows` and makes them the runtime rules; on error the runtime keeps its rules.
    pub fn load_rules(&self, rows: &[QueryRuleRow]) -> Result<(), RuleError> {
        self.set_rules(RuleSet::compile(rows)?);
        Ok(())
    }

    /// Makes an already compiled set the runtime rules.
    pub fn set_rules(&self, set: RuleSet) {
        let set = Arc::new(set);
        match self.rules.write() {
            Ok(mut r) => *r = set,
            Err(p) => *p.into_inner() = set,
        }
    }

    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules
            .read()
            .map(|r| Arc::clone(&r))
            .unwrap_or_else(|p| Arc::clone(&p.into_inner()))
    }

    /// Rules for a query whose digest is already known: computed with its `Statement`, or once
    /// at prepare for a prepared statement's executions.
    pub fn decide(&self, cx: &Context<'_>, digest_text: String, digest: u64) -> Decision {
        let rules = self.rules();
        let actions = if rules.is_empty() {
            Actions::default()
        } else {
            rules.evaluate(&rules::Subject {
                text: cx.text,
                digest_text: &digest_text,
                digest,
                username: cx.username,
                schema: cx.schema,
                client_addr: cx.client_addr,
                proxy_addr: cx.proxy_addr.map(|a| a.ip()),
                proxy_port: cx.proxy_addr.map(|a| a.port()),
                flag_in: cx.flag_in,
            })
        };
        Decision {
            digest,
            digest_text,
            actions,
        }
    }

    /// Applies this module's `global_variables`; unknown or unparsable values keep the current.
    pub fn apply_variables(&self, get: impl Fn(&str) -> Option<String>) {
        let num = |name: &str| get(name).and_then(|v| v.trim().parse::<usize>().ok());
        if let Some(n) = num(vars::DIGESTS_MAX_ENTRIES) {
            self.digests.set_max_entries(n);
        }
        let size = num(vars::CACHE_SIZE_MB).unwrap_or(cache::DEFAULT_SIZE_MB);
        let entry = num(vars::CACHE_MAX_ENTRY).unwrap_or(cache::DEFAULT_MAX_ENTRY);
        self.cache
            .set_limits(size.saturating_mul(1024 * 1024), entry);
    }

    /// The variables with their current values, for `global_variables`.
    pub fn variables(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                vars::DIGESTS_MAX_ENTRIES,
                self.digests.max_entries().to_string(),
            ),
            (
                vars::CACHE_SIZE_MB,
                (self.cache.max_bytes() / (1024 * 1024)).to_string(),
            ),
            (vars::CACHE_MAX_ENTRY, self.cache.max_entry().to_string()),
        ]
    }
}

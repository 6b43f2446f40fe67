//! `proxysql.cnf` (libconfig syntax) as a source of the same [`Config`] the TOML file gives, so
//! an existing ProxySQL deployment's config file runs unchanged (`switchyard proxy --config
//! proxysql.cnf`) or converts to TOML (`switchyard config convert`).
//!
//! Only the datadir-independent parts are read: `admin_variables`, `mysql_variables`,
//! `mysql_servers`, `mysql_users`, `mysql_query_rules`, `mysql_replication_hostgroups`,
//! `mysql_galera_hostgroups`, `mysql_hostgroup_attributes` and `scheduler`. What is not used is
//! reported (see [`convert`] for which problems are errors and which are warnings). The result
//! goes through the same validation as a TOML file, so nothing half-loaded runs.

mod convert;
pub mod syntax;

use std::path::{Path, PathBuf};

pub use convert::Warning;

use super::{Config, ConfigError};

/// A cnf problem with the file (None = the text given) and line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CnfError {
    pub file: Option<PathBuf>,
    pub line: Option<usize>,
    pub reason: String,
}

impl From<CnfError> for ConfigError {
    fn from(e: CnfError) -> ConfigError {
        ConfigError::Invalid {
            path: e.file,
            line: e.line,
            reason: e.reason,
        }
    }
}

impl From<syntax::SyntaxError> for CnfError {
    fn from(e: syntax::SyntaxError) -> CnfError {
        CnfError {
            file: e.file,
            line: Some(e.line),
            reason: e.reason,
        }
    }
}

/// Parses and validates cnf text; `file` names it in errors and anchors `@include`s.
pub fn parse(text: &str, file: Option<&Path>) -> Result<(Config, Vec<Warning>), ConfigError> {
    let settings = syntax::parse(text, file).map_err(CnfError::from)?;
    let converted = convert::convert(&settings)?;
    converted
        .config
        .validate(text)
        .map_err(|e| match (e, file) {
            (e, Some(f)) => e.in_file(f),
            (e, None) => e,
        })?;
    Ok((converted.config, converted.warnings))
}

/// Whether `text` is libconfig rather than TOML, for files whose extension does not say: a
/// top-level `name = {` or `name = (` (TOML has no such forms), outside comments.
pub fn looks_like_cnf(text: &str) -> bool {
    static SHAPE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    SHAPE
        .get_or_init(|| regex::Regex::new(r"(?m)(^|\s)[A-Za-z_][A-Za-z0-9_]*\s*[=:]\s*[({]").ok())
        .as_ref()
        .is_some_and(|re| {
            text.lines()
                .map(|l| l.split('#').next().unwrap_or(""))
                .any(|l| re.is_match(l))
        })
}

#[cfg(test)]
mod tests;

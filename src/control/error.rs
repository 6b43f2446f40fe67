//! Errors of the control client, typed so the TUI and the subcommands can tell a refused action
//! from a broken row or a lost connection.

use thiserror::Error;

/// A row from the admin interface that does not fit the typed row.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RowError {
    #[error("{table}.{column}: column missing from the result")]
    Missing {
        table: &'static str,
        column: &'static str,
    },
    #[error("{table}.{column}: '{value}' is not {expected}")]
    Bad {
        table: &'static str,
        column: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl RowError {
    pub fn missing(table: &'static str, column: &'static str) -> RowError {
        RowError::Missing { table, column }
    }

    pub fn bad(
        table: &'static str,
        column: &'static str,
        value: &str,
        expected: &'static str,
    ) -> RowError {
        RowError::Bad {
            table,
            column,
            value: value.chars().take(64).collect(),
            expected,
        }
    }
}

/// A value that cannot be put into admin SQL safely, or a server name that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InputError {
    #[error("{what}: control characters are not allowed")]
    ControlCharacter { what: &'static str },
    #[error("{what}: backslashes are not allowed (admin SQL dialects disagree on escaping them)")]
    Backslash { what: &'static str },
    #[error(
        "server '{input}': {problem} (expected HOST:PORT or HOSTGROUP/HOST:PORT, e.g. 10/db1:3306)"
    )]
    ServerName { input: String, problem: String },
    #[error("{what}: {value} is out of range ({range})")]
    OutOfRange {
        what: &'static str,
        value: String,
        range: &'static str,
    },
    #[error("{0}")]
    Refused(String),
}

/// Anything that can go wrong talking to the admin interface.
#[derive(Debug, Error)]
pub enum ControlError {
    #[error("admin URL: {0}")]
    Url(String),
    /// Not a `source`: mysql_async's message already carries its causes, and a chain printed
    /// with `{:#}` would repeat them.
    #[error("admin interface: {0}")]
    Sql(mysql_async::Error),
    #[error("admin interface returned an unexpected row: {0}")]
    Row(#[from] RowError),
    #[error(transparent)]
    Input(#[from] InputError),
}

impl From<mysql_async::Error> for ControlError {
    fn from(e: mysql_async::Error) -> ControlError {
        ControlError::Sql(e)
    }
}

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
    #[error("admin interface: {0} took longer than {1:?}")]
    Timeout(&'static str, std::time::Duration),
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

impl ControlError {
    /// Whether the connection is unusable afterwards (lost, or cancelled mid-query by a timeout)
    /// rather than one statement failing; the caller should reconnect.
    pub fn connection_lost(&self) -> bool {
        match self {
            ControlError::Sql(e) => !matches!(e, mysql_async::Error::Server(_)),
            ControlError::Timeout(..) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_statement_keeps_the_connection_a_lost_one_does_not() {
        let sql_error = ControlError::from(mysql_async::Error::Server(mysql_async::ServerError {
            code: 1045,
            message: "Access denied".into(),
            state: "28000".into(),
        }));
        assert!(!sql_error.connection_lost());
        let closed = ControlError::from(mysql_async::Error::Driver(
            mysql_async::DriverError::ConnectionClosed,
        ));
        assert!(closed.connection_lost());
        assert!(
            ControlError::Timeout("a request", std::time::Duration::from_secs(1)).connection_lost()
        );
        assert!(!ControlError::Url("x".into()).connection_lost());
        assert_eq!(
            sql_error.to_string().matches("Access denied").count(),
            1,
            "the cause is printed once"
        );
    }
}

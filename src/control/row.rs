//! A result row as the admin interface sends it: named columns, every value a string or NULL.
//!
//! ProxySQL sends every admin column as `VAR_STRING`, so typed rows are parsed from text here
//! rather than trusting column types; the same parser then works for ProxySQL and for switchyard.

use std::str::FromStr;

use super::error::RowError;

/// One row: column names (as sent, matched case-insensitively) and their values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminRow {
    columns: Vec<String>,
    values: Vec<Option<String>>,
}

impl AdminRow {
    pub fn new(columns: Vec<String>, values: Vec<Option<String>>) -> AdminRow {
        AdminRow { columns, values }
    }

    /// Builds a row from `(column, value)` pairs; handy for tests and for embedded sources.
    pub fn from_pairs(pairs: &[(&str, Option<&str>)]) -> AdminRow {
        AdminRow {
            columns: pairs.iter().map(|(c, _)| (*c).to_owned()).collect(),
            values: pairs.iter().map(|(_, v)| v.map(str::to_owned)).collect(),
        }
    }

    fn lookup(&self, column: &str) -> Option<Option<&str>> {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(column))
            .map(|i| self.values.get(i).and_then(|v| v.as_deref()))
    }

    /// The value of the column at `index`, for results whose column names vary.
    pub fn text_at(&self, index: usize) -> Option<String> {
        self.values.get(index).cloned().flatten()
    }

    /// A column that must be present; NULL reads as the empty string.
    pub fn text(&self, table: &'static str, column: &'static str) -> Result<String, RowError> {
        match self.lookup(column) {
            Some(v) => Ok(v.unwrap_or_default().to_owned()),
            None => Err(RowError::missing(table, column)),
        }
    }

    /// A column that may be absent or NULL (older ProxySQL versions lack some columns).
    pub fn opt_text(&self, column: &str) -> Option<String> {
        self.lookup(column).flatten().map(str::to_owned)
    }

    /// A required number.
    pub fn num<T: FromStr>(
        &self,
        table: &'static str,
        column: &'static str,
    ) -> Result<T, RowError> {
        let raw = self
            .lookup(column)
            .ok_or_else(|| RowError::missing(table, column))?
            .ok_or_else(|| RowError::bad(table, column, "NULL", "a number"))?;
        raw.trim()
            .parse()
            .map_err(|_| RowError::bad(table, column, raw, "a number"))
    }

    /// A number that may be absent, NULL or empty.
    pub fn opt_num<T: FromStr>(
        &self,
        table: &'static str,
        column: &'static str,
    ) -> Result<Option<T>, RowError> {
        match self.lookup(column).flatten().map(str::trim) {
            None | Some("") => Ok(None),
            Some(raw) => raw
                .parse()
                .map(Some)
                .map_err(|_| RowError::bad(table, column, raw, "a number")),
        }
    }

    /// A number that defaults to zero when absent (counters added in later ProxySQL versions).
    pub fn num_or_zero<T: FromStr + Default>(
        &self,
        table: &'static str,
        column: &'static str,
    ) -> Result<T, RowError> {
        Ok(self.opt_num(table, column)?.unwrap_or_default())
    }

    /// A 0/1 flag; absent reads as `default`.
    pub fn flag(
        &self,
        table: &'static str,
        column: &'static str,
        default: bool,
    ) -> Result<bool, RowError> {
        match self.lookup(column).flatten().map(str::trim) {
            None | Some("") => Ok(default),
            Some("0") => Ok(false),
            Some(raw) if raw.parse::<i64>().is_ok() => Ok(true),
            Some(raw) => Err(RowError::bad(table, column, raw, "0 or 1")),
        }
    }
}

/// A typed row of one admin table.
pub trait FromAdminRow: Sized {
    /// The table the console reads these rows from.
    const TABLE: &'static str;
    fn from_row(row: &AdminRow) -> Result<Self, RowError>;
}

/// Parses every row, stopping at the first one that does not fit.
pub fn parse_rows<T: FromAdminRow>(rows: &[AdminRow]) -> Result<Vec<T>, RowError> {
    rows.iter().map(T::from_row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_match_case_insensitively_and_null_reads_as_empty_text() {
        let row = AdminRow::from_pairs(&[("Variable_Name", Some("x")), ("comment", None)]);
        assert_eq!(row.text("t", "variable_name").as_deref(), Ok("x"));
        assert_eq!(row.text("t", "comment").as_deref(), Ok(""));
        assert!(row.text("t", "absent").is_err());
    }

    #[test]
    fn numbers_are_parsed_from_text_with_errors_naming_the_column() {
        let row = AdminRow::from_pairs(&[("port", Some("3306")), ("weight", Some("heavy"))]);
        assert_eq!(row.num::<u16>("t", "port"), Ok(3306));
        let err = row.num::<u32>("mysql_servers", "weight").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("mysql_servers.weight"), "{text}");
        assert!(text.contains("heavy"), "{text}");
    }

    #[test]
    fn flags_accept_zero_and_nonzero_and_reject_words() {
        let row = AdminRow::from_pairs(&[("a", Some("0")), ("b", Some("1")), ("c", Some("yes"))]);
        assert_eq!(row.flag("t", "a", true), Ok(false));
        assert_eq!(row.flag("t", "b", false), Ok(true));
        assert_eq!(row.flag("t", "missing", true), Ok(true));
        assert!(row.flag("t", "c", false).is_err());
    }
}

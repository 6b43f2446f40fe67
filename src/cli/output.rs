//! `--output table|json`: one switch for every command that prints a result.

use clap::ValueEnum;
use serde::Serialize;
use tabled::{Table, Tabled};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
}

/// Prints rows as a table, or the whole `json` value, on stdout.
pub fn print_rows<R: Tabled, J: Serialize>(
    format: OutputFormat,
    rows: &[R],
    json: &J,
) -> anyhow::Result<()> {
    match format {
        OutputFormat::Table => println!("{}", Table::new(rows)),
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(json)?),
    }
    Ok(())
}

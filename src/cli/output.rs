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

/// A read rendered both ways, plus notes for stderr (what the admin interface lacks).
pub struct Rendered {
    pub table: String,
    pub json: serde_json::Value,
    pub notes: Vec<String>,
}

impl Rendered {
    pub fn rows<R: Tabled, J: Serialize>(rows: &[R], json: &J) -> anyhow::Result<Rendered> {
        Ok(Rendered {
            table: Table::new(rows).to_string(),
            json: serde_json::to_value(json)?,
            notes: Vec::new(),
        })
    }

    pub fn note(mut self, note: Option<String>) -> Rendered {
        self.notes.extend(note);
        self
    }

    /// Prints once: pretty JSON, or the table. Notes go to stderr so stdout stays parseable.
    pub fn print(&self, format: OutputFormat, compact: bool) -> anyhow::Result<()> {
        for n in &self.notes {
            eprintln!("switchyard: {n}");
        }
        match (format, compact) {
            (OutputFormat::Table, _) => println!("{}", self.table),
            (OutputFormat::Json, false) => {
                println!("{}", serde_json::to_string_pretty(&self.json)?)
            }
            (OutputFormat::Json, true) => println!("{}", serde_json::to_string(&self.json)?),
        }
        Ok(())
    }
}

/// A measurement the proxy does not know (NULL): the value, or `unknown`.
pub fn or_unknown<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "unknown".to_owned(), ToString::to_string)
}

/// `Option` cells in tables: the value, or `-`.
pub fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_owned(), ToString::to_string)
}

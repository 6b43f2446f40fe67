use std::fmt;
use std::path::{Path, PathBuf};

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}{}: {reason}", path.as_ref().map(|p| format!("{}:", p.display())).unwrap_or_default(), Line(*line))]
    Invalid {
        path: Option<PathBuf>,
        line: Option<usize>,
        reason: String,
    },
    #[error("cannot write the configuration: {0}")]
    Serialize(String),
}

/// Renders `line N` or nothing, so messages read `file.toml:line 7: reason`.
struct Line(Option<usize>);

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "line {n}"),
            None => write!(f, "config"),
        }
    }
}

impl ConfigError {
    pub(super) fn from_toml(text: &str, e: &toml::de::Error) -> ConfigError {
        ConfigError::Invalid {
            path: None,
            line: e.span().and_then(|s| line_of(text, s.start)),
            reason: e.message().trim().to_string(),
        }
    }

    pub(super) fn in_file(self, file: &Path) -> ConfigError {
        match self {
            ConfigError::Invalid { line, reason, .. } => ConfigError::Invalid {
                path: Some(file.to_path_buf()),
                line,
                reason,
            },
            other => other,
        }
    }

    /// The 1-based line of the problem, where known.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Invalid { line, .. } => *line,
            _ => None,
        }
    }
}

/// 1-based line of `key` in table `[section]`: for errors about values the parser does not
/// keep spans of.
pub(super) fn key_line(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut current = "";
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            current = name.trim();
            continue;
        }
        if current == section
            && t.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return Some(i + 1);
        }
    }
    None
}

/// 1-based line number of a byte offset.
pub(super) fn line_of(text: &str, offset: usize) -> Option<usize> {
    (offset <= text.len()).then(|| {
        text.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    })
}

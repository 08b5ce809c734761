//! Why a policy was refused, and where.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

/// A policy that cannot be used, naming the file, the key and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {}{kind}", file.display(), location(*line_col), key_prefix(key))]
pub struct PolicyError {
    /// The policy file.
    pub file: PathBuf,
    /// Dotted path of the offending key (`limits.memory_mb`, `members[2].roles`), empty when
    /// the problem is with the file as a whole.
    pub key: String,
    /// Line and column (1-based) where the parser found the problem, when known.
    pub line_col: Option<(usize, usize)>,
    /// What is wrong.
    pub kind: PolicyErrorKind,
}

/// What is wrong with a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyErrorKind {
    /// The file could not be read.
    #[error("cannot read the policy file: {0}")]
    Unreadable(String),
    /// The state directory's policy registry could not be written.
    #[error("cannot write to the policy registry: {0}")]
    Unwritable(String),
    /// The file is not UTF-8 text.
    #[error("the policy file is not UTF-8 text")]
    NotUtf8,
    /// TOML syntax, an unknown key, a missing key or a wrong type.
    #[error("{0}")]
    Syntax(String),
    /// A text value is empty.
    #[error("must not be empty")]
    Empty,
    /// A name uses characters it may not.
    #[error("{value:?} is not allowed: use {allowed}")]
    InvalidName {
        /// The value given.
        value: String,
        /// What is allowed instead.
        allowed: &'static str,
    },
    /// A date is not a plain calendar date.
    #[error("{0} is not a date; write it as YYYY-MM-DD without quotes")]
    InvalidDate(String),
    /// The project's expiry date has passed.
    #[error("the project expired on {expires} (today is {today}); an operator must extend it")]
    Expired {
        /// The expiry date in the policy.
        expires: NaiveDate,
        /// The date the policy was checked on.
        today: NaiveDate,
    },
    /// A runtime ringfence does not know.
    #[error("{value:?} is not a runtime ringfence can install (it knows: {known})")]
    UnknownRuntime {
        /// The value given.
        value: String,
        /// The runtimes it knows.
        known: String,
    },
    /// The same name appears twice where names must be unique.
    #[error("{0:?} appears more than once")]
    Duplicate(String),
    /// A list that must have entries has none.
    #[error("must list at least one entry")]
    NoEntries,
    /// A granted dataset, version or column is not in the catalog, or the pin is missing or
    /// contradictory.
    #[error("{0}")]
    Dataset(String),
    /// A row filter that does not parse or does not fit the dataset.
    #[error("{0}")]
    Filter(String),
    /// A limit of zero would make every job fail.
    #[error("must be greater than zero")]
    Zero,
    /// A number outside the range the key allows.
    #[error("{value} is out of range: {allowed}")]
    OutOfRange {
        /// The value in the policy.
        value: String,
        /// The range allowed.
        allowed: &'static str,
    },
    /// A limit above what the operator allows any project.
    #[error("{value} exceeds the operator's cap of {cap}")]
    AboveCap {
        /// The value in the policy.
        value: u64,
        /// The operator's cap for this key.
        cap: u64,
    },
}

impl PolicyError {
    pub(super) fn new(file: &Path, key: impl Into<String>, kind: PolicyErrorKind) -> Self {
        PolicyError { file: file.to_path_buf(), key: key.into(), line_col: None, kind }
    }

    pub(super) fn unreadable(file: &Path, err: &std::io::Error) -> Self {
        Self::new(file, "", PolicyErrorKind::Unreadable(err.to_string()))
    }

    pub(super) fn unwritable(file: &Path, err: &std::io::Error) -> Self {
        Self::new(file, "", PolicyErrorKind::Unwritable(err.to_string()))
    }

    /// Turns a TOML error into a policy error pointing at the line and column it names.
    pub(super) fn parse(file: &Path, text: &str, err: &toml::de::Error) -> Self {
        let line_col = err.span().map(|span| line_col(text, span.start));
        PolicyError {
            file: file.to_path_buf(),
            key: String::new(),
            line_col,
            kind: PolicyErrorKind::Syntax(err.message().trim().to_string()),
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.len(), |nl| before.len() - nl - 1) + 1;
    (line, col)
}

fn location(line_col: Option<(usize, usize)>) -> impl fmt::Display {
    fmt::from_fn(move |f| match line_col {
        Some((line, col)) => write!(f, ":{line}:{col}"),
        None => Ok(()),
    })
}

fn key_prefix(key: &str) -> impl fmt::Display + '_ {
    fmt::from_fn(move |f| if key.is_empty() { Ok(()) } else { write!(f, "{key}: ") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        assert_eq!(line_col(text, 9), (2, 4));
    }

    #[test]
    fn display_names_file_key_and_reason() {
        let err = PolicyError::new(Path::new("p.toml"), "limits.memory_mb", PolicyErrorKind::Zero);
        assert_eq!(err.to_string(), "p.toml: limits.memory_mb: must be greater than zero");
    }
}

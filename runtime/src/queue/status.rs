//! The life of an export request, as a state machine with its legal moves.
//!
//! ```text
//! pending ──checks──▶ checked ──approve (enough checkers)──▶ approved ──release──▶ released
//!                       │  ▲
//!                       │  └──resubmit── changes_requested ◀──request changes──┐
//!                       ├──────────────────────────────────────────────────────┘
//!                       └──reject──▶ rejected
//! ```

use serde::{Deserialize, Serialize};

/// Where an export request is in its review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Created from a job's output; the automatic checks have not run yet.
    Pending,
    /// The automatic checks have run; waiting for checkers.
    Checked,
    /// Enough checkers approved; the researcher may release it.
    Approved,
    /// A checker rejected it. Final: a fix needs a new job.
    Rejected,
    /// A checker asked for changes to the description or justification.
    ChangesRequested,
    /// Released to the researcher.
    Released,
}

/// Every status, for listing and parsing.
pub const ALL: [Status; 6] =
    [Status::Pending, Status::Checked, Status::Approved, Status::Rejected, Status::ChangesRequested, Status::Released];

impl Status {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Checked => "checked",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::ChangesRequested => "changes_requested",
            Status::Released => "released",
        }
    }

    /// Whether a request may move from `self` to `to`.
    pub fn may_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Pending, Checked)
                | (Checked, Approved | Rejected | ChangesRequested)
                | (ChangesRequested, Checked)
                | (Approved, Released)
        )
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Status, String> {
        ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = ALL.iter().map(|s| s.as_str()).collect();
            format!("unknown status {s:?}; one of {}", names.join(", "))
        })
    }
}

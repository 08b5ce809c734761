//! The audit log: an append-only, hash-chained record of everything that happened to jobs,
//! export requests, policies and datasets.
//!
//! Entries live in the state database's `audit` table and are appended inside the same
//! transaction as the change they record, so a change without its entry (or the reverse) cannot
//! be committed. Each entry's hash covers its own fields and the previous entry's hash; editing,
//! removing or reordering any entry breaks the chain from that point, which [`verify`] reports.
//! A truncated tail leaves jobs and requests that no entry accounts for, which [`verify`] also
//! reports.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::store::{Connection, SqlError, Store, StoreError};

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    /// A job was accepted and started.
    JobSubmitted,
    /// A queued job started running.
    JobStarted,
    /// A job ended (any status).
    JobFinished,
    /// A job's process died; found and closed by recovery.
    JobInterrupted,
    /// A job's worker died before the job ended, and its policy has it queued once more;
    /// found by recovery.
    JobRequeued,
    /// An export request was created from a job's output.
    RequestCreated,
    /// The automatic disclosure checks ran on a request.
    RequestChecked,
    /// The researcher changed a request's description or justification.
    RequestDescribed,
    /// The researcher sent a request back for review after changes were asked for.
    RequestResubmitted,
    /// A checker approved a request (one review).
    RequestApproved,
    /// A checker rejected a request.
    RequestRejected,
    /// A checker asked the researcher for changes.
    RequestChangesRequested,
    /// An approved request was released to a researcher.
    RequestReleased,
    /// A released request was copied out again.
    RequestDownloaded,
    /// A project policy was registered.
    PolicyRegistered,
    /// A dataset version was imported or generated.
    DatasetImported,
    /// A dataset version was removed.
    DatasetRemoved,
    /// An interpreter runtime was installed.
    RuntimeInstalled,
    /// A personal token was issued.
    TokenIssued,
    /// A personal token was revoked (reported lost, or withdrawn).
    TokenRevoked,
    /// The service refused a request's token.
    AuthenticationRefused,
    /// The service refused a request from a country or address not allowed.
    AccessRefused,
    /// A researcher registered a publication made from a project's released outputs (rule 9).
    PublicationRegistered,
}

impl Action {
    /// The stable name stored in the log.
    pub fn name(self) -> &'static str {
        match self {
            Action::JobSubmitted => "job.submitted",
            Action::JobStarted => "job.started",
            Action::JobFinished => "job.finished",
            Action::JobInterrupted => "job.interrupted",
            Action::JobRequeued => "job.requeued",
            Action::RequestCreated => "request.created",
            Action::RequestChecked => "request.checked",
            Action::RequestDescribed => "request.described",
            Action::RequestResubmitted => "request.resubmitted",
            Action::RequestApproved => "request.approved",
            Action::RequestRejected => "request.rejected",
            Action::RequestChangesRequested => "request.changes_requested",
            Action::RequestReleased => "request.released",
            Action::RequestDownloaded => "request.downloaded",
            Action::PolicyRegistered => "policy.registered",
            Action::DatasetImported => "dataset.imported",
            Action::DatasetRemoved => "dataset.removed",
            Action::RuntimeInstalled => "runtime.installed",
            Action::TokenIssued => "token.issued",
            Action::TokenRevoked => "token.revoked",
            Action::AuthenticationRefused => "auth.refused",
            Action::AccessRefused => "access.refused",
            Action::PublicationRegistered => "publication.registered",
        }
    }
}

/// An entry about to be appended.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// Who acted: a user name, `system`, or `operator:<login>`.
    pub actor: &'a str,
    /// What happened.
    pub action: Action,
    /// The project concerned, if any.
    pub project: Option<&'a str>,
    /// What it happened to, e.g. `job:<id>` or `request:<n>`.
    pub subject: Option<String>,
    /// The particulars, as JSON.
    pub detail: serde_json::Value,
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Position in the log, from 1.
    pub seq: i64,
    /// When it was appended (RFC 3339, UTC).
    pub at: String,
    /// Who acted.
    pub actor: String,
    /// What happened ([`Action::name`]).
    pub action: String,
    /// The project concerned.
    pub project: Option<String>,
    /// What it happened to.
    pub subject: Option<String>,
    /// The particulars (JSON text).
    pub detail: String,
    /// The previous entry's hash ([`GENESIS`] for the first).
    pub prev: String,
    /// SHA-256 over this entry's fields and `prev`.
    pub hash: String,
}

impl Entry {
    /// The hash this entry should carry.
    fn expected_hash(&self) -> String {
        let mut hasher = Sha256::new();
        let fields = [
            self.seq.to_string().as_str(),
            &self.at,
            &self.actor,
            &self.action,
            self.project.as_deref().unwrap_or(""),
            self.subject.as_deref().unwrap_or(""),
            &self.detail,
            &self.prev,
        ]
        .map(str::to_owned);
        for field in fields {
            hasher.update((field.len() as u64).to_le_bytes());
            hasher.update(field.as_bytes());
        }
        hex::encode(hasher.finalize())
    }
}

/// Appends `event` in transaction `tx`, chained to the current last entry. Called only by
/// [`crate::store::Audited::record`], so an entry is always part of an audited change.
pub(crate) fn append(tx: &Connection, event: Event<'_>, at: DateTime<Utc>) -> Result<Entry, SqlError> {
    let last: Option<(i64, String)> =
        tx.query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (seq, prev) = last.map_or((1, GENESIS.to_string()), |(seq, hash)| (seq + 1, hash));
    let mut entry = Entry {
        seq,
        at: at.to_rfc3339_opts(SecondsFormat::Micros, true),
        actor: event.actor.to_string(),
        action: event.action.name().to_string(),
        project: event.project.map(str::to_string),
        subject: event.subject,
        detail: event.detail.to_string(),
        prev,
        hash: String::new(),
    };
    entry.hash = entry.expected_hash();
    tx.execute(
        "INSERT INTO audit (seq, at, actor, action, project, subject, detail, prev, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        crate::params![
            entry.seq,
            entry.at,
            entry.actor,
            entry.action,
            entry.project,
            entry.subject,
            entry.detail,
            entry.prev,
            entry.hash
        ],
    )?;
    Ok(entry)
}

/// Appends one event in its own transaction: for changes that live outside the database
/// (a registered policy file, an imported dataset) and are recorded once they are durable.
pub fn record(store: &Store, event: Event<'_>) -> Result<Entry, StoreError> {
    let mut tx = store.audited()?;
    let entry = tx.record(event, Utc::now())?;
    tx.commit()?;
    Ok(entry)
}

/// The entries, oldest first, optionally only those of one project.
pub fn entries(store: &Store, project: Option<&str>) -> Result<Vec<Entry>, StoreError> {
    store
        .conn()
        .query(
            "SELECT seq, at, actor, action, project, subject, detail, prev, hash FROM audit
             WHERE CAST(?1 AS TEXT) IS NULL OR project = ?1 ORDER BY seq",
            crate::params![project],
            |r| {
                Ok(Entry {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    project: r.get(4)?,
                    subject: r.get(5)?,
                    detail: r.get(6)?,
                    prev: r.get(7)?,
                    hash: r.get(8)?,
                })
            },
        )
        .map_err(store.err())
}

/// What [`verify`] found wrong, at the first place it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    /// The entry where the chain breaks (or, for a missing account, 0).
    pub seq: i64,
    /// What is wrong, in words.
    pub problem: String,
}

/// The result of checking the whole log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Entries checked.
    pub entries: usize,
    /// The last entry's hash: record it elsewhere to detect a later truncation of the tail.
    pub head: String,
    /// Every problem found, in log order.
    pub breaks: Vec<Break>,
}

impl Verification {
    /// Whether the log is intact.
    pub fn is_intact(&self) -> bool {
        self.breaks.is_empty()
    }
}

/// Checks the chain entry by entry, and that every job and export request in the store is
/// accounted for by its creating entry.
pub fn verify(store: &Store) -> Result<Verification, StoreError> {
    let all = entries(store, None)?;
    let mut breaks = Vec::new();
    let mut prev = GENESIS.to_string();
    let mut expected_seq = 1;
    for entry in &all {
        if entry.seq != expected_seq {
            breaks.push(Break {
                seq: entry.seq,
                problem: format!("expected entry {expected_seq} here; entries were removed or reordered"),
            });
        }
        if entry.prev != prev {
            breaks.push(Break {
                seq: entry.seq,
                problem: "does not follow the entry before it (its previous-hash differs)".into(),
            });
        }
        if entry.hash != entry.expected_hash() {
            breaks.push(Break { seq: entry.seq, problem: "its contents were changed after it was written".into() });
        }
        prev = entry.hash.clone();
        expected_seq = entry.seq + 1;
    }
    for (table, action, prefix) in
        [("jobs", Action::JobSubmitted, "job"), ("requests", Action::RequestCreated, "request")]
    {
        let sql = format!(
            "SELECT CAST(t.id AS TEXT) FROM {table} t WHERE NOT EXISTS
             (SELECT 1 FROM audit a WHERE a.action = ?1 AND a.subject = '{prefix}:' || t.id) ORDER BY t.id"
        );
        let missing: Vec<String> =
            store.conn().query(&sql, crate::params![action.name()], |r| r.get(0)).map_err(store.err())?;
        for id in missing {
            breaks.push(Break {
                seq: 0,
                problem: format!("{prefix} {id} has no {} entry; entries were removed", action.name()),
            });
        }
    }
    Ok(Verification { entries: all.len(), head: prev, breaks })
}

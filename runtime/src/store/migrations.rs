//! Versioned schema migrations, tracked in SQLite's `user_version`. Each step runs in one
//! transaction with the version bump, so a database is always at exactly one version.

use super::{Store, StoreError};

/// The schema, one entry per version: version `i + 1` is reached by running `STEPS[i]`.
const STEPS: &[&str] = &[
    r#"
CREATE TABLE jobs (
    id            TEXT PRIMARY KEY,
    project       TEXT NOT NULL,
    user          TEXT NOT NULL,
    module_sha256 TEXT NOT NULL,
    policy_sha256 TEXT NOT NULL,
    disclosure    TEXT NOT NULL,
    status        TEXT NOT NULL,
    submitted_at  TEXT NOT NULL,
    finished_at   TEXT
);
CREATE INDEX jobs_by_project ON jobs(project);

CREATE TABLE requests (
    id             INTEGER PRIMARY KEY,
    project        TEXT NOT NULL,
    job            TEXT NOT NULL REFERENCES jobs(id),
    submitted_by   TEXT NOT NULL,
    module_sha256  TEXT NOT NULL,
    policy_sha256  TEXT NOT NULL,
    datasets       TEXT NOT NULL,
    file           TEXT NOT NULL,
    size           INTEGER NOT NULL,
    sha256         TEXT NOT NULL,
    kind           TEXT NOT NULL,
    manifest       TEXT,
    manifest_problem TEXT,
    thresholds     TEXT NOT NULL,
    reviews_required INTEGER NOT NULL,
    description    TEXT NOT NULL,
    justification  TEXT NOT NULL DEFAULT '',
    checks         TEXT,
    outcome        TEXT,
    status         TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (job, file)
);
CREATE INDEX requests_by_project ON requests(project, status);

CREATE TABLE decisions (
    id        INTEGER PRIMARY KEY,
    request   INTEGER NOT NULL REFERENCES requests(id),
    checker   TEXT NOT NULL,
    decision  TEXT NOT NULL,
    reason    TEXT NOT NULL,
    override  INTEGER NOT NULL,
    at        TEXT NOT NULL
);
CREATE INDEX decisions_by_request ON decisions(request);

CREATE TABLE audit (
    seq      INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    project  TEXT,
    subject  TEXT,
    detail   TEXT NOT NULL,
    prev     TEXT NOT NULL,
    hash     TEXT NOT NULL
);
CREATE INDEX audit_by_project ON audit(project);
"#,
    r#"
CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    user         TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);
CREATE INDEX tokens_by_user ON tokens(user);
"#,
    r#"
ALTER TABLE jobs ADD COLUMN args TEXT NOT NULL DEFAULT '[]';
ALTER TABLE jobs ADD COLUMN max_running INTEGER NOT NULL DEFAULT 2;
CREATE INDEX jobs_by_status ON jobs(status, user);
"#,
    r#"
CREATE TABLE publications (
    id            INTEGER PRIMARY KEY,
    project       TEXT NOT NULL,
    title         TEXT NOT NULL,
    reference     TEXT NOT NULL,
    requests      TEXT NOT NULL,
    registered_by TEXT NOT NULL,
    registered_at TEXT NOT NULL
);
CREATE INDEX publications_by_project ON publications(project);
CREATE INDEX requests_by_job ON requests(job);
"#,
    // What the guest wrote about an output is kept apart from what the researcher typed: only
    // the latter is shown to researchers before release. Descriptions the researcher never
    // changed came from the guest's manifest.
    r#"
ALTER TABLE requests ADD COLUMN guest_description TEXT NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN show_check_names INTEGER NOT NULL DEFAULT 1;
UPDATE requests SET guest_description = description, description = ''
 WHERE NOT EXISTS (SELECT 1 FROM audit WHERE audit.action = 'request.described'
                    AND audit.subject = 'request:' || requests.id);
CREATE INDEX jobs_by_user ON jobs(user, project, submitted_at);
CREATE INDEX requests_by_status ON requests(status, job);
"#,
    // 6: uploads, for the per-day quotas on modules uploaded (loaded or refused).
    r#"
CREATE TABLE uploads (
    id INTEGER PRIMARY KEY,
    user TEXT NOT NULL,
    project TEXT NOT NULL,
    at TEXT NOT NULL,
    bytes INTEGER NOT NULL
);
CREATE INDEX uploads_by_user ON uploads(user, project, at);
"#,
    // 7: units. Each request keeps its block of the job's `manifest.units` (or why it could not
    // be read); the differencing index keeps every published cell's units, by project, unit
    // space and size.
    r#"
ALTER TABLE requests ADD COLUMN units BLOB;
ALTER TABLE requests ADD COLUMN units_problem TEXT;
CREATE TABLE unit_cells (
    id      INTEGER PRIMARY KEY,
    request INTEGER NOT NULL REFERENCES requests(id),
    project TEXT NOT NULL,
    space   TEXT NOT NULL,
    label   TEXT NOT NULL,
    units   INTEGER NOT NULL,
    bitmap  BLOB NOT NULL
);
CREATE INDEX unit_cells_by_size ON unit_cells(project, space, units);
"#,
    // 8: differencing both ways. A later request that fails differencing against an earlier
    // one records each pair of cells, so that the earlier request's checkers see it too.
    r#"
CREATE TABLE differencing_pairs (
    id           INTEGER PRIMARY KEY,
    earlier      INTEGER NOT NULL REFERENCES requests(id),
    earlier_cell TEXT NOT NULL,
    later        INTEGER NOT NULL REFERENCES requests(id),
    later_cell   TEXT NOT NULL,
    units        INTEGER NOT NULL
);
CREATE INDEX differencing_pairs_by_earlier ON differencing_pairs(earlier);
"#,
    // 9: queued script jobs. A script job's module is its runtime's interpreter; the script
    // itself is kept by its SHA-256 until the job starts.
    r#"
ALTER TABLE jobs ADD COLUMN runtime TEXT;
ALTER TABLE jobs ADD COLUMN script_sha256 TEXT;
"#,
    // 10: how many more times a job whose worker died is queued again (the policy's
    // `limits.retry_interrupted`, as it was when the job was submitted).
    r#"
ALTER TABLE jobs ADD COLUMN retries_left INTEGER NOT NULL DEFAULT 0;
"#,
];

/// Brings the database up to the newest schema, refusing one from a newer build.
pub(super) fn apply(store: &Store) -> Result<(), StoreError> {
    let wrap = store.err();
    let known = STEPS.len() as i64;
    // Every open checks the version; only a database that is behind takes the write lock.
    let current: i64 = store.conn.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(&wrap)?;
    if current == known {
        return Ok(());
    }
    loop {
        let tx = store.bookkeeping(super::Bookkeeping::Migration)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(&wrap)?;
        if version > known {
            return Err(StoreError::TooNew { path: store.path.clone(), found: version, known });
        }
        let Some(step) = STEPS.get(version as usize) else {
            return Ok(());
        };
        tx.execute_batch(step).map_err(&wrap)?;
        tx.pragma_update(None, "user_version", version + 1).map_err(&wrap)?;
        tx.commit().map_err(&wrap)?;
    }
}

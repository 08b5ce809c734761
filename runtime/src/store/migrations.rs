//! Versioned schema migrations, tracked in SQLite's `user_version` or PostgreSQL's
//! `ringfence_schema` table. Each step runs in one transaction with the version bump, so a
//! database is always at exactly one version.
//!
//! SQLite databases reach today's schema through every step since the first; a PostgreSQL
//! database is created at [`POSTGRES_BASE_VERSION`] in one step. A later step is written for
//! both.

use super::{Bookkeeping, Dialect, Store, StoreError};

/// The schema on SQLite, one entry per version: version `i + 1` is reached by running
/// `SQLITE_STEPS[i]`.
const SQLITE_STEPS: &[&str] = &[
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
    // 11: `user` is a reserved word in PostgreSQL (where it means the session's role, even as a
    // bare column name), so the columns that name a researcher say `username`.
    r#"
ALTER TABLE jobs RENAME COLUMN user TO username;
ALTER TABLE tokens RENAME COLUMN user TO username;
ALTER TABLE uploads RENAME COLUMN user TO username;
"#,
];

/// The version PostgreSQL databases are created at, by [`POSTGRES_BASE`].
const POSTGRES_BASE_VERSION: i64 = 11;

/// The schema on PostgreSQL as SQLite has it at [`POSTGRES_BASE_VERSION`]. Text compares byte
/// by byte (`COLLATE "C"`), as in SQLite, whatever the database's locale: ids, times and names
/// sort the same on both.
const POSTGRES_BASE: &str = r#"
CREATE TABLE jobs (
    id            TEXT COLLATE "C" PRIMARY KEY,
    project       TEXT COLLATE "C" NOT NULL,
    username      TEXT COLLATE "C" NOT NULL,
    module_sha256 TEXT COLLATE "C" NOT NULL,
    policy_sha256 TEXT COLLATE "C" NOT NULL,
    disclosure    TEXT COLLATE "C" NOT NULL,
    status        TEXT COLLATE "C" NOT NULL,
    submitted_at  TEXT COLLATE "C" NOT NULL,
    finished_at   TEXT COLLATE "C",
    args          TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    max_running   BIGINT NOT NULL DEFAULT 2,
    runtime       TEXT COLLATE "C",
    script_sha256 TEXT COLLATE "C",
    retries_left  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_project ON jobs(project);
CREATE INDEX jobs_by_status ON jobs(status, username);
CREATE INDEX jobs_by_user ON jobs(username, project, submitted_at);

CREATE TABLE requests (
    id               BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    project          TEXT COLLATE "C" NOT NULL,
    job              TEXT COLLATE "C" NOT NULL REFERENCES jobs(id),
    submitted_by     TEXT COLLATE "C" NOT NULL,
    module_sha256    TEXT COLLATE "C" NOT NULL,
    policy_sha256    TEXT COLLATE "C" NOT NULL,
    datasets         TEXT COLLATE "C" NOT NULL,
    file             TEXT COLLATE "C" NOT NULL,
    size             BIGINT NOT NULL,
    sha256           TEXT COLLATE "C" NOT NULL,
    kind             TEXT COLLATE "C" NOT NULL,
    manifest         TEXT COLLATE "C",
    manifest_problem TEXT COLLATE "C",
    thresholds       TEXT COLLATE "C" NOT NULL,
    reviews_required BIGINT NOT NULL,
    description      TEXT COLLATE "C" NOT NULL,
    justification    TEXT COLLATE "C" NOT NULL DEFAULT '',
    checks           TEXT COLLATE "C",
    outcome          TEXT COLLATE "C",
    status           TEXT COLLATE "C" NOT NULL,
    created_at       TEXT COLLATE "C" NOT NULL,
    updated_at       TEXT COLLATE "C" NOT NULL,
    guest_description TEXT COLLATE "C" NOT NULL DEFAULT '',
    show_check_names BIGINT NOT NULL DEFAULT 1,
    units            BYTEA,
    units_problem    TEXT COLLATE "C",
    UNIQUE (job, file)
);
CREATE INDEX requests_by_project ON requests(project, status);
CREATE INDEX requests_by_job ON requests(job);
CREATE INDEX requests_by_status ON requests(status, job);

CREATE TABLE decisions (
    id        BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    request   BIGINT NOT NULL REFERENCES requests(id),
    checker   TEXT COLLATE "C" NOT NULL,
    decision  TEXT COLLATE "C" NOT NULL,
    reason    TEXT COLLATE "C" NOT NULL,
    override  BIGINT NOT NULL,
    at        TEXT COLLATE "C" NOT NULL
);
CREATE INDEX decisions_by_request ON decisions(request);

CREATE TABLE audit (
    seq      BIGINT PRIMARY KEY,
    at       TEXT COLLATE "C" NOT NULL,
    actor    TEXT COLLATE "C" NOT NULL,
    action   TEXT COLLATE "C" NOT NULL,
    project  TEXT COLLATE "C",
    subject  TEXT COLLATE "C",
    detail   TEXT COLLATE "C" NOT NULL,
    prev     TEXT COLLATE "C" NOT NULL,
    hash     TEXT COLLATE "C" NOT NULL
);
CREATE INDEX audit_by_project ON audit(project);

CREATE TABLE tokens (
    id           TEXT COLLATE "C" PRIMARY KEY,
    username     TEXT COLLATE "C" NOT NULL,
    hash         TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at   TEXT COLLATE "C" NOT NULL,
    expires_at   TEXT COLLATE "C" NOT NULL,
    last_used_at TEXT COLLATE "C",
    revoked_at   TEXT COLLATE "C"
);
CREATE INDEX tokens_by_user ON tokens(username);

CREATE TABLE publications (
    id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    project       TEXT COLLATE "C" NOT NULL,
    title         TEXT COLLATE "C" NOT NULL,
    reference     TEXT COLLATE "C" NOT NULL,
    requests      TEXT COLLATE "C" NOT NULL,
    registered_by TEXT COLLATE "C" NOT NULL,
    registered_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX publications_by_project ON publications(project);

CREATE TABLE uploads (
    id       BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    username TEXT COLLATE "C" NOT NULL,
    project  TEXT COLLATE "C" NOT NULL,
    at       TEXT COLLATE "C" NOT NULL,
    bytes    BIGINT NOT NULL
);
CREATE INDEX uploads_by_user ON uploads(username, project, at);

CREATE TABLE unit_cells (
    id      BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    request BIGINT NOT NULL REFERENCES requests(id),
    project TEXT COLLATE "C" NOT NULL,
    space   TEXT COLLATE "C" NOT NULL,
    label   TEXT COLLATE "C" NOT NULL,
    units   BIGINT NOT NULL,
    bitmap  BYTEA NOT NULL
);
CREATE INDEX unit_cells_by_size ON unit_cells(project, space, units);

CREATE TABLE differencing_pairs (
    id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    earlier      BIGINT NOT NULL REFERENCES requests(id),
    earlier_cell TEXT COLLATE "C" NOT NULL,
    later        BIGINT NOT NULL REFERENCES requests(id),
    later_cell   TEXT COLLATE "C" NOT NULL,
    units        BIGINT NOT NULL
);
CREATE INDEX differencing_pairs_by_earlier ON differencing_pairs(earlier);
"#;

/// The step that takes a database at `version` to the next one, if there is one.
fn step(dialect: Dialect, version: i64) -> Option<(&'static str, i64)> {
    match dialect {
        Dialect::Sqlite => {
            let index = usize::try_from(version).ok()?;
            SQLITE_STEPS.get(index).map(|step| (*step, version + 1))
        }
        Dialect::Postgres => (version == 0).then_some((POSTGRES_BASE, POSTGRES_BASE_VERSION)),
    }
}

/// The newest version this build knows, on either database.
const KNOWN: i64 = SQLITE_STEPS.len() as i64;

/// Brings the database up to the newest schema, refusing one from a newer build.
pub(super) fn apply(store: &Store) -> Result<(), StoreError> {
    let wrap = store.err();
    // Every open checks the version; only a database that is behind takes the write lock.
    if store.conn.schema_version().map_err(&wrap)? == KNOWN {
        return Ok(());
    }
    loop {
        let tx = store.bookkeeping(Bookkeeping::Migration)?;
        let version = tx.schema_version().map_err(&wrap)?;
        if version > KNOWN {
            return Err(StoreError::TooNew { location: store.location.clone(), found: version, known: KNOWN });
        }
        let Some((sql, next)) = step(tx.dialect(), version) else {
            return Ok(());
        };
        tx.execute_batch(sql).map_err(&wrap)?;
        tx.set_schema_version(next).map_err(&wrap)?;
        tx.commit()?;
    }
}

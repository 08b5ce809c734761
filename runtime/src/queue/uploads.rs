//! The per-day quotas on uploaded modules: every module a user hands the host costs a
//! validation and a compilation, and a loaded one stays in the module store, so uploads are
//! counted — loaded or refused — before any of that work starts.

use chrono::Utc;

use super::{ExportQueue, QueueError, now};
use crate::job::{JobRequest, ModuleSource};
use crate::store::Bookkeeping;

impl ExportQueue {
    /// Counts `request`'s module (or script) as an upload by its user to its project, refused
    /// when the policy's `max_uploads_per_day` or `max_upload_mb_per_day` would be passed in
    /// the last 24 hours. A module already kept (a resubmission) is no upload.
    pub(super) fn count_upload(&self, request: &JobRequest<'_>) -> Result<(), QueueError> {
        let uploaded = match request.module {
            ModuleSource::Submitted(wasm) => wasm,
            ModuleSource::Script(script) => script.text,
            ModuleSource::Kept(_) => return Ok(()),
        };
        let bytes = u64::try_from(uploaded.len()).unwrap_or(u64::MAX);
        let limits = &request.policy.limits;
        let project = &request.policy.project.id;
        let wrap = self.store.err();
        let day_ago = (Utc::now() - chrono::Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let tx = self.store.bookkeeping(Bookkeeping::UploadCount)?;
        let (uploads, uploaded): (u32, i64) = tx
            .query_row(
                "SELECT COUNT(*), CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM uploads
                 WHERE username = ?1 AND project = ?2 AND at > ?3",
                crate::params![request.user, project, day_ago],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(&wrap)?;
        let refused = |used: String, limit: String| QueueError::UploadQuota {
            user: request.user.to_string(),
            project: project.clone(),
            used,
            limit,
        };
        if uploads >= limits.max_uploads_per_day {
            return Err(refused(format!("{uploads} modules"), format!("{}", limits.max_uploads_per_day)));
        }
        let uploaded = u64::try_from(uploaded).unwrap_or(0);
        if uploaded.saturating_add(bytes) > limits.max_upload_bytes_per_day {
            return Err(refused(
                format!("{} of modules and this one of {}", mib(uploaded), mib(bytes)),
                mib(limits.max_upload_bytes_per_day),
            ));
        }
        tx.execute(
            "INSERT INTO uploads (username, project, at, bytes) VALUES (?1, ?2, ?3, ?4)",
            crate::params![request.user, project, now(), i64::try_from(bytes).unwrap_or(i64::MAX)],
        )
        .map_err(&wrap)?;
        tx.commit()?;
        Ok(())
    }
}

/// Bytes in MiB to a tenth, for messages.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

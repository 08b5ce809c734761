//! What people do to a checked request: checkers decide, the researcher describes and
//! resubmits, and a researcher of the project releases an approved output.

use std::path::{Path, PathBuf};

use chrono::Utc;
use sha2::{Digest, Sha256};

use super::request::{self, ExportRequest, Verdict};
use super::{ExportQueue, QueueError, Status, now};
use crate::audit::{Action, Event};
use crate::disclosure::Outcome;
use crate::policy::Role;
use crate::store::{Audited, Connection, Store};
use crate::tokens::Actor;

/// The bytes of a request's stored file, refused if they no longer match its checksum.
pub(super) fn verified_content(queue: &ExportQueue, request: &ExportRequest) -> Result<Vec<u8>, QueueError> {
    let path = queue.blobs.path(&request.sha256);
    let bytes = std::fs::read(&path).map_err(crate::home::HomeError::io("read", &path))?;
    if hex::encode(Sha256::digest(&bytes)) != request.sha256 {
        return Err(QueueError::Tampered { id: request.id });
    }
    Ok(bytes)
}

/// Checks that `user` holds `role` in the request's project, per its registered policy now.
pub(super) fn require_role(queue: &ExportQueue, project: &str, user: &str, role: Role) -> Result<(), QueueError> {
    let members = queue.registry.members(project)?;
    if members.iter().any(|m| m.user == user && m.roles.contains(&role)) {
        return Ok(());
    }
    let role = match role {
        Role::Researcher => "researcher",
        Role::Checker => "checker",
        Role::Operator => "operator",
    };
    Err(QueueError::NotAllowed { user: user.to_string(), role, project: project.to_string() })
}

/// Loads request `id` inside the write transaction, so what is checked is what is changed.
fn load(tx: &Connection, store: &Store, id: i64) -> Result<ExportRequest, QueueError> {
    request::load(tx, store, id)?.ok_or(QueueError::UnknownRequest(id))
}

fn set_status(tx: &Connection, store: &Store, id: i64, status: Status) -> Result<(), QueueError> {
    tx.execute(
        "UPDATE requests SET status = ?2, updated_at = ?3 WHERE id = ?1",
        crate::params![id, status.as_str(), now()],
    )
    .map_err(store.err())?;
    Ok(())
}

fn transition(request: &ExportRequest, to: Status) -> Result<(), QueueError> {
    if request.status.may_become(to) {
        Ok(())
    } else {
        Err(QueueError::IllegalTransition { id: request.id, from: request.status, to })
    }
}

/// Appends `actor`'s `action` on `request` to the audit log; an operator acting for someone is
/// named in the detail.
fn append(
    tx: &mut Audited<'_>,
    actor: &Actor,
    action: Action,
    request: &ExportRequest,
    mut detail: serde_json::Value,
) -> Result<(), QueueError> {
    if let (Some(operator), Some(fields)) = (actor.operator(), detail.as_object_mut()) {
        fields.insert("operator".into(), operator.into());
    }
    let event = Event {
        actor: actor.user(),
        action,
        project: Some(&request.project),
        subject: Some(format!("request:{}", request.id)),
        detail,
    };
    tx.record(event, Utc::now())?;
    Ok(())
}

/// Approvals since the last time changes were asked for: a resubmitted request is reviewed
/// afresh.
fn reason_text(reason: Option<&str>) -> Option<String> {
    reason.map(str::trim).filter(|r| !r.is_empty()).map(str::to_string)
}

impl ExportQueue {
    /// A checker's decision on request `id`. Approving a request that failed a check needs a
    /// reason (the override); rejecting and asking for changes always need one. The request
    /// becomes `approved` once as many different checkers as its policy requires have approved.
    pub fn decide(
        &mut self,
        id: i64,
        actor: &Actor,
        verdict: Verdict,
        reason: Option<&str>,
    ) -> Result<ExportRequest, QueueError> {
        let checker = actor.user();
        let project = self.get(id)?.project;
        require_role(self, &project, checker, Role::Checker)?;
        let reason = reason_text(reason);
        let mut tx = self.store.audited()?;
        let request = load(&tx, &self.store, id)?;
        let target = match verdict {
            Verdict::Approve => Status::Approved,
            Verdict::Reject => Status::Rejected,
            Verdict::RequestChanges => Status::ChangesRequested,
        };
        transition(&request, target)?;
        if request.submitted_by == checker {
            return Err(QueueError::OwnRequest { checker: checker.to_string(), id });
        }
        let overrode = verdict == Verdict::Approve && request.outcome == Some(Outcome::Fail);
        match verdict {
            Verdict::Approve if overrode && reason.is_none() => return Err(QueueError::OverrideWithoutReason { id }),
            Verdict::Approve if request.current_approvals().contains(&checker) => {
                return Err(QueueError::AlreadyApproved { checker: checker.to_string(), id });
            }
            Verdict::Reject if reason.is_none() => return Err(QueueError::ReasonRequired { action: "reject" }),
            Verdict::RequestChanges if reason.is_none() => {
                return Err(QueueError::ReasonRequired { action: "request changes" });
            }
            _ => {}
        }
        let reason = reason.unwrap_or_default();
        tx.execute(
            "INSERT INTO decisions (request, checker, decision, reason, override, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            crate::params![id, checker, verdict.as_str(), reason, overrode, now()],
        )
        .map_err(self.store.err())?;
        let approvals = request.current_approvals().len() as u32 + u32::from(verdict == Verdict::Approve);
        let new_status = match verdict {
            Verdict::Approve if approvals < request.reviews_required => None,
            _ => Some(target),
        };
        if let Some(status) = new_status {
            set_status(&tx, &self.store, id, status)?;
        }
        let action = match verdict {
            Verdict::Approve => Action::RequestApproved,
            Verdict::Reject => Action::RequestRejected,
            Verdict::RequestChanges => Action::RequestChangesRequested,
        };
        let detail = serde_json::json!({
            "reason": reason,
            "override": overrode,
            "approvals": approvals,
            "reviews_required": request.reviews_required,
            "status": new_status.unwrap_or(request.status).as_str(),
        });
        append(&mut tx, actor, action, &request, detail)?;
        tx.commit()?;
        self.get(id)
    }

    /// The researcher who submitted the job changes the request's description or justification:
    /// before any checker has decided, or after changes were asked for.
    pub fn describe(
        &mut self,
        id: i64,
        actor: &Actor,
        description: Option<&str>,
        justification: Option<&str>,
    ) -> Result<ExportRequest, QueueError> {
        let user = actor.user();
        let mut tx = self.store.audited()?;
        let request = load(&tx, &self.store, id)?;
        if request.submitted_by != user {
            return Err(QueueError::NotOwner { owner: request.submitted_by, action: "describe", id });
        }
        let open = match request.status {
            Status::Pending | Status::ChangesRequested => true,
            Status::Checked => request.decisions.is_empty(),
            _ => false,
        };
        if !open {
            return Err(QueueError::UnderReview { id });
        }
        let description = description.map_or(request.description.clone(), str::to_string);
        let justification = justification.map_or(request.justification.clone(), str::to_string);
        tx.execute(
            "UPDATE requests SET description = ?2, justification = ?3, updated_at = ?4 WHERE id = ?1",
            crate::params![id, description, justification, now()],
        )
        .map_err(self.store.err())?;
        let detail = serde_json::json!({ "description": description, "justification": justification });
        append(&mut tx, actor, Action::RequestDescribed, &request, detail)?;
        tx.commit()?;
        self.get(id)
    }

    /// The researcher sends a request whose changes were asked for back to the checkers.
    pub fn resubmit(&mut self, id: i64, actor: &Actor) -> Result<ExportRequest, QueueError> {
        let user = actor.user();
        let mut tx = self.store.audited()?;
        let request = load(&tx, &self.store, id)?;
        if request.submitted_by != user {
            return Err(QueueError::NotOwner { owner: request.submitted_by, action: "resubmit", id });
        }
        if request.status != Status::ChangesRequested {
            return Err(QueueError::IllegalTransition { id, from: request.status, to: Status::Checked });
        }
        set_status(&tx, &self.store, id, Status::Checked)?;
        append(&mut tx, actor, Action::RequestResubmitted, &request, serde_json::json!({}))?;
        tx.commit()?;
        self.get(id)
    }

    /// Releases approved request `id` to researcher `actor`: records the release (a download,
    /// when it was released before) with `destination` in the audit log, then returns the
    /// file's bytes, verified to be exactly what the job wrote.
    pub fn release_bytes(
        &mut self,
        id: i64,
        actor: &Actor,
        destination: &str,
    ) -> Result<(ExportRequest, Vec<u8>), QueueError> {
        let request = self.get(id)?;
        require_role(self, &request.project, actor.user(), Role::Researcher)?;
        let bytes = verified_content(self, &request)?;
        let mut tx = self.store.audited()?;
        let request = load(&tx, &self.store, id)?;
        let action = if request.status == Status::Released {
            Action::RequestDownloaded
        } else {
            transition(&request, Status::Released)?;
            set_status(&tx, &self.store, id, Status::Released)?;
            Action::RequestReleased
        };
        let detail = serde_json::json!({ "to": destination, "sha256": request.sha256 });
        append(&mut tx, actor, action, &request, detail)?;
        tx.commit()?;
        Ok((request, bytes))
    }

    /// Releases approved request `id` to researcher `actor` (see [`ExportQueue::release_bytes`])
    /// and writes the file into directory `to` under its name. Refused before anything is
    /// recorded when `to` is a symbolic link or the file is there already: a release never
    /// follows a link or replaces a file.
    pub fn release(&mut self, id: i64, actor: &Actor, to: &Path) -> Result<PathBuf, QueueError> {
        let file = self.get(id)?.file;
        let target = to.join(&file);
        let refuse = |why: &str| QueueError::ReleaseTarget { path: target.clone(), why: why.to_string() };
        if to.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(refuse("the directory is a symbolic link"));
        }
        if target.symlink_metadata().is_ok() {
            return Err(refuse("something is there already"));
        }
        let parent = target.parent().unwrap_or(to);
        std::fs::create_dir_all(parent).map_err(crate::home::HomeError::io("create", parent))?;
        let (_, bytes) = self.release_bytes(id, actor, &target.display().to_string())?;
        crate::home::write_new(&target, &bytes)?;
        Ok(target)
    }
}

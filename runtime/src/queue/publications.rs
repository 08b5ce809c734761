//! The publication register (rule 9): each project must publish what it found, so researchers
//! register every publication with the released outputs it is built on. Only released outputs
//! of the same project may be named, so the register also shows which releases were used.

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::review::require_role;
use super::{ExportQueue, QueueError, Status, now};
use crate::audit::{Action, Event};
use crate::policy::Role;
use crate::store::{DecodeError, Row};

/// Longest accepted title or reference, in characters.
const MAX_TEXT: usize = 1000;

/// A publication as a researcher registers it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPublication {
    /// The publication's title.
    pub title: String,
    /// Where it can be found: a DOI, a URL, an ISBN or a report number.
    pub reference: String,
    /// The export requests (released, of this project) whose outputs it uses.
    #[serde(default)]
    pub requests: Vec<i64>,
}

/// A registered publication.
#[derive(Debug, Clone, Serialize)]
pub struct Publication {
    /// Its number.
    pub id: i64,
    /// The project it reports on.
    pub project: String,
    /// Its title.
    pub title: String,
    /// Where it can be found.
    pub reference: String,
    /// The released export requests it uses.
    pub requests: Vec<i64>,
    /// The researcher who registered it.
    pub registered_by: String,
    /// When (RFC 3339).
    pub registered_at: String,
}

fn publication(row: &Row) -> Result<Publication, DecodeError> {
    let requests: String = row.get(4)?;
    Ok(Publication {
        id: row.get(0)?,
        project: row.get(1)?,
        title: row.get(2)?,
        reference: row.get(3)?,
        requests: serde_json::from_str(&requests).map_err(|e| DecodeError { column: 4, message: e.to_string() })?,
        registered_by: row.get(5)?,
        registered_at: row.get(6)?,
    })
}

/// The trimmed text of a required field, refused when empty or too long.
fn required_text(field: &'static str, text: &str) -> Result<String, QueueError> {
    let text = text.trim();
    let problem = if text.is_empty() {
        "is empty".to_string()
    } else if text.chars().count() > MAX_TEXT {
        format!("is longer than {MAX_TEXT} characters")
    } else {
        return Ok(text.to_string());
    };
    Err(QueueError::BadPublication { field, problem })
}

impl ExportQueue {
    /// A researcher of `project` registers a publication; every export request it names must
    /// be a released output of the same project.
    pub fn register_publication(
        &mut self,
        project: &str,
        user: &str,
        new: &NewPublication,
    ) -> Result<Publication, QueueError> {
        require_role(self, project, user, Role::Researcher)?;
        let title = required_text("title", &new.title)?;
        let reference = required_text("reference", &new.reference)?;
        let mut requests = new.requests.clone();
        requests.sort_unstable();
        requests.dedup();
        for &id in &requests {
            let request = self.get(id).map_err(|_| QueueError::BadPublication {
                field: "requests",
                problem: format!("there is no export request {id}"),
            })?;
            if request.project != project || request.status != Status::Released {
                return Err(QueueError::BadPublication {
                    field: "requests",
                    problem: format!("export request {id} is not a released output of project {project:?}"),
                });
            }
        }
        let wrap = self.store.err();
        let mut tx = self.store.audited()?;
        let registered_at = now();
        let listed = serde_json::to_string(&requests).unwrap_or_else(|_| "[]".into());
        let id: i64 = tx
            .query_row(
                "INSERT INTO publications (project, title, reference, requests, registered_by, registered_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                crate::params![project, title, reference, listed, user, registered_at],
                |r| r.get(0),
            )
            .map_err(&wrap)?;
        let event = Event {
            actor: user,
            action: Action::PublicationRegistered,
            project: Some(project),
            subject: Some(format!("publication:{id}")),
            detail: serde_json::json!({ "title": title, "reference": reference, "requests": requests }),
        };
        tx.record(event, Utc::now())?;
        tx.commit()?;
        Ok(Publication {
            id,
            project: project.to_string(),
            title,
            reference,
            requests,
            registered_by: user.to_string(),
            registered_at,
        })
    }

    /// The publications registered for `project`, oldest first.
    pub fn publications(&self, project: &str) -> Result<Vec<Publication>, QueueError> {
        let rows = self
            .store
            .conn()
            .query(
                "SELECT id, project, title, reference, requests, registered_by, registered_at
                 FROM publications WHERE project = ?1 ORDER BY id",
                crate::params![project],
                publication,
            )
            .map_err(self.store.err())?;
        Ok(rows)
    }
}

//! The JSON endpoints. Each authenticates the caller ([`Caller`]), checks the caller's role in
//! the project concerned, and calls the library on the blocking pool.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::Caller;
use super::{ApiError, AppState};
use crate::job::{JobRecord, JobRequest, ModuleSource, ScriptSource};
use crate::policy::{Policy, Role};
use crate::queue::{ExportQueue, ExportRequest, NewPublication, Publication, Status, Verdict};
use crate::view::{Audience, JobView, RequestView};

/// `GET /api/v1/whoami`: the caller and their projects with roles.
pub(crate) async fn whoami(State(state): State<AppState>, caller: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    state
        .with_queue(move |queue, _| {
            let memberships =
                queue.registry().memberships(&caller.user).map_err(|e| ApiError::Internal(e.to_string()))?;
            let projects: Vec<_> = memberships
                .into_iter()
                .map(|(project, roles)| serde_json::json!({ "project": project, "roles": roles }))
                .collect();
            Ok(Json(serde_json::json!({ "user": caller.user, "projects": projects })))
        })
        .await
}

/// `POST /api/v1/projects/{project}/jobs?arg=…&arg=…` with the module as the body (or, with
/// `runtime=python`, a script for that installed runtime): accepts the job (`202`) and queues
/// it; it starts when the user has fewer running jobs than the policy allows and a worker is
/// free. `GET /api/v1/jobs/{id}` follows it.
pub(crate) async fn submit_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let mut runtimes = query.iter().filter(|(k, _)| k == "runtime").map(|(_, v)| v.clone());
    let runtime = runtimes.next();
    if runtimes.next().is_some() {
        return Err(ApiError::BadRequest("name one runtime (the runtime parameter is given twice)".into()));
    }
    let args: Vec<String> = query.into_iter().filter(|(k, _)| k == "arg").map(|(_, v)| v).collect();
    let _compiling = state.inner.compiling.acquire().await.map_err(|e| ApiError::Internal(e.to_string()))?;
    let accepted = state
        .with_queue(move |queue, inner| {
            let roles = require(queue, &caller, &project, &[Role::Researcher])?;
            let today = chrono::Utc::now().date_naive();
            let policy = load_policy(queue, inner, &project)?;
            let module = match &runtime {
                Some(runtime) => ModuleSource::Script(ScriptSource { runtime, text: &body }),
                None => ModuleSource::Submitted(&body),
            };
            let request = JobRequest { policy: &policy, user: &caller.user, module, args: &args };
            let job = queue.enqueue(&inner.sandbox, &request, today)?;
            job_view(queue, &job, &caller, &roles)
        })
        .await?;
    if let Some(worker) = &state.inner.local_worker {
        worker.wake();
    }
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// The caller's roles in `project`, refused unless they include one of `allowed`.
fn require(queue: &ExportQueue, caller: &Caller, project: &str, allowed: &[Role]) -> Result<Vec<Role>, ApiError> {
    let roles = caller.roles(queue, project)?;
    if roles.iter().any(|r| allowed.contains(r)) { Ok(roles) } else { Err(ApiError::Forbidden) }
}

/// A dataset granted to a project as its members may see it: the schema cut to the approved
/// variables, never rows or counts.
#[derive(Debug, serde::Serialize)]
pub(crate) struct GrantedDataset {
    /// Where the guest finds it, under `/data/`.
    mount: String,
    /// The catalog dataset and its pinned version.
    dataset: String,
    version: u32,
    /// The approved variables, in the order the guest sees them.
    columns: Vec<crate::catalog::ColumnInfo>,
    /// The approved rows, when not all.
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<crate::catalog::RowFilter>,
    /// Whether the guest also gets `data.csv`.
    csv: bool,
}

/// `GET /api/v1/projects/{project}/datasets`: the datasets the project's policy grants, with
/// the approved variables' names and types.
pub(crate) async fn datasets(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<Vec<GrantedDataset>>, ApiError> {
    state
        .with_queue(move |queue, inner| {
            require(queue, &caller, &project, &[Role::Researcher, Role::Checker, Role::Operator])?;
            let policy = load_policy(queue, inner, &project)?;
            let mut granted = Vec::new();
            for grant in policy.datasets {
                let stored =
                    queue.catalog().get(&grant.dataset, grant.version).map_err(crate::queue::QueueError::from)?;
                let columns = grant
                    .columns
                    .iter()
                    .filter_map(|name| stored.columns.iter().find(|c| c.name == *name).cloned())
                    .collect();
                granted.push(GrantedDataset {
                    mount: grant.mount,
                    dataset: grant.dataset,
                    version: grant.version,
                    columns,
                    filter: grant.filter,
                    csv: grant.csv,
                });
            }
            Ok(Json(granted))
        })
        .await
}

/// The project's registered policy as it applies today.
fn load_policy(queue: &ExportQueue, inner: &super::Inner, project: &str) -> Result<Policy, ApiError> {
    let today = chrono::Utc::now().date_naive();
    let file = queue.registry().policy_file(project);
    Policy::load(&file, &inner.config.caps, queue.catalog(), today)
        .map_err(|e| ApiError::Conflict(format!("the project's policy cannot be used: {e}")))
}

/// `POST /api/v1/projects/{project}/publications`: a researcher registers a publication and
/// the released outputs it uses (rule 9).
pub(crate) async fn register_publication(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    body: Result<Json<NewPublication>, JsonRejection>,
) -> Result<(StatusCode, Json<Publication>), ApiError> {
    let Json(body) = body.map_err(bad_json)?;
    state
        .with_queue(move |queue, _| {
            require(queue, &caller, &project, &[Role::Researcher])?;
            Ok((StatusCode::CREATED, Json(queue.register_publication(&project, &caller.user, &body)?)))
        })
        .await
}

/// `GET /api/v1/projects/{project}/publications`: the project's publication register.
pub(crate) async fn publications(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<Vec<Publication>>, ApiError> {
    state
        .with_queue(move |queue, _| {
            require(queue, &caller, &project, &[Role::Researcher, Role::Checker, Role::Operator])?;
            Ok(Json(queue.publications(&project)?))
        })
        .await
}

/// `job` as `caller` (holding `roles` in its project) may see it.
fn job_view(
    queue: &ExportQueue,
    job: &crate::queue::JobRow,
    caller: &Caller,
    roles: &[Role],
) -> Result<JobView, ApiError> {
    let position = queue.position(&job.id)?;
    let requests = queue.requests_of_job(&job.id)?;
    let audience = Audience::of(roles, &caller.user, &job.user);
    let record = match audience {
        Audience::Reviewer if job.finished_at.is_some() => JobRecord::load(queue.home(), &job.id).ok(),
        _ => None,
    };
    Ok(JobView::new(job, position, &requests, record.as_ref(), audience, &caller.user))
}

/// `request` as `caller` (holding `roles` in its project) may see it.
fn request_view(request: &ExportRequest, caller: &Caller, roles: &[Role]) -> RequestView {
    RequestView::new(request, Audience::of(roles, &caller.user, &request.submitted_by), &caller.user)
}

/// `GET /api/v1/jobs/{id}`: where a job stands (with its queue position, or its outputs once
/// ended), for its researcher and the project's checkers and operators; not found for anyone
/// else.
pub(crate) async fn job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    state
        .with_queue(move |queue, _| {
            let job = queue.job(&id)?.ok_or(ApiError::NotFound)?;
            let roles = caller.roles(queue, &job.project)?;
            let reviewer = roles.iter().any(|r| r.sees_findings());
            if job.user != caller.user && !reviewer {
                return Err(ApiError::NotFound);
            }
            Ok(Json(job_view(queue, &job, &caller, &roles)?))
        })
        .await
}

/// Filters of `GET /api/v1/exports`.
#[derive(Debug, Deserialize)]
pub(crate) struct ExportFilter {
    project: Option<String>,
    status: Option<String>,
}

/// `GET /api/v1/exports[?project=…&status=…]`: requests of the caller's projects.
pub(crate) async fn list_exports(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<ExportFilter>,
) -> Result<Json<Vec<RequestView>>, ApiError> {
    let status = filter.status.as_deref().map(str::parse::<Status>).transpose().map_err(ApiError::BadRequest)?;
    state
        .with_queue(move |queue, _| {
            let memberships =
                queue.registry().memberships(&caller.user).map_err(|e| ApiError::Internal(e.to_string()))?;
            if let Some(project) = &filter.project
                && !memberships.iter().any(|(p, _)| p == project)
            {
                return Err(ApiError::Forbidden);
            }
            let mut views = Vec::new();
            for (project, roles) in memberships {
                if filter.project.as_ref().is_some_and(|p| *p != project) {
                    continue;
                }
                for request in queue.list(Some(&project), status)? {
                    if known(&request, &caller, &roles) {
                        views.push(request_view(&request, &caller, &roles));
                    }
                }
            }
            Ok(Json(views))
        })
        .await
}

/// A body that is not the JSON an endpoint takes is a `400`, with what was wrong.
fn bad_json(rejection: JsonRejection) -> ApiError {
    ApiError::BadRequest(rejection.body_text())
}

/// Whether `caller` may know of `request` yet: a researcher learns of a request only when its
/// job's end is visible, that is once its checks have run (see [`crate::view::researcher`]).
fn known(request: &ExportRequest, caller: &Caller, roles: &[Role]) -> bool {
    request.status != Status::Pending || Audience::of(roles, &caller.user, &request.submitted_by) == Audience::Reviewer
}

/// Loads request `id` with the caller's roles in its project. A request outside the caller's
/// projects, or one they may not know of yet, is not found: the answer does not tell which ids
/// exist elsewhere.
fn visible(queue: &ExportQueue, caller: &Caller, id: i64) -> Result<(ExportRequest, Vec<Role>), ApiError> {
    let request = queue.get(id)?;
    let roles = caller.roles(queue, &request.project)?;
    if roles.is_empty() {
        return Err(ApiError::NotFound);
    }
    if !known(&request, caller, &roles) {
        return Err(ApiError::NotFound);
    }
    Ok((request, roles))
}

/// `GET /api/v1/exports/{id}`.
pub(crate) async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<RequestView>, ApiError> {
    state
        .with_queue(move |queue, _| {
            let (request, roles) = visible(queue, &caller, id)?;
            Ok(Json(request_view(&request, &caller, &roles)))
        })
        .await
}

/// Body of `POST /api/v1/exports/{id}/decision`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecisionBody {
    decision: Verdict,
    reason: Option<String>,
}

/// `POST /api/v1/exports/{id}/decision`: a checker approves, rejects or asks for changes.
pub(crate) async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Result<Json<DecisionBody>, JsonRejection>,
) -> Result<Json<RequestView>, ApiError> {
    let Json(body) = body.map_err(bad_json)?;
    state
        .with_queue(move |queue, _| {
            let (_, roles) = visible(queue, &caller, id)?;
            let decided = queue.decide(id, &caller.actor, body.decision, body.reason.as_deref())?;
            Ok(Json(request_view(&decided, &caller, &roles)))
        })
        .await
}

/// Body of `POST /api/v1/exports/{id}/description`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DescriptionBody {
    description: Option<String>,
    justification: Option<String>,
}

/// `POST /api/v1/exports/{id}/description`: the submitting researcher describes an output.
pub(crate) async fn describe(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Result<Json<DescriptionBody>, JsonRejection>,
) -> Result<Json<RequestView>, ApiError> {
    let Json(body) = body.map_err(bad_json)?;
    state
        .with_queue(move |queue, _| {
            let (_, roles) = visible(queue, &caller, id)?;
            let described =
                queue.describe(id, &caller.actor, body.description.as_deref(), body.justification.as_deref())?;
            Ok(Json(request_view(&described, &caller, &roles)))
        })
        .await
}

/// `POST /api/v1/exports/{id}/resubmit`: the submitting researcher sends a request whose
/// changes were asked for back to the checkers.
pub(crate) async fn resubmit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<RequestView>, ApiError> {
    state
        .with_queue(move |queue, _| {
            let (_, roles) = visible(queue, &caller, id)?;
            let resubmitted = queue.resubmit(id, &caller.actor)?;
            Ok(Json(request_view(&resubmitted, &caller, &roles)))
        })
        .await
}

/// `POST /api/v1/exports/{id}/release`: a researcher of the project takes an approved output;
/// the body is the file, byte-identical to what the job wrote.
pub(crate) async fn release(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    state
        .with_queue(move |queue, _| {
            visible(queue, &caller, id)?;
            let (request, bytes) = queue.release_bytes(id, &caller.actor, "the service (HTTP download)")?;
            let mut response = bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            let name = request.file.rsplit('/').next().unwrap_or("output").replace(['"', '\\'], "_");
            if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
                headers.insert(header::CONTENT_DISPOSITION, value);
            }
            Ok(response)
        })
        .await
}

//! The checker web pages: server-rendered HTML over the same library calls as the JSON API.
//! A checker logs in with a personal token, browses the queue of the projects they check,
//! opens a request (checks, the table with failing cells highlighted, the researcher's
//! description) and approves, rejects or asks for changes with a reason.
//!
//! Every page is sent with `Cache-Control: no-store` and a Content-Security-Policy that allows
//! no scripts, no frames and only this site's stylesheet and form targets. Forms carry the
//! session's CSRF token, the session cookie is `SameSite=Strict`, and a `POST` from another
//! origin is refused before it reaches a handler.

mod pages;
pub(crate) mod session;
mod table;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, middleware};
use maud::Markup;
use serde::Deserialize;

use super::auth::{Caller, authenticate, peer};
use super::{ApiError, AppState};
use crate::policy::Role;
use crate::queue::{ExportQueue, Status, Verdict};
use crate::view::{Audience, ReviewerRequest};
use pages::{QueueFilter, RequestPage, Viewer};

/// The policy every page is sent with: nothing but this site's stylesheet, images and forms.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// The pages' stylesheet (the CSP forbids inline styles).
const STYLE: &str = include_str!("style.css");

/// The checker pages, under `/checker/`.
pub(crate) fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/checker/", get(queue_page))
        .route("/checker/login", get(login_page).post(login))
        .route("/checker/logout", post(logout))
        .route("/checker/requests/{id}", get(request_page))
        .route("/checker/requests/{id}/decision", post(decide))
        .route("/checker/style.css", get(style))
        .layer(middleware::from_fn(same_origin_posts))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Refuses a `POST` whose `Origin` is not this site (cross-site form posts, login CSRF).
async fn same_origin_posts(request: Request, next: Next) -> Response {
    if request.method() == Method::POST
        && let Some(origin) = request.headers().get(header::ORIGIN)
    {
        let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        let origin = origin.to_str().unwrap_or("");
        let same = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host);
        if !same {
            return page(StatusCode::FORBIDDEN, pages::problem(None, "This form was sent from another site."));
        }
    }
    next.run(request).await
}

fn page(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

/// `error` as a page, with its status.
fn problem(viewer: Option<&Viewer<'_>>, error: &ApiError) -> Response {
    page(error.status(), pages::problem(viewer, &error.to_string()))
}

async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}

/// A browser with a live session.
pub(crate) struct Browser {
    caller: Caller,
    csrf: String,
    session: String,
}

impl Browser {
    fn viewer(&self) -> Viewer<'_> {
        Viewer { user: &self.caller.user, csrf: &self.csrf }
    }

    /// Whether a form carried this session's CSRF token.
    fn csrf_ok(&self, sent: &str) -> bool {
        session::same_secret(sent, &self.csrf)
    }

    /// The answer to a form without the session's CSRF token.
    fn forged_form(&self) -> Response {
        page(StatusCode::FORBIDDEN, pages::problem(Some(&self.viewer()), "The form has expired; reload the page."))
    }
}

fn to_login() -> Response {
    let mut response = Redirect::to("/checker/login").into_response();
    if let Ok(value) = HeaderValue::from_str(&session::clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

impl FromRequestParts<AppState> for Browser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Browser, Response> {
        let sessions = &state.inner.sessions;
        let id = session::cookie(&parts.headers).ok_or_else(to_login)?;
        let open = sessions.get(&id).ok_or_else(to_login)?;
        match authenticate(state, Some(open.token), peer(parts)).await {
            Ok(actor) => Ok(Browser { caller: Caller::new(actor), csrf: open.csrf, session: id }),
            Err(ApiError::Unauthorized) => {
                sessions.close(&id);
                Err(to_login())
            }
            Err(other) => Err(problem(None, &other)),
        }
    }
}

async fn login_page() -> Response {
    page(StatusCode::OK, pages::login(None))
}

/// The login form's fields.
#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(address): ConnectInfo<SocketAddr>,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return page(StatusCode::BAD_REQUEST, pages::login(Some("The form was malformed.")));
    };
    let token = form.token.trim().to_string();
    match authenticate(&state, Some(token.clone()), Some(address.ip())).await {
        Ok(_) => {
            let idle = state.inner.config.idle_timeout.to_std().unwrap_or_default();
            let id = state.inner.sessions.open(token, idle);
            let mut response = Redirect::to("/checker/").into_response();
            if let Ok(value) = HeaderValue::from_str(&session::set_cookie(&id)) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(ApiError::Unauthorized) => {
            page(StatusCode::UNAUTHORIZED, pages::login(Some("That token was not accepted.")))
        }
        Err(other) => page(other.status(), pages::login(Some(&other.to_string()))),
    }
}

/// A form that only carries the CSRF token.
#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(State(state): State<AppState>, browser: Browser, Form(form): Form<CsrfForm>) -> Response {
    if !browser.csrf_ok(&form.csrf) {
        return browser.forged_form();
    }
    state.inner.sessions.close(&browser.session);
    to_login()
}

/// The projects `caller` reviews (checker or operator), by name.
fn reviewed_projects(queue: &ExportQueue, caller: &Caller) -> Result<Vec<String>, ApiError> {
    let memberships = queue.registry().memberships(&caller.user).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(memberships
        .into_iter()
        .filter(|(_, roles)| roles.iter().any(|r| r.sees_findings()))
        .map(|(project, _)| project)
        .collect())
}

/// The queue page's filters; an empty value means "all".
#[derive(Deserialize)]
struct Filter {
    project: Option<String>,
    status: Option<String>,
}

async fn queue_page(State(state): State<AppState>, browser: Browser, Query(filter): Query<Filter>) -> Response {
    let project = filter.project.filter(|p| !p.is_empty());
    let status = filter.status.filter(|s| !s.is_empty());
    let parsed = match status.as_deref().map(str::parse::<Status>).transpose() {
        Ok(parsed) => parsed,
        Err(e) => return problem(Some(&browser.viewer()), &ApiError::BadRequest(e)),
    };
    let caller = browser.caller.clone();
    let chosen = project.clone();
    let found = state
        .with_queue(move |queue, _| {
            let projects = reviewed_projects(queue, &caller)?;
            if chosen.as_ref().is_some_and(|p| !projects.contains(p)) {
                return Err(ApiError::Forbidden);
            }
            let mut requests = Vec::new();
            for p in projects.iter().filter(|p| chosen.as_ref().is_none_or(|c| c == *p)) {
                // Requests of the viewer's own jobs are not theirs to review, nor to read in full.
                requests.extend(queue.list(Some(p), parsed)?.into_iter().filter(|r| r.submitted_by != caller.user));
            }
            requests.sort_by_key(|r| std::cmp::Reverse(r.id));
            Ok((projects, requests))
        })
        .await;
    match found {
        Ok((projects, requests)) => {
            let filter = QueueFilter { projects: &projects, project: project.as_deref(), status: status.as_deref() };
            page(StatusCode::OK, pages::queue(&browser.viewer(), &filter, &requests))
        }
        Err(e) => problem(Some(&browser.viewer()), &e),
    }
}

/// Renders request `id` for `browser`, with `error` (and its status) from a refused decision.
async fn render_request(state: &AppState, browser: &Browser, id: i64, error: Option<ApiError>) -> Response {
    let caller = browser.caller.clone();
    let loaded = state
        .with_queue(move |queue, _| {
            let request = queue.get(id)?;
            let roles = caller.roles(queue, &request.project)?;
            if Audience::of(&roles, &caller.user, &request.submitted_by) != Audience::Reviewer {
                return Err(ApiError::Forbidden);
            }
            let table = queue.content(&request).ok().and_then(|bytes| table::table(&request, &bytes));
            let view = ReviewerRequest::new(&request, &caller.user);
            let may_decide =
                roles.contains(&Role::Checker) && request.status.may_become(Status::Rejected) && !view.decided();
            Ok((view, table, may_decide))
        })
        .await;
    let viewer = browser.viewer();
    match loaded {
        Ok((request, table, may_decide)) => {
            let message = error.as_ref().map(ToString::to_string);
            let view = RequestPage { table: table.as_ref(), may_decide, error: message.as_deref() };
            let status = error.map_or(StatusCode::OK, |e| e.status());
            page(status, pages::request(&viewer, &request, &view))
        }
        Err(e) => problem(Some(&viewer), &e),
    }
}

async fn request_page(State(state): State<AppState>, browser: Browser, Path(id): Path<i64>) -> Response {
    render_request(&state, &browser, id, None).await
}

/// The decision form's fields.
#[derive(Deserialize)]
struct DecisionForm {
    csrf: String,
    decision: Verdict,
    #[serde(default)]
    reason: String,
}

async fn decide(
    State(state): State<AppState>,
    browser: Browser,
    Path(id): Path<i64>,
    form: Result<Form<DecisionForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return problem(Some(&browser.viewer()), &ApiError::BadRequest(rejection.body_text())),
    };
    if !browser.csrf_ok(&form.csrf) {
        return browser.forged_form();
    }
    let caller = browser.caller.clone();
    let decided = state
        .with_queue(move |queue, _| {
            let request = queue.get(id)?;
            if caller.roles(queue, &request.project)?.is_empty() {
                return Err(ApiError::Forbidden);
            }
            queue.decide(id, &caller.actor, form.decision, Some(&form.reason))?;
            Ok(())
        })
        .await;
    match decided {
        Ok(()) => Redirect::to(&format!("/checker/requests/{id}")).into_response(),
        Err(e @ (ApiError::BadRequest(_) | ApiError::Conflict(_))) => {
            render_request(&state, &browser, id, Some(e)).await
        }
        Err(e) => problem(Some(&browser.viewer()), &e),
    }
}

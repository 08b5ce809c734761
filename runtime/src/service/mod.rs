//! The ringfence service: a JSON API over HTTP (axum on tokio) in front of the same library
//! calls as the CLI. People reach it with personal tokens ([`crate::tokens`]); every endpoint
//! checks the caller's role in the project concerned, from the registered policies.
//!
//! Every database or sandbox call runs on tokio's blocking pool, never on the async executor,
//! each with a queue handle (database connection) of its own, reused from request to request.
//!
//! The service accepts, schedules and answers; it runs no guest. Jobs run in `ringfence worker`
//! processes: one it starts for itself ([`local_worker`]) unless told not to, and any others an
//! operator starts on the same state directory.

mod api;
mod auth;
mod error;
pub mod jurisdiction;
pub mod local_worker;
mod origin;
mod throttle;
mod web;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodRouter, get, post};

use crate::policy::OperatorCaps;
use crate::queue::{ExportQueue, QueueError};
use crate::sandbox::Sandbox;
use crate::service::local_worker::{LocalWorker, WorkerCommand};

pub use error::ApiError;

/// How the service runs.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The state directory.
    pub home: PathBuf,
    /// Operator caps policies are validated against.
    pub caps: OperatorCaps,
    /// A token unused for longer than this must be replaced (rule 4).
    pub idle_timeout: chrono::Duration,
    /// Largest module upload, in bytes (larger ones get `413`).
    pub max_upload_bytes: usize,
    /// Where requests may come from (rule 7).
    pub jurisdiction: jurisdiction::Jurisdiction,
    /// Uploads checked and compiled at once.
    pub compilers: u32,
    /// The worker the service starts for itself, if any; without one, jobs wait for
    /// `ringfence worker` processes on the same state directory.
    pub local_worker: Option<WorkerCommand>,
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ServiceConfig,
    sandbox: Sandbox,
    /// Submissions whose modules are being checked and compiled at once: at most
    /// [`ServiceConfig::compilers`], so a burst of uploads cannot take every core and the
    /// memory compiling needs.
    compiling: tokio::sync::Semaphore,
    /// The worker this service started, woken whenever a job is queued.
    local_worker: Option<Arc<LocalWorker>>,
    /// Failed authentications per address.
    throttle: throttle::Throttle,
    /// Refused origins per address, for aggregating their audit entries.
    refused_origins: throttle::Throttle,
    /// Logged-in browsers of the checker pages.
    sessions: web::session::Sessions,
    /// Queue handles (each with its own database connection) not in use right now.
    idle_queues: std::sync::Mutex<Vec<ExportQueue>>,
}

/// Idle queue handles kept for reuse; more are opened when more requests run at once.
const MAX_IDLE_QUEUES: usize = 32;

impl AppState {
    fn home(&self) -> &Path {
        &self.inner.config.home
    }

    /// Runs `work` on the blocking pool with a queue handle of its own: an idle one, or a new
    /// connection when all are busy. The handle is kept for reuse afterwards (any transaction
    /// `work` left open was rolled back when it was dropped).
    async fn with_queue<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut ExportQueue, &Inner) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let idle = state.inner.idle_queues.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
            let mut queue = match idle {
                Some(queue) => queue,
                None => {
                    ExportQueue::connect(state.home()).map_err(|e: QueueError| ApiError::Internal(e.to_string()))?
                }
            };
            let result = work(&mut queue, &state.inner);
            let mut idle = state.inner.idle_queues.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if idle.len() < MAX_IDLE_QUEUES {
                idle.push(queue);
            }
            result
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
    }
}

/// Where the service publishes its OpenAPI description, [`OPENAPI`].
const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// The API's OpenAPI 3.1 description, kept by hand beside the routes; a test checks that it
/// names exactly the routes of [`endpoints`].
const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// One route of the JSON API: method and path as `openapi.json` names them, and the handler.
struct Endpoint {
    method: Method,
    path: &'static str,
    handler: MethodRouter<AppState>,
}

impl Endpoint {
    fn get<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Endpoint {
        Endpoint { method: Method::GET, path, handler: get(handler) }
    }

    fn post<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Endpoint {
        Endpoint { method: Method::POST, path, handler: post(handler) }
    }
}

/// Every authenticated route of the JSON API.
fn endpoints(upload_limit: usize) -> Vec<Endpoint> {
    let mut submit = Endpoint::post("/api/v1/projects/{project}/jobs", api::submit_job);
    submit.handler = submit.handler.layer(DefaultBodyLimit::max(upload_limit));
    vec![
        Endpoint::get("/api/v1/whoami", api::whoami),
        submit,
        Endpoint::get("/api/v1/projects/{project}/datasets", api::datasets),
        Endpoint::get("/api/v1/projects/{project}/publications", api::publications),
        Endpoint::post("/api/v1/projects/{project}/publications", api::register_publication),
        Endpoint::get("/api/v1/jobs/{id}", api::job),
        Endpoint::get("/api/v1/exports", api::list_exports),
        Endpoint::get("/api/v1/exports/{id}", api::export),
        Endpoint::post("/api/v1/exports/{id}/decision", api::decide),
        Endpoint::post("/api/v1/exports/{id}/description", api::describe),
        Endpoint::post("/api/v1/exports/{id}/resubmit", api::resubmit),
        Endpoint::post("/api/v1/exports/{id}/release", api::release),
    ]
}

/// The service, ready to serve: its routes, and its worker started.
pub struct Service {
    router: Router,
}

impl Service {
    /// Prepares the state directory (recovering from any crash: jobs that were running are
    /// marked interrupted, queued ones stay queued) and builds the routes.
    pub fn new(config: ServiceConfig) -> Result<Service, QueueError> {
        let queue = ExportQueue::open(&config.home)?;
        let sandbox = Sandbox::new(&queue.home().module_cache_dir()).map_err(crate::job::JobError::from)?;
        let upload_limit = config.max_upload_bytes;
        let compilers = usize::try_from(config.compilers.max(1)).unwrap_or(1);
        let local_worker = config.local_worker.clone().map(LocalWorker::start);
        let state = AppState {
            inner: Arc::new(Inner {
                config,
                sandbox,
                compiling: tokio::sync::Semaphore::new(compilers),
                local_worker,
                throttle: throttle::Throttle::default(),
                refused_origins: throttle::Throttle::default(),
                sessions: web::session::Sessions::default(),
                idle_queues: std::sync::Mutex::new(Vec::new()),
            }),
        };
        let mut router = Router::new();
        for endpoint in endpoints(upload_limit) {
            tracing::debug!("route {} {}", endpoint.method, endpoint.path);
            router = router.route(endpoint.path, endpoint.handler);
        }
        let router = router
            .route(OPENAPI_PATH, get(openapi))
            .merge(web::router(state.clone()))
            .layer(DefaultBodyLimit::max(64 * 1024))
            .layer(axum::middleware::from_fn_with_state(state.clone(), origin::guard))
            .with_state(state.clone());
        Ok(Service { router })
    }

    /// Serves the API on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{OPENAPI, OPENAPI_PATH, endpoints};

    #[test]
    fn openapi_describes_exactly_the_routes_served() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        let paths = doc["paths"].as_object().expect("openapi.json has paths");
        let documented: BTreeSet<(String, String)> = paths
            .iter()
            .flat_map(|(path, operations)| {
                let methods = operations.as_object().expect("a path holds operations");
                methods.keys().map(move |method| (method.to_uppercase(), path.clone()))
            })
            .collect();
        let mut served: BTreeSet<(String, String)> =
            endpoints(1).into_iter().map(|e| (e.method.to_string(), e.path.to_string())).collect();
        served.insert(("GET".into(), OPENAPI_PATH.into()));
        assert_eq!(documented, served);
    }
}

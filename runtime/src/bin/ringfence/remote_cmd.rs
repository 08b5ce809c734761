//! `ringfence remote …`: the researcher's client. Researchers never run the host's `ringfence`
//! on the state directory (whoever can read it can read everything); they reach the service over
//! HTTP with their personal token (`--token-file FILE` or `RINGFENCE_TOKEN`): submit a module,
//! follow a job, list and describe their requests, fetch released files. Everything it prints is
//! the researcher view the service sends, escaped.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use ringfence::queue::Status;
use ringfence::untrusted::shown;
use ringfence::view::{ResearcherJob, ResearcherRequest};
use serde::de::DeserializeOwned;

use crate::acting::token;
use crate::dataset_cmd::Bar;
use crate::researcher_view::{print_job, print_request, request_line};
use crate::{Cli, Outcome};

/// Arguments of `ringfence remote`.
#[derive(Args)]
pub(crate) struct RemoteArgs {
    /// The service's address.
    #[arg(long, env = "RINGFENCE_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A file holding your personal token; without it, the token in $RINGFENCE_TOKEN.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    #[command(subcommand)]
    command: RemoteCommand,
}

/// What the client does.
#[derive(Subcommand)]
enum RemoteCommand {
    /// Who the token belongs to, and their projects and roles.
    Whoami,
    /// The datasets a project grants: the approved variables and their types.
    Datasets {
        /// The project.
        project: String,
    },
    /// Submit an analysis as a job of a project: a wasm32-wasip1 command module, or a Python
    /// script (`.py`) when the project allows the python runtime.
    Submit {
        /// The project.
        #[arg(long)]
        project: String,
        /// The analysis: a `.wasm` module or a `.py` script.
        module: PathBuf,
        /// Follow the job until it ends (exit code 3 unless it succeeded).
        #[arg(long)]
        wait: bool,
        /// Arguments passed to the analysis.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Where a job stands.
    Job {
        /// The job's id.
        id: String,
        /// Follow it until it ends (exit code 3 unless it succeeded).
        #[arg(long)]
        wait: bool,
    },
    /// The export requests of your projects, oldest first.
    Exports {
        /// Only this project's.
        #[arg(long)]
        project: Option<String>,
        /// Only requests with this status.
        #[arg(long)]
        status: Option<Status>,
    },
    /// One export request.
    Export {
        /// The request number.
        id: i64,
    },
    /// Describe or justify one of your requests (before review, or when changes were asked for).
    Describe {
        /// The request number.
        id: i64,
        /// What the output is.
        #[arg(long)]
        description: Option<String>,
        /// Why it is safe and needed.
        #[arg(long)]
        justification: Option<String>,
    },
    /// Send a request back to the checkers after making the changes they asked for.
    Resubmit {
        /// The request number.
        id: i64,
    },
    /// Fetch an approved (or already released) output into a directory.
    Release {
        /// The request number.
        id: i64,
        /// Where to write the file.
        #[arg(long)]
        to: PathBuf,
    },
}

/// A connection to the service with one person's token.
struct Client {
    agent: ureq::Agent,
    url: String,
    token: String,
}

/// What the service answered: the body, or why it refused.
type Answer = Result<Vec<u8>, String>;

impl Client {
    fn call<B: ureq::AsSendBody>(&self, method: &str, path: &str, body: Option<(&str, B)>) -> anyhow::Result<Answer> {
        let uri = format!("{}{path}", self.url.trim_end_matches('/'));
        let builder = ureq::http::Request::builder()
            .method(method)
            .uri(&uri)
            .header("Authorization", format!("Bearer {}", self.token));
        let response = match body {
            Some((content_type, body)) => {
                let request = builder.header("Content-Type", content_type).body(body)?;
                self.agent.run(request)
            }
            None => self.agent.run(builder.body(())?),
        };
        let mut response = response.map_err(|e| anyhow::anyhow!("cannot reach {}: {e}", shown(&self.url)))?;
        let status = response.status();
        let bytes = response.body_mut().with_config().limit(1 << 30).read_to_vec()?;
        if status.is_success() {
            return Ok(Ok(bytes));
        }
        let message = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        Ok(Err(format!("the service answered {}: {}", status.as_u16(), shown(&message))))
    }

    fn json<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<Result<T, String>> {
        let body = body.map(|b| serde_json::to_vec(&b)).transpose()?;
        let sent = body.as_deref().map(|b| ("application/json", b));
        Ok(match self.call(method, path, sent)? {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).map_err(|e| {
                anyhow::anyhow!("the service's answer to {method} {path} is not what this client reads: {e}")
            })?),
            Err(refused) => Err(refused),
        })
    }

    /// Polls job `id` until it has ended.
    fn follow(&self, id: &str) -> anyhow::Result<Result<ResearcherJob, String>> {
        let mut shown_state = None;
        loop {
            let job: ResearcherJob = match self.json("GET", &format!("/api/v1/jobs/{id}"), None)? {
                Ok(job) => job,
                Err(refused) => return Ok(Err(refused)),
            };
            if job.state.has_ended() {
                return Ok(Ok(job));
            }
            if shown_state != Some(job.state) && std::io::stderr().is_terminal() {
                eprintln!("job {id}: {}", job.state);
            }
            shown_state = Some(job.state);
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// The outcome of a followed job: success, or exit code 3.
fn ended(job: &ResearcherJob) -> Outcome {
    print_job(job);
    if job.state == ringfence::view::JobState::Succeeded { Outcome::Ok } else { Outcome::JobFailed }
}

/// `?` for answers: a refusal ends the command with exit code 2 and the service's reason.
macro_rules! answered {
    ($answer:expr) => {
        match $answer {
            Ok(value) => value,
            Err(refused) => return Ok(Outcome::BadInput(refused)),
        }
    };
}

pub(crate) fn run(_cli: &Cli, args: &RemoteArgs) -> anyhow::Result<Outcome> {
    let token = answered!(token(args.token_file.as_ref()));
    let agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let client = Client { agent, url: args.url.clone(), token };
    match &args.command {
        RemoteCommand::Whoami => {
            let me: serde_json::Value = answered!(client.json("GET", "/api/v1/whoami", None)?);
            println!("user      {}", shown(me["user"].as_str().unwrap_or("?")));
            for p in me["projects"].as_array().into_iter().flatten() {
                let roles: Vec<&str> = p["roles"].as_array().into_iter().flatten().filter_map(|r| r.as_str()).collect();
                println!("project   {} [{}]", shown(p["project"].as_str().unwrap_or("?")), roles.join(", "));
            }
        }
        RemoteCommand::Datasets { project } => {
            let path = format!("/api/v1/projects/{}/datasets", encode(project));
            let grants: Vec<serde_json::Value> = answered!(client.json("GET", &path, None)?);
            for g in grants {
                let text = |v: &serde_json::Value| shown(v.as_str().unwrap_or("?")).into_owned();
                println!("/data/{}/ = {} version {}", text(&g["mount"]), text(&g["dataset"]), g["version"]);
                for c in g["columns"].as_array().into_iter().flatten() {
                    println!("  {:<24} {}", text(&c["name"]), text(&c["type"]));
                }
            }
        }
        RemoteCommand::Submit { project, module, wait, args: job_args } => {
            let runtime = ringfence::interpreters::for_script(module);
            let file = match std::fs::File::open(module) {
                Ok(file) => file,
                Err(e) => {
                    let what = if runtime.is_some() { "script" } else { "module" };
                    return Ok(Outcome::BadInput(format!("cannot read {what} {}: {e}", module.display())));
                }
            };
            let size = file.metadata()?.len();
            let query: Vec<String> = runtime
                .map(|r| format!("runtime={}", r.name))
                .into_iter()
                .chain(job_args.iter().map(|a| format!("arg={}", encode(a))))
                .collect();
            let path = format!("/api/v1/projects/{}/jobs?{}", encode(project), query.join("&"));
            let content_type = if runtime.is_some() { "text/plain; charset=utf-8" } else { "application/wasm" };
            let bar = Bar::new();
            let mut upload = bar.reading(file, size);
            let body = ureq::SendBody::from_reader(&mut upload);
            let accepted = client.call("POST", &path, Some((content_type, body)))?;
            bar.finish();
            let job: ResearcherJob = serde_json::from_slice(&answered!(accepted))?;
            if !wait {
                print_job(&job);
                return Ok(Outcome::Ok);
            }
            return Ok(ended(&answered!(client.follow(&job.id)?)));
        }
        RemoteCommand::Job { id, wait } => {
            if *wait {
                return Ok(ended(&answered!(client.follow(id)?)));
            }
            let job: ResearcherJob = answered!(client.json("GET", &format!("/api/v1/jobs/{}", encode(id)), None)?);
            print_job(&job);
        }
        RemoteCommand::Exports { project, status } => {
            let mut query = Vec::new();
            if let Some(project) = project {
                query.push(format!("project={}", encode(project)));
            }
            if let Some(status) = status {
                query.push(format!("status={status}"));
            }
            let path = format!("/api/v1/exports?{}", query.join("&"));
            let requests: Vec<ResearcherRequest> = answered!(client.json("GET", &path, None)?);
            for r in &requests {
                println!("{}  {}", request_line(r), shown(&r.project));
            }
        }
        RemoteCommand::Export { id } => {
            print_request(&answered!(client.json("GET", &format!("/api/v1/exports/{id}"), None)?));
        }
        RemoteCommand::Describe { id, description, justification } => {
            let body = serde_json::json!({ "description": description, "justification": justification });
            let path = format!("/api/v1/exports/{id}/description");
            print_request(&answered!(client.json::<ResearcherRequest>("POST", &path, Some(body))?));
        }
        RemoteCommand::Resubmit { id } => {
            let path = format!("/api/v1/exports/{id}/resubmit");
            print_request(&answered!(client.json::<ResearcherRequest>("POST", &path, None)?));
        }
        RemoteCommand::Release { id, to } => {
            let before: ResearcherRequest = answered!(client.json("GET", &format!("/api/v1/exports/{id}"), None)?);
            if let Some(name) = &before.file {
                answered!(target(to, name));
            }
            let path = format!("/api/v1/exports/{id}/release");
            let bytes = answered!(client.call("POST", &path, None::<(&str, &[u8])>)?);
            let released: ResearcherRequest = answered!(client.json("GET", &format!("/api/v1/exports/{id}"), None)?);
            let name = released.file.unwrap_or_else(|| format!("export-{id}"));
            let target = answered!(target(to, &name));
            ringfence::home::write_new(&target, &bytes)?;
            println!("export request {id} released to {}", target.display());
        }
    }
    Ok(Outcome::Ok)
}

/// Where a released file named `name` goes under `dir`: refused unless the name is a safe export
/// name (the service only ever sends those) and nothing is there yet.
fn target(dir: &Path, name: &str) -> Result<PathBuf, String> {
    if let Some(problem) = ringfence_sdk::manifest::export_name_problem(name) {
        return Err(format!("the service sent the file name {} ({problem})", shown(name)));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let target = dir.join(name);
    if target.symlink_metadata().is_ok() {
        return Err(format!("{} already exists; release into an empty directory", target.display()));
    }
    Ok(target)
}

/// `text` percent-encoded for a URL's path or query.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

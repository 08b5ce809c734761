//! A running `ringfence serve` for the end-to-end tests, driven over real HTTP on 127.0.0.1.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Instant;

use chrono::Duration;
use ringfence::store::Store;
use ringfence::tokens;

use super::common::{self, TestLimits};

/// A running `ringfence serve` on a state directory with the fixture data and the test policy
/// (alice researcher, carol checker), killed when dropped.
pub struct Service {
    _dir: tempfile::TempDir,
    pub home: PathBuf,
    pub url: String,
    child: Child,
    pub agent: ureq::Agent,
    args: Vec<String>,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response's status and body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub cache_control: Option<String>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

impl Service {
    /// A service that places loopback in the Netherlands.
    pub fn start(extra: &[&str]) -> Service {
        let countries = common::root().join("policies/countries-loopback.csv").display().to_string();
        Service::start_with(&[&["--countries", &countries], extra].concat())
    }

    pub fn start_with(extra: &[&str]) -> Service {
        Service::launch(TestLimits::default(), extra)
    }

    /// A service on a fresh state directory whose test policy has `limits`.
    pub fn launch(limits: TestLimits, extra: &[&str]) -> Service {
        Service::launch_prepared(limits, extra, |_| {})
    }

    /// A service on a fresh state directory whose test policy has `limits`, after `prepare`
    /// has been run on that directory.
    pub fn launch_prepared(limits: TestLimits, extra: &[&str], prepare: impl FnOnce(&Path)) -> Service {
        Service::launch_in(tempfile::tempdir().expect("tempdir"), limits, extra, prepare)
    }

    /// A service as [`Service::launch`] starts it, on a state directory that keeps its state on
    /// `backend`.
    pub fn launch_on(backend: &common::postgres::Backend, limits: TestLimits, extra: &[&str]) -> Service {
        let dir = tempfile::tempdir().expect("tempdir");
        backend.attach(&dir.path().join("home"));
        Service::launch_in(dir, limits, extra, |_| {})
    }

    fn launch_in(dir: tempfile::TempDir, limits: TestLimits, extra: &[&str], prepare: impl FnOnce(&Path)) -> Service {
        let (home, _, _) = common::home_with_persons(dir.path());
        prepare(home.root());
        let policy = common::write_policy(dir.path(), limits);
        let home = home.root().to_path_buf();
        let registered =
            common::ringfence_command(&home).args(["policy", "register"]).arg(&policy).output().expect("register");
        assert!(registered.status.success());
        let args: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        let (child, url) = Service::spawn(&home, &args);
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Service { _dir: dir, home, url, child, agent, args }
    }

    pub fn spawn(home: &Path, args: &[String]) -> (Child, String) {
        let mut child = common::ringfence_command(home)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("address line");
        let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("{line:?}")).to_string();
        (child, url)
    }

    /// Kills the service (`kill -9`) and starts it again on the same state directory.
    pub fn restart(&mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
        (self.child, self.url) = Service::spawn(&self.home, &self.args);
    }

    /// The service's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn token(&self, user: &str) -> String {
        let store = Store::open(&self.home).expect("store");
        tokens::issue(&store, user, Duration::days(1), "test").expect("token").secret
    }

    pub fn answer(mut response: ureq::http::Response<ureq::Body>) -> Answer {
        let cache_control = response.headers().get("cache-control").and_then(|v| v.to_str().ok()).map(str::to_string);
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_vec().expect("body");
        Answer { status, body, cache_control }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.get_forwarded(path, token, None)
    }

    pub fn get_forwarded(&self, path: &str, token: Option<&str>, forwarded_for: Option<&str>) -> Answer {
        let mut request = self.agent.get(format!("{}{path}", self.url));
        if let Some(hops) = forwarded_for {
            request = request.header("X-Forwarded-For", hops);
        }
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        Service::answer(request.call().expect("GET"))
    }

    pub fn post(&self, path: &str, token: &str, content_type: &str, body: &[u8]) -> Answer {
        let request = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", content_type);
        Service::answer(request.send(body).expect("POST"))
    }

    pub fn submit(&self, token: &str, guest: &str, args: &[&str]) -> Answer {
        let wasm = std::fs::read(common::guest(guest)).expect("guest");
        let query: String = args.iter().map(|a| format!("&arg={a}")).collect();
        self.post(&format!("/api/v1/projects/test-project/jobs?{query}"), token, "application/wasm", &wasm)
    }

    /// The job as `GET /api/v1/jobs/{id}` shows it to `token`'s user.
    pub fn job(&self, token: &str, id: &str) -> serde_json::Value {
        self.get(&format!("/api/v1/jobs/{id}"), Some(token)).json()
    }

    /// Polls the job until `done` holds of it.
    pub fn wait_for(&self, token: &str, id: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let job = self.job(token, id);
            if done(&job) {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} stuck: {job}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Submits a job, waits for it to end, and returns it as `GET /api/v1/jobs/{id}` shows it.
    pub fn run(&self, token: &str, guest: &str, args: &[&str]) -> serde_json::Value {
        let accepted = self.submit(token, guest, args);
        assert_eq!(accepted.status, 202, "{}", String::from_utf8_lossy(&accepted.body));
        let id = accepted.json()["id"].as_str().expect("job id").to_string();
        self.wait_for(token, &id, ended)
    }

    /// Posts an HTML form as a browser would, without following redirects; `cookie` is the
    /// session cookie, `origin` the `Origin` header. Returns the answer and its `Location`.
    pub fn form(
        &self,
        path: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
        fields: &[(&str, &str)],
    ) -> (Answer, String) {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
        let body: String =
            fields.iter().map(|(k, v)| format!("{k}={}", v.replace(' ', "+"))).collect::<Vec<_>>().join("&");
        let mut request =
            agent.post(format!("{}{path}", self.url)).header("Content-Type", "application/x-www-form-urlencoded");
        if let Some(cookie) = cookie {
            request = request.header("Cookie", format!("ringfence_session={cookie}"));
        }
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        let response = request.send(body.as_bytes()).expect("POST form");
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let cookie = response.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let answer = Service::answer(response);
        (answer, if location.is_empty() { cookie } else { format!("{location} {cookie}") })
    }

    /// Logs `token` in to the checker pages; returns the session id from the cookie.
    pub fn login(&self, token: &str) -> String {
        let (answer, location) = self.form("/checker/login", None, None, &[("token", token)]);
        assert_eq!(answer.status, 303, "{}", String::from_utf8_lossy(&answer.body));
        let session = location.split("ringfence_session=").nth(1).expect("session cookie");
        session.split(';').next().expect("cookie value").to_string()
    }

    /// A checker page as the browser with session `cookie` gets it: status, `Location`, body.
    pub fn page(&self, path: &str, cookie: &str) -> (u16, String, String) {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
        let mut response = agent
            .get(format!("{}{path}", self.url))
            .header("Cookie", format!("ringfence_session={cookie}"))
            .call()
            .expect("GET page");
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let body = response.body_mut().read_to_string().expect("page");
        (response.status().as_u16(), location, body)
    }

    /// `ringfence remote --url <this service> ARGS` with `token` in `RINGFENCE_TOKEN`.
    pub fn remote(&self, token: &str, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_ringfence"))
            .args(["remote", "--url", &self.url])
            .args(args)
            .env("RINGFENCE_TOKEN", token)
            .env_remove("RINGFENCE_HOME")
            .output()
            .expect("ringfence remote")
    }

    pub fn audit_actions(&self) -> Vec<String> {
        let store = Store::open(&self.home).expect("store");
        ringfence::audit::entries(&store, None).expect("audit").into_iter().map(|e| e.action).collect()
    }
}

/// Whether a job has ended and its outputs' checks have run, in either view (a researcher's
/// `state`, a reviewer's `status`).
pub fn ended(job: &serde_json::Value) -> bool {
    let checked = job["exports"].as_array().is_some_and(|e| e.iter().all(|r| r["status"] != "pending"));
    let state = job.get("state").or_else(|| job.get("status")).and_then(|s| s.as_str());
    checked && !matches!(state, Some("queued" | "running"))
}

pub fn home(service: &Service) -> &Path {
    &service.home
}

//! Nothing but a reviewed release reaches the researcher. A hostile guest (`escape leak`) tries
//! every side door at once with a number taken from the data; over real HTTP and through the
//! researcher's client the number is nowhere, while the checker sees all of it. Then the channel
//! that is left: every researcher view of jobs that differ only in what their guest did holds
//! only the facts `view::channel` counts, and SECURITY.md states the bound the code computes.

mod common;
#[path = "service/harness.rs"]
mod harness;

use std::collections::BTreeSet;

use common::TestLimits;
use harness::{Service, ended};
use ringfence::catalog::Catalog;
use ringfence::disclosure::checks_for;
use ringfence::policy::{OperatorCaps, Policy};
use ringfence::queue::ExportQueue;
use ringfence::view::JobState;
use ringfence::view::channel::Bound;
use ringfence_sdk::manifest::OutputKind;
use serde_json::Value;

/// Every key and every string or number anywhere in `value`.
fn leaves(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                out.push(key.clone());
                leaves(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| leaves(v, out)),
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Bool(_) | Value::Null => {}
    }
}

/// Asserts that nothing in `text` (a response or a line of output) carries what the guest chose.
fn assert_clean(what: &str, text: &str, secret: u64, exit: u64) {
    let marker = format!("SECRET{secret}");
    assert!(!text.contains(&marker) && !text.contains("leak-"), "{what} names the guest's value: {text}");
    assert!(!text.contains(&secret.to_string()), "{what} carries the number {secret}: {text}");
    assert!(!text.contains(&format!("exit: {exit}")), "{what} carries the exit code: {text}");
    assert!(!text.contains('\u{1b}'), "{what} holds a raw escape character");
}

/// Asserts the same of a JSON answer, key by key and value by value.
fn assert_clean_json(what: &str, value: &Value, secret: u64, exit: u64) {
    let mut all = Vec::new();
    leaves(value, &mut all);
    for leaf in &all {
        assert_clean(what, leaf, secret, exit);
    }
    for key in ["size", "sha256", "file", "guest_description", "record", "stdout", "peak_memory_bytes", "detail"] {
        assert!(!all.iter().any(|l| l == key), "{what} has {key:?}: {value}");
    }
}

/// The size of the projection the job saw: the number the leaking guest tries to pass on.
fn projection_size(service: &Service, request: i64) -> u64 {
    let queue = ExportQueue::connect(&service.home).expect("queue");
    let request = queue.get(request).expect("request");
    let path = queue.catalog().projection_dir(&request.datasets[0].projection).join("data.arrow");
    std::fs::metadata(path).expect("projection").len()
}

#[test]
fn a_guest_passes_nothing_to_its_researcher_and_everything_to_the_checker() {
    let service = Service::start(&[]);
    let alice = service.token("alice");
    let carol = service.token("carol");
    let job = service.run(&alice, "escape", &["leak"]);
    let id = job["id"].as_str().expect("id").to_string();
    let request = job["exports"][0]["id"].as_i64().expect("the leak file is a request");
    let secret = projection_size(&service, request);
    let exit = secret % 100 + 2;
    assert_eq!(job["state"], "failed", "{job}");

    // The researcher over HTTP: the job, the queue, each request.
    let mut answers = vec![("GET /jobs/{id}", service.job(&alice, &id))];
    answers.push(("GET /exports", service.get("/api/v1/exports", Some(&alice)).json()));
    for r in job["exports"].as_array().expect("exports") {
        let rid = r["id"].as_i64().expect("id");
        answers.push(("GET /exports/{id}", service.get(&format!("/api/v1/exports/{rid}"), Some(&alice)).json()));
    }
    for (what, answer) in &answers {
        assert_clean_json(what, answer, secret, exit);
    }
    assert_eq!(job["exports"].as_array().map(Vec::len), Some(1), "the file with an escape in its name is refused");

    // The researcher's client.
    for args in [&["job", &id][..], &["exports"], &["export", &request.to_string()]] {
        let out = service.remote(&alice, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert_clean(&format!("ringfence remote {args:?}"), &text, secret, exit);
        assert_clean("its stderr", &String::from_utf8_lossy(&out.stderr), secret, exit);
    }
    let out = service.remote(&alice, &["job", &id]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("state     failed"), "{out:?}");

    // The checker sees all of it.
    let full = service.job(&carol, &id);
    let marker = format!("SECRET{secret}");
    assert_eq!(full["status"], format!("exit: {exit}"));
    assert_eq!(full["record"]["stdout"]["written_bytes"], secret);
    assert_eq!(full["exports"][0]["file"], format!("leak-{marker}.csv"));
    assert_eq!(full["exports"][0]["size"], secret);
    assert_eq!(full["exports"][0]["guest_description"], marker);
    let discarded = full["record"]["discarded"].to_string();
    assert!(discarded.contains(&marker) && discarded.contains("outside A-Z"), "{discarded}");

    // On the host, the checker's CLI shows the guest's text with the escape made visible.
    let shown = common::ringfence_command(&service.home).args(["exports", "show", &request.to_string()]).output();
    let shown = shown.expect("exports show");
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains(&format!("leak-{marker}.csv")) && text.contains(&marker), "{text}");
    let audit = common::ringfence_command(&service.home).args(["audit", "show"]).output().expect("audit show");
    for out in [&shown.stdout, &audit.stdout] {
        assert!(!out.contains(&0x1b), "no raw escape reaches the terminal");
    }
}

#[test]
fn run_on_the_host_prints_the_researcher_view() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::home_with_persons(dir.path());
    let home = dir.path().join("home");
    let policy = common::write_policy(dir.path(), TestLimits::default());
    let out = common::ringfence_command(&home)
        .args(["run", "--policy", &policy.display().to_string(), "--user", "alice"])
        .arg(common::guest("escape"))
        .args(["--", "leak"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "the guest failed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("state     failed") && text.contains("export    #1 frequency: fail"), "{text}");
    assert!(!text.contains("SECRET") && !text.contains("exit:") && !text.contains("bytes"), "{text}");
}

/// The researcher view of each job, with the host's bookkeeping (ids, times) taken out: what
/// is left is what the guest's behaviour decided.
fn steered(job: &Value) -> Value {
    let mut job = job.clone();
    for key in ["id", "submitted_at", "ended_at"] {
        job[key] = Value::Null;
    }
    for r in job["exports"].as_array_mut().into_iter().flatten() {
        for key in ["id", "job", "created_at", "updated_at"] {
            r[key] = Value::Null;
        }
    }
    job
}

#[test]
fn the_channel_left_holds_only_the_counted_facts_and_security_md_states_its_bound() {
    let limits = TestLimits { cpu_seconds: 1, memory_mb: 64, export_max_files: 4, ..TestLimits::default() };
    let countries = common::root().join("policies/countries-loopback.csv").display().to_string();
    let service = Service::launch(limits, &["--countries", &countries, "--workers", "2"]);
    let alice = service.token("alice");
    let behaviours: &[(&str, &[&str])] = &[
        ("escape", &["leak"]),
        ("escape", &["spin"]),
        ("escape", &["alloc"]),
        ("escape", &["recurse"]),
        ("escape", &["export-bytes", "2000000"]),
        ("escape", &["export-files", "3"]),
        ("escape", &["stdout", "100"]),
        ("escape", &["export", "table.csv", "a", "manifest.json", "nojson"]),
        ("crosstab", &["region"]),
        ("crosstab", &["region", "age"]),
    ];
    let job_keys: BTreeSet<&str> = ["id", "project", "user", "state", "submitted_at", "ended_at", "exports"].into();
    let request_keys: BTreeSet<&str> = [
        "id",
        "project",
        "job",
        "submitted_by",
        "kind",
        "status",
        "outcome",
        "not_passed",
        "description",
        "justification",
        "reviews_required",
        "decisions",
        "created_at",
        "updated_at",
    ]
    .into();
    let ends: Vec<String> = JobState::ENDS.iter().map(ToString::to_string).collect();
    let mut views = BTreeSet::new();
    let mut states = BTreeSet::new();
    for (guest, args) in behaviours {
        let job = service.run(&alice, guest, args);
        assert!(ended(&job));
        let keys: BTreeSet<&str> = job.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(keys, job_keys, "{guest} {args:?}: {job}");
        let state = job["state"].as_str().expect("state").to_string();
        assert!(ends.contains(&state), "{state} is not a counted end");
        let exports = job["exports"].as_array().expect("exports");
        assert!(exports.len() as u64 <= limits.export_max_files, "{job}");
        for r in exports {
            let keys: BTreeSet<&str> = r.as_object().expect("object").keys().map(String::as_str).collect();
            assert_eq!(keys, request_keys, "{r}");
            let kind: OutputKind = r["kind"].as_str().expect("kind").parse().expect("a counted kind");
            let allowed: Vec<&str> = checks_for(kind)
                .iter()
                .map(|c| c.as_str())
                .chain(["free_form", "stored_file", "check_error"])
                .collect();
            for check in r["not_passed"].as_array().expect("names shown by default") {
                assert!(allowed.contains(&check.as_str().expect("name")), "{check} for a {kind} table");
            }
            assert_eq!((r["description"].as_str(), r["justification"].as_str()), (Some(""), Some("")));
        }
        states.insert(state);
        views.insert(steered(&job).to_string());
    }
    for expected in ["succeeded", "failed", "stopped: cpu_limit", "stopped: memory_limit", "stopped: export_limit"] {
        assert!(states.contains(expected), "{expected} in {states:?}");
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let (_, catalog, _) = common::home_with_persons(dir.path());
    let test_policy = common::write_policy(dir.path(), limits);
    let test_policy = Policy::load(&test_policy, &OperatorCaps::default(), &catalog, common::today()).expect("policy");
    let bound = Bound::of(&test_policy.limits, &test_policy.disclosure);
    let untimed: f64 = bound.facts.iter().filter(|f| !f.fact.starts_with("when")).map(|f| f.bits).sum();
    assert!((views.len() as f64).log2() <= untimed, "{} distinct views exceed {untimed:.1} bits", views.len());
    assert!(views.len() >= 8, "the views tell the behaviours apart, as counted: {views:#?}");

    let demo = demo_policy(&catalog, dir.path());
    let stated = Bound::of(&demo.limits, &demo.disclosure);
    let security = std::fs::read_to_string(common::root().join("SECURITY.md")).expect("SECURITY.md");
    for number in [
        format!("B = {:.1} bits", stated.bits_per_job),
        format!("Q = {}", stated.jobs_per_day),
        format!("{:.0} bits a day", stated.bits_per_day),
    ] {
        assert!(security.contains(&number), "SECURITY.md states {number}");
    }
    for fact in &stated.facts {
        assert!(security.contains(&format!("{:.1} bits", fact.bits)), "SECURITY.md counts {}", fact.fact);
    }
}

/// The shipped demo policy, against `catalog`.
fn demo_policy(catalog: &Catalog, dir: &std::path::Path) -> Policy {
    let path = dir.join("demo.toml");
    std::fs::copy(common::root().join("policies/demo.toml"), &path).expect("copy");
    Policy::load(&path, &OperatorCaps::default(), catalog, common::today()).expect("demo policy")
}

#[test]
fn a_user_past_the_daily_quota_is_refused_until_the_day_has_passed() {
    let limits = TestLimits { max_jobs_per_day: 2, ..TestLimits::default() };
    let countries = common::root().join("policies/countries-loopback.csv").display().to_string();
    let service = Service::launch(limits, &["--countries", &countries]);
    let alice = service.token("alice");
    for _ in 0..2 {
        assert_eq!(service.submit(&alice, "escape", &["stdout", "1"]).status, 202);
    }
    let refused = service.submit(&alice, "escape", &["stdout", "1"]);
    assert_eq!(refused.status, 429, "{}", String::from_utf8_lossy(&refused.body));
    assert!(refused.json()["error"].as_str().expect("error").contains("allows 2"), "{}", refused.json());
    let conn = rusqlite::Connection::open(service.home.join("state.sqlite")).expect("db");
    conn.execute("UPDATE jobs SET submitted_at = '2026-01-01T00:00:00.000000Z'", []).expect("age the jobs");
    assert_eq!(service.submit(&alice, "escape", &["stdout", "1"]).status, 202, "a day later");
}

#[test]
fn a_researcher_who_also_checks_sees_their_own_job_only_as_a_researcher() {
    let limits = TestLimits {
        extra_members: "[[members]]\nuser = \"rita\"\nroles = [\"researcher\", \"checker\"]\n",
        ..TestLimits::default()
    };
    let countries = common::root().join("policies/countries-loopback.csv").display().to_string();
    let service = Service::launch(limits, &["--countries", &countries]);
    let rita = service.token("rita");
    let job = service.run(&rita, "escape", &["leak"]);
    let id = job["exports"][0]["id"].as_i64().expect("request");
    let secret = projection_size(&service, id);
    for answer in [
        service.job(&rita, job["id"].as_str().expect("id")),
        service.get(&format!("/api/v1/exports/{id}"), Some(&rita)).json(),
        service.get("/api/v1/exports", Some(&rita)).json(),
    ] {
        assert_clean_json("rita's own job", &answer, secret, secret % 100 + 2);
    }
    let session = service.login(&rita);
    assert_eq!(service.page(&format!("/checker/requests/{id}"), &session).0, 403, "not on the checker pages either");
    let (_, _, queue) = service.page("/checker/", &session);
    assert!(!queue.contains(&format!("/checker/requests/{id}")), "nor in the checker's queue");
}

//! The HTTP service over real HTTP on 127.0.0.1: every bad case answered with the right status
//! and no detail, revocation taking effect on the next request, roles and projects enforced,
//! researchers kept from the numbers under review, and the submit → decide → release flow.

mod common;
#[path = "service/harness.rs"]
mod harness;
#[path = "service/webdriver.rs"]
mod webdriver;

use std::io::{BufRead, BufReader};

use chrono::Duration;
use common::TestLimits;
use harness::{Service, ended, home};
use ringfence::store::Store;
use ringfence::tokens;

#[test]
fn bad_tokens_get_401_without_detail_and_are_audited() {
    let service = Service::start(&[]);
    let good = service.token("alice");
    assert_eq!(service.get("/api/v1/whoami", Some(&good)).json()["user"], "alice");

    let store = Store::open(home(&service)).expect("store");
    let expired = tokens::issue(&store, "alice", Duration::seconds(-1), "test").expect("token").secret;
    let unknown = format!("rf_{}", "0".repeat(64));
    for (case, token) in [
        ("missing", None),
        ("malformed", Some("hello")),
        ("unknown", Some(&unknown[..])),
        ("expired", Some(&expired[..])),
    ] {
        let answer = service.get("/api/v1/whoami", token);
        assert_eq!(answer.status, 401, "{case}");
        assert_eq!(answer.json(), serde_json::json!({ "error": "unauthorized" }), "{case}: no detail");
    }
    let refused = service.audit_actions().iter().filter(|a| *a == "auth.refused").count();
    assert_eq!(refused, 4);
}

#[test]
fn a_revoked_token_stops_working_on_the_next_request() {
    let service = Service::start(&[]);
    let token = service.token("alice");
    assert_eq!(service.get("/api/v1/exports", Some(&token)).status, 200);
    let revoked = common::ringfence_command(home(&service))
        .args(["token", "revoke", "--user", "alice"])
        .output()
        .expect("revoke");
    assert!(revoked.status.success());
    assert_eq!(service.get("/api/v1/exports", Some(&token)).status, 401);
}

#[test]
fn a_token_idle_longer_than_the_timeout_is_refused() {
    let service = Service::start(&["--idle-timeout", "10m"]);
    let token = service.token("alice");
    assert_eq!(service.get("/api/v1/whoami", Some(&token)).status, 200);
    let conn = rusqlite::Connection::open(home(&service).join("state.sqlite")).expect("db");
    conn.execute("UPDATE tokens SET last_used_at = '2026-01-01T00:00:00Z'", []).expect("age the token");
    assert_eq!(service.get("/api/v1/whoami", Some(&token)).status, 401);
}

#[test]
fn roles_and_projects_are_enforced_and_unknown_ids_are_404() {
    let service = Service::start(&[]);
    let alice = service.token("alice");
    let carol = service.token("carol");
    let mallory = service.token("mallory");
    let submitted = service.run(&alice, "crosstab", &["region"]);
    let job = submitted["id"].as_str().expect("job id").to_string();
    let id = submitted["exports"][0]["id"].as_i64().expect("request id");

    assert_eq!(service.submit(&carol, "crosstab", &[]).status, 403, "a checker may not submit");
    assert_eq!(service.submit(&mallory, "crosstab", &[]).status, 403, "a non-member may not submit");
    assert_eq!(service.get(&format!("/api/v1/exports/{id}"), Some(&mallory)).status, 404, "as if it did not exist");
    assert_eq!(service.get(&format!("/api/v1/jobs/{job}"), Some(&mallory)).status, 404);
    assert_eq!(service.get("/api/v1/exports/999", Some(&mallory)).status, 404, "the same answer");
    assert_eq!(service.get("/api/v1/exports?project=test-project", Some(&mallory)).status, 403);
    assert_eq!(service.get("/api/v1/exports", Some(&mallory)).json(), serde_json::json!([]));
    let approve = br#"{"decision": "approve"}"#;
    assert_eq!(
        service.post(&format!("/api/v1/exports/{id}/decision"), &alice, "application/json", approve).status,
        403
    );
    assert_eq!(
        service.post(&format!("/api/v1/exports/{id}/decision"), &mallory, "application/json", approve).status,
        404
    );

    assert_eq!(service.get("/api/v1/exports/999", Some(&carol)).status, 404);
    assert_eq!(service.get("/api/v1/jobs/no-such-job", Some(&carol)).status, 404);
    assert_eq!(service.get(&format!("/api/v1/jobs/{job}"), Some(&carol)).json()["status"], "succeeded");
}

#[test]
fn malformed_bodies_are_400_and_oversized_uploads_413() {
    let service = Service::start(&["--max-upload-mb", "4"]);
    let alice = service.token("alice");
    let carol = service.token("carol");
    // Send 8 MiB from another thread (the server may stop reading and close the connection
    // once the limit is passed) and read the answer here.
    let address = service.url.strip_prefix("http://").expect("http url");
    let stream = std::net::TcpStream::connect(address).expect("connect");
    let mut writer = stream.try_clone().expect("clone");
    let head = format!(
        "POST /api/v1/projects/test-project/jobs HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {alice}\r\n\
         Content-Type: application/wasm\r\nContent-Length: {}\r\n\r\n",
        8 << 20
    );
    let sender = std::thread::spawn(move || {
        let _ = std::io::Write::write_all(&mut writer, head.as_bytes());
        let _ = std::io::Write::write_all(&mut writer, &vec![0u8; 8 << 20]);
    });
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line).expect("status line");
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
    sender.join().expect("sender");
    let not_wasm = service.post("/api/v1/projects/test-project/jobs", &alice, "application/wasm", b"not a module");
    assert_eq!(not_wasm.status, 400);

    let id = service.run(&alice, "crosstab", &["region"])["exports"][0]["id"].as_i64().expect("id");
    let path = format!("/api/v1/exports/{id}/decision");
    for body in [&b"{not json"[..], br#"{"decision": "maybe"}"#, br#"{"decision": "approve", "extra": 1}"#] {
        let answer = service.post(&path, &carol, "application/json", body);
        assert_eq!(answer.status, 400, "{}", String::from_utf8_lossy(body));
    }
    assert_eq!(service.get("/api/v1/exports?status=done", Some(&carol)).status, 400);
}

#[test]
fn researchers_see_outcomes_not_the_numbers_under_review() {
    let service = Service::start(&[]);
    let alice = service.token("alice");
    let carol = service.token("carol");
    let id = service.run(&alice, "crosstab", &["region", "age"])["exports"][0]["id"].as_i64().expect("id");
    let path = format!("/api/v1/exports/{id}");
    let researcher = service.get(&path, Some(&alice)).json();
    assert_eq!(researcher["outcome"], "fail");
    assert!(researcher.get("report").is_none(), "{researcher}");
    let text = researcher.to_string();
    assert!(!text.contains("units; minimum"), "no cell counts for the researcher: {text}");
    assert!(researcher["not_passed"].as_array().expect("not passed").iter().any(|c| c == "threshold"), "{researcher}");
    let checker = service.get(&path, Some(&carol)).json();
    assert!(checker["report"]["results"].to_string().contains("units; minimum is 10"), "{checker}");
}

#[test]
fn a_later_table_that_differences_an_earlier_one_shows_on_the_earlier_ones_checker_views_only() {
    let service = Service::start(&[]);
    let (alice, carol) = (service.token("alice"), service.token("carol"));
    let first = service.run(&alice, "crosstab", &["region"])["exports"][0]["id"].as_i64().expect("id");
    let later = service.run(&alice, "liar", &["region-minus", "2"]);
    assert_eq!(later["exports"][0]["outcome"], "fail");
    let later = later["exports"][0]["id"].as_i64().expect("id");
    let path = format!("/api/v1/exports/{first}");
    let checker = service.get(&path, Some(&carol)).json();
    let overlaps = checker["later_overlaps"].as_array().expect("overlaps");
    assert_eq!(overlaps.len(), 2, "{checker}");
    assert!(overlaps.iter().all(|o| o["later"] == later && o["units"] == 1), "{checker}");
    let (status, _, page) = service.page(&format!("/checker/requests/{first}"), &service.login(&carol));
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("href=\"/checker/requests/{later}\"")) && page.contains("differ by 1 unit"),
        "{page}"
    );
    // The earlier request's researcher sees what they saw before the later job ran.
    let researcher = service.get(&path, Some(&alice)).json();
    assert_eq!(
        (researcher["outcome"].as_str(), researcher.get("later_overlaps")),
        (Some("pass"), None),
        "{researcher}"
    );
    assert_eq!(researcher["not_passed"], serde_json::json!([]), "{researcher}");
}

#[test]
fn an_output_goes_from_upload_to_download_over_http() {
    let service = Service::start(&[]);
    let alice = service.token("alice");
    let carol = service.token("carol");
    let submitted = service.run(&alice, "crosstab", &["region"]);
    let id = submitted["exports"][0]["id"].as_i64().expect("id");
    let described = service.post(
        &format!("/api/v1/exports/{id}/description"),
        &alice,
        "application/json",
        br#"{"justification": "Table 1 of the paper"}"#,
    );
    assert_eq!(described.json()["justification"], "Table 1 of the paper");
    let early = service.post(&format!("/api/v1/exports/{id}/release"), &alice, "application/json", b"");
    assert_eq!(early.status, 409, "not approved yet");
    let approved = service.post(
        &format!("/api/v1/exports/{id}/decision"),
        &carol,
        "application/json",
        br#"{"decision": "approve"}"#,
    );
    assert_eq!(approved.json()["status"], "approved");
    let released = service.post(&format!("/api/v1/exports/{id}/release"), &alice, "application/json", b"");
    assert_eq!(released.status, 200);
    assert_eq!(released.cache_control.as_deref(), Some("no-store"));
    let job = submitted["id"].as_str().expect("job");
    let written = std::fs::read(home(&service).join("jobs").join(job).join("exports/region.csv")).expect("export");
    assert_eq!(released.body, written, "byte-identical");
    let actions = service.audit_actions();
    assert!(actions.ends_with(&["request.approved".to_string(), "request.released".to_string()]), "{actions:?}");
}

/// Writes a country table into a fresh directory kept alive by the caller.
fn countries(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("countries.csv");
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

#[test]
fn requests_from_a_country_not_allowed_are_refused_and_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = countries(&dir, "127.0.0.0/8,US\n::1/128,US\n");
    let service = Service::start_with(&["--countries", &table]);
    let token = service.token("alice");
    let answer = service.get("/api/v1/whoami", Some(&token));
    assert_eq!((answer.status, answer.json()), (403, serde_json::json!({ "error": "forbidden" })));
    assert!(service.audit_actions().contains(&"access.refused".to_string()));
    for _ in 0..24 {
        assert_eq!(service.get("/api/v1/whoami", Some(&token)).status, 403);
    }
    let refused = service.audit_actions().iter().filter(|a| *a == "access.refused").count();
    assert_eq!(refused, 2, "25 refusals within a minute are two entries: the first and the tenth");

    let allowed = dir.path().join("allowed.txt");
    std::fs::write(&allowed, "# our own list\nUS\n").expect("write");
    let widened = Service::start_with(&["--countries", &table, "--allowed-countries", &allowed.display().to_string()]);
    let token = widened.token("alice");
    assert_eq!(widened.get("/api/v1/whoami", Some(&token)).status, 200);
}

#[test]
fn unknown_addresses_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = Service::start_with(&["--countries", &countries(&dir, "192.0.2.0/24,NL\n")]);
    assert_eq!(service.get("/api/v1/whoami", Some(&service.token("alice"))).status, 403);
}

#[test]
fn forwarded_for_is_believed_from_a_trusted_proxy_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = countries(&dir, "127.0.0.0/8,US\n192.0.2.0/24,DE\n203.0.113.0/24,US\n");
    let behind_proxy = Service::start_with(&["--countries", &table, "--trusted-proxy", "127.0.0.1"]);
    let token = behind_proxy.token("alice");
    assert_eq!(behind_proxy.get_forwarded("/api/v1/whoami", Some(&token), Some("192.0.2.9")).status, 200);
    assert_eq!(behind_proxy.get_forwarded("/api/v1/whoami", Some(&token), Some("203.0.113.5")).status, 403);
    assert_eq!(behind_proxy.get_forwarded("/api/v1/whoami", Some(&token), Some("192.0.2.9, 203.0.113.5")).status, 403);
    let lines = |first: &str, second: &str| {
        let request = behind_proxy
            .agent
            .get(format!("{}/api/v1/whoami", behind_proxy.url))
            .header("Authorization", format!("Bearer {token}"))
            .header("X-Forwarded-For", first)
            .header("X-Forwarded-For", second);
        Service::answer(request.call().expect("GET")).status
    };
    assert_eq!(lines("192.0.2.9", "203.0.113.5"), 403, "the line the proxy appended wins, not the client's");
    assert_eq!(lines("203.0.113.5", "192.0.2.9"), 200);
    let unparsable = behind_proxy.get_forwarded("/api/v1/whoami", Some(&token), Some("203.0.113.5, unknown"));
    assert_eq!(unparsable.status, 403, "a hop that does not parse is refused, not skipped");

    let direct = Service::start_with(&["--countries", &table]);
    let token = direct.token("alice");
    let spoofed = direct.get_forwarded("/api/v1/whoami", Some(&token), Some("192.0.2.9"));
    assert_eq!(spoofed.status, 403, "an untrusted peer's header is ignored");
}

#[test]
fn a_third_job_waits_in_the_queue_and_starts_when_one_of_the_first_two_ends() {
    let limits = TestLimits { wall_seconds: 2, ..TestLimits::default() };
    let countries = common::root().join("policies/countries-loopback.csv").display().to_string();
    let service = Service::launch(limits, &["--countries", &countries, "--workers", "4"]);
    let alice = service.token("alice");
    let ids: Vec<String> = (0..3)
        .map(|_| {
            let accepted = service.submit(&alice, "escape", &["spin"]);
            assert_eq!(accepted.status, 202);
            accepted.json()["id"].as_str().expect("id").to_string()
        })
        .collect();
    service.wait_for(&alice, &ids[1], |j| j["state"] == "running");
    let third = service.job(&alice, &ids[2]);
    assert_eq!((third["state"].as_str(), third["position"].as_u64()), (Some("queued"), Some(1)), "{third}");
    for id in &ids {
        assert_eq!(service.wait_for(&alice, id, ended)["state"], "stopped: wall_clock_limit");
    }
    let store = Store::open(home(&service)).expect("store");
    let entries = ringfence::audit::entries(&store, None).expect("audit");
    let at = |action: &str, id: &str| {
        entries.iter().position(|e| e.action == action && e.subject.as_deref() == Some(&format!("job:{id}")))
    };
    let third_started = at("job.started", &ids[2]).expect("third started");
    let first_end = [&ids[0], &ids[1]].iter().filter_map(|id| at("job.finished", id)).min().expect("an end");
    assert!(first_end < third_started, "the third job started only after one of the first two ended");
}

#[test]
fn queued_jobs_survive_a_restart_and_running_ones_are_marked_interrupted() {
    let countries = common::root().join("policies/countries-loopback.csv").display().to_string();
    let mut service = Service::launch(TestLimits::default(), &["--countries", &countries, "--workers", "1"]);
    let alice = service.token("alice");
    let first = service.submit(&alice, "escape", &["spin"]).json()["id"].as_str().expect("id").to_string();
    service.wait_for(&alice, &first, |j| j["state"] == "running");
    let second = service.submit(&alice, "escape", &["spin"]).json()["id"].as_str().expect("id").to_string();
    assert_eq!(service.job(&alice, &second)["state"], "queued", "one worker");
    service.restart();
    assert_eq!(service.job(&alice, &first)["state"], "interrupted");
    service.wait_for(&alice, &second, |j| j["state"] == "running");
}

#[test]
fn too_many_failed_authentications_lock_the_address_out() {
    let service = Service::start(&[]);
    let good = service.token("alice");
    let wrong = format!("rf_{}", "1".repeat(64));
    for _ in 0..10 {
        assert_eq!(service.get("/api/v1/whoami", Some(&wrong)).status, 401);
    }
    let locked = service.get("/api/v1/whoami", Some(&good));
    assert_eq!(locked.status, 429, "even a good token waits out the window");
}

#[test]
fn every_documented_operation_is_served_and_needs_a_token() {
    let service = Service::start(&[]);
    let doc = service.get("/api/v1/openapi.json", None);
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 10, "{paths:?}");
    for (path, operations) in paths {
        let concrete = path.replace("{project}", "test-project").replace("{id}", "1");
        for method in operations.as_object().expect("operations").keys() {
            let request = ureq::http::Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(format!("{}{concrete}", service.url))
                .body(Vec::new())
                .expect("request");
            let answer = Service::answer(service.agent.run(request).expect("call"));
            let expected = if path.ends_with("openapi.json") { 200 } else { 401 };
            assert_eq!(answer.status, expected, "{method} {path}");
        }
    }
}

#[test]
fn members_see_the_granted_variables_of_their_datasets_and_nothing_else() {
    let service = Service::start(&[]);
    let granted = service.get("/api/v1/projects/test-project/datasets", Some(&service.token("alice")));
    assert_eq!(granted.status, 200);
    let datasets = granted.json();
    let columns: Vec<&str> =
        datasets[0]["columns"].as_array().expect("columns").iter().map(|c| c["name"].as_str().expect("name")).collect();
    assert_eq!(columns, common::GRANTED_COLUMNS, "only the approved variables, in order");
    assert_eq!(datasets[0]["columns"][1]["type"], "int64", "age");
    let text = datasets.to_string();
    assert!(!text.contains("person_id") && !text.contains("rows"), "no other variables, no row counts: {text}");
    let outsider = service.get("/api/v1/projects/test-project/datasets", Some(&service.token("mallory")));
    assert_eq!(outsider.status, 403);
}

#[test]
fn publications_are_registered_with_released_outputs_of_the_project_only() {
    let service = Service::start(&[]);
    let alice = service.token("alice");
    let carol = service.token("carol");
    let id = service.run(&alice, "crosstab", &["region"])["exports"][0]["id"].as_i64().expect("id");
    let path = "/api/v1/projects/test-project/publications";
    let publication =
        format!(r#"{{"title": "Income in the regions", "reference": "doi:10.1234/x", "requests": [{id}]}}"#);
    let early = service.post(path, &alice, "application/json", publication.as_bytes());
    assert_eq!(early.status, 400, "not released yet");
    assert!(early.json()["error"].as_str().expect("error").contains("not a released output"), "{}", early.json());

    let decision = format!("/api/v1/exports/{id}/decision");
    assert_eq!(service.post(&decision, &carol, "application/json", br#"{"decision": "approve"}"#).status, 200);
    assert_eq!(service.post(&format!("/api/v1/exports/{id}/release"), &alice, "application/json", b"").status, 200);
    let registered = service.post(path, &alice, "application/json", publication.as_bytes());
    assert_eq!(registered.status, 201, "{}", String::from_utf8_lossy(&registered.body));
    assert_eq!(registered.json()["requests"], serde_json::json!([id]));

    let empty = service.post(path, &alice, "application/json", br#"{"title": " ", "reference": "x"}"#);
    assert_eq!((empty.status, empty.json()["error"].as_str()), (400, Some("publication title: is empty")));
    let unknown =
        service.post(path, &alice, "application/json", br#"{"title": "t", "reference": "x", "requests": [999]}"#);
    assert_eq!(unknown.status, 400);
    assert_eq!(
        service.post(path, &carol, "application/json", publication.as_bytes()).status,
        403,
        "checkers do not register"
    );

    let register = service.get(path, Some(&carol)).json();
    assert_eq!(register.as_array().map(Vec::len), Some(1), "{register}");
    assert_eq!(register[0]["title"], "Income in the regions");
    assert_eq!(register[0]["registered_by"], "alice");
    assert_eq!(service.audit_actions().iter().filter(|a| *a == "publication.registered").count(), 1);
}

/// Runs `crosstab` region × age (which fails the threshold check) as alice; returns the
/// request's number.
fn failing_request(service: &Service) -> i64 {
    let job = service.run(&service.token("alice"), "crosstab", &["region", "age"]);
    assert_eq!(job["exports"][0]["outcome"], "fail");
    job["exports"][0]["id"].as_i64().expect("request id")
}

#[test]
fn a_checker_logs_in_and_rejects_a_failing_request_in_a_real_browser() {
    let service = Service::start(&[]);
    let id = failing_request(&service);
    let carol = service.token("carol");
    let browser = webdriver::Browser::start();

    browser.goto(&format!("{}/checker/", service.url));
    assert!(browser.url().ends_with("/checker/login"), "{}", browser.url());
    browser.find("#token").type_text(&carol);
    browser.find("#login").click();
    browser.wait_for_text("#user", "carol");
    assert!(browser.url().ends_with("/checker/"), "{}", browser.url());

    browser.find(&format!("a[href='/checker/requests/{id}']")).click();
    browser.wait_for_text("#outcome", "fail");
    let highlighted = browser.count("table.output tr.fail") + browser.count("table.output tr.review");
    let rows = browser.count("table.output tbody tr");
    let reason = "Cells under ten units; please merge age into bands";
    browser.find("#reason").type_text(reason);
    browser.find("#reject").click();
    browser.wait_for_text("#status", "rejected");
    let screenshot = browser.screenshot();
    assert!(screenshot.starts_with(b"\x89PNG"), "a rendered page");
    std::fs::write(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("checker-request.png"), screenshot)
        .expect("keep the screenshot");

    let queue = ringfence::queue::ExportQueue::connect(home(&service)).expect("queue");
    let stored = queue.get(id).expect("request");
    let report = stored.report.as_ref().expect("checked");
    // The page lists the table's own cells; the combinations it leaves out (judged as empty
    // cells) are in the report's findings only.
    let listed: std::collections::HashSet<_> =
        stored.manifest.as_ref().expect("manifest").cells.iter().map(|c| c.key.clone()).collect();
    let failing: std::collections::HashSet<_> = report
        .results
        .iter()
        .filter(|r| r.outcome != ringfence::disclosure::Outcome::Pass)
        .flat_map(|r| r.findings.iter().filter_map(|f| f.cell.clone()))
        .filter(|cell| listed.contains(cell))
        .collect();
    assert_eq!(highlighted, failing.len(), "exactly the listed cells with findings are highlighted");
    assert_eq!(rows, stored.manifest.as_ref().expect("manifest").cells.len(), "every cell is shown");
    assert!(failing.len() > 10 && failing.len() < rows, "{} of {rows}", failing.len());
    assert_eq!(stored.status, ringfence::queue::Status::Rejected);
    assert_eq!((stored.decisions[0].checker.as_str(), stored.decisions[0].reason.as_str()), ("carol", reason));
    assert_eq!(service.audit_actions().last().map(String::as_str), Some("request.rejected"));
}

/// Logs `token`'s checker in to the checker pages of `service` in `browser`.
fn log_in(browser: &webdriver::Browser, service: &Service, token: &str, user: &str) {
    browser.goto(&format!("{}/checker/", service.url));
    browser.find("#token").type_text(token);
    browser.find("#login").click();
    browser.wait_for_text("#user", user);
}

#[test]
fn two_checkers_review_independently_and_the_second_sees_the_first_only_after_deciding() {
    let countries = common::root().join("policies/countries-loopback.csv").display().to_string();
    let limits = TestLimits {
        extra_members: "[[members]]\nuser = \"dave\"\nroles = [\"checker\"]\n",
        extra_sections: "[disclosure]\nreviews_required = 2",
        ..TestLimits::default()
    };
    let service = Service::launch(limits, &["--countries", &countries]);
    let job = service.run(&service.token("alice"), "crosstab", &["region", "sex"]);
    let id = job["exports"][0]["id"].as_i64().expect("request id");
    let page = format!("{}/checker/requests/{id}", service.url);
    let carols_reason = "Counts well above ten; carol is content";

    let browser = webdriver::Browser::start();
    log_in(&browser, &service, &service.token("carol"), "carol");
    browser.goto(&page);
    browser.wait_for_text("#approvals", "0 of 2");
    browser.find("#reason").type_text(carols_reason);
    browser.find("#approve").click();
    browser.wait_for_text("#approvals", "1 of 2");
    assert_eq!(browser.find("#status").text(), "checked", "one approval of two");
    assert_eq!(browser.count("form.decide"), 0, "a checker who decided is not asked again");
    assert!(browser.source().contains(carols_reason), "carol sees her own decision");
    browser.goto(&format!("{}/checker/", service.url));
    assert!(browser.source().contains("checked · 1 of 2 approvals"), "the queue shows the progress");
    drop(browser);

    let dave = service.token("dave");
    let api = service.get(&format!("/api/v1/jobs/{}", job["id"].as_str().expect("job id")), Some(&dave)).json();
    assert_eq!(api["exports"][0]["decisions"], serde_json::json!([]), "withheld from dave over the API too: {api}");
    assert_eq!(
        (api["exports"][0]["withheld_decisions"].as_u64(), api["exports"][0]["approvals"].as_u64()),
        (Some(1), Some(1))
    );
    let browser = webdriver::Browser::start();
    log_in(&browser, &service, &dave, "dave");
    browser.goto(&page);
    browser.wait_for_text("#approvals", "1 of 2");
    let before = browser.source();
    assert!(!before.contains(carols_reason) && !before.contains("carol"), "dave does not see carol's decision");
    assert!(browser.find("#withheld").text().starts_with("1 decision by other checkers"));
    browser.find("#approve").click();
    browser.wait_for_text("#status", "approved");
    assert!(browser.source().contains(carols_reason), "once dave decided, both decisions show");
}

#[test]
fn checker_pages_refuse_forged_forms_and_end_with_the_token() {
    let service = Service::start(&[]);
    let id = failing_request(&service);
    let carol = service.token("carol");
    let session = service.login(&carol);
    let (status, _, body) = service.page(&format!("/checker/requests/{id}"), &session);
    assert_eq!(status, 200);
    let csrf = body.split("name=\"csrf\" value=\"").nth(1).and_then(|rest| rest.split('"').next()).expect("csrf");

    let decision = format!("/checker/requests/{id}/decision");
    let reject = |csrf: &str, origin: Option<&str>| {
        let fields = [("csrf", csrf), ("decision", "reject"), ("reason", "forged")];
        service.form(&decision, Some(&session), origin, &fields).0.status
    };
    assert_eq!(reject("0".repeat(64).as_str(), None), 403, "wrong CSRF token");
    assert_eq!(reject(csrf, Some("http://evil.example")), 403, "another site's form");
    let (no_session, location) = service.form(&decision, None, None, &[("csrf", csrf), ("decision", "reject")]);
    assert_eq!((no_session.status, location.starts_with("/checker/login")), (303, true));
    let queue = ringfence::queue::ExportQueue::connect(home(&service)).expect("queue");
    assert!(queue.get(id).expect("request").decisions.is_empty(), "nothing was decided");
    let without_reason = service.form(&decision, Some(&session), None, &[("csrf", csrf), ("decision", "reject")]);
    assert_eq!(without_reason.0.status, 400);
    assert!(String::from_utf8_lossy(&without_reason.0.body).contains("a reason is required to reject"));

    let login = service.get("/checker/login", None);
    assert_eq!(login.cache_control.as_deref(), Some("no-store"));
    let researcher = service.login(&service.token("alice"));
    let (status, _, body) = service.page("/checker/", &researcher);
    assert!(status == 200 && body.contains("not a checker in any project"), "{body}");
    assert_eq!(service.page(&format!("/checker/requests/{id}"), &researcher).0, 403);

    let revoked = common::ringfence_command(home(&service)).args(["token", "revoke", "--user", "carol"]).output();
    assert!(revoked.expect("revoke").status.success());
    let (status, location, _) = service.page("/checker/", &session);
    assert_eq!((status, location.as_str()), (303, "/checker/login"), "revoking the token ends the session");
}

#[test]
fn a_researcher_submits_follows_describes_and_fetches_with_ringfence_remote() {
    let service = Service::start(&[]);
    let alice = service.token("alice");
    let carol = service.token("carol");
    let module = common::guest("crosstab").display().to_string();
    let submitted = service.remote(&alice, &["submit", "--project", "test-project", &module, "--wait", "--", "region"]);
    let out = String::from_utf8_lossy(&submitted.stdout);
    assert_eq!(submitted.status.code(), Some(0), "{out}{}", String::from_utf8_lossy(&submitted.stderr));
    assert!(out.contains("state     succeeded") && out.contains("export    #1 frequency: pass, checked"), "{out}");

    let described = service.remote(&alice, &["describe", "1", "--justification", "Table 1 of the paper"]);
    assert!(String::from_utf8_lossy(&described.stdout).contains("justifies Table 1 of the paper"), "{described:?}");
    let refused = service.remote(&carol, &["describe", "1", "--description", "not mine"]);
    assert_eq!(refused.status.code(), Some(2), "only the submitter describes");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("403"), "{refused:?}");

    let out_dir = service.home.join("../fetched");
    let to = out_dir.display().to_string();
    let early = service.remote(&alice, &["release", "1", "--to", &to]);
    assert_eq!(early.status.code(), Some(2), "not approved yet");
    let approve = br#"{"decision": "approve"}"#;
    assert_eq!(service.post("/api/v1/exports/1/decision", &carol, "application/json", approve).status, 200);
    let fetched = service.remote(&alice, &["release", "1", "--to", &to]);
    assert_eq!(fetched.status.code(), Some(0), "{}", String::from_utf8_lossy(&fetched.stderr));
    let queue = ringfence::queue::ExportQueue::connect(&service.home).expect("queue");
    let stored = queue.content(&queue.get(1).expect("request")).expect("content");
    assert_eq!(std::fs::read(out_dir.join("region.csv")).expect("fetched file"), stored, "byte-identical");
    let again = service.remote(&alice, &["release", "1", "--to", &to]);
    assert_eq!(again.status.code(), Some(2), "an existing file is never overwritten");
    let listed = service.remote(&alice, &["exports"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("released as region.csv"), "{listed:?}");

    let tokenless = std::process::Command::new(env!("CARGO_BIN_EXE_ringfence"))
        .args(["remote", "--url", &service.url, "whoami"])
        .env_remove("RINGFENCE_TOKEN")
        .output()
        .expect("remote");
    assert_eq!(tokenless.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&tokenless.stderr).contains("needs your personal token"));
}

#[test]
fn a_user_may_have_only_so_many_jobs_waiting() {
    let countries = common::root().join("policies/countries-loopback.csv").display().to_string();
    let service = Service::launch(
        TestLimits { max_jobs_per_day: 40, ..TestLimits::default() },
        &["--countries", &countries, "--workers", "1"],
    );
    let alice = service.token("alice");
    let waiting = ringfence::queue::MAX_QUEUED_PER_USER as usize;
    let first = service.submit(&alice, "escape", &["spin"]).json()["id"].as_str().expect("id").to_string();
    service.wait_for(&alice, &first, |j| j["state"] == "running");
    for _ in 0..waiting {
        assert_eq!(service.submit(&alice, "escape", &["spin"]).status, 202);
    }
    let refused = service.submit(&alice, "escape", &["spin"]);
    assert_eq!(refused.status, 429, "{}", String::from_utf8_lossy(&refused.body));
    assert!(refused.json()["error"].as_str().expect("error").contains("jobs waiting"), "{}", refused.json());
}

/// A module of about `bytes` bytes that loads and runs: a data segment of that size.
fn module_of(bytes: usize) -> Vec<u8> {
    let data = "x".repeat(bytes - 64);
    let pages = bytes.div_ceil(64 << 10);
    wat::parse_str(format!(r#"(module (memory {pages}) (data (i32.const 0) "{data}") (func (export "_start")))"#))
        .expect("wat")
}

#[test]
fn uploads_count_against_a_daily_quota_whether_or_not_they_load() {
    let countries = common::root().join("policies/countries-loopback.csv").display().to_string();
    // Two of these fit in the day's 1 MiB, three do not.
    let wasm = module_of(450 << 10);
    let limits = TestLimits {
        extra_members: "[[members]]\nuser = \"bob\"\nroles = [\"researcher\"]\n",
        extra_sections: "max_uploads_per_day = 3\nmax_upload_mb_per_day = 1\n",
        ..TestLimits::default()
    };
    let service = Service::launch(limits, &["--countries", &countries]);
    let alice = service.token("alice");
    let path = "/api/v1/projects/test-project/jobs?arg=stdout&arg=1";
    let garbage = service.post(path, &alice, "application/wasm", b"\0asm garbage");
    assert_eq!(garbage.status, 400, "{}", String::from_utf8_lossy(&garbage.body));
    let small = std::fs::read(common::guest("escape")).expect("guest");
    for _ in 0..2 {
        assert_eq!(service.post(path, &alice, "application/wasm", &small).status, 202);
    }
    let refused = service.post(path, &alice, "application/wasm", b"\0asm garbage");
    assert_eq!(
        refused.status,
        429,
        "a module that did not load was an upload too: {}",
        String::from_utf8_lossy(&refused.body)
    );
    assert!(refused.json()["error"].as_str().expect("error").contains("uploaded 3 modules"), "{}", refused.json());

    // A day later the count starts again; now the bytes run out first.
    let conn = rusqlite::Connection::open(service.home.join("state.sqlite")).expect("db");
    conn.execute("UPDATE uploads SET at = '2026-01-01T00:00:00.000000Z'", []).expect("age the uploads");
    for _ in 0..2 {
        let accepted = service.post(path, &alice, "application/wasm", &wasm);
        assert_eq!(accepted.status, 202, "{}", String::from_utf8_lossy(&accepted.body));
    }
    let big = service.post(path, &alice, "application/wasm", &wasm);
    assert_eq!(big.status, 429, "{}", String::from_utf8_lossy(&big.body));
    let error = big.json()["error"].as_str().expect("error").to_string();
    assert!(
        error.contains("uploaded 0.9 MiB of modules and this one of 0.4 MiB") && error.ends_with("allows 1.0 MiB"),
        "{error}"
    );
    let bob = service.token("bob");
    assert_eq!(service.post(path, &bob, "application/wasm", &wasm).status, 202, "quotas are per user");
}

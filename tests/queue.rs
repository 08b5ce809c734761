//! The export queue end to end with real guests: the state machine, checkers' rules, lying
//! manifests, free-form files, byte-identical release, differencing and the audit log.

mod common;

use std::path::{Path, PathBuf};

use common::TestLimits;
use ringfence::audit;
use ringfence::disclosure::Outcome;
use ringfence::job::{JobRequest, ModuleSource};
use ringfence::policy::{OperatorCaps, Policy, Registry};
use ringfence::queue::{ALL_STATUSES, ExportQueue, ExportRequest, QueueError, Status, Verdict};
use ringfence::view::ResearcherRequest;

/// A registered project on the fixture data, with its queue open.
struct Project {
    dir: tempfile::TempDir,
    policy: Policy,
    queue: ExportQueue,
}

impl Project {
    /// A project whose members are alice and bob (researchers), carol and dave (checkers) and
    /// dora (both), needing `reviews` (1 or 2) approvals per output.
    fn new(reviews: u32) -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        let (home, catalog, _) = common::home_with_persons(dir.path());
        let limits = TestLimits {
            extra_members: r#"
[[members]]
user = "bob"
roles = ["researcher"]

[[members]]
user = "dave"
roles = ["checker"]

[[members]]
user = "dora"
roles = ["researcher", "checker"]
"#,
            extra_sections: if reviews == 2 { "[disclosure]\nreviews_required = 2" } else { "" },
            ..TestLimits::default()
        };
        let path = common::write_policy(dir.path(), limits);
        let policy = Policy::load(&path, &OperatorCaps::default(), &catalog, common::today()).expect("policy");
        Registry::open(home.root()).expect("registry").register(&policy).expect("register");
        let queue = ExportQueue::open(home.root()).expect("queue");
        Project { dir, policy, queue }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Runs a built guest for `user` and returns the requests made from its outputs.
    fn run(&mut self, user: &str, guest: &str, args: &[&str]) -> Vec<ExportRequest> {
        let wasm = std::fs::read(common::guest(guest)).expect("guest");
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let request = JobRequest { policy: &self.policy, user, module: ModuleSource::Submitted(&wasm), args: &args };
        let run = self.queue.run_job(common::sandbox(), &request, common::today()).expect("job runs");
        assert!(run.record.status.is_success(), "{}", run.record.status);
        run.requests
    }

    /// One request: the only output of `crosstab` over `variables`, run by `user`.
    fn crosstab(&mut self, user: &str, variables: &[&str]) -> ExportRequest {
        let mut requests = self.run(user, "crosstab", variables);
        assert_eq!(requests.len(), 1);
        requests.remove(0)
    }
}

fn decide(
    p: &mut Project,
    id: i64,
    checker: &str,
    verdict: Verdict,
    reason: Option<&str>,
) -> Result<Status, QueueError> {
    p.queue.decide(id, &common::acting(checker), verdict, reason).map(|r| r.status)
}

#[test]
fn the_state_machine_allows_exactly_its_moves() {
    use Status::*;
    let legal = [
        (Pending, Checked),
        (Checked, Approved),
        (Checked, Rejected),
        (Checked, ChangesRequested),
        (ChangesRequested, Checked),
        (Approved, Released),
    ];
    for from in ALL_STATUSES {
        for to in ALL_STATUSES {
            assert_eq!(from.may_become(to), legal.contains(&(from, to)), "{from} -> {to}");
        }
    }
    assert_eq!("changes_requested".parse::<Status>(), Ok(ChangesRequested));
    assert!("done".parse::<Status>().is_err());
}

#[test]
fn a_request_goes_from_checked_through_changes_to_released_and_refuses_every_illegal_move() {
    let mut p = Project::new(1);
    let request = p.crosstab("alice", &["region"]);
    assert_eq!((request.status, request.outcome), (Status::Checked, Some(Outcome::Pass)));
    assert_eq!(request.kind.as_str(), "frequency");
    assert_eq!((request.guest_description.as_str(), request.description.as_str()), ("Persons by region", ""));
    let id = request.id;
    let out = p.dir.path().join("released");

    fn illegal<T>(result: Result<T, QueueError>) -> bool {
        matches!(result, Err(QueueError::IllegalTransition { .. }))
    }
    assert!(illegal(p.queue.release(id, &common::acting("alice"), &out)), "checked cannot be released");
    assert!(illegal(p.queue.resubmit(id, &common::acting("alice"))), "only changes_requested can be resubmitted");

    assert_eq!(
        decide(&mut p, id, "carol", Verdict::RequestChanges, Some("say which year")).unwrap(),
        Status::ChangesRequested
    );
    assert!(illegal(decide(&mut p, id, "dave", Verdict::Approve, None)), "approve needs checked");
    p.queue
        .describe(id, &common::acting("alice"), None, Some("Counts for the 2026 report"))
        .expect("describe after changes requested");
    assert_eq!(p.queue.resubmit(id, &common::acting("alice")).expect("resubmit").status, Status::Checked);
    assert_eq!(decide(&mut p, id, "carol", Verdict::Approve, None).unwrap(), Status::Approved);
    assert!(illegal(decide(&mut p, id, "dave", Verdict::Reject, Some("too late"))), "approved is decided");
    assert!(matches!(
        p.queue.describe(id, &common::acting("alice"), Some("new"), None),
        Err(QueueError::UnderReview { .. })
    ));

    let released = p.queue.release(id, &common::acting("alice"), &out).expect("release");
    let job_copy = p.home().join("jobs").join(&request.job).join("exports").join(&request.file);
    assert_eq!(std::fs::read(&released).unwrap(), std::fs::read(job_copy).unwrap(), "byte-identical");
    assert_eq!(p.queue.get(id).unwrap().status, Status::Released);
    assert!(illegal(decide(&mut p, id, "carol", Verdict::Approve, None)));
    p.queue
        .release(id, &common::acting("bob"), &p.dir.path().join("again"))
        .expect("a released output can be downloaded again");

    let actions: Vec<String> = audit::entries(p.queue.store(), Some("test-project"))
        .unwrap()
        .into_iter()
        .filter(|e| e.subject.as_deref() == Some(&format!("request:{id}")))
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "request.created",
            "request.checked",
            "request.changes_requested",
            "request.described",
            "request.resubmitted",
            "request.approved",
            "request.released",
            "request.downloaded"
        ]
    );
    assert!(audit::verify(p.queue.store()).unwrap().is_intact());
}

#[test]
fn approving_a_failing_request_needs_an_override_reason() {
    let mut p = Project::new(1);
    let request = p.crosstab("alice", &["region", "age"]);
    assert_eq!(request.outcome, Some(Outcome::Fail));
    let report = request.report.as_ref().expect("report");
    assert!(report.results.iter().any(|r| r.check == "threshold" && r.outcome == Outcome::Fail));
    assert!(report.suppression.is_some(), "a failing table gets a suggested suppression");
    assert!(matches!(
        decide(&mut p, request.id, "carol", Verdict::Approve, None),
        Err(QueueError::OverrideWithoutReason { .. })
    ));
    assert!(matches!(
        decide(&mut p, request.id, "carol", Verdict::Approve, Some("   ")),
        Err(QueueError::OverrideWithoutReason { .. })
    ));
    let approved = p
        .queue
        .decide(request.id, &common::acting("carol"), Verdict::Approve, Some("ages are banded in the paper"))
        .unwrap();
    assert_eq!(approved.status, Status::Approved);
    assert!(approved.decisions[0].overrode_failure);
}

#[test]
fn rejecting_and_asking_for_changes_need_a_reason_and_rejection_is_final() {
    let mut p = Project::new(1);
    let id = p.crosstab("alice", &["region"]).id;
    assert!(matches!(decide(&mut p, id, "carol", Verdict::Reject, Some("")), Err(QueueError::ReasonRequired { .. })));
    assert!(matches!(
        decide(&mut p, id, "carol", Verdict::RequestChanges, None),
        Err(QueueError::ReasonRequired { .. })
    ));
    assert_eq!(
        decide(&mut p, id, "carol", Verdict::Reject, Some("not in the approved purpose")).unwrap(),
        Status::Rejected
    );
    assert!(matches!(p.queue.resubmit(id, &common::acting("alice")), Err(QueueError::IllegalTransition { .. })));
    assert!(matches!(
        p.queue.release(id, &common::acting("alice"), p.dir.path()),
        Err(QueueError::IllegalTransition { .. })
    ));
}

#[test]
fn nobody_reviews_their_own_job_and_only_checkers_decide() {
    let mut p = Project::new(1);
    let id = p.crosstab("dora", &["region"]).id;
    assert!(matches!(decide(&mut p, id, "dora", Verdict::Approve, None), Err(QueueError::OwnRequest { .. })));
    assert!(matches!(decide(&mut p, id, "alice", Verdict::Approve, None), Err(QueueError::NotAllowed { .. })));
    assert!(matches!(decide(&mut p, id, "mallory", Verdict::Reject, Some("x")), Err(QueueError::NotAllowed { .. })));
    assert_eq!(p.queue.get(id).unwrap().decisions.len(), 0, "refused decisions leave no trace in the queue");
    assert_eq!(decide(&mut p, id, "carol", Verdict::Approve, None).unwrap(), Status::Approved);
    assert!(matches!(p.queue.release(id, &common::acting("carol"), p.dir.path()), Err(QueueError::NotAllowed { .. })));
}

#[test]
fn two_different_checkers_must_approve_under_four_eyes() {
    let mut p = Project::new(2);
    let id = p.crosstab("alice", &["region"]).id;
    assert_eq!(decide(&mut p, id, "carol", Verdict::Approve, None).unwrap(), Status::Checked);
    assert!(matches!(decide(&mut p, id, "carol", Verdict::Approve, None), Err(QueueError::AlreadyApproved { .. })));
    assert!(matches!(
        p.queue.release(id, &common::acting("alice"), p.dir.path()),
        Err(QueueError::IllegalTransition { .. })
    ));
    assert_eq!(decide(&mut p, id, "dave", Verdict::Approve, None).unwrap(), Status::Approved);
}

#[test]
fn approvals_before_a_change_request_do_not_count_after_it() {
    let mut p = Project::new(2);
    let id = p.crosstab("alice", &["region"]).id;
    decide(&mut p, id, "carol", Verdict::Approve, None).unwrap();
    decide(&mut p, id, "dave", Verdict::RequestChanges, Some("describe the population")).unwrap();
    p.queue.resubmit(id, &common::acting("alice")).unwrap();
    assert_eq!(decide(&mut p, id, "carol", Verdict::Approve, None).unwrap(), Status::Checked, "review starts afresh");
    assert_eq!(decide(&mut p, id, "dave", Verdict::Approve, None).unwrap(), Status::Approved);
}

#[test]
fn only_the_submitter_describes_and_only_before_review() {
    let mut p = Project::new(2);
    let id = p.crosstab("alice", &["region"]).id;
    assert!(matches!(
        p.queue.describe(id, &common::acting("bob"), Some("mine"), None),
        Err(QueueError::NotOwner { .. })
    ));
    let described = p
        .queue
        .describe(id, &common::acting("alice"), Some("Persons per province"), Some("Table 1 of the paper"))
        .unwrap();
    assert_eq!(
        (described.description.as_str(), described.justification.as_str()),
        ("Persons per province", "Table 1 of the paper")
    );
    decide(&mut p, id, "carol", Verdict::Approve, None).unwrap();
    assert!(matches!(
        p.queue.describe(id, &common::acting("alice"), Some("changed"), None),
        Err(QueueError::UnderReview { .. })
    ));
}

/// The escape guest's `export` command writes files of the test's choosing.
fn export(p: &mut Project, files: &[(&str, &str)]) -> Vec<ExportRequest> {
    let mut args = vec!["export"];
    for (name, text) in files {
        args.extend([*name, *text]);
    }
    p.run("alice", "escape", &args)
}

fn frequency_manifest(file: &str, counts: &[(&str, u64)]) -> String {
    let cells: Vec<String> = counts.iter().map(|(k, c)| format!(r#"{{"key": ["{k}"], "count": {c}}}"#)).collect();
    format!(
        r#"{{"version": 1, "outputs": [{{"file": "{file}", "kind": "frequency", "description": "by region", "variables": ["region"], "cells": [{}]}}]}}"#,
        cells.join(", ")
    )
}

fn check_outcome(request: &ExportRequest, check: &str) -> Outcome {
    let report = request.report.as_ref().expect("checked");
    report.results.iter().find(|r| r.check == check).map(|r| r.outcome).expect("check ran")
}

#[test]
fn a_guest_whose_file_and_manifest_disagree_fails() {
    let mut p = Project::new(1);
    let manifest = frequency_manifest("t.csv", &[("Zeeland", 30)]);
    let requests = export(&mut p, &[("t.csv", "region,count\nZeeland,3\n"), ("manifest.json", &manifest)]);
    assert_eq!(requests.len(), 1, "the manifest itself is not an output");
    assert_eq!(check_outcome(&requests[0], "consistency"), Outcome::Fail);
    assert_eq!(requests[0].outcome, Some(Outcome::Fail));
}

#[test]
fn a_guest_that_inflates_small_counts_in_both_file_and_manifest_fails_the_recount() {
    let mut p = Project::new(1);
    let manifest = frequency_manifest("t.csv", &[("Zeeland", 3000)]);
    let requests = export(&mut p, &[("t.csv", "region,count\nZeeland,3000\n"), ("manifest.json", &manifest)]);
    assert_eq!(check_outcome(&requests[0], "consistency"), Outcome::Pass);
    assert_eq!(check_outcome(&requests[0], "recount"), Outcome::Fail, "the fixture has far fewer than 3000 in Zeeland");
}

#[test]
fn free_form_files_and_broken_manifests_go_to_review() {
    let mut p = Project::new(1);
    let requests = export(&mut p, &[("notes.txt", "the mean age is 41"), ("manifest.json", "{not json")]);
    assert_eq!(requests.len(), 1);
    assert_eq!((requests[0].kind.as_str(), requests[0].outcome), ("file", Some(Outcome::Review)));
    assert!(requests[0].manifest_problem.as_deref().unwrap_or_default().contains("not valid"));
    let plain = export(&mut p, &[("plot.svg", "<svg/>")]);
    assert_eq!(plain[0].outcome, Some(Outcome::Review));
}

fn findings(request: &ExportRequest, check: &str) -> Vec<String> {
    let report = request.report.as_ref().expect("checked");
    let result = report.results.iter().find(|r| r.check == check).expect("check ran");
    result.findings.iter().map(|f| f.message.clone()).collect()
}

#[test]
fn a_table_whose_units_differ_by_a_few_from_an_earlier_one_fails_differencing_unless_that_was_rejected() {
    let mut p = Project::new(1);
    let first = p.crosstab("alice", &["region"]);
    assert_eq!(check_outcome(&first, "recount"), Outcome::Pass, "{:#?}", first.report);
    assert_eq!(first.outcome, Some(Outcome::Pass), "{:#?}", first.report);
    decide(&mut p, first.id, "carol", Verdict::Approve, None).unwrap();
    // Not yet released: approved outputs count too.
    let near = p.run("alice", "liar", &["region-minus", "2"]);
    assert_eq!(check_outcome(&near[0], "differencing"), Outcome::Fail);
    // The first two rows are in two regions: each of those cells lost one unit.
    let messages = findings(&near[0], "differencing");
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(messages.iter().all(|m| m.contains(&format!("request {}", first.id)) && m.contains("differ by 1 unit")));
    assert_eq!(check_outcome(&near[0], "recount"), Outcome::Pass);
    // Far enough apart: nothing to subtract.
    let far = p.run("alice", "liar", &["region-minus", "1500"]);
    assert_eq!(check_outcome(&far[0], "differencing"), Outcome::Pass, "{:#?}", far[0].report);
    // Both ways: the earlier request's checkers see both pairs, and the audit entry of the
    // later request's checks names it; what its researcher sees of it does not change.
    let earlier = p.queue.get(first.id).expect("first");
    assert_eq!(earlier.later_overlaps.len(), 2, "{:#?}", earlier.later_overlaps);
    assert!(earlier.later_overlaps.iter().all(|o| o.later == near[0].id && o.units == 1 && o.cell.contains("region=")));
    let seen = ResearcherRequest::new(&earlier);
    assert_eq!(seen.outcome, Some(Outcome::Pass));
    assert!(seen.not_passed.as_ref().is_none_or(Vec::is_empty), "{:?}", seen.not_passed);
    let checked = audit::entries(p.queue.store(), Some("test-project"))
        .unwrap()
        .into_iter()
        .find(|e| e.action == "request.checked" && e.subject.as_deref() == Some(&format!("request:{}", near[0].id)))
        .expect("audited");
    assert!(checked.detail.contains(&format!("\"differs_from_requests\":[{}]", first.id)), "{}", checked.detail);
    // Once the later request is rejected, it can never be released: the pair is gone.
    decide(&mut p, near[0].id, "carol", Verdict::Reject, Some("differences an approved table")).unwrap();
    assert!(p.queue.get(first.id).expect("first").later_overlaps.is_empty());
    // A rejected output is never seen, so it cannot be subtracted from.
    let mut q = Project::new(1);
    let rejected = q.crosstab("alice", &["region"]);
    decide(&mut q, rejected.id, "carol", Verdict::Reject, Some("not needed")).unwrap();
    let after = q.run("alice", "liar", &["region-minus", "2"]);
    assert_eq!(check_outcome(&after[0], "differencing"), Outcome::Pass, "{:#?}", after[0].report);
}

#[test]
fn two_tables_of_one_job_over_reordered_variables_and_a_subset_fail_differencing() {
    let mut p = Project::new(1);
    let requests = p.run("alice", "liar", &["reordered", "1"]);
    assert_eq!(requests.len(), 2);
    let second = requests.iter().find(|r| r.file == "sex_by_region.csv").expect("second table");
    assert_eq!(check_outcome(second, "differencing"), Outcome::Fail);
    let messages = findings(second, "differencing");
    assert!(
        messages.iter().any(|m| m.contains("region_by_sex.csv") && m.contains("differ by 1 unit")),
        "{messages:#?}"
    );
}

#[test]
fn a_frequency_table_that_smuggles_each_cells_maximum_fails() {
    let mut p = Project::new(1);
    let requests = p.run("alice", "liar", &["frequency-with-maximum"]);
    assert_eq!(check_outcome(&requests[0], "consistency"), Outcome::Fail);
    assert!(
        findings(&requests[0], "consistency")
            .iter()
            .any(|m| m.contains("\"p100\" is not one a frequency table publishes"))
    );
}

#[test]
fn invented_largest_contributions_and_a_sum_that_is_one_persons_value_fail_the_recount() {
    let mut p = Project::new(1);
    for mode in ["invented-contributions", "one-person-sum"] {
        let requests = p.run("alice", "liar", &[mode]);
        assert_eq!(requests.len(), 1);
        assert_eq!(check_outcome(&requests[0], "consistency"), Outcome::Pass, "{mode}: the file matches its manifest");
        assert_eq!(check_outcome(&requests[0], "recount"), Outcome::Fail, "{mode}: {:#?}", requests[0].report);
        assert_eq!(requests[0].outcome, Some(Outcome::Fail));
        let messages = findings(&requests[0], "recount");
        let lie = if mode == "one-person-sum" { "the manifest says sum" } else { "the manifest says largest value" };
        assert!(messages.iter().any(|m| m.contains(lie)), "{mode}: {messages:#?}");
    }
}

#[test]
fn a_stored_file_that_was_tampered_with_is_not_released() {
    let mut p = Project::new(1);
    let request = p.crosstab("alice", &["region"]);
    decide(&mut p, request.id, "carol", Verdict::Approve, None).unwrap();
    let blob = p.home().join("blobs").join(&request.sha256);
    let mut permissions = std::fs::metadata(&blob).unwrap().permissions();
    assert!(permissions.readonly(), "stored outputs are read-only");
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    std::fs::set_permissions(&blob, permissions).unwrap();
    std::fs::write(&blob, "region,count\nZeeland,2\n").unwrap();
    let out = p.dir.path().join("out");
    assert!(matches!(p.queue.release(request.id, &common::acting("alice"), &out), Err(QueueError::Tampered { .. })));
    assert!(!out.join(&request.file).exists());
    assert_eq!(p.queue.get(request.id).unwrap().status, Status::Approved);
}

/// Copies the state database (after the queue has closed it) for one tampering experiment.
fn tampered_copy(home: &Path, name: &str, sql: &str) -> ringfence::audit::Verification {
    let dir = home.parent().unwrap().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(home.join("state.sqlite"), dir.join("state.sqlite")).unwrap();
    let conn = rusqlite::Connection::open(dir.join("state.sqlite")).unwrap();
    conn.execute_batch(sql).unwrap();
    drop(conn);
    let store = ringfence::store::Store::open(&dir).unwrap();
    audit::verify(&store).unwrap()
}

#[test]
fn the_audit_log_detects_edited_removed_reordered_and_truncated_entries() {
    let mut p = Project::new(1);
    let id = p.crosstab("alice", &["region"]).id;
    decide(&mut p, id, "carol", Verdict::Approve, None).unwrap();
    let intact = audit::verify(p.queue.store()).unwrap();
    assert!(intact.is_intact(), "{intact:?}");
    assert!(intact.entries >= 5);
    let home = p.home();
    drop(p.queue);

    let edited = tampered_copy(&home, "edited", "UPDATE audit SET actor = 'dave' WHERE action = 'request.approved'");
    assert!(!edited.is_intact());
    assert!(edited.breaks[0].problem.contains("changed"), "{edited:?}");

    let removed = tampered_copy(&home, "removed", "DELETE FROM audit WHERE seq = 2");
    assert_eq!(removed.breaks[0].seq, 3, "{removed:?}");
    assert!(removed.breaks[0].problem.contains("removed"), "{removed:?}");

    let reordered = tampered_copy(
        &home,
        "reordered",
        "UPDATE audit SET seq = -1 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3; UPDATE audit SET seq = 3 WHERE seq = -1;",
    );
    assert!(!reordered.is_intact());
    assert_eq!(reordered.breaks[0].seq, 2, "{reordered:?}");

    let truncated = tampered_copy(
        &home,
        "truncated",
        "DELETE FROM audit WHERE action IN ('request.created', 'request.checked', 'request.approved')",
    );
    assert!(
        truncated.breaks.iter().any(|b| b.problem.contains(&format!("request {id} has no request.created entry"))),
        "{truncated:?}"
    );
}

#[test]
fn reopening_checks_requests_left_pending_and_a_missing_stored_file_fails_them_without_blocking() {
    let mut p = Project::new(1);
    let first = p.crosstab("alice", &["region"]);
    let second = p.crosstab("alice", &["region", "sex"]);
    let home = p.home();
    drop(p.queue);
    // As after a crash between creating the requests and checking them, with one stored file
    // lost as well.
    let conn = rusqlite::Connection::open(home.join("state.sqlite")).unwrap();
    conn.execute("UPDATE requests SET status = 'pending', checks = NULL, outcome = NULL", []).unwrap();
    drop(conn);
    std::fs::remove_file(home.join("blobs").join(&second.sha256)).unwrap();

    let queue = ExportQueue::open(&home).expect("the queue opens despite the lost file");
    assert_eq!(queue.recovered().checked, [first.id, second.id]);
    assert_eq!(queue.get(first.id).unwrap().outcome, Some(Outcome::Pass));
    let lost = queue.get(second.id).unwrap();
    assert_eq!((lost.status, lost.outcome), (Status::Checked, Some(Outcome::Fail)));
    assert_eq!(lost.report.unwrap().results[0].check, "stored_file");
}

#[test]
fn a_queued_job_starts_from_its_loaded_module_and_a_kept_module_that_changed_is_refused() {
    use sha2::Digest;
    let mut p = Project::new(1);
    let wasm = std::fs::read(common::guest("crosstab")).expect("guest");
    let sha256 = hex::encode(sha2::Sha256::digest(&wasm));
    let kept = p.home().join("modules").join(format!("{sha256}.wasm"));
    let request = JobRequest { policy: &p.policy, user: "alice", module: ModuleSource::Submitted(&wasm), args: &[] };
    let start = |queue: &mut ExportQueue, sandbox: &ringfence::sandbox::Sandbox| {
        let lock = queue.start_next().expect("start").expect("the queued job starts");
        queue.run_started(sandbox, lock, &OperatorCaps::default(), common::today())
    };

    // Loaded (checked and hashed) when it was queued: the start neither reads nor hashes it
    // again, so it runs even with the kept copy gone.
    p.queue.enqueue(common::sandbox(), &request, common::today()).expect("queued");
    std::fs::remove_file(&kept).expect("remove the kept copy");
    let run = start(&mut p.queue, common::sandbox()).expect("runs from the loaded module");
    assert!(run.record.status.is_success(), "{}", run.record.status);
    assert_eq!(run.record.module_cache, ringfence::sandbox::CacheOutcome::Memory);
    assert_eq!(run.record.module_sha256, sha256);

    // Another process has not loaded it: it reads the kept copy and refuses other bytes.
    p.queue.enqueue(common::sandbox(), &request, common::today()).expect("queued again");
    std::fs::write(&kept, std::fs::read(common::guest("region-counts")).expect("guest")).expect("swap the module");
    let elsewhere =
        ringfence::sandbox::Sandbox::new(&common::root().join("target/test-module-cache")).expect("sandbox");
    match start(&mut p.queue, &elsewhere) {
        Err(QueueError::Refused { why, .. }) => assert!(why.contains(&format!("kept as {sha256} now has")), "{why}"),
        other => panic!("a swapped module ran: {other:?}"),
    }
}

#[test]
fn a_manifest_claiming_impossible_counts_fails_its_output_and_never_stops_the_queue() {
    let mut p = Project::new(1);
    let claims = [("Utrecht", u64::MAX), ("Zeeland", 1)];
    let manifest = frequency_manifest("t.csv", &claims);
    let csv = format!("region,count\nUtrecht,{}\nZeeland,1\n", u64::MAX);
    let requests = export(&mut p, &[("t.csv", &csv), ("manifest.json", &manifest)]);
    assert_eq!(requests[0].status, Status::Checked, "checked, not panicked");
    assert_eq!(requests[0].outcome, Some(Outcome::Fail));
    let suppression = requests[0].report.as_ref().and_then(|r| r.suppression.as_ref()).expect("suppression");
    assert_eq!(suppression.margins.iter().map(|m| m.count).max(), Some(u64::MAX), "sums saturate");
    let reopened = ExportQueue::open(&p.home()).expect("the queue opens again");
    assert_eq!(reopened.get(requests[0].id).expect("request").status, Status::Checked);
}

#[test]
fn a_request_whose_row_no_longer_parses_fails_check_error_and_the_queue_still_opens() {
    let mut p = Project::new(1);
    let good = p.crosstab("alice", &["region"]);
    let conn = rusqlite::Connection::open(p.home().join("state.sqlite")).expect("db");
    conn.execute("UPDATE requests SET status = 'pending', datasets = 'not json' WHERE id = ?1", [good.id])
        .expect("corrupt");
    drop(conn);
    let reopened = ExportQueue::open(&p.home()).expect("the queue opens despite the broken row");
    assert_eq!(reopened.recovered().checked, [good.id]);
    let conn = rusqlite::Connection::open(p.home().join("state.sqlite")).expect("db");
    let (status, checks): (String, String) = conn
        .query_row("SELECT status, checks FROM requests WHERE id = ?1", [good.id], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("row");
    assert_eq!(status, "checked");
    assert!(checks.contains("check_error"), "{checks}");
}

#[test]
fn findings_are_capped_per_check_with_the_count_of_the_rest() {
    let mut p = Project::new(1);
    let claims: Vec<(String, u64)> = (0..1500).map(|i| (format!("r{i}"), 1)).collect();
    let claims: Vec<(&str, u64)> = claims.iter().map(|(k, c)| (k.as_str(), *c)).collect();
    let manifest = frequency_manifest("t.csv", &claims);
    let csv: String =
        std::iter::once("region,count\n".to_string()).chain(claims.iter().map(|(k, c)| format!("{k},{c}\n"))).collect();
    let requests = export(&mut p, &[("t.csv", &csv), ("manifest.json", &manifest)]);
    let report = requests[0].report.as_ref().expect("checked");
    let threshold = report.results.iter().find(|r| r.check == "threshold").expect("threshold");
    assert_eq!(threshold.findings.len(), ringfence::disclosure::MAX_FINDINGS + 1);
    assert_eq!(threshold.findings.last().map(|f| f.message.as_str()), Some("… and 500 more"));
    assert_eq!(report.suppression.as_ref().map(|s| s.primary), Some(1500), "suppression saw every cell");
}

#[test]
fn recovery_in_another_process_leaves_a_claimed_job_alone_before_it_runs() {
    let mut p = Project::new(1);
    let wasm = std::fs::read(common::guest("crosstab")).expect("guest");
    let request = JobRequest { policy: &p.policy, user: "alice", module: ModuleSource::Submitted(&wasm), args: &[] };
    p.queue.enqueue(common::sandbox(), &request, common::today()).expect("queued");
    // Claimed, and not yet running: its worker holds the job's lock but not the state
    // directory's, so others' recovery may sweep the scratch area meanwhile.
    let lock = p.queue.start_next().expect("start").expect("claimed");
    for _ in 0..2 {
        let other = ExportQueue::open(&p.home()).expect("another process recovers");
        assert!(other.recovered().interrupted.is_empty(), "{:?}", other.recovered());
    }
    let run = p.queue.run_started(common::sandbox(), lock, &OperatorCaps::default(), common::today()).expect("runs");
    assert!(run.record.status.is_success(), "{}", run.record.status);
}

//! The `ringfence` binary as a researcher and an operator use it: exit codes, summaries, and
//! that no guest output ever reaches the terminal.

mod common;

use std::path::Path;
use std::process::Output;

use common::TestLimits;

fn ringfence(home: &Path, args: &[&str]) -> Output {
    common::ringfence_command(home).args(args).output().expect("run ringfence")
}

/// A state directory holding the demo population (2 000 persons) as `persons` version 1.
fn demo_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("tempdir");
    let out = ringfence(home.path(), &["dataset", "generate-demo", "--rows", "2000", "--seed", "5"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    home
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn demo_policy() -> String {
    common::root().join("policies/demo.toml").display().to_string()
}

fn guest(name: &str) -> String {
    common::guest(name).display().to_string()
}

#[test]
fn the_demo_analysis_runs_and_shows_only_a_summary() {
    let home = demo_home();
    let out = ringfence(home.path(), &["run", "--policy", &demo_policy(), "--user", "alice", &guest("region-counts")]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("state     succeeded"), "{stdout}");
    assert!(stdout.contains("exports   1 held for review"), "{stdout}");
    assert!(stdout.contains("module    compiled (now cached)"), "{stdout}");
    assert!(!stdout.contains("bytes") && !stdout.contains(".csv"), "no sizes, no names the guest chose: {stdout}");
    assert!(!stdout.contains("counted"), "guest output reached the terminal: {stdout}");
    assert!(!text(&out.stderr).contains("counted"));

    let again =
        ringfence(home.path(), &["run", "--policy", &demo_policy(), "--user", "alice", &guest("region-counts")]);
    assert!(text(&again.stdout).contains("module    loaded from cache"), "{}", text(&again.stdout));
    let jobs: Vec<_> = std::fs::read_dir(home.path().join("jobs")).expect("jobs").collect();
    assert_eq!(jobs.len(), 2);
}

#[test]
fn a_stdout_flood_never_reaches_the_terminal() {
    let home = demo_home();
    let out = ringfence(
        home.path(),
        &["run", "--policy", &demo_policy(), "--user", "alice", &guest("escape"), "--", "stdout", "3000000"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(!text(&out.stdout).contains("xxxx"));
    assert!(!text(&out.stderr).contains("xxxx"));
    assert!(!text(&out.stderr).contains("flooded"));
    assert!(!text(&out.stdout).contains("3000320"), "the byte count is the guest's to choose");
    let record = std::fs::read_dir(home.path().join("jobs")).expect("jobs").next().expect("a job").expect("entry");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(record.path().join("job.json")).expect("job.json")).expect("json");
    assert_eq!(
        (record["stdout"]["captured_bytes"].as_u64(), record["stdout"]["written_bytes"].as_u64()),
        (Some(1 << 20), Some(3000320))
    );
}

#[test]
fn a_guest_that_hits_a_limit_exits_with_code_3_and_names_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::home_with_persons(dir.path());
    let policy = common::write_policy(dir.path(), TestLimits { cpu_seconds: 1, ..TestLimits::default() });
    let out = ringfence(
        &dir.path().join("home"),
        &["run", "--policy", &policy.display().to_string(), "--user", "alice", &guest("escape"), "--", "spin"],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stdout).contains("state     stopped: cpu_limit"), "{}", text(&out.stdout));
}

#[test]
fn bad_requests_exit_with_code_2_and_a_clear_message() {
    let dir = demo_home();
    let home = dir.path().to_path_buf();
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm but not really").expect("write");
    let garbage = garbage.display().to_string();
    let region = guest("region-counts");
    let demo = demo_policy();
    let expired = dir.path().join("expired.toml");
    let demo_text = std::fs::read_to_string(&demo).expect("demo policy");
    std::fs::write(&expired, demo_text.replace("2099-12-31", "2020-01-01")).expect("write");
    let expired = expired.display().to_string();
    for (args, expected) in [
        (vec!["run", "--policy", &demo, "--user", "mallory", &region], "\"mallory\" is not a member"),
        (vec!["run", "--policy", &demo, "--user", "carol", &region], "is not a researcher"),
        (vec!["run", "--policy", &demo, "--user", "alice", &garbage], "not a valid WebAssembly module"),
        (vec!["run", "--policy", &demo, "--user", "alice", "/no/such.wasm"], "cannot read module"),
        (vec!["run", "--policy", &expired, "--user", "alice", &region], "expired on 2020-01-01"),
        (vec!["policy", "check", &expired], "project.expires"),
    ] {
        let out = ringfence(&home, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(expected), "{args:?}: {}", text(&out.stderr));
    }
    assert!(!home.join("jobs").exists() || std::fs::read_dir(home.join("jobs")).expect("jobs").next().is_none());
    assert!(!home.join("work").exists() || std::fs::read_dir(home.join("work")).expect("work").next().is_none());
}

#[test]
fn policy_check_prints_what_a_policy_grants() {
    let home = demo_home();
    let out = ringfence(home.path(), &["policy", "check", &demo_policy()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("project   demo-2026-001"), "{stdout}");
    assert!(stdout.contains("member    carol [checker]"), "{stdout}");
    assert!(
        stdout.contains(
            "dataset   /data/persons/ <- persons version 1: region, age, sex, income, employment_status, education"
        ),
        "{stdout}"
    );
}

#[test]
fn policy_check_names_file_key_and_reason() {
    let dir = demo_home();
    let bad = dir.path().join("bad.toml");
    let demo_text = std::fs::read_to_string(demo_policy()).expect("demo policy");
    std::fs::write(&bad, demo_text.replace("memory_mb = 256", "memory_mb = 9999999")).expect("write");
    let out = ringfence(dir.path(), &["policy", "check", &bad.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim(),
        format!("error: {}: limits.memory_mb: 9999999 exceeds the operator's cap of 4096", bad.display())
    );
}

#[test]
fn dataset_commands_import_list_show_and_refuse_bad_files() {
    let home = tempfile::tempdir().expect("tempdir");
    let fixture = common::persons_csv().display().to_string();
    let out = ringfence(home.path(), &["dataset", "import", "--name", "persons", &fixture]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("persons version 1: 2000 rows, 8 columns"), "{}", text(&out.stdout));
    let out = ringfence(home.path(), &["dataset", "list"]);
    assert!(text(&out.stdout).starts_with("persons              v1            2000 rows"), "{}", text(&out.stdout));
    let out = ringfence(home.path(), &["dataset", "show", "persons"]);
    assert!(text(&out.stdout).contains("column    income                   int64"), "{}", text(&out.stdout));

    let ragged = home.path().join("ragged.csv");
    std::fs::write(&ragged, "a,b\n1,2\n3\n").expect("write");
    let out = ringfence(home.path(), &["dataset", "import", "--name", "ragged", &ragged.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("ragged.csv") && text(&out.stderr).contains("line 3"), "{}", text(&out.stderr));
    let out = ringfence(home.path(), &["dataset", "import", "--name", "../up", &fixture]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not a valid dataset name"), "{}", text(&out.stderr));
    let out = ringfence(home.path(), &["dataset", "show", "ragged"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("dataset ragged is not in the catalog"), "{}", text(&out.stderr));
}

#[test]
fn demo_runs_the_whole_flow_and_one_output_fails_while_another_passes() {
    let home = tempfile::tempdir().expect("tempdir");
    let modules = common::guest("crosstab").parent().expect("guest dir").display().to_string();
    let out = ringfence(home.path(), &["demo", "--rows", "20000", "--modules", &modules]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let line = |file: &str| {
        stdout.lines().find(|l| l.ends_with(file)).unwrap_or_else(|| panic!("{file} in {stdout}")).to_string()
    };
    assert!(line("region_by_employment_status.csv").contains(" pass "), "{stdout}");
    assert!(line("region_by_age.csv").contains(" fail "), "{stdout}");
    assert!(stdout.contains("below the minimum of 10 units"), "the failure says why: {stdout}");
    assert!(stdout.contains("suggested suppression"), "{stdout}");

    let listed = text(&ringfence(home.path(), &["exports", "list", "--status", "checked"]).stdout);
    assert_eq!(listed.lines().count(), 4, "header and three requests: {listed}");
    let verified = ringfence(home.path(), &["audit", "verify"]);
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified.stdout));
    let shown = text(&ringfence(home.path(), &["audit", "show"]).stdout);
    for action in ["dataset.imported", "policy.registered", "job.submitted", "job.finished", "request.checked"] {
        assert!(shown.contains(action), "{action} in {shown}");
    }
}

/// A personal token for `user`, issued as the operator would.
fn token(home: &Path, user: &str) -> String {
    let issued = ringfence(home, &["token", "issue", "--user", user]);
    assert_eq!(issued.status.code(), Some(0), "{}", text(&issued.stderr));
    text(&issued.stdout).trim().to_string()
}

/// `ringfence ARGS` with `token` in `RINGFENCE_TOKEN`.
fn with_token(home: &Path, token: &str, args: &[&str]) -> Output {
    common::ringfence_command(home).args(args).env("RINGFENCE_TOKEN", token).output().expect("run ringfence")
}

#[test]
fn a_checker_reviews_and_a_researcher_releases_from_the_command_line() {
    let home = demo_home();
    let policy = demo_policy();
    assert_eq!(ringfence(home.path(), &["policy", "register", &policy]).status.code(), Some(0));
    let run =
        ringfence(home.path(), &["run", "--policy", &policy, "--user", "alice", &guest("crosstab"), "--", "region"]);
    assert!(text(&run.stdout).contains("export    #1 frequency: pass, checked"), "{}", text(&run.stdout));

    let shown = text(&ringfence(home.path(), &["exports", "show", "1"]).stdout);
    assert!(shown.contains("pass    threshold"), "{shown}");
    assert!(shown.contains("region,count"), "the checker sees the table: {shown}");

    let untokened = ringfence(home.path(), &["exports", "approve", "1"]);
    assert_eq!(untokened.status.code(), Some(2), "who approves must be proved");
    assert!(text(&untokened.stderr).contains("needs your personal token"), "{}", text(&untokened.stderr));
    let forged = with_token(home.path(), &format!("rf_{}", "0".repeat(64)), &["exports", "approve", "1"]);
    assert_eq!(forged.status.code(), Some(2));
    assert!(text(&forged.stderr).contains("not accepted"), "{}", text(&forged.stderr));
    let alice = token(home.path(), "alice");
    let own = with_token(home.path(), &alice, &["exports", "approve", "1"]);
    assert_eq!(own.status.code(), Some(2), "a researcher is not a checker");
    assert!(text(&own.stderr).contains("is not a checker"), "{}", text(&own.stderr));
    let carol = token(home.path(), "carol");
    let approved = with_token(home.path(), &carol, &["exports", "approve", "1"]);
    assert_eq!(text(&approved.stdout).trim(), "export request 1 is approved");

    let out = home.path().join("out");
    let taken = ["exports", "release", "1", "--to", &out.display().to_string()];
    assert_eq!(with_token(home.path(), &carol, &taken).status.code(), Some(2), "a checker does not take outputs");
    let linked = home.path().join("linked");
    std::os::unix::fs::symlink(home.path().join("elsewhere"), &linked).expect("symlink");
    let into_link =
        with_token(home.path(), &alice, &["exports", "release", "1", "--to", &linked.display().to_string()]);
    assert_eq!(into_link.status.code(), Some(2), "a release never follows a link");
    assert!(text(&into_link.stderr).contains("symbolic link"), "{}", text(&into_link.stderr));
    let released = with_token(home.path(), &alice, &taken);
    assert_eq!(released.status.code(), Some(0), "{}", text(&released.stderr));
    let again = with_token(home.path(), &alice, &taken);
    assert_eq!(again.status.code(), Some(2), "a release never replaces a file");
    assert!(text(&again.stderr).contains("there already"), "{}", text(&again.stderr));
    assert!(std::fs::read_to_string(out.join("region.csv")).expect("released file").starts_with("region,count\n"));
    let unknown = ringfence(home.path(), &["exports", "show", "99"]);
    assert_eq!((unknown.status.code(), text(&unknown.stderr).trim()), (Some(2), "error: no export request 99"));
    let actions = text(&ringfence(home.path(), &["audit", "show"]).stdout);
    assert!(actions.contains("request.approved           carol"), "{actions}");
    assert!(actions.contains("auth.refused"), "the forged token is audited: {actions}");
}

#[test]
fn one_checker_approving_twice_counts_once_and_an_operator_acting_for_someone_is_named() {
    let home = demo_home();
    let policy = home.path().join("four-eyes.toml");
    let demo = std::fs::read_to_string(demo_policy()).expect("demo policy");
    let four_eyes = demo.replace("reviews_required = 1", "reviews_required = 2").replace(
        "[[members]]\nuser = \"olga\"",
        "[[members]]\nuser = \"dave\"\nroles = [\"checker\"]\n\n[[members]]\nuser = \"olga\"",
    );
    std::fs::write(&policy, four_eyes).expect("write");
    let policy = policy.display().to_string();
    assert_eq!(ringfence(home.path(), &["policy", "register", &policy]).status.code(), Some(0));
    ringfence(home.path(), &["run", "--policy", &policy, "--user", "alice", &guest("crosstab"), "--", "region"]);

    let carol = token(home.path(), "carol");
    let first = with_token(home.path(), &carol, &["exports", "approve", "1"]);
    assert_eq!(text(&first.stdout).trim(), "export request 1 is checked (1 of 2 approvals)");
    let again = with_token(home.path(), &carol, &["exports", "approve", "1"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("has already approved"), "{}", text(&again.stderr));

    let delegated = ringfence(home.path(), &["exports", "approve", "1", "--on-behalf-of", "dave"]);
    assert_eq!(text(&delegated.stdout).trim(), "export request 1 is approved", "{}", text(&delegated.stderr));
    let audit = text(&ringfence(home.path(), &["audit", "show"]).stdout);
    let line = audit.lines().rfind(|l| l.contains("request.approved")).expect("approval entry");
    assert!(line.contains("dave") && line.contains("\"operator\":\"operator:"), "both are named: {line}");
}

#[test]
fn a_tampered_audit_log_fails_verification_with_its_own_exit_code() {
    let home = demo_home();
    assert_eq!(ringfence(home.path(), &["policy", "register", &demo_policy()]).status.code(), Some(0));
    let conn = rusqlite::Connection::open(home.path().join("state.sqlite")).expect("open");
    conn.execute("UPDATE audit SET actor = 'someone-else' WHERE seq = 1", []).expect("tamper");
    drop(conn);
    let out = ringfence(home.path(), &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(text(&out.stdout).contains("entry 1: its contents were changed"), "{}", text(&out.stdout));
}

#[test]
fn tokens_are_shown_once_listed_without_secrets_and_revoked() {
    let home = tempfile::tempdir().expect("tempdir");
    let issued = ringfence(home.path(), &["token", "issue", "--user", "alice", "--expires", "12h"]);
    assert_eq!(issued.status.code(), Some(0), "{}", text(&issued.stderr));
    let secret = text(&issued.stdout).trim().to_string();
    assert!(secret.starts_with("rf_") && secret.len() == 67, "{secret}");
    let listed = text(&ringfence(home.path(), &["token", "list"]).stdout);
    assert!(listed.contains("alice") && listed.contains("never used") && !listed.contains(&secret[3..]), "{listed}");
    for file in ["state.sqlite", "state.sqlite-wal"] {
        let bytes = std::fs::read(home.path().join(file)).unwrap_or_default();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{file} holds only the hash");
    }
    assert_eq!(ringfence(home.path(), &["token", "revoke", "--user", "alice"]).status.code(), Some(0));
    assert!(text(&ringfence(home.path(), &["token", "list"]).stdout).contains("revoked"));
    let nothing = ringfence(home.path(), &["token", "revoke", "--user", "alice"]);
    assert_eq!(nothing.status.code(), Some(2), "no live token left");
    let bad = ringfence(home.path(), &["token", "issue", "--user", "alice", "--expires", "soon"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("is not a lifetime"), "{}", text(&bad.stderr));
}

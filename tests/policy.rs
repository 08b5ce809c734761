//! Policy files: what is accepted, and that every refusal names the file, the key and the reason.

mod common;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use ringfence::policy::{OperatorCaps, Policy, PolicyError, PolicyErrorKind, Role};

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

const VALID: &str = r#"
[project]
id = "p-1"
title = "Title"
purpose = "Purpose"
expires = 2030-06-30

[[members]]
user = "alice"
roles = ["researcher"]

[[members]]
user = "carol"
roles = ["checker", "operator"]

[[datasets]]
mount = "persons"
path = "DATA"

[limits]
memory_mb = 256
cpu_seconds = 60
wall_seconds = 120
export_max_bytes = 1000000
export_max_files = 20
"#;

fn valid() -> String {
    VALID.replace("DATA", &common::persons_dir().display().to_string())
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("project.toml");
    std::fs::write(&path, text).expect("write policy");
    path
}

fn load(text: &str) -> Result<Policy, PolicyError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), text);
    Policy::load(&path, &OperatorCaps::default(), date(2026, 11, 30))
}

fn refused(text: &str) -> PolicyError {
    load(text).expect_err("policy should be refused")
}

#[test]
fn a_valid_policy_loads_with_defaults_filled_in() {
    let policy = load(&valid()).expect("valid policy");
    assert_eq!(policy.project.id, "p-1");
    assert_eq!(policy.project.expires, date(2030, 6, 30));
    assert!(policy.has_role("alice", Role::Researcher));
    assert!(policy.has_role("carol", Role::Operator));
    assert!(!policy.has_role("alice", Role::Checker));
    assert!(policy.member("mallory").is_none());
    assert_eq!(policy.datasets[0].mount, "persons");
    assert_eq!(policy.limits.memory_bytes, 256 << 20);
    assert_eq!(policy.limits.max_concurrent_jobs_per_user, 2);
    assert_eq!(policy.limits.output_max_bytes, 1 << 20);
    assert_eq!(policy.limits.clock_resolution.as_millis(), 1000);
    assert_eq!(policy.sha256.len(), 64);
}

#[test]
fn the_shipped_demo_policy_is_valid() {
    let path = common::root().join("policies/demo.toml");
    let policy = Policy::load(&path, &OperatorCaps::default(), common::today()).expect("demo policy");
    assert_eq!(policy.datasets[0].path, common::persons_dir().canonicalize().expect("canonical"));
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    let err = refused(&valid().replace("memory_mb = 256", "memory_mb = 256\ncolour = \"red\""));
    assert!(matches!(&err.kind, PolicyErrorKind::Syntax(m) if m.contains("unknown field `colour`")), "{err}");
    assert_eq!(err.line_col.map(|(line, _)| line), Some(22));
    assert!(err.to_string().starts_with(&format!("{}:22:", err.file.display())), "{err}");
}

#[test]
fn a_missing_key_is_named() {
    let err = refused(&valid().replace("purpose = \"Purpose\"\n", ""));
    assert!(err.to_string().contains("missing field `purpose`"), "{err}");
}

#[test]
fn a_wrong_type_is_named() {
    let err = refused(&valid().replace("cpu_seconds = 60", "cpu_seconds = \"sixty\""));
    assert!(matches!(err.kind, PolicyErrorKind::Syntax(_)), "{err}");
    assert!(err.to_string().contains("invalid type"), "{err}");
    let err = refused(&valid().replace("roles = [\"researcher\"]", "roles = [\"admin\"]"));
    assert!(err.to_string().contains("unknown variant `admin`"), "{err}");
}

#[test]
fn a_past_expiry_date_is_refused() {
    let err = refused(&valid().replace("2030-06-30", "2026-11-29"));
    assert_eq!(err.key, "project.expires");
    assert!(matches!(err.kind, PolicyErrorKind::Expired { .. }));
    let err = refused(&valid().replace("2030-06-30", "\"2030-06-30\""));
    assert!(matches!(err.kind, PolicyErrorKind::Syntax(_)), "{err}");
    let err = refused(&valid().replace("2030-06-30", "2030-06-30T10:00:00"));
    assert_eq!(err.key, "project.expires");
}

#[test]
fn the_last_day_is_still_valid() {
    assert!(load(&valid().replace("2030-06-30", "2026-11-30")).is_ok());
}

#[test]
fn limits_above_the_operator_caps_are_refused() {
    let err = refused(&valid().replace("memory_mb = 256", "memory_mb = 100000"));
    assert_eq!(err.key, "limits.memory_mb");
    assert_eq!(err.kind, PolicyErrorKind::AboveCap { value: 100000, cap: 4096 });
    let err =
        refused(&valid().replace("export_max_files = 20", "export_max_files = 20\nmax_concurrent_jobs_per_user = 3"));
    assert_eq!(err.key, "limits.max_concurrent_jobs_per_user");
    let err = refused(&valid().replace("wall_seconds = 120", "wall_seconds = 0"));
    assert_eq!((err.key.as_str(), err.kind), ("limits.wall_seconds", PolicyErrorKind::Zero));
}

#[test]
fn operator_caps_come_from_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let caps_path = dir.path().join("caps.toml");
    std::fs::write(&caps_path, "memory_mb = 128\n").expect("write caps");
    let caps = OperatorCaps::load(&caps_path).expect("caps");
    assert_eq!(caps.memory_mb, 128);
    assert_eq!(caps.cpu_seconds, OperatorCaps::default().cpu_seconds);
    let policy = write(dir.path(), &valid());
    let err = Policy::load(&policy, &caps, date(2026, 11, 30)).expect_err("above cap");
    assert_eq!(err.kind, PolicyErrorKind::AboveCap { value: 256, cap: 128 });
    std::fs::write(&caps_path, "memroy_mb = 128\n").expect("write caps");
    assert!(OperatorCaps::load(&caps_path).expect_err("typo").to_string().contains("memroy_mb"));
}

#[test]
fn datasets_that_do_not_exist_are_refused() {
    let err = refused(&valid().replace(&common::persons_dir().display().to_string(), "/no/such/dataset"));
    assert_eq!(err.key, "datasets[0].path");
    assert!(matches!(err.kind, PolicyErrorKind::DatasetMissing { .. }));
    let file = common::persons_dir().join("persons.csv");
    let err = refused(&valid().replace(&common::persons_dir().display().to_string(), &file.display().to_string()));
    assert!(err.to_string().contains("is not a directory"), "{err}");
}

#[test]
fn dataset_paths_are_relative_to_the_policy_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("data")).expect("mkdir");
    let path = write(dir.path(), &valid().replace(&common::persons_dir().display().to_string(), "data"));
    let policy = Policy::load(&path, &OperatorCaps::default(), date(2026, 11, 30)).expect("relative path");
    assert_eq!(policy.datasets[0].path, dir.path().join("data").canonicalize().expect("canonical"));
}

#[test]
fn names_that_could_escape_or_collide_are_refused() {
    for (from, to, key) in [
        ("mount = \"persons\"", "mount = \"../etc\"", "datasets[0].mount"),
        ("mount = \"persons\"", "mount = \"Persons\"", "datasets[0].mount"),
        ("mount = \"persons\"", "mount = \"\"", "datasets[0].mount"),
        ("id = \"p-1\"", "id = \"p/1\"", "project.id"),
        ("user = \"carol\"", "user = \"alice\"", "members[1].user"),
        ("roles = [\"researcher\"]", "roles = []", "members[0].roles"),
        ("title = \"Title\"", "title = \"  \"", "project.title"),
    ] {
        let err = refused(&valid().replace(from, to));
        assert_eq!(err.key, key, "{to}: {err}");
    }
    let twice = valid() + "\n[[datasets]]\nmount = \"persons\"\npath = \"/tmp\"\n";
    let err = refused(&twice);
    assert_eq!(err.key, "datasets[1].mount");
    assert_eq!(err.kind, PolicyErrorKind::Duplicate("persons".into()));
}

#[test]
fn a_policy_without_members_is_refused() {
    let text = valid();
    let start = text.find("[[members]]").expect("members");
    let end = text.find("[[datasets]]").expect("datasets");
    let err = refused(&format!("members = []\n{}{}", &text[..start], &text[end..]));
    assert_eq!((err.key.as_str(), err.kind), ("members", PolicyErrorKind::NoEntries));
}

#[test]
fn an_unreadable_or_binary_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.toml");
    let err = Policy::load(&missing, &OperatorCaps::default(), date(2026, 11, 30)).expect_err("missing");
    assert!(matches!(err.kind, PolicyErrorKind::Unreadable(_)));
    let binary = dir.path().join("binary.toml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00]).expect("write");
    let err = Policy::load(&binary, &OperatorCaps::default(), date(2026, 11, 30)).expect_err("binary");
    assert_eq!(err.kind, PolicyErrorKind::NotUtf8);
}

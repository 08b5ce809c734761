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
dataset = "persons"
version = 1
columns = ["region", "age"]

[limits]
memory_mb = 256
cpu_seconds = 60
wall_seconds = 120
export_max_bytes = 1000000
export_max_files = 20
"#;

fn valid() -> String {
    VALID.to_string()
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("project.toml");
    std::fs::write(&path, text).expect("write policy");
    path
}

fn load(text: &str) -> Result<Policy, PolicyError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, catalog, _) = common::home_with_persons(dir.path());
    let path = write(dir.path(), text);
    Policy::load(&path, &OperatorCaps::default(), &catalog, date(2026, 11, 30))
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
    assert_eq!((policy.datasets[0].dataset.as_str(), policy.datasets[0].version), ("persons", 1));
    assert_eq!(policy.datasets[0].sha256.len(), 64);
    assert_eq!(policy.datasets[0].columns, ["region", "age"]);
    assert!(policy.datasets[0].filter.is_none());
    assert_eq!(policy.limits.memory_bytes, 256 << 20);
    assert_eq!(policy.limits.max_concurrent_jobs_per_user, 2);
    assert_eq!(policy.limits.output_max_bytes, 1 << 20);
    assert_eq!(policy.limits.clock_resolution.as_millis(), 1000);
    assert_eq!(policy.sha256.len(), 64);
    assert_eq!(policy.disclosure.thresholds, ringfence::disclosure::Thresholds::default());
    assert_eq!(policy.disclosure.reviews_required, 1);
}

#[test]
fn disclosure_thresholds_are_read_and_checked() {
    let with = |section: &str| format!("{}\n[disclosure]\n{section}\n", valid());
    let policy = load(&with("min_units = 5\np_percent = 15\nreviews_required = 2")).expect("valid");
    assert_eq!(policy.disclosure.thresholds.min_units, 5);
    assert!((policy.disclosure.thresholds.p_ratio - 0.15).abs() < 1e-12);
    assert_eq!(policy.disclosure.thresholds.dominance_k, 0.90, "unset keys keep their default");
    assert_eq!(policy.disclosure.reviews_required, 2);
    for (line, key, allowed) in [
        ("min_units = 0", "disclosure.min_units", "at least 1"),
        ("dominance_n = 3", "disclosure.dominance_n", "1 or 2"),
        ("dominance_k = 1.5", "disclosure.dominance_k", "above 0 and at most 1"),
        ("dominance_k = 0", "disclosure.dominance_k", "above 0 and at most 1"),
        ("p_percent = 0", "disclosure.p_percent", "above 0 and at most 100"),
        ("reviews_required = 0", "disclosure.reviews_required", "1 to 5"),
    ] {
        let err = refused(&with(line));
        assert_eq!(err.key, key, "{line}");
        assert!(matches!(err.kind, PolicyErrorKind::OutOfRange { allowed: a, .. } if a == allowed), "{line}: {err}");
    }
    let err = refused(&with("minimum = 10"));
    assert!(matches!(&err.kind, PolicyErrorKind::Syntax(m) if m.contains("unknown field `minimum`")), "{err}");
}

#[test]
fn the_shipped_demo_policy_is_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = ringfence::catalog::Catalog::open(dir.path()).expect("catalog");
    let population = ringfence::catalog::DemoPopulation { rows: 100, seed: 1 };
    catalog.generate_demo("persons", population, &()).expect("demo data");
    let path = common::root().join("policies/demo.toml");
    let policy = Policy::load(&path, &OperatorCaps::default(), &catalog, common::today()).expect("demo policy");
    assert!(!policy.datasets[0].columns.contains(&"person_id".to_string()));
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    let err = refused(&valid().replace("memory_mb = 256", "memory_mb = 256\ncolour = \"red\""));
    assert!(matches!(&err.kind, PolicyErrorKind::Syntax(m) if m.contains("unknown field `colour`")), "{err}");
    assert_eq!(err.line_col.map(|(line, _)| line), Some(24));
    assert!(err.to_string().starts_with(&format!("{}:24:", err.file.display())), "{err}");
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
    let (_, catalog, _) = common::home_with_persons(dir.path());
    let caps_path = dir.path().join("caps.toml");
    std::fs::write(&caps_path, "memory_mb = 128\n").expect("write caps");
    let caps = OperatorCaps::load(&caps_path).expect("caps");
    assert_eq!(caps.memory_mb, 128);
    assert_eq!(caps.cpu_seconds, OperatorCaps::default().cpu_seconds);
    let policy = write(dir.path(), &valid());
    let err = Policy::load(&policy, &caps, &catalog, date(2026, 11, 30)).expect_err("above cap");
    assert_eq!(err.kind, PolicyErrorKind::AboveCap { value: 256, cap: 128 });
    std::fs::write(&caps_path, "memroy_mb = 128\n").expect("write caps");
    assert!(OperatorCaps::load(&caps_path).expect_err("typo").to_string().contains("memroy_mb"));
}

#[test]
fn datasets_versions_and_columns_must_exist_in_the_catalog() {
    for (from, to, key, says) in [
        (
            "dataset = \"persons\"",
            "dataset = \"firms\"",
            "datasets[0].version",
            "dataset firms version 1 is not in the catalog",
        ),
        ("version = 1", "version = 2", "datasets[0].version", "dataset persons version 2 is not in the catalog"),
        ("dataset = \"persons\"", "dataset = \"../persons\"", "datasets[0].dataset", "not a valid dataset name"),
        (
            "columns = [\"region\", \"age\"]",
            "columns = [\"region\", \"salary\"]",
            "datasets[0].columns[1]",
            "has no column \"salary\"",
        ),
        ("version = 1", "sha256 = \"00\"", "datasets[0].sha256", "no version of dataset persons has this SHA-256"),
        (
            "version = 1",
            "version = 1\nsha256 = \"00\"",
            "datasets[0].sha256",
            "does not match dataset persons version 1",
        ),
        ("version = 1\n", "", "datasets[0].version", "pin a version"),
    ] {
        let err = refused(&valid().replace(from, to));
        assert_eq!(err.key, key, "{to}: {err}");
        assert!(err.to_string().contains(says), "{to}: {err}");
    }
    let err = refused(&valid().replace("columns = [\"region\", \"age\"]", "columns = []"));
    assert_eq!((err.key.as_str(), err.kind), ("datasets[0].columns", PolicyErrorKind::NoEntries));
    let err = refused(&valid().replace("\"age\"]", "\"age\", \"region\"]"));
    assert_eq!(err.key, "datasets[0].columns[2]");
}

#[test]
fn a_dataset_can_be_pinned_by_its_hash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, catalog, persons) = common::home_with_persons(dir.path());
    let text = valid().replace("version = 1", &format!("sha256 = \"{}\"", persons.sha256));
    let policy = Policy::load(&write(dir.path(), &text), &OperatorCaps::default(), &catalog, date(2026, 11, 30))
        .expect("pinned");
    assert_eq!(policy.datasets[0].version, 1);
}

#[test]
fn row_filters_are_checked_against_the_dataset() {
    let with_filter = |filter: &str| valid().replace("columns = [", &format!("filter = \"{filter}\"\ncolumns = ["));
    assert!(load(&with_filter("age >= 18 and region != 'Zeeland'")).is_ok());
    for (filter, says) in [
        ("salary > 3", "no column \"salary\""),
        ("region > 3", "cannot be compared"),
        ("age >=", "not `column op value`"),
        ("age >= 18 or age < 5", "not `column op value`"),
    ] {
        let err = refused(&with_filter(filter));
        assert_eq!(err.key, "datasets[0].filter", "{filter}");
        assert!(err.to_string().contains(says), "{filter}: {err}");
    }
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
    let twice = valid().replace(
        "[limits]",
        "[[datasets]]\nmount = \"persons\"\ndataset = \"persons\"\nversion = 1\ncolumns = [\"age\"]\n\n[limits]",
    );
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
    let catalog = ringfence::catalog::Catalog::open(dir.path()).expect("catalog");
    let err = Policy::load(&missing, &OperatorCaps::default(), &catalog, date(2026, 11, 30)).expect_err("missing");
    assert!(matches!(err.kind, PolicyErrorKind::Unreadable(_)));
    let binary = dir.path().join("binary.toml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00]).expect("write");
    let err = Policy::load(&binary, &OperatorCaps::default(), &catalog, date(2026, 11, 30)).expect_err("binary");
    assert_eq!(err.kind, PolicyErrorKind::NotUtf8);
}

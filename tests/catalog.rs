//! The dataset catalog: imports that keep values and types, refusals that name the problem and
//! leave nothing behind, versions, and projections that are all a guest ever sees.

mod common;

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, DictionaryArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int32Type, Schema};
use arrow::ipc::reader::FileReader;
use common::{TestLimits, run_guest};
use ringfence::catalog::{Catalog, CatalogError, DemoPopulation, RowFilter};
use ringfence::policy::{OperatorCaps, Policy, Registry};
use ringfence::sandbox::JobStatus;

fn read_arrow(path: &Path) -> Vec<RecordBatch> {
    FileReader::try_new(File::open(path).expect("open"), None)
        .expect("arrow file")
        .collect::<Result<_, _>>()
        .expect("batches")
}

fn concat(batches: &[RecordBatch]) -> RecordBatch {
    arrow::compute::concat_batches(&batches[0].schema(), batches).expect("concat")
}

/// Column `name` of `table` as plain text, whether stored as text or as a category.
fn text(table: &RecordBatch, name: &str) -> StringArray {
    let column = table.column_by_name(name).expect("column");
    arrow::compute::cast(column, &DataType::Utf8).expect("text").as_string::<i32>().clone()
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).expect("read")))
}

/// Everything under the catalog directory, hidden entries included.
fn catalog_entries(home: &Path) -> Vec<String> {
    let dir = home.join("catalog");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| entries.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_csv_import_keeps_values_and_types() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, catalog, persons) = common::home_with_persons(dir.path());
    assert_eq!((persons.name.as_str(), persons.version, persons.rows), ("persons", 1, 2000));
    let types: Vec<(&str, &str)> = persons.columns.iter().map(|c| (c.name.as_str(), c.data_type.as_str())).collect();
    assert_eq!(
        types,
        [
            ("person_id", "int64"),
            ("region", "category"),
            ("age", "int64"),
            ("sex", "category"),
            ("household_size", "int64"),
            ("income", "int64"),
            ("employment_status", "category"),
            ("education", "category")
        ]
    );
    let stored = catalog.data_path(&persons);
    assert_eq!(sha256(&stored), persons.sha256);
    assert_eq!(std::fs::metadata(&stored).expect("meta").len(), persons.bytes);
    assert_eq!(catalog.get("persons", 1).expect("get"), persons);
    assert!(home.root().join("catalog/persons/1/schema.json").exists());

    let table = concat(&read_arrow(&stored));
    assert_eq!(table.schema().field(1).data_type(), &ringfence::catalog::category_type());
    let regions = text(&table, "region");
    let csv = std::fs::read_to_string(common::persons_csv()).expect("csv");
    for (row, line) in csv.lines().skip(1).enumerate().step_by(97) {
        let fields: Vec<&str> = line.split(',').collect();
        let ids = table.column(0).as_any().downcast_ref::<Int64Array>().expect("int64");
        let incomes = table.column(5).as_any().downcast_ref::<Int64Array>().expect("int64");
        assert_eq!(ids.value(row).to_string(), fields[0]);
        assert_eq!(regions.value(row), fields[1]);
        assert_eq!(incomes.value(row).to_string(), fields[5]);
    }
}

fn mixed_batch() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("share", DataType::Float64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("flag", DataType::Boolean, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(Float64Array::from(vec![Some(0.25), None, Some(-1.5)])),
            Arc::new(StringArray::from(vec![Some("a"), Some("b,c"), None])),
            Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
        ],
    )
    .expect("batch")
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    let mut writer = parquet::arrow::ArrowWriter::try_new(File::create(path).expect("create"), batch.schema(), None)
        .expect("writer");
    writer.write(batch).expect("write");
    writer.close().expect("close");
}

#[test]
fn a_parquet_import_keeps_values_types_and_nulls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = Catalog::open(dir.path()).expect("catalog");
    let source = dir.path().join("mixed.parquet");
    let batch = mixed_batch();
    write_parquet(&source, &batch);
    let imported = catalog.import_parquet("mixed", &source, &()).expect("import");
    assert_eq!(imported.rows, 3);
    let back = concat(&read_arrow(&catalog.data_path(&imported)));
    let types: Vec<&str> = imported.columns.iter().map(|c| c.data_type.as_str()).collect();
    assert_eq!(types, ["int64", "float64", "category", "bool"]);
    let mut columns = back.columns().to_vec();
    columns[2] = Arc::new(text(&back, "name"));
    assert_eq!(RecordBatch::try_new(batch.schema(), columns).expect("decoded"), batch);
}

#[test]
fn a_parquet_file_of_pandas_style_categories_imports_as_one_category() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = Catalog::open(dir.path()).expect("catalog");
    let source = dir.path().join("categories.parquet");
    let field = Field::new("status", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), true);
    let schema = Arc::new(Schema::new(vec![field]));
    let batch = |values: Vec<Option<&str>>| {
        let column: DictionaryArray<Int32Type> = values.into_iter().collect();
        RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(column)]).expect("batch")
    };
    // Two row groups of more than a batch each, whose dictionaries differ, as a writer that
    // encodes per chunk leaves them.
    let rows = 70_000;
    let first: Vec<Option<&str>> = (0..rows).map(|i| (i % 2 == 0).then_some("employed")).collect();
    let second: Vec<Option<&str>> = (0..rows).map(|i| Some(if i % 2 == 0 { "retired" } else { "employed" })).collect();
    let properties =
        parquet::file::properties::WriterProperties::builder().set_max_row_group_row_count(Some(rows)).build();
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        File::create(&source).expect("create"),
        Arc::clone(&schema),
        Some(properties),
    )
    .expect("writer");
    writer.write(&batch(first.clone())).expect("write");
    writer.write(&batch(second.clone())).expect("write");
    writer.close().expect("close");

    let imported = catalog.import_parquet("statuses", &source, &()).expect("import");
    assert_eq!(imported.columns[0].data_type, "category");
    let table = concat(&read_arrow(&catalog.data_path(&imported)));
    let statuses = text(&table, "status");
    assert_eq!(statuses.iter().collect::<Vec<_>>(), [first, second].concat());
}

#[test]
fn a_schema_file_fixes_column_types() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = Catalog::open(dir.path()).expect("catalog");
    let csv = dir.path().join("codes.csv");
    std::fs::write(&csv, "code,amount\n007,1\n010,2.5\n").expect("write");
    let schema = dir.path().join("codes.schema.json");
    std::fs::write(
        &schema,
        r#"{"columns": [{"name": "code", "type": "utf8"}, {"name": "amount", "type": "float64"}]}"#,
    )
    .expect("write");
    let imported = catalog.import_csv("codes", &csv, Some(&schema), &()).expect("import");
    let table = concat(&read_arrow(&catalog.data_path(&imported)));
    assert_eq!(text(&table, "code").value(0), "007");
}

/// Imports `text` as CSV and returns the error, checking the catalog is left untouched.
fn refused_csv(text: &[u8], schema: Option<&str>) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = Catalog::open(dir.path()).expect("catalog");
    let csv = dir.path().join("bad.csv");
    std::fs::write(&csv, text).expect("write");
    let schema_path = dir.path().join("bad.schema.json");
    if let Some(schema) = schema {
        std::fs::write(&schema_path, schema).expect("write");
    }
    let err = catalog.import_csv("bad", &csv, schema.map(|_| schema_path.as_path()), &()).expect_err("refused");
    assert!(catalog.list().expect("list").is_empty());
    assert!(catalog_entries(dir.path()).is_empty(), "left behind: {:?}", catalog_entries(dir.path()));
    let message = err.to_string();
    assert!(message.contains("bad.csv") || message.contains("bad.schema.json"), "no file named: {message}");
    message
}

#[test]
fn bad_csv_files_are_refused_naming_line_and_column_and_leave_nothing() {
    let ragged = refused_csv(b"a,b,c\n1,2,3\n4,5\n", None);
    assert!(ragged.contains("line 3") || ragged.contains("line: 3"), "{ragged}");

    let mut late_text = String::from("age,name\n");
    for i in 0..12_000 {
        late_text.push_str(&format!("{i},x\n"));
    }
    late_text.push_str("forty,y\n");
    let late = refused_csv(late_text.as_bytes(), None);
    assert!(late.ends_with("bad.csv: line 12002, column \"age\": \"forty\" is not a valid Int64"), "{late}");

    let typed = refused_csv(
        b"age,name\n1,x\nold,y\n",
        Some(r#"{"columns": [{"name": "age", "type": "int64"}, {"name": "name", "type": "utf8"}]}"#),
    );
    assert!(typed.ends_with("line 3, column \"age\": \"old\" is not a valid Int64"), "{typed}");

    assert!(refused_csv(b"id,id\n1,2\n", None).contains("column \"id\" appears more than once"));
    assert!(refused_csv(b"", None).contains("the file is empty"));
    assert!(refused_csv(b"\n\n", None).contains("the file is empty"));
    let wrong_names = refused_csv(
        b"a,b\n1,2\n",
        Some(r#"{"columns": [{"name": "b", "type": "int64"}, {"name": "a", "type": "int64"}]}"#),
    );
    assert!(wrong_names.contains("the CSV header has"), "{wrong_names}");
    let unknown_type = refused_csv(b"a\n1\n", Some(r#"{"columns": [{"name": "a", "type": "decimal"}]}"#));
    assert!(unknown_type.contains("unknown type"), "{unknown_type}");
}

#[test]
fn a_truncated_parquet_file_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = Catalog::open(dir.path()).expect("catalog");
    let source = dir.path().join("cut.parquet");
    write_parquet(&source, &mixed_batch());
    let bytes = std::fs::read(&source).expect("read");
    std::fs::write(&source, &bytes[..bytes.len() / 2]).expect("truncate");
    let err = catalog.import_parquet("cut", &source, &()).expect_err("truncated");
    assert!(matches!(err, CatalogError::BadSource { .. }), "{err}");
    assert!(err.to_string().contains("cut.parquet"), "{err}");
    assert!(catalog_entries(dir.path()).is_empty());
}

#[test]
fn names_that_could_be_paths_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = Catalog::open(dir.path()).expect("catalog");
    for name in ["../escape", "a/b", "..", "", "Persons"] {
        let err = catalog.import_csv(name, &common::persons_csv(), None, &()).expect_err("bad name");
        assert!(matches!(err, CatalogError::InvalidName { .. }), "{name:?}: {err}");
    }
    assert!(catalog_entries(dir.path()).is_empty());
    assert!(!dir.path().join("escape").exists());
}

#[test]
fn reimporting_makes_a_new_version_and_policies_stay_pinned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, catalog, v1) = common::home_with_persons(dir.path());
    let smaller = dir.path().join("persons.csv");
    let csv = std::fs::read_to_string(common::persons_csv()).expect("csv");
    std::fs::write(&smaller, csv.lines().take(11).collect::<Vec<_>>().join("\n") + "\n").expect("write");
    let v2 = catalog.import_csv("persons", &smaller, None, &()).expect("reimport");
    assert_eq!((v2.version, v2.rows), (2, 10));
    assert_ne!(v1.sha256, v2.sha256);
    assert_eq!(catalog.latest("persons").expect("latest"), v2);
    assert_eq!(catalog.versions("persons").expect("versions").len(), 2);

    let policy_path = common::write_policy(dir.path(), TestLimits::default());
    let policy = Policy::load(&policy_path, &OperatorCaps::default(), &catalog, common::today()).expect("policy");
    let wasm = std::fs::read(common::guest("region-counts")).expect("guest");
    let request = ringfence::job::JobRequest {
        policy: &policy,
        user: "alice",
        module: ringfence::job::ModuleSource::Submitted(&wasm),
        args: &[],
    };
    let record = ringfence::job::run(&home, &catalog, common::sandbox(), &request, common::today()).expect("job");
    assert_eq!(record.status, JobStatus::Succeeded);
    assert_eq!(record.datasets[0].projection.version, 1);
    assert_eq!(record.datasets[0].projection.dataset_sha256, v1.sha256);
    assert_eq!(record.datasets[0].projection.rows, 2000);
}

#[test]
fn projections_hold_only_the_granted_columns_and_rows_and_are_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, catalog, persons) = common::home_with_persons(dir.path());
    let columns = vec!["income".to_string(), "region".to_string()];
    let filter: RowFilter = "age >= 65".parse().expect("filter");
    let first = catalog.project(&persons, &columns, Some(&filter), false).expect("project");
    assert!(!first.reused);
    let table = concat(&read_arrow(&first.dir.join("data.arrow")));
    let names: Vec<String> = table.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, ["income", "region"]);
    let csv = std::fs::read_to_string(common::persons_csv()).expect("csv");
    let elderly = csv
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(2).and_then(|a| a.parse::<i64>().ok()).is_some_and(|a| a >= 65));
    assert_eq!(table.num_rows(), elderly.count());
    assert_eq!(first.rows, table.num_rows() as u64);
    assert_eq!(sha256(&first.dir.join("data.arrow")), first.sha256);
    let schema_json = std::fs::read_to_string(first.dir.join("schema.json")).expect("schema.json");
    assert!(schema_json.contains("\"income\"") && !schema_json.contains("person_id"), "{schema_json}");

    let again = catalog.project(&persons, &columns, Some(&filter), false).expect("project again");
    assert!(again.reused);
    assert_eq!((again.dir.clone(), again.sha256.clone()), (first.dir.clone(), first.sha256.clone()));
    let other = catalog.project(&persons, &columns, None, false).expect("unfiltered");
    assert_ne!(other.dir, first.dir);
    assert_eq!(other.rows, 2000);
}

#[test]
fn a_guest_sees_only_its_projection() {
    let ran = run_guest("escape", &["read", "/data/persons/schema.json"], TestLimits::default());
    assert!(ran.stdout().starts_with("ALLOWED read"), "{}", ran.stdout());
    let projection = &ran.record.datasets[0].projection;
    assert_eq!(projection.columns, common::GRANTED_COLUMNS);
    for path in [
        "/data/persons/../../catalog/persons/1/data.arrow",
        "/data/persons/../../../catalog/persons/1/data.arrow",
        "/data/persons/../persons/../../home/catalog/persons/1/data.arrow",
    ] {
        let ran = run_guest("escape", &["read", path], TestLimits::default());
        assert!(ran.stdout().starts_with("DENIED read"), "{path}: {}", ran.stdout());
    }
    let stored = ran.dir.path().join("home/catalog/persons/1/data.arrow");
    let seen = run_guest("escape", &["read", "/data/persons/data.arrow"], TestLimits::default());
    let full_size = std::fs::metadata(stored).expect("stored").len();
    let shown = format!("ALLOWED read: {full_size} bytes");
    assert!(!seen.stdout().starts_with(&shown), "the guest read the unprojected file");
}

#[test]
fn a_filtered_grant_reaches_the_guest() {
    let limits = TestLimits { grant_extra: "filter = \"age >= 65\"", ..TestLimits::default() };
    let ran = run_guest("region-counts", &[], limits);
    assert_eq!(ran.record.status, JobStatus::Succeeded);
    let table = String::from_utf8(ran.export("region_counts.csv")).expect("utf8");
    let total: u64 =
        table.lines().skip(1).map(|l| l.rsplit(',').next().and_then(|n| n.parse::<u64>().ok()).expect("count")).sum();
    assert_eq!(total, ran.record.datasets[0].projection.rows);
    assert!(total < 2000 && total > 0);
    assert_eq!(
        ran.record.datasets[0].projection.filter.as_ref().map(ToString::to_string).as_deref(),
        Some("age >= 65")
    );
}

#[test]
fn a_dataset_in_use_by_a_live_project_cannot_be_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, catalog, persons) = common::home_with_persons(dir.path());
    let policy_path = common::write_policy(dir.path(), TestLimits::default());
    let policy = Policy::load(&policy_path, &OperatorCaps::default(), &catalog, common::today()).expect("policy");
    let registry = Registry::open(home.root()).expect("registry");
    registry.register(&policy).expect("register");
    let uses = registry.dataset_uses().expect("uses");
    let live: Vec<String> =
        uses.iter().filter(|u| u.is_of(&persons) && u.is_live(common::today())).map(|u| u.project.clone()).collect();
    assert_eq!(live, ["test-project"]);
    let err = catalog.remove("persons", 1, live).expect_err("in use");
    assert!(err.to_string().contains("test-project"), "{err}");
    assert!(catalog.get("persons", 1).is_ok());
    let expired_day = chrono::NaiveDate::from_ymd_opt(2099, 1, 2).expect("date");
    assert!(uses.iter().all(|u| !u.is_live(expired_day)));
    catalog.remove("persons", 1, Vec::new()).expect("remove");
    assert!(matches!(catalog.get("persons", 1), Err(CatalogError::NotFound { .. })));
    assert!(catalog_entries(home.root()).iter().all(|e| !e.starts_with('.')));
}

#[test]
fn the_demo_population_is_deterministic_for_a_seed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = Catalog::open(dir.path()).expect("catalog");
    let a = catalog.generate_demo("persons", DemoPopulation { rows: 5000, seed: 3 }, &()).expect("a");
    let b = catalog.generate_demo("persons", DemoPopulation { rows: 5000, seed: 3 }, &()).expect("b");
    let c = catalog.generate_demo("persons", DemoPopulation { rows: 5000, seed: 4 }, &()).expect("c");
    assert_eq!(a.sha256, b.sha256);
    assert_ne!(a.sha256, c.sha256);
    assert_eq!((a.version, b.version, c.version), (1, 2, 3));
    let table = concat(&read_arrow(&catalog.data_path(&a)));
    let incomes = table.column_by_name("income").expect("income").as_any().downcast_ref::<Int64Array>().expect("int64");
    let max = arrow::compute::max(incomes).expect("max");
    let mean = arrow::compute::sum(incomes).expect("sum") / incomes.len() as i64;
    assert!(max > 20 * mean, "no dominant incomes: max {max}, mean {mean}");
    let tiny =
        text(&table, "municipality").iter().flatten().filter(|m| *m == "Vlieland" || *m == "Schiermonnikoog").count();
    assert!(tiny < 10, "tiny municipalities should have few people: {tiny}");
}

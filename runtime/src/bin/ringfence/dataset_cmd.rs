//! `ringfence dataset ...`: the operator's view of the catalog.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use ringfence::catalog::{Catalog, CatalogError, DatasetVersion, DemoPopulation, ImportProgress, ProgressUnit};
use ringfence::policy::Registry;

use ringfence::audit::Action;
use ringfence::home::Home;

use crate::{Cli, Outcome, record_operator_action, today};

/// Dataset commands.
#[derive(Subcommand)]
pub(crate) enum DatasetCommand {
    /// Import a CSV (with a header row) or Parquet file as a new version of a dataset.
    Import {
        /// Dataset name: lower-case letters, digits, '_' and '-'.
        #[arg(long)]
        name: String,
        /// Column types for a CSV file (JSON, as in schema.json); inferred when left out.
        #[arg(long)]
        schema: Option<PathBuf>,
        /// The file's format; taken from its extension when left out.
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// The file to import.
        file: PathBuf,
    },
    /// List every version of every dataset.
    List,
    /// Show a dataset version: schema, rows, hash, and the projects that use it.
    Show {
        /// The dataset.
        name: String,
        /// The version; the newest when left out.
        #[arg(long)]
        version: Option<u32>,
    },
    /// Remove a dataset version no live project uses.
    Remove {
        /// The dataset.
        name: String,
        /// The version to remove.
        #[arg(long)]
        version: u32,
    },
    /// Generate the synthetic demo population as a new version of a dataset.
    GenerateDemo {
        /// Dataset name.
        #[arg(long, default_value = "persons")]
        name: String,
        /// Number of persons.
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
        /// Random seed; the same seed gives the same people.
        #[arg(long, default_value_t = DEMO_SEED)]
        seed: u64,
    },
}

/// Source file formats.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Csv,
    Parquet,
}

/// The demo population's default seed: the same seed gives the same people.
pub(crate) const DEMO_SEED: u64 = 20261130;

/// An indicatif bar on a terminal, nothing elsewhere.
pub(crate) struct Bar(ProgressBar);

impl Bar {
    pub(crate) fn new() -> Bar {
        Bar(if std::io::stderr().is_terminal() { ProgressBar::new(0) } else { ProgressBar::hidden() })
    }

    /// `reader`, moving the bar (in bytes) as it is read.
    pub(crate) fn reading<R: std::io::Read>(&self, reader: R, total: u64) -> indicatif::ProgressBarIter<R> {
        self.start(total, ProgressUnit::Bytes);
        self.0.wrap_read(reader)
    }

    /// Removes the bar from the terminal.
    pub(crate) fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl ImportProgress for Bar {
    fn start(&self, total: u64, unit: ProgressUnit) {
        let template = match unit {
            ProgressUnit::Bytes => "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ProgressUnit::Rows => "{bar:40} {human_pos}/{human_len} rows {per_sec} eta {eta}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            self.0.set_style(style);
        }
        self.0.set_length(total);
    }

    fn advance_to(&self, done: u64) {
        self.0.set_position(done);
    }
}

fn print_version(v: &DatasetVersion) {
    println!(
        "{} version {}: {} rows, {} columns, {} bytes, sha256 {}",
        v.name,
        v.version,
        v.rows,
        v.columns.len(),
        v.bytes,
        v.sha256
    );
}

pub(crate) fn run(cli: &Cli, command: &DatasetCommand) -> anyhow::Result<Outcome> {
    let catalog = Catalog::open(&cli.home)?;
    let result = match command {
        DatasetCommand::Import { name, schema, format, file } => {
            let is_parquet = match format {
                Some(Format::Parquet) => true,
                Some(Format::Csv) => false,
                None => file.extension().is_some_and(|e| e == "parquet" || e == "pq"),
            };
            let _writing = Home::open(&cli.home)?.lock_shared()?;
            let bar = Bar::new();
            let imported = if is_parquet {
                catalog.import_parquet(name, file, &bar)
            } else {
                catalog.import_csv(name, file, schema.as_deref(), &bar)
            };
            bar.finish();
            return imported_version(cli, imported);
        }
        DatasetCommand::GenerateDemo { name, rows, seed } => {
            let _writing = Home::open(&cli.home)?.lock_shared()?;
            let bar = Bar::new();
            let generated = catalog.generate_demo(name, DemoPopulation { rows: *rows, seed: *seed }, &bar);
            bar.finish();
            return imported_version(cli, generated);
        }
        DatasetCommand::List => catalog.list().map(|all| {
            for v in &all {
                println!(
                    "{:<20} v{:<4} {:>12} rows  {}  {}",
                    v.name,
                    v.version,
                    v.rows,
                    &v.sha256[..16],
                    v.imported_at.format("%Y-%m-%d %H:%M")
                );
            }
        }),
        DatasetCommand::Show { name, version } => {
            let found = match version {
                Some(v) => catalog.get(name, *v),
                None => catalog.latest(name),
            };
            match found {
                Ok(v) => {
                    print_version(&v);
                    println!("source    {} ({:?}), imported {}", v.source, v.format, v.imported_at);
                    for c in &v.columns {
                        println!(
                            "column    {:<24} {}{}",
                            c.name,
                            c.data_type,
                            if c.nullable { "" } else { " not null" }
                        );
                    }
                    let uses = Registry::open(&cli.home)?.dataset_uses()?;
                    for u in uses.iter().filter(|u| u.is_of(&v)) {
                        let state = if u.is_live(today()) { "live" } else { "expired" };
                        println!("used by   {} ({state})", u.project);
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        DatasetCommand::Remove { name, version } => {
            let live: Vec<String> = match catalog.get(name, *version) {
                Ok(v) => Registry::open(&cli.home)?
                    .dataset_uses()?
                    .into_iter()
                    .filter(|u| u.is_of(&v) && u.is_live(today()))
                    .map(|u| u.project)
                    .collect(),
                Err(e) => return Ok(bad(e)),
            };
            match catalog.remove(name, *version, live) {
                Ok(()) => {
                    let detail = serde_json::json!({ "dataset": name, "version": version });
                    record_operator_action(
                        cli,
                        Action::DatasetRemoved,
                        None,
                        format!("dataset:{name}/{version}"),
                        detail,
                    )?;
                    println!("removed {name} version {version}");
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
    };
    Ok(match result {
        Ok(()) => Outcome::Ok,
        Err(e) => bad(e),
    })
}

/// Prints and audits a newly imported or generated version.
pub(crate) fn imported_version(cli: &Cli, imported: Result<DatasetVersion, CatalogError>) -> anyhow::Result<Outcome> {
    let v = match imported {
        Ok(v) => v,
        Err(e) => return Ok(bad(e)),
    };
    let detail = serde_json::json!({
        "dataset": v.name, "version": v.version, "sha256": v.sha256, "rows": v.rows, "source": v.source,
    });
    record_operator_action(cli, Action::DatasetImported, None, format!("dataset:{}/{}", v.name, v.version), detail)?;
    print_version(&v);
    Ok(Outcome::Ok)
}

fn bad(e: CatalogError) -> Outcome {
    Outcome::BadInput(e.to_string())
}

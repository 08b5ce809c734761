//! # ringfence-sdk
//!
//! The crate a ringfence analysis links against. An analysis is an ordinary Rust program built
//! for `wasm32-wasip1`; inside the ringfence sandbox it finds the datasets its project may read
//! under `/data/<mount>/` and leaves its results in `/export/`, from where they go to the export
//! queue for disclosure checks and review. Nothing it prints is ever shown to the researcher.
//!
//! The same analysis builds natively for development: set `RINGFENCE_DATA_DIR` and
//! `RINGFENCE_EXPORT_DIR` to local directories and run it like any program.
//!
//! ```no_run
//! use std::io::BufRead;
//!
//! let reader = ringfence_sdk::data::open("persons", "persons.csv")?;
//! let rows = reader.lines().skip(1).count();
//! ringfence_sdk::export::file("row_count.csv", format!("rows\n{rows}\n").as_bytes())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod data;
pub mod export;

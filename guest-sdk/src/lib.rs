//! # ringfence-sdk
//!
//! The crate a ringfence analysis links against. An analysis is an ordinary Rust program built
//! for `wasm32-wasip1`; inside the ringfence sandbox it finds each dataset its project may read
//! under `/data/<mount>/` — an Arrow IPC file holding only the approved variables and rows, and
//! a `schema.json` describing them — and leaves its results in `/export/`, from where they go to
//! the export queue for disclosure checks and review. Nothing it prints is ever shown to the
//! researcher.
//!
//! The same analysis builds natively for development: set `RINGFENCE_DATA_DIR` and
//! `RINGFENCE_EXPORT_DIR` to local directories and run it like any program.
//!
//! ```no_run
//! use ringfence_sdk::arrow_array::{Array, StringArray};
//!
//! let persons = ringfence_sdk::data::dataset("persons")?;
//! let region = persons.schema().index_of("region")?;
//! let mut rows = 0;
//! for batch in persons {
//!     rows += batch?.column(region).len();
//! }
//! ringfence_sdk::export::file("row_count.txt", format!("{rows} rows\n").as_bytes(), "Rows in the data")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod data;
pub mod export;
pub mod manifest;
pub mod table;
pub mod units;

/// The Arrow array types the SDK's record batches are made of (re-exported so analyses use the
/// same version).
pub use arrow_array;
/// The Arrow schema types (re-exported so analyses use the same version).
pub use arrow_schema;

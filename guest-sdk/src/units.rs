//! Units: which rows of a granted dataset each published cell was computed from.
//!
//! The host does not take a table's numbers on the analysis's word: it recomputes every cell
//! from the rows the cell names, in the data the job saw. [`crate::data::dataset`] gives every
//! batch a [`ROW_COLUMN`] holding each row's number in the dataset's `data.arrow` (row 0 is the
//! file's first), tagged with the mount it came from; the SDK's tables collect those numbers per
//! cell, and [`crate::export::table`] writes them to [`UNITS_FILE`], next to the manifest, as
//! Roaring bitmaps in their portable serialization (the format CRoaring, Java's RoaringBitmap
//! and the `roaring` crate share). Filtering or slicing a batch keeps its row column, so the
//! units stay right through any selection the analysis makes.
//!
//! A block of [`UNITS_FILE`] holds one bitmap per cell, in the manifest entry's cell order
//! (one bitmap for a regression: the rows it used), back to back; the entry's
//! [`UnitsRef`](crate::manifest::UnitsRef) says where the block starts and how long it is.

use std::io::Cursor;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt32Type;
use arrow_array::{RecordBatch, UInt32Array};
use arrow_schema::DataType;
pub use roaring::RoaringBitmap;

/// The column [`crate::data::dataset`] adds to every batch: the row's number in `data.arrow`.
pub const ROW_COLUMN: &str = "_ringfence_row";

/// The field metadata key on [`ROW_COLUMN`] naming the mount the rows come from.
pub const MOUNT_KEY: &str = "ringfence.mount";

/// The file, under `/export/`, that holds every table's units; no output may use the name.
pub const UNITS_FILE: &str = "manifest.units";

/// The row numbers of one batch and the mount they belong to, when the batch has them.
pub(crate) fn rows_of(batch: &RecordBatch) -> Option<(&str, &UInt32Array)> {
    let schema = batch.schema_ref();
    let (index, field) = schema.column_with_name(ROW_COLUMN)?;
    let mount = field.metadata().get(MOUNT_KEY)?;
    let column = batch.column(index);
    (column.data_type() == &DataType::UInt32 && column.null_count() == 0)
        .then(|| (mount.as_str(), column.as_primitive::<UInt32Type>()))
}

/// Where a table's rows came from, as far as its batches said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Source {
    /// No batch yet.
    #[default]
    Empty,
    /// Every batch so far came from this mount, with its row numbers.
    Mount(String),
    /// Some batch had no row numbers, or batches came from different mounts: the table's cells
    /// cannot name their units, and the host will send it to a person.
    Unknown,
}

impl Source {
    /// Notes a batch's rows; returns them when the table still knows its units.
    pub(crate) fn add<'b>(&mut self, batch: &'b RecordBatch) -> Option<&'b UInt32Array> {
        let rows = rows_of(batch);
        *self = match (std::mem::take(self), rows) {
            (Source::Empty, Some((mount, _))) => Source::Mount(mount.to_string()),
            (Source::Mount(known), Some((mount, _))) if known == mount => Source::Mount(known),
            _ => Source::Unknown,
        };
        rows.filter(|_| matches!(self, Source::Mount(_))).map(|(_, rows)| rows)
    }

    /// The mount, when every batch named it.
    pub(crate) fn mount(&self) -> Option<&str> {
        match self {
            Source::Mount(mount) => Some(mount),
            Source::Empty | Source::Unknown => None,
        }
    }
}

/// The units of every cell of a table: the mount, and one bitmap of row numbers per cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Units {
    /// The mount whose `data.arrow` the row numbers index.
    pub mount: String,
    /// One bitmap per cell, in the order of the table's cells.
    pub cells: Vec<RoaringBitmap>,
}

/// The bytes of a block: each bitmap's portable serialization, back to back.
pub fn write_block(cells: &[RoaringBitmap]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(cells.iter().map(RoaringBitmap::serialized_size).sum());
    for cell in cells {
        // Writing into a `Vec` cannot fail.
        let _ = cell.serialize_into(&mut bytes);
    }
    bytes
}

/// Reads a block of exactly `cells` bitmaps that fills `bytes`, or says what is wrong with it.
pub fn read_block(bytes: &[u8], cells: usize) -> Result<Vec<RoaringBitmap>, String> {
    let mut reader = Cursor::new(bytes);
    let mut bitmaps = Vec::with_capacity(cells.min(bytes.len() / 8 + 1));
    for cell in 0..cells {
        let bitmap = RoaringBitmap::deserialize_from(&mut reader)
            .map_err(|e| format!("the units of cell {} are not a valid Roaring bitmap: {e}", cell + 1))?;
        bitmaps.push(bitmap);
    }
    if reader.position() != bytes.len() as u64 {
        return Err(format!(
            "the units block holds {} bytes after its {cells} bitmaps",
            bytes.len() as u64 - reader.position()
        ));
    }
    Ok(bitmaps)
}

/// Adds `rows` (sorted or not) to `bitmap`.
pub(crate) fn extend(bitmap: &mut RoaringBitmap, rows: &[u32]) {
    if bitmap.append(rows.iter().copied()).is_err() {
        bitmap.extend(rows.iter().copied());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, RecordBatch, StringArray, UInt32Array};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;
    use crate::table::{FrequencyTable, Table};

    #[test]
    fn blocks_round_trip_and_refuse_garbage() {
        let cells: Vec<RoaringBitmap> =
            vec![(0..5).collect(), RoaringBitmap::new(), (0..100_000).step_by(3).collect(), [7, 70_000].into()];
        let bytes = write_block(&cells);
        assert_eq!(read_block(&bytes, 4).expect("read"), cells);
        assert!(read_block(&bytes, 3).expect_err("one more").contains("after its 3 bitmaps"));
        assert!(read_block(&bytes, 5).expect_err("one fewer").contains("cell 5"));
        assert!(read_block(&bytes[..bytes.len() - 1], 4).is_err());
        assert!(read_block(b"not a bitmap", 1).is_err());
    }

    #[test]
    fn unsorted_rows_are_added_too() {
        let mut bitmap = RoaringBitmap::new();
        extend(&mut bitmap, &[5, 9]);
        extend(&mut bitmap, &[3, 12, 4]);
        assert_eq!(bitmap.iter().collect::<Vec<_>>(), [3, 4, 5, 9, 12]);
    }

    /// A batch as `data::dataset` yields it: regions, and row numbers from `first`.
    fn numbered(regions: &[&str], first: u32, mount: &str) -> RecordBatch {
        let row = Field::new(ROW_COLUMN, DataType::UInt32, false)
            .with_metadata(std::collections::HashMap::from([(MOUNT_KEY.to_string(), mount.to_string())]));
        let schema = Arc::new(Schema::new(vec![Field::new("region", DataType::Utf8, true), row]));
        let rows = UInt32Array::from_iter_values(first..first + regions.len() as u32);
        let columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from(regions.to_vec())), Arc::new(rows)];
        RecordBatch::try_new(schema, columns).expect("batch")
    }

    #[test]
    fn a_table_names_each_cells_rows_through_a_slice_and_only_from_one_mount() {
        let mut table = FrequencyTable::new(&["region"]).expect("table");
        table.add(&numbered(&["U", "Z", "U"], 0, "persons")).expect("add");
        // Rows 3..7, of which the analysis keeps 5 and 6.
        table.add(&numbered(&["Z", "Z", "U", "Z"], 3, "persons").slice(2, 2)).expect("add");
        let units = table.units().expect("units");
        assert_eq!(units.mount, "persons");
        let rows: Vec<Vec<u32>> = units.cells.iter().map(|c| c.iter().collect()).collect();
        assert_eq!(rows, [vec![0, 2, 5], vec![1, 6]]);
        table.add(&numbered(&["U"], 0, "companies")).expect("add");
        assert_eq!(table.units(), None, "rows of two mounts cannot be named");
        let mut unnumbered = FrequencyTable::new(&["region"]).expect("table");
        let plain = RecordBatch::try_from_iter([("region", Arc::new(StringArray::from(vec!["U"])) as ArrayRef)]);
        unnumbered.add(&plain.expect("batch")).expect("add");
        assert_eq!(unnumbered.units(), None);
    }
}

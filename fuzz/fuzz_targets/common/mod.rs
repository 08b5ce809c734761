//! What the targets share: a catalog in a temporary directory with one small dataset.

use ringfence::catalog::{Catalog, DatasetVersion};

/// A catalog in `root` with `persons` imported from `csv`, and the version imported.
pub fn catalog_with_persons(root: &std::path::Path, csv: &str) -> (Catalog, DatasetVersion) {
    let catalog = Catalog::open(root).expect("catalog");
    let source = root.join("persons.csv");
    std::fs::write(&source, csv).expect("csv");
    let version = catalog.import_csv("persons", &source, None, &()).expect("import");
    (catalog, version)
}

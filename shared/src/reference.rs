//! Reference tables for the `map` step's `lookup`: small CSV files keyed by one column (the stores table gives
//! each store its city, region, latitude, longitude and sales manager). Loaded and checked once at compile.

use std::collections::HashMap;
use std::path::PathBuf;

/// Where a pipeline finds the files it names (reference tables). The core does no I/O of its own choosing:
/// the caller says where files come from.
pub trait Resources {
    /// The text of the named file, or a message saying why it cannot be read.
    fn read_to_string(&self, name: &str) -> Result<String, String>;
}

/// Files relative to a directory, usually the pipeline file's own.
pub struct DirResources(pub PathBuf);

impl Resources for DirResources {
    /// Only files inside the directory: a name that is absolute, climbs out with `..` or resolves (through a
    /// symbolic link) outside it is refused before anything is read, so no other file's content can reach an
    /// error message.
    fn read_to_string(&self, name: &str) -> Result<String, String> {
        use std::path::{Component, Path};
        let outside =
            || format!("{name:?} is outside the pipeline's folder (give a path relative to it, without `..`)");
        if !Path::new(name).components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
            return Err(outside());
        }
        let path = self.0.join(name);
        let resolved = path.canonicalize().map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let dir = self.0.canonicalize().map_err(|e| format!("cannot read {}: {e}", self.0.display()))?;
        if !resolved.starts_with(&dir) {
            return Err(outside());
        }
        std::fs::read_to_string(&resolved).map_err(|e| format!("cannot read {}: {e}", path.display()))
    }
}

/// Files compiled into the binary: the embedded default pipeline and its stores table.
pub struct EmbeddedResources(pub &'static [(&'static str, &'static str)]);

impl Resources for EmbeddedResources {
    fn read_to_string(&self, name: &str) -> Result<String, String> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| text.to_string())
            .ok_or_else(|| format!("no embedded file named {name:?}"))
    }
}

/// A CSV table indexed by its key column.
#[derive(Debug, Clone)]
pub struct ReferenceTable {
    name: String,
    columns: Vec<String>,
    rows: HashMap<String, Vec<String>>,
}

impl ReferenceTable {
    /// Parses a CSV with a header row; `key` must be one of its columns and unique per row.
    pub fn parse(name: &str, text: &str, key: &str) -> Result<ReferenceTable, String> {
        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
        let columns: Vec<String> =
            reader.headers().map_err(|e| format!("{name}: {e}"))?.iter().map(str::to_string).collect();
        let key_index = columns
            .iter()
            .position(|c| c == key)
            .ok_or_else(|| format!("{name} has no column {key:?} (columns: {})", columns.join(", ")))?;
        let mut rows = HashMap::new();
        for (i, record) in reader.records().enumerate() {
            let record = record.map_err(|e| format!("{name}: {e}"))?;
            let row: Vec<String> = record.iter().map(str::to_string).collect();
            let k = row[key_index].clone();
            if rows.insert(k.clone(), row).is_some() {
                return Err(format!("{name} line {}: duplicate key {k:?} in column {key:?}", i + 2));
            }
        }
        Ok(ReferenceTable { name: name.to_string(), columns, rows })
    }

    /// The index of a column, for lookups compiled once.
    pub fn column(&self, column: &str) -> Result<usize, String> {
        self.columns
            .iter()
            .position(|c| c == column)
            .ok_or_else(|| format!("{} has no column {column:?} (columns: {})", self.name, self.columns.join(", ")))
    }

    /// The row for a key.
    pub fn row(&self, key: &str) -> Option<&[String]> {
        self.rows.get(key).map(Vec::as_slice)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORES: &str = "store_id,city,region\nS1,\"Lyon, Part-Dieu\",ARA\nS2,Paris,IDF\n";

    #[test]
    fn looks_up_rows_by_key() {
        let t = ReferenceTable::parse("stores.csv", STORES, "store_id").unwrap();
        let city = t.column("city").unwrap();
        assert_eq!(t.row("S1").unwrap()[city], "Lyon, Part-Dieu");
        assert!(t.row("S3").is_none());
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn errors_name_the_table_and_column() {
        assert_eq!(
            ReferenceTable::parse("stores.csv", STORES, "id").unwrap_err(),
            "stores.csv has no column \"id\" (columns: store_id, city, region)"
        );
        let dup = format!("{STORES}S1,Nice,PACA\n");
        assert_eq!(
            ReferenceTable::parse("stores.csv", &dup, "store_id").unwrap_err(),
            "stores.csv line 4: duplicate key \"S1\" in column \"store_id\""
        );
    }

    /// Issue 12: `table: ../../../../etc/passwd` was read and its first line printed in the error.
    #[test]
    fn tables_outside_the_pipeline_folder_are_refused_unread() {
        let root = std::env::temp_dir().join(format!("salesflow-reference-{}", std::process::id()));
        let dir = root.join("pipelines");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("stores.csv"), STORES).unwrap();
        std::fs::write(root.join("secret.csv"), "root:x:0:0\n").unwrap();
        let resources = DirResources(dir.clone());
        assert_eq!(resources.read_to_string("stores.csv").unwrap(), STORES);
        assert_eq!(resources.read_to_string("./stores.csv").unwrap(), STORES);
        for name in ["../secret.csv", "../../../../etc/passwd", "/etc/passwd", "sub/../../secret.csv"] {
            let err = resources.read_to_string(name).unwrap_err();
            assert_eq!(
                err,
                format!("{name:?} is outside the pipeline's folder (give a path relative to it, without `..`)")
            );
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.join("secret.csv"), dir.join("link.csv")).unwrap();
            let err = resources.read_to_string("link.csv").unwrap_err();
            assert!(err.contains("outside the pipeline's folder") && !err.contains("root:x"), "{err}");
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}

//! QuickSight S3 manifests, as pure functions. QuickSight's rules decide the shape:
//!
//! - a manifest is a `.json` object: `{"fileLocations":[{"URIs":[...]},{"URIPrefixes":[...]}],
//!   "globalUploadSettings":{"format":"CSV","delimiter":",","textqualifier":"\"","containsHeader":"true"}}`;
//! - at most [`MAX_FILES`] files in total, a `URIPrefixes` entry counting as every file directly under it
//!   (prefixes are not recursive), each file ≤ 1 GB, every file with the same columns;
//! - a refresh re-reads everything listed.
//!
//! salesflow lists files by explicit `URIs`, never by prefix: a prefix would show a compacted hour's merged file
//! and its pieces at the same time while compaction runs, and explicit URIs count exactly. Rewriting a manifest
//! (one S3 PUT, atomic) is the moment readers switch from pieces to merged files. When a manifest would list
//! more than [`MAX_FILES`] files it is split into parts (`<name>.json`, `<name>.part-2.json`, ...), each a valid
//! manifest, in time order. Compaction keeps the counts small ([`crate::compaction`]): a closed hour is one
//! `hourly_sales` file and a few `sales_lines` parts, and the open hour's `hourly_sales` is one rolled-up file
//! rewritten on every scheduled run; only `sales_lines` lists the open hour's pieces (one per landed object),
//! which is why its manifests cover short windows.

use serde::{Deserialize, Serialize};

use crate::keys::{ObjectLocation, manifest_part_key, manifest_part_of};

/// QuickSight's limit on the files of one manifest (prefixes count every file under them).
pub const MAX_FILES: usize = 1000;

/// A QuickSight S3 manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub file_locations: Vec<FileLocation>,
    pub global_upload_settings: UploadSettings,
}

/// One entry of `fileLocations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FileLocation {
    Uris {
        #[serde(rename = "URIs")]
        uris: Vec<String>,
    },
    Prefixes {
        #[serde(rename = "URIPrefixes")]
        prefixes: Vec<String>,
    },
}

/// `globalUploadSettings`: the CSV dialect every dataset file is written in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadSettings {
    pub format: String,
    pub delimiter: String,
    pub textqualifier: String,
    #[serde(rename = "containsHeader")]
    pub contains_header: String,
}

impl Default for UploadSettings {
    fn default() -> Self {
        UploadSettings {
            format: "CSV".into(),
            delimiter: ",".into(),
            textqualifier: "\"".into(),
            contains_header: "true".into(),
        }
    }
}

impl Manifest {
    /// A manifest listing these files (S3 keys in `bucket`) by URI.
    pub fn of_files<'a>(bucket: &str, keys: impl IntoIterator<Item = &'a str>) -> Manifest {
        Manifest {
            file_locations: vec![FileLocation::Uris {
                uris: keys.into_iter().map(|k| ObjectLocation::new(bucket, k).to_string()).collect(),
            }],
            global_upload_settings: UploadSettings::default(),
        }
    }

    /// The manifest as written: pretty JSON, byte-identical for the same files.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a manifest always serializes");
        out.push(b'\n');
        out
    }

    /// Checks QuickSight's rules. `files_under(prefix)` says how many files a `URIPrefixes` entry stands for.
    /// Returns the number of files counted, or every violation found.
    pub fn validate(&self, files_under: impl Fn(&str) -> usize) -> Result<usize, Vec<String>> {
        let mut errors = Vec::new();
        let mut files = 0;
        if self.file_locations.is_empty() {
            errors.push("fileLocations is empty".to_string());
        }
        let s = &self.global_upload_settings;
        if *s != UploadSettings::default() {
            errors.push(format!("globalUploadSettings {s:?} do not describe salesflow's CSV files"));
        }
        for location in &self.file_locations {
            match location {
                FileLocation::Uris { uris } => {
                    if uris.is_empty() {
                        errors.push("an empty URIs list".to_string());
                    }
                    for uri in uris {
                        match uri.parse::<ObjectLocation>() {
                            Ok(at) if !at.key.ends_with('/') => files += 1,
                            _ => errors.push(format!("{uri:?} is not an s3://bucket/key URI of a file")),
                        }
                    }
                }
                FileLocation::Prefixes { prefixes } => {
                    if prefixes.is_empty() {
                        errors.push("an empty URIPrefixes list".to_string());
                    }
                    for prefix in prefixes {
                        match prefix.parse::<ObjectLocation>() {
                            Ok(at) if at.key.ends_with('/') => files += files_under(prefix),
                            _ => errors.push(format!("{prefix:?} is not an s3://bucket/prefix/ URI of a folder")),
                        }
                    }
                }
            }
        }
        if files > MAX_FILES {
            errors.push(format!("{files} files, more than QuickSight's {MAX_FILES}"));
        }
        if errors.is_empty() { Ok(files) } else { Err(errors) }
    }

    /// Every URI listed (not prefixes), as text: read each with [`str::parse`] into an [`ObjectLocation`].
    pub fn uris(&self) -> impl Iterator<Item = &str> {
        self.file_locations
            .iter()
            .flat_map(|l| match l {
                FileLocation::Uris { uris } => uris.as_slice(),
                FileLocation::Prefixes { .. } => &[],
            })
            .map(String::as_str)
    }
}

/// The manifests to write under one base key (`.../dt=2026-11-23.json` or `.../last-7-days.json`) for files
/// in time order: one part per [`MAX_FILES`] files. No files, no manifest.
pub fn split(base_key: &str, bucket: &str, keys: &[String]) -> Vec<(String, Manifest)> {
    keys.chunks(MAX_FILES)
        .enumerate()
        .map(|(i, chunk)| {
            (manifest_part_key(base_key, i), Manifest::of_files(bucket, chunk.iter().map(String::as_str)))
        })
        .collect()
}

/// What one manifest refresh does: PUT these, then DELETE those (parts left over from a larger split, or the
/// manifest of a day that no longer has files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestPlan {
    pub writes: Vec<(String, Manifest)>,
    pub deletes: Vec<String>,
    /// The base keys that had to be split, with their file count.
    pub splits: Vec<(String, usize)>,
}

impl ManifestPlan {
    /// Adds the manifests of `base_key` for `keys`, and deletes the parts of it in `existing` that are no
    /// longer needed.
    pub fn add(&mut self, base_key: &str, bucket: &str, keys: &[String], existing: &[String]) {
        let parts = split(base_key, bucket, keys);
        if parts.len() > 1 {
            self.splits.push((base_key.to_string(), keys.len()));
        }
        let n = parts.len();
        self.writes.extend(parts);
        self.deletes
            .extend(existing.iter().filter(|k| manifest_part_of(base_key, k).is_some_and(|part| part >= n)).cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("datasets/hourly_sales/dt=2026-11-23/hour={:02}/f{i:05}.csv", i % 24)).collect()
    }

    #[test]
    fn a_manifest_has_quicksights_shape() {
        let m = Manifest::of_files("salesflow-data", ["datasets/hourly_sales/dt=2026-11-23/hour=09/a b.csv"]);
        let json: serde_json::Value = serde_json::from_slice(&m.to_bytes()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "fileLocations": [{"URIs": ["s3://salesflow-data/datasets/hourly_sales/dt=2026-11-23/hour=09/a b.csv"]}],
                "globalUploadSettings": {"format": "CSV", "delimiter": ",", "textqualifier": "\"", "containsHeader": "true"}
            })
        );
        assert_eq!(m.validate(|_| 0), Ok(1));
        let back: Manifest = serde_json::from_slice(&m.to_bytes()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn prefixes_count_every_file_under_them() {
        let m = Manifest {
            file_locations: vec![
                FileLocation::Prefixes { prefixes: vec!["s3://b/datasets/x/dt=2026-11-23/hour=09/".into()] },
                FileLocation::Uris { uris: vec!["s3://b/k.csv".into()] },
            ],
            global_upload_settings: UploadSettings::default(),
        };
        assert_eq!(m.validate(|_| 999), Ok(1000));
        assert!(m.validate(|_| 1000).unwrap_err()[0].contains("1001 files"));
        let bad = Manifest {
            file_locations: vec![FileLocation::Uris { uris: vec!["b/k.csv".into(), "s3://b/dir/".into()] }],
            global_upload_settings: UploadSettings { contains_header: "false".into(), ..UploadSettings::default() },
        };
        assert_eq!(bad.validate(|_| 0).unwrap_err().len(), 3);
    }

    #[test]
    fn more_than_a_thousand_files_are_split_in_order() {
        let files = keys(2500);
        let parts = split("manifests/sales_lines/dt=2026-11-23.json", "b", &files);
        let names: Vec<&str> = parts.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "manifests/sales_lines/dt=2026-11-23.json",
                "manifests/sales_lines/dt=2026-11-23.part-2.json",
                "manifests/sales_lines/dt=2026-11-23.part-3.json"
            ]
        );
        let counts: Vec<usize> = parts.iter().map(|(_, m)| m.validate(|_| 0).unwrap()).collect();
        assert_eq!(counts, [1000, 1000, 500]);
        let all: Vec<String> =
            parts.iter().flat_map(|(_, m)| m.uris().map(str::to_string).collect::<Vec<_>>()).collect();
        assert_eq!(all, files.iter().map(|k| ObjectLocation::new("b", k).to_string()).collect::<Vec<_>>());
        assert_eq!(split("m.json", "b", &[]), vec![]);
    }

    #[test]
    fn leftover_parts_are_deleted() {
        let base = "manifests/sales_lines/dt=2026-11-23.json";
        let existing: Vec<String> = (0..4)
            .map(|p| manifest_part_key(base, p))
            .chain(["manifests/sales_lines/dt=2026-11-24.json".to_string()])
            .collect();
        let mut plan = ManifestPlan::default();
        plan.add(base, "b", &keys(1001), &existing);
        assert_eq!(plan.writes.len(), 2);
        assert_eq!(plan.deletes, [manifest_part_key(base, 2), manifest_part_key(base, 3)]);
        assert_eq!(plan.splits, [(base.to_string(), 1001)]);
        let mut empty = ManifestPlan::default();
        empty.add(base, "b", &[], &existing);
        assert_eq!(empty.deletes.len(), 4);
    }

    proptest! {
        #[test]
        fn every_part_is_valid_and_together_they_list_each_file_once(n in 0usize..3500) {
            let files = keys(n);
            let parts = split("m/x.json", "bucket", &files);
            prop_assert_eq!(parts.len(), n.div_ceil(MAX_FILES));
            let mut total = 0;
            for (key, m) in &parts {
                prop_assert!(key.ends_with(".json"));
                total += m.validate(|_| 0).map_err(|e| TestCaseError::fail(e.join("; ")))?;
            }
            prop_assert_eq!(total, n);
        }
    }
}

//! [`ExportConfig`]: the export function's environment, read once at cold start. A bad value fails naming the
//! variable.

use jiff::SignedDuration;
use salesflow_core::emf::DEFAULT_STAGE;
use salesflow_core::keys::Layout;
use salesflow_store::settings::read;
use salesflow_store::{EnvError, Settings};

/// Where the export reads and writes, and how it compacts.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// `SALESFLOW_BUCKET` (default `salesflow-data`): datasets and manifests are written here.
    pub bucket: String,
    /// `SALESFLOW_LANDED_PREFIX`, `SALESFLOW_DATASETS_PREFIX`, `SALESFLOW_MANIFESTS_PREFIX` (defaults from
    /// [`Layout::default`]).
    pub layout: Layout,
    /// `SALESFLOW_WINDOW_DAYS` (default 7, 1 to 366): the rolling manifest covers this many UTC days, today
    /// included; compaction and daily manifests look at the same days.
    pub window_days: u32,
    /// `SALESFLOW_COMPACTION_GRACE_MINUTES` (default 15): an hour is compacted once its end plus this has passed;
    /// replaced files are deleted once a compaction is this old.
    pub grace: SignedDuration,
    /// `SALESFLOW_ROLLUP_OPEN_HOURS` (default `true`; `true` or `false`): each scheduled run rolls the
    /// `hourly_sales` pieces of the open hour (and of a closed hour inside its grace period) up into one merged
    /// file, so manifests list one file per hour instead of one per landed object. Until the hour is compacted
    /// its numbers are sums of the pieces: `receipts` over-counts receipts split across landed objects, and a
    /// line redelivered in two objects counts twice. `false`: open hours list their pieces.
    pub rollup_open_hours: bool,
    /// Size at which a merged `sales_lines` file is cut into a new part (default 256 MiB; QuickSight's limit is
    /// 1 GB per file). Not an environment variable: the whole part is buffered before its upload.
    pub merged_part_bytes: u64,
    /// `SALESFLOW_STAGE` (default [`DEFAULT_STAGE`], read with the shared [`Settings`]): the `Stage` dimension of
    /// the metrics.
    pub stage: String,
}

pub const DEFAULT_WINDOW_DAYS: u32 = 7;
pub const DEFAULT_GRACE_MINUTES: i64 = 15;
pub const DEFAULT_MERGED_PART_BYTES: u64 = 256 << 20;
pub const DEFAULT_ROLLUP_OPEN_HOURS: bool = true;

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            bucket: "salesflow-data".into(),
            layout: Layout::default(),
            window_days: DEFAULT_WINDOW_DAYS,
            grace: SignedDuration::from_mins(DEFAULT_GRACE_MINUTES),
            rollup_open_hours: DEFAULT_ROLLUP_OPEN_HOURS,
            merged_part_bytes: DEFAULT_MERGED_PART_BYTES,
            stage: DEFAULT_STAGE.into(),
        }
    }
}

impl ExportConfig {
    /// Reads the configuration through `var` (`|name| std::env::var(name).ok()` in `main`).
    pub fn from_vars(var: &impl Fn(&str) -> Option<String>) -> Result<ExportConfig, EnvError> {
        let settings = Settings::from_vars(var)?;
        let window_days = read(var, "SALESFLOW_WINDOW_DAYS", &DEFAULT_WINDOW_DAYS.to_string(), |v| {
            v.parse::<u32>()
                .ok()
                .filter(|d| (1..=366).contains(d))
                .map(|_| ())
                .ok_or("expected a number of days from 1 to 366".into())
        })?
        .parse()
        .expect("checked");
        let grace: i64 = read(var, "SALESFLOW_COMPACTION_GRACE_MINUTES", &DEFAULT_GRACE_MINUTES.to_string(), |v| {
            v.parse::<i64>()
                .ok()
                .filter(|m| (0..=24 * 60).contains(m))
                .map(|_| ())
                .ok_or("expected minutes from 0 to 1440".into())
        })?
        .parse()
        .expect("checked");
        let rollup_open_hours =
            read(var, "SALESFLOW_ROLLUP_OPEN_HOURS", &DEFAULT_ROLLUP_OPEN_HOURS.to_string(), |v| {
                v.parse::<bool>().map(|_| ()).map_err(|_| "expected `true` or `false`".into())
            })?
            .parse()
            .expect("checked");
        Ok(ExportConfig {
            bucket: settings.bucket,
            layout: settings.layout,
            window_days,
            grace: SignedDuration::from_mins(grace),
            rollup_open_hours,
            merged_part_bytes: DEFAULT_MERGED_PART_BYTES,
            stage: settings.stage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<ExportConfig, EnvError> {
        ExportConfig::from_vars(&|name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn defaults_and_overrides() {
        let c = config(&[]).unwrap();
        assert_eq!((c.bucket.as_str(), c.window_days, c.grace), ("salesflow-data", 7, SignedDuration::from_mins(15)));
        assert_eq!(c.layout, Layout::default());
        assert!(c.rollup_open_hours);
        assert_eq!(c.stage, "local");
        let c = config(&[
            ("SALESFLOW_DATASETS_PREFIX", "prod/datasets/"),
            ("SALESFLOW_MANIFESTS_PREFIX", "prod/manifests/"),
            ("SALESFLOW_LANDED_PREFIX", "prod/landed/"),
            ("SALESFLOW_WINDOW_DAYS", "3"),
            ("SALESFLOW_COMPACTION_GRACE_MINUTES", "0"),
            ("SALESFLOW_ROLLUP_OPEN_HOURS", "false"),
            ("SALESFLOW_STAGE", "prod"),
        ])
        .unwrap();
        assert_eq!(
            (c.layout.datasets.as_str(), c.layout.manifests.as_str(), c.layout.landed.as_str()),
            ("prod/datasets/", "prod/manifests/", "prod/landed/")
        );
        assert_eq!((c.window_days, c.grace, c.rollup_open_hours), (3, SignedDuration::ZERO, false));
        assert_eq!(c.stage, "prod");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (variable, value) in [
            ("SALESFLOW_WINDOW_DAYS", "0"),
            ("SALESFLOW_WINDOW_DAYS", "seven"),
            ("SALESFLOW_COMPACTION_GRACE_MINUTES", "-1"),
            ("SALESFLOW_ROLLUP_OPEN_HOURS", "yes"),
            ("SALESFLOW_ROLLUP_OPEN_HOURS", "TRUE"),
            ("SALESFLOW_DATASETS_PREFIX", "datasets"),
            ("SALESFLOW_MANIFESTS_PREFIX", "/manifests/"),
            ("SALESFLOW_BUCKET", "Not_A_Bucket"),
            ("SALESFLOW_STAGE", " "),
        ] {
            let err = config(&[(variable, value)]).unwrap_err();
            assert_eq!(err.variable, variable);
            assert!(err.to_string().starts_with(&format!("{variable}=")), "{err}");
        }
    }
}

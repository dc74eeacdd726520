//! [`Settings`]: the environment variables both functions read once at cold start — bucket, key prefixes, time
//! zone, stage — each with a default that suits local use. A bad value fails with an [`EnvError`] naming the variable.

use jiff::tz::TimeZone;
use salesflow_core::DefaultTimeZone;
use salesflow_core::emf::{DEFAULT_STAGE, STAGE_VARIABLE, check_stage};
use salesflow_core::keys::Layout;

/// The variable naming the deployment's time zone.
pub const TIME_ZONE_VARIABLE: &str = "SALESFLOW_TIME_ZONE";
/// Its default: the stores' zone.
pub const DEFAULT_TIME_ZONE: &str = "Europe/Paris";

/// A bad environment variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}={value:?}: {message}")]
pub struct EnvError {
    pub variable: &'static str,
    pub value: String,
    pub message: String,
}

/// Where salesflow's objects live, which time zone its reports use, and which stage its metrics belong to.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `SALESFLOW_BUCKET` (default `salesflow-data`).
    pub bucket: String,
    /// `SALESFLOW_RAW_PREFIX` (`raw/`), `SALESFLOW_LANDED_PREFIX` (`landed/`), `SALESFLOW_REJECTS_PREFIX`
    /// (`rejects/`), `SALESFLOW_DATASETS_PREFIX` (`datasets/`), `SALESFLOW_MANIFESTS_PREFIX` (`manifests/`).
    pub layout: Layout,
    /// `SALESFLOW_TIME_ZONE` (default `Europe/Paris`): an IANA name, checked against the bundled database. The
    /// zone of the reports, and the one a pipeline compiles with for its `time_parts` ops that name none (see
    /// `PipelineConfig::compile_with`; the plan labels it `SALESFLOW_TIME_ZONE`).
    pub time_zone: DefaultTimeZone,
    /// `SALESFLOW_STAGE` (default `local`): the deployment (`dev`, `prod`), the `Stage` dimension of both
    /// functions' metrics.
    pub stage: String,
}

impl Settings {
    /// Reads the settings through `var` (`|name| std::env::var(name).ok()` in the functions).
    pub fn from_vars(var: &impl Fn(&str) -> Option<String>) -> Result<Settings, EnvError> {
        let bucket = read(var, "SALESFLOW_BUCKET", "salesflow-data", check_bucket)?;
        let prefix = |name, default| read(var, name, default, check_prefix);
        let layout = Layout {
            raw: prefix("SALESFLOW_RAW_PREFIX", "raw/")?,
            landed: prefix("SALESFLOW_LANDED_PREFIX", "landed/")?,
            rejects: prefix("SALESFLOW_REJECTS_PREFIX", "rejects/")?,
            datasets: prefix("SALESFLOW_DATASETS_PREFIX", "datasets/")?,
            manifests: prefix("SALESFLOW_MANIFESTS_PREFIX", "manifests/")?,
        };
        let time_zone = time_zone_from_vars(var)?;
        let stage = read(var, STAGE_VARIABLE, DEFAULT_STAGE, check_stage)?;
        Ok(Settings { bucket, layout, time_zone, stage })
    }
}

/// `SALESFLOW_TIME_ZONE` alone (default `Europe/Paris`), checked: for the commands that compile a pipeline
/// without needing the rest of the [`Settings`].
pub fn time_zone_from_vars(var: &impl Fn(&str) -> Option<String>) -> Result<DefaultTimeZone, EnvError> {
    let name = read(var, TIME_ZONE_VARIABLE, DEFAULT_TIME_ZONE, |v| {
        TimeZone::get(v).map(|_| ()).map_err(|e| format!("not a known IANA time zone: {e}"))
    })?;
    Ok(DefaultTimeZone::new(&name, TIME_ZONE_VARIABLE).expect("checked above"))
}

/// The variable's value (its default when unset or empty), checked; each function reads its own extra
/// variables with it.
pub fn read(
    var: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: &str,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<String, EnvError> {
    let value = var(variable).filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string());
    check(&value).map_err(|message| EnvError { variable, value: value.clone(), message })?;
    Ok(value)
}

/// S3 bucket naming rules: 3 to 63 lowercase letters, digits, `.` and `-`, starting and ending alphanumeric.
fn check_bucket(name: &str) -> Result<(), String> {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !(3..=63).contains(&name.len())
        || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        || !edge_ok(name.chars().next())
        || !edge_ok(name.chars().last())
    {
        return Err("not a valid S3 bucket name (3-63 lowercase letters, digits, '.', '-')".into());
    }
    Ok(())
}

/// A key prefix: non-empty, ends with `/`, no leading `/`, no empty or `..` segment.
fn check_prefix(prefix: &str) -> Result<(), String> {
    let Some(body) = prefix.strip_suffix('/') else {
        return Err("must end with '/'".into());
    };
    if body.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err("must be like `raw/` or `env/raw/`: no leading '/', no empty, '.' or '..' segment".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, EnvError> {
        Settings::from_vars(&|name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn defaults_suit_local_use() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.bucket, "salesflow-data");
        assert_eq!(s.layout, Layout::default());
        assert_eq!(s.time_zone.name, "Europe/Paris");
        assert_eq!(s.time_zone.source, "SALESFLOW_TIME_ZONE");
        assert_eq!(s.stage, "local");
    }

    #[test]
    fn the_time_zone_is_the_pipelines_default_zone() {
        let s = settings(&[("SALESFLOW_TIME_ZONE", "America/New_York")]).unwrap();
        assert_eq!(s.time_zone.name, "America/New_York");
        assert_eq!(s.time_zone.zone, TimeZone::get("America/New_York").unwrap());
        let alone = time_zone_from_vars(&|name: &str| (name == "SALESFLOW_TIME_ZONE").then(|| "Asia/Tokyo".into()));
        assert_eq!(alone.unwrap().name, "Asia/Tokyo");
        assert_eq!(time_zone_from_vars(&|_: &str| Some(String::new())).unwrap().name, "Europe/Paris");
        let bad = time_zone_from_vars(&|_: &str| Some("Europe/Pariss".into())).unwrap_err();
        assert_eq!(bad.variable, "SALESFLOW_TIME_ZONE");
    }

    #[test]
    fn prefixes_come_from_the_environment() {
        let s = settings(&[("SALESFLOW_RAW_PREFIX", "prod/raw/"), ("SALESFLOW_BUCKET", "my.bucket-1")]).unwrap();
        assert_eq!(s.layout.raw, "prod/raw/");
        assert_eq!(s.layout.landed, "landed/");
        assert_eq!(s.bucket, "my.bucket-1");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = settings(&[("SALESFLOW_LANDED_PREFIX", "landed")]).unwrap_err();
        assert_eq!(err.to_string(), "SALESFLOW_LANDED_PREFIX=\"landed\": must end with '/'");
        assert_eq!(
            settings(&[("SALESFLOW_REJECTS_PREFIX", "/rejects/")]).unwrap_err().variable,
            "SALESFLOW_REJECTS_PREFIX"
        );
        assert_eq!(settings(&[("SALESFLOW_BUCKET", "Bad_Bucket")]).unwrap_err().variable, "SALESFLOW_BUCKET");
        let tz = settings(&[("SALESFLOW_TIME_ZONE", "Europe/Pariss")]).unwrap_err();
        assert_eq!(tz.variable, "SALESFLOW_TIME_ZONE");
    }
}

//! The function's configuration, read once at cold start from environment variables: the shared [`Settings`]
//! (bucket, prefixes, time zone, stage), `SALESFLOW_PIPELINE`, the pipeline file (the embedded sample pipeline
//! when unset). Every error names the variable.

use std::path::PathBuf;

use salesflow_core::reference::DirResources;
use salesflow_core::{ConfigError, Pipeline, PipelineConfig, defaults};
use salesflow_store::{EnvError, Settings};

/// Why the function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("SALESFLOW_PIPELINE={path:?}: cannot read the pipeline file: {source}")]
    PipelineUnreadable { path: PathBuf, source: std::io::Error },
    #[error("SALESFLOW_PIPELINE={path:?}: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    PipelineInvalid { path: PathBuf, errors: Vec<ConfigError> },
}

#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub settings: Settings,
    /// `SALESFLOW_PIPELINE`; its lookup tables are read from the same directory.
    pub pipeline_file: Option<PathBuf>,
}

impl IngestConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<IngestConfig, StartupError> {
        IngestConfig::from_vars(&|name| std::env::var(name).ok())
    }

    /// Reads variables through `var`.
    pub fn from_vars(var: &impl Fn(&str) -> Option<String>) -> Result<IngestConfig, StartupError> {
        let settings = Settings::from_vars(var)?;
        let pipeline_file = var("SALESFLOW_PIPELINE").filter(|v| !v.is_empty()).map(PathBuf::from);
        Ok(IngestConfig { settings, pipeline_file })
    }

    /// Loads and compiles the pipeline, once; `time_parts` ops without a `time_zone` use `SALESFLOW_TIME_ZONE`.
    pub fn compile_pipeline(&self) -> Result<Pipeline, StartupError> {
        let Some(path) = &self.pipeline_file else {
            return Ok(defaults::sales_pipeline_with(&self.settings.time_zone));
        };
        let text = std::fs::read_to_string(path)
            .map_err(|source| StartupError::PipelineUnreadable { path: path.clone(), source })?;
        let invalid = |errors| StartupError::PipelineInvalid { path: path.clone(), errors };
        let config = PipelineConfig::parse_all(&text).map_err(invalid)?;
        let dir = path.parent().map(PathBuf::from).unwrap_or_default();
        config.compile_with(&DirResources(dir), &self.settings.time_zone).map_err(invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<IngestConfig, StartupError> {
        IngestConfig::from_vars(&|name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn the_embedded_pipeline_is_the_default() {
        let c = config(&[]).unwrap();
        assert_eq!(c.pipeline_file, None);
        assert_eq!(c.settings.stage, "local");
        assert_eq!(c.compile_pipeline().unwrap().plan(), defaults::sales_pipeline().plan());
    }

    #[test]
    fn pipeline_errors_name_the_variable_and_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.yaml");
        std::fs::write(&file, "pipeline:\n  - combiner: { max_records: 0 }\n").unwrap();
        let err = config(&[("SALESFLOW_PIPELINE", file.to_str().unwrap())]).unwrap().compile_pipeline().unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("SALESFLOW_PIPELINE="), "{message}");
        assert!(message.contains("pipeline[0].combiner.max_records"), "{message}");
        let missing = config(&[("SALESFLOW_PIPELINE", "/nonexistent/p.yaml")]).unwrap().compile_pipeline().unwrap_err();
        assert!(matches!(missing, StartupError::PipelineUnreadable { .. }));
        let env = config(&[("SALESFLOW_TIME_ZONE", "Mars/Olympus")]).unwrap_err();
        assert!(env.to_string().starts_with("SALESFLOW_TIME_ZONE="), "{env}");
    }

    #[test]
    fn time_parts_without_a_zone_use_salesflow_time_zone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.yaml");
        std::fs::write(&file, "pipeline:\n  - map:\n      - time_parts: { field: at }\n").unwrap();
        let path = file.to_str().unwrap();
        let pipeline = config(&[("SALESFLOW_PIPELINE", path), ("SALESFLOW_TIME_ZONE", "America/New_York")])
            .unwrap()
            .compile_pipeline();
        let pipeline = pipeline.unwrap();
        let plan = pipeline.plan();
        assert!(plan.contains("of at in America/New_York (default zone, from SALESFLOW_TIME_ZONE)"), "{plan}");
        let salesflow_core::Outcome::Emitted(out) = pipeline.apply(serde_json::json!({"at": "2026-07-01T03:00:00Z"}))
        else {
            panic!("not emitted")
        };
        assert_eq!((out[0]["date"].as_str(), out[0]["hour"].as_u64()), (Some("2026-06-30"), Some(23)));
        // Unset, the functions' default zone applies.
        let plan = config(&[("SALESFLOW_PIPELINE", path)]).unwrap().compile_pipeline().unwrap().plan();
        assert!(plan.contains("of at in Europe/Paris (default zone, from SALESFLOW_TIME_ZONE)"), "{plan}");
    }

    #[test]
    fn the_stage_comes_from_the_environment() {
        assert_eq!(config(&[("SALESFLOW_STAGE", "prod")]).unwrap().settings.stage, "prod");
        assert_eq!(config(&[("SALESFLOW_STAGE", "")]).unwrap().settings.stage, "local");
        let err = config(&[("SALESFLOW_STAGE", "  ")]).unwrap_err();
        assert!(err.to_string().starts_with("SALESFLOW_STAGE="), "{err}");
    }
}

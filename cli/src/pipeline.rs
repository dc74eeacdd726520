//! Loading pipeline files for the commands, and `salesflow pipeline check`. `time_parts` ops without a
//! `time_zone` use `SALESFLOW_TIME_ZONE` (default `Europe/Paris`), as in the functions, so a pipeline gives the
//! same hours here as in the deployment.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use salesflow_core::contract::{self, ContractCheck};
use salesflow_core::reference::DirResources;
use salesflow_core::{ConfigError, DefaultTimeZone, Pipeline, PipelineConfig, defaults};

/// The deployment's default time zone: `SALESFLOW_TIME_ZONE`, read like the functions read it.
pub fn default_time_zone() -> Result<DefaultTimeZone> {
    Ok(salesflow_store::time_zone_from_vars(&|name| std::env::var(name).ok())?)
}

/// Loads and compiles a pipeline file (reference tables relative to it), or the embedded sample pipeline.
pub fn load(path: Option<&Path>) -> Result<Pipeline> {
    let time_zone = default_time_zone()?;
    let Some(path) = path else { return Ok(defaults::sales_pipeline_with(&time_zone)) };
    compile(path, &time_zone).map_err(|errors| {
        let list: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
        anyhow::anyhow!("{} is not a valid pipeline:\n{}", path.display(), list.join("\n"))
    })
}

fn compile(path: &Path, time_zone: &DefaultTimeZone) -> Result<Pipeline, Vec<ConfigError>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| vec![ConfigError::new(path.display().to_string(), e.to_string())])?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    PipelineConfig::parse_all(&text)?.compile_with(&DirResources(dir.to_path_buf()), time_zone)
}

/// `salesflow pipeline check FILE [--sample RECEIPTS]`: the plan (each `time_parts` says its zone and where it
/// came from) and whether the pipeline ends in the export's contract, checked on `sample` or generated receipts
/// (exit 1 when it does not), or every error (exit 1).
pub fn check(path: &Path, sample: Option<&Path>) -> Result<ExitCode> {
    let code = match compile(path, &default_time_zone()?) {
        Ok(pipeline) => {
            println!("{}: ok, {} steps", path.display(), pipeline.len());
            println!("{}", pipeline.plan());
            let samples = match sample {
                Some(file) => std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .enumerate()
                    .map(|(i, l)| {
                        serde_json::from_str(l).with_context(|| format!("{} line {}: not JSON", file.display(), i + 1))
                    })
                    .collect::<Result<Vec<_>>>()?,
                None => contract::sample_receipts(),
            };
            let check = contract::check_pipeline(&pipeline, &samples);
            println!("contract: {check}");
            if matches!(check, ContractCheck::Broken(_)) { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
        Err(errors) => {
            eprintln!("{}: {} error(s)", path.display(), errors.len());
            for e in &errors {
                eprintln!("  {e}");
            }
            ExitCode::FAILURE
        }
    };
    Ok(code)
}

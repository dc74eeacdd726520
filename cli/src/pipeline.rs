//! Loading pipeline files for the commands, and `salesflow pipeline check`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use salesflow_core::defaults;
use salesflow_core::reference::DirResources;
use salesflow_core::{ConfigError, Pipeline, PipelineConfig};

/// Loads and compiles a pipeline file (reference tables relative to it), or the embedded sample pipeline.
pub fn load(path: Option<&Path>) -> Result<Pipeline> {
    let Some(path) = path else { return Ok(defaults::sales_pipeline()) };
    compile(path).map_err(|errors| {
        let list: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
        anyhow::anyhow!("{} is not a valid pipeline:\n{}", path.display(), list.join("\n"))
    })
}

fn compile(path: &Path) -> Result<Pipeline, Vec<ConfigError>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| vec![ConfigError::new(path.display().to_string(), e.to_string())])?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    PipelineConfig::parse(&text).map_err(|e| vec![e])?.compile(&DirResources(dir.to_path_buf()))
}

/// `salesflow pipeline check FILE`: the plan, or every error (exit 1).
pub fn check(path: &Path) -> Result<ExitCode> {
    let code = match compile(path) {
        Ok(pipeline) => {
            println!("{}: ok, {} steps", path.display(), pipeline.len());
            println!("{}", pipeline.plan());
            ExitCode::SUCCESS
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

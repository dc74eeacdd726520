//! `salesflow jsonpath EXPR [FILE]`: try a query before putting it in a pipeline.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use salesflow_core::jsonpath::Query;
use serde_json::Value;

use crate::input;

#[derive(Args)]
pub struct JsonpathArgs {
    /// RFC 9535 query, e.g. '$.lines[?@.unit_price < 100].sku'.
    expr: String,
    /// JSON document (stdin when absent or `-`).
    file: Option<PathBuf>,
    /// Pretty-print the result.
    #[arg(long)]
    pretty: bool,
}

/// Exit codes: 0 ok, 1 unreadable or invalid document, 2 invalid query.
pub fn run(args: JsonpathArgs) -> Result<ExitCode> {
    let query = match Query::compile(&args.expr) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("  {}", args.expr);
            let position = e.split_whitespace().nth(4).and_then(|p| p.trim_end_matches(':').parse::<usize>().ok());
            if let Some(p) = position {
                eprintln!("  {}^", " ".repeat(p.saturating_sub(1)));
            }
            return Ok(ExitCode::from(2));
        }
    };
    let path = args.file.unwrap_or_else(|| PathBuf::from("-"));
    let bytes = input::read_all(&path)?;
    let doc: Value = serde_json::from_slice(&bytes).with_context(|| format!("{} is not valid JSON", path.display()))?;
    let nodes: Vec<&Value> = query.select(&doc).all();
    let text = if args.pretty { serde_json::to_string_pretty(&nodes)? } else { serde_json::to_string(&nodes)? };
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

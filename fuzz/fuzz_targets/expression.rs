//! The expression languages of a pipeline, each reached the way a pipeline file does: a `map` `set`
//! expression (exact decimals), a `filter` `where` (RFC 9535 filter on the record) and a `filter` `path`;
//! compiled, then run on sample records through both run paths. Also `Expr::parse` + `eval` directly.
//! Input: one selector byte (`% 4`: expr, set, where, path; bit 2: `mode: drop`), then the expression text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use salesflow_core::PipelineConfig;
use salesflow_core::defaults::EMBEDDED_FILES;
use salesflow_core::expr::Expr;
use salesflow_fuzz::{SAMPLES, check_run_paths};
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, text)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let step = match selector % 4 {
        0 => {
            if let Ok(expr) = Expr::parse(text) {
                for sample in SAMPLES.iter() {
                    let _ = expr.eval(sample);
                }
            }
            return;
        }
        1 => json!({"map": [{"set": {"field": "x", "expr": text}}]}),
        2 => json!({"filter": {"where": text, "mode": if selector & 4 != 0 { "drop" } else { "keep" }}}),
        _ => json!({"filter": {"path": text}}),
    };
    let config = PipelineConfig::parse(&json!({"pipeline": [step]}).to_string());
    let config = config.expect("a well-formed one-step pipeline parses");
    let Ok(pipeline) = config.compile(&EMBEDDED_FILES) else { return };
    for sample in SAMPLES.iter() {
        check_run_paths(&pipeline, &serde_json::to_vec(sample).expect("serializes"));
    }
});

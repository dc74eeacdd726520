//! Issue 12: every parser of user input has a depth limit, so deep nesting is a clear error naming the
//! position, never a stack overflow (exit 134) or minutes of scanning.

use salesflow_core::PipelineConfig;

fn parse_error(text: &str) -> String {
    PipelineConfig::parse(text).map(|_| ()).unwrap_err().to_string()
}

#[test]
fn a_yaml_pipeline_nested_100000_deep_is_refused_at_once() {
    let n = 100_000;
    let flow = format!("pipeline: {}{}\n", "[".repeat(n), "]".repeat(n));
    assert_eq!(parse_error(&flow), "pipeline file: invalid YAML: nested deeper than 128 levels at line 1 column 139");
    let maps = format!("pipeline:\n  - {}{}\n", "{a: ".repeat(n), "}".repeat(n));
    assert_eq!(parse_error(&maps), "pipeline file: invalid YAML: nested deeper than 128 levels at line 2 column 517");
    let block = format!("pipeline:\n{}x\n", "- ".repeat(n));
    assert!(parse_error(&block).contains("recursion limit exceeded"), "{}", parse_error(&block));
}

#[test]
fn brackets_in_quotes_comments_and_plain_scalars_do_not_count_as_nesting() {
    let many = "[(".repeat(200);
    let text = format!(
        "# {many}\ndescription: \"{many}\"\npipeline:\n  - filter: {{where: '@.note != \"{many}\"'}}\n  - filter: {{path: \"$.lines[*]\"}} # {many}\n"
    );
    PipelineConfig::parse(&text).unwrap();
    let at_limit = format!("pipeline: [{}{}]\n", "[".repeat(127), "]".repeat(127));
    assert!(!parse_error(&at_limit).contains("nested deeper"));
}

#[test]
fn a_json_pipeline_nested_100000_deep_is_refused() {
    let n = 100_000;
    let json = format!("{{\"pipeline\": {}{}}}", "[".repeat(n), "]".repeat(n));
    assert!(parse_error(&json).contains("recursion limit exceeded"), "{}", parse_error(&json));
}

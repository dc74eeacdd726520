//! `filter`: keep a record when a JSONPath query selects at least one node in it (`mode: drop` inverts it).
//! Two forms, both RFC 9535:
//! - `path`: a query run on the record, e.g. on a receipt `$.lines[?@.unit_price < 100]` (keep receipts with at
//!   least one line under 100).
//! - `where`: a filter expression whose `@` is the record itself, e.g. on a line `@.unit_price < 100`. RFC 9535
//!   filters only test the children of a node, so `where: X` runs as `$[?X]` on a one-element array holding the
//!   record (moved in and out, not copied).
//!
//! Comparisons are RFC 9535's: numbers compare with numbers, strings with strings; a numeric string such as
//! `"19.99"` is a string, so put `validate` (which normalises money fields to numbers) before price filters.

use serde::Deserialize;
use serde_json::Value;

use super::{CompileContext, Transform};
use crate::borrowed::{BorrowedRecord, BorrowedTransform};
use crate::decimal::parse_decimal;
use crate::error::{ConfigError, RecordError};
use crate::jsonpath::Query;
use crate::view::{ObjectView, View};
use rust_decimal::Decimal;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// RFC 9535 JSONPath query; the record passes when it selects at least one node.
    #[serde(default)]
    pub path: Option<String>,
    /// RFC 9535 filter expression over the record itself (`@`), e.g. `@.unit_price < 100 && @.quantity > 0`.
    #[serde(default, rename = "where")]
    pub where_: Option<String>,
    /// `keep` (default) keeps matching records; `drop` drops them.
    #[serde(default)]
    pub mode: FilterMode,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterMode {
    #[default]
    Keep,
    Drop,
}

#[derive(Debug)]
pub struct Filter {
    query: Query,
    /// Whether the query is a `where` expression run on `[record]`.
    on_record: bool,
    /// A `where` of the form `@.field < number`, evaluated natively with the same result as the query.
    comparison: Option<Comparison>,
    mode: FilterMode,
}

/// `@.name <op> number` and `@.name == 'text'` (or `!=`): the most common `where`s, evaluated without building
/// the one-element array, with exact decimals. RFC 9535 semantics are kept: only a number compares with a
/// number and a string with a string; anything else (null, a missing field, another type) makes `==` and the
/// orderings false, and `!=` is the negation of `==`.
#[derive(Debug, Clone, PartialEq)]
struct Comparison {
    field: String,
    op: Op,
    value: Literal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Equal,
    NotEqual,
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Number(Decimal),
    Text(String),
}

impl Comparison {
    /// Recognises the simple forms; `None` sends the expression to the general engine.
    fn parse(expr: &str) -> Option<Comparison> {
        let rest = expr.trim().strip_prefix("@.")?;
        let name_len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
        let (field, rest) = rest.split_at(name_len);
        if !field.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            return None;
        }
        let rest = rest.trim_start();
        let (op, literal) = [
            ("<=", Op::LessOrEqual),
            (">=", Op::GreaterOrEqual),
            ("==", Op::Equal),
            ("!=", Op::NotEqual),
            ("<", Op::Less),
            (">", Op::Greater),
        ]
        .into_iter()
        .find_map(|(text, op)| rest.strip_prefix(text).map(|lit| (op, lit.trim())))?;
        let value = match literal.chars().next()? {
            // A quoted literal without escapes or its own quote inside; text only compares for (in)equality.
            quote @ ('\'' | '"') if matches!(op, Op::Equal | Op::NotEqual) => {
                let inner = literal.strip_prefix(quote)?.strip_suffix(quote)?;
                if inner.contains([quote, '\\']) || inner.chars().any(char::is_control) {
                    return None;
                }
                Literal::Text(inner.to_string())
            }
            _ => {
                let plain = |s: &str| {
                    !s.is_empty()
                        && s.chars().all(|c| c.is_ascii_digit() || c == '.')
                        && !s.starts_with('.')
                        && !s.ends_with('.')
                };
                let digits = literal.strip_prefix('-').unwrap_or(literal);
                if !plain(digits) || (digits.len() > 1 && digits.starts_with('0') && !digits.starts_with("0.")) {
                    return None;
                }
                Literal::Number(parse_decimal(literal)?)
            }
        };
        Some(Comparison { field: field.to_string(), op, value })
    }

    /// The comparison's result on the record's field, or `None` when a number is outside what a decimal holds
    /// (the general engine then decides).
    fn holds(&self, field: Option<View>) -> Option<bool> {
        let equal = match (&self.value, field) {
            (Literal::Number(value), Some(View::Number(n))) => {
                let x = parse_decimal(&n)?;
                match self.op {
                    Op::Less => return Some(x < *value),
                    Op::LessOrEqual => return Some(x <= *value),
                    Op::Greater => return Some(x > *value),
                    Op::GreaterOrEqual => return Some(x >= *value),
                    Op::Equal | Op::NotEqual => x == *value,
                }
            }
            (Literal::Text(value), Some(View::String(s))) => *value == *s,
            _ => false,
        };
        match self.op {
            Op::Equal => Some(equal),
            Op::NotEqual => Some(!equal),
            _ => Some(false),
        }
    }
}

/// The query text `where: X` runs as, and the length of the prefix added before `X`.
const WHERE_PREFIX: &str = "$[?";

impl FilterConfig {
    pub fn compile(&self, ctx: &CompileContext) -> Result<Filter, Vec<ConfigError>> {
        let (query, on_record) = match (&self.path, &self.where_) {
            (Some(path), None) => (Query::compile(path).map_err(|e| vec![ctx.error("path", e)])?, false),
            (None, Some(expr)) => {
                let query = Query::compile(&format!("{WHERE_PREFIX}{expr}]")).map_err(|e| {
                    vec![ctx.error("where", shift_position(&e, WHERE_PREFIX.len(), expr.chars().count()))]
                })?;
                (query, true)
            }
            (Some(_), Some(_)) => return Err(vec![ctx.error("", "give either `path` or `where`, not both")]),
            (None, None) => {
                return Err(vec![ctx.error("", "needs `path` (a JSONPath query) or `where` (a filter expression)")]);
            }
        };
        let comparison = self.where_.as_deref().and_then(Comparison::parse);
        Ok(Filter { query, on_record, comparison, mode: self.mode })
    }
}

/// Rewrites `invalid JSONPath at position N: ...` so N counts from the start of the user's expression.
fn shift_position(message: &str, prefix: usize, expr_len: usize) -> String {
    let parsed = message
        .strip_prefix("invalid JSONPath at position ")
        .and_then(|rest| rest.split_once(':'))
        .and_then(|(n, rest)| n.parse::<usize>().ok().map(|n| (n, rest)));
    match parsed {
        Some((n, rest)) => {
            let n = n.saturating_sub(prefix).clamp(1, expr_len + 1);
            format!("invalid filter expression at position {n}:{rest}")
        }
        None => message.to_string(),
    }
}

impl Filter {
    /// Whether a record passes; the record is handed back untouched.
    pub fn passes(&self, record: Value) -> (bool, Value) {
        let native = self.comparison.as_ref().and_then(|c| c.holds(record.get(&c.field).map(View::of)));
        let (matched, record) = if let Some(matched) = native {
            (matched, record)
        } else if self.on_record {
            let wrapped = Value::Array(vec![record]);
            let matched = !self.query.select(&wrapped).is_empty();
            let Value::Array(mut items) = wrapped else { unreachable!("built as an array") };
            (matched, items.pop().expect("one element"))
        } else {
            (!self.query.select(&record).is_empty(), record)
        };
        (matched == (self.mode == FilterMode::Keep), record)
    }
}

impl BorrowedTransform for Filter {
    /// Only the native comparison runs borrowed; a number it cannot decide sends the input to the `Value` path.
    fn apply_borrowed<'a>(
        &self,
        record: BorrowedRecord<'a>,
        out: &mut Vec<BorrowedRecord<'a>>,
    ) -> Option<Result<(), RecordError>> {
        let comparison = self.comparison.as_ref()?;
        let matched = comparison.holds(record.view(&comparison.field))?;
        if matched == (self.mode == FilterMode::Keep) {
            out.push(record);
        }
        Some(Ok(()))
    }
}

impl Transform for Filter {
    fn apply(&self, record: Value, out: &mut Vec<Value>) -> Result<(), RecordError> {
        if let (true, record) = self.passes(record) {
            out.push(record);
        }
        Ok(())
    }

    fn borrowed(&self) -> Option<&dyn BorrowedTransform> {
        self.comparison.is_some().then_some(self as _)
    }

    fn describe(&self) -> String {
        let verb = if self.mode == FilterMode::Keep { "keep" } else { "drop" };
        match self.on_record {
            true => format!(
                "{verb} records where {}",
                &self.query.as_str()[WHERE_PREFIX.len()..self.query.as_str().len() - 1]
            ),
            false => format!("{verb} records where {} selects at least one node", self.query.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::EmbeddedResources;
    use proptest::prelude::Strategy;

    fn compile(path: Option<&str>, where_: Option<&str>, mode: FilterMode) -> Result<Filter, Vec<ConfigError>> {
        let ctx = CompileContext {
            resources: &EmbeddedResources(&[]),
            time_zone: &Default::default(),
            path: "pipeline[0].filter".into(),
        };
        FilterConfig { path: path.map(Into::into), where_: where_.map(Into::into), mode }.compile(&ctx)
    }

    fn filter(path: &str, mode: FilterMode) -> Result<Filter, Vec<ConfigError>> {
        compile(Some(path), None, mode)
    }

    fn passes(f: &Filter, v: &Value) -> bool {
        f.passes(v.clone()).0
    }

    #[test]
    fn keeps_and_drops() {
        let cheap: Value = serde_json::from_str(r#"{"lines":[{"unit_price":150},{"unit_price":99.5}]}"#).unwrap();
        let dear: Value = serde_json::from_str(r#"{"lines":[{"unit_price":150}]}"#).unwrap();
        let keep = filter("$.lines[?(@.unit_price < 100)]", FilterMode::Keep).unwrap();
        assert!(passes(&keep, &cheap) && !passes(&keep, &dear));
        let drop = filter("$.lines[?(@.unit_price < 100)]", FilterMode::Drop).unwrap();
        assert!(!passes(&drop, &cheap) && passes(&drop, &dear));
    }

    #[test]
    fn functions_and_logic_work() {
        let rec: Value =
            serde_json::from_str(r#"{"store_id":"S00042","lines":[{"category":"Dairy","unit_price":2}]}"#).unwrap();
        assert!(passes(&filter("$[?match(@, 'S000[0-9]+')]", FilterMode::Keep).unwrap(), &rec));
        assert!(passes(
            &filter("$.lines[?@.category == 'Dairy' && !(@.unit_price > 5)]", FilterMode::Keep).unwrap(),
            &rec
        ));
        assert!(passes(&filter("$[?length(@) == 1]", FilterMode::Keep).unwrap(), &rec));
    }

    #[test]
    fn where_tests_the_record_itself() {
        let line: Value = serde_json::from_str(r#"{"sku":"A","unit_price":99.5,"quantity":2}"#).unwrap();
        let cheap = compile(None, Some("@.unit_price < 100 && @.quantity > 0"), FilterMode::Keep).unwrap();
        assert!(passes(&cheap, &line));
        assert_eq!(cheap.passes(line.clone()).1, line, "the record comes back unchanged");
        let dear = compile(None, Some("@.unit_price >= 100"), FilterMode::Keep).unwrap();
        assert!(!passes(&dear, &line));
        assert_eq!(cheap.describe(), "keep records where @.unit_price < 100 && @.quantity > 0");
    }

    #[test]
    fn simple_comparisons_are_recognised() {
        let c = Comparison::parse(" @.unit_price < 100 ").unwrap();
        assert_eq!((c.field.as_str(), c.op, c.value), ("unit_price", Op::Less, Literal::Number(100.into())));
        assert_eq!(Comparison::parse("@.q>=-2.5").unwrap().op, Op::GreaterOrEqual);
        let c = Comparison::parse("@.store_id == 'S00000'").unwrap();
        assert_eq!((c.op, c.value), (Op::Equal, Literal::Text("S00000".into())));
        assert_eq!(Comparison::parse("@.a != \"x\"").unwrap().op, Op::NotEqual);
        assert_eq!(Comparison::parse("@.a == 1").unwrap().value, Literal::Number(1.into()));
        for general in [
            "@.a < 1 && @.b",
            "@.a < 'x'",
            "@.a == 'x\\'y'",
            "@.a == 'x",
            "@.a == null",
            "@.a < @.b",
            "@['a'] < 1",
            "@.a.b < 1",
            "@.a < 1e2",
            "@.a < 01",
            "@.a < .5",
            "length(@.a) < 2",
        ] {
            assert_eq!(Comparison::parse(general), None, "{general}");
        }
    }

    proptest::proptest! {
        /// The native comparison and the RFC 9535 engine agree on every value a field can hold.
        #[test]
        fn native_comparisons_agree_with_the_engine(
            value in proptest::prop_oneof![
                (-100_000i64..100_000, 0u32..4).prop_map(|(m, s)| rust_decimal::Decimal::new(m, s).to_string()),
                proptest::prelude::Just("\"12\"".to_string()),
                proptest::prelude::Just("null".to_string()),
                proptest::prelude::Just("true".to_string()),
                proptest::prelude::Just("{}".to_string()),
                proptest::prelude::Just("1e2".to_string()),
                proptest::prelude::Just("-0".to_string()),
                proptest::prelude::Just("\"S1\"".to_string()),
                proptest::prelude::Just("\"S\\u0031\"".to_string()),
                proptest::prelude::Just("\"s1\"".to_string()),
                proptest::prelude::Just("\"é\"".to_string()),
                proptest::prelude::Just("[\"S1\"]".to_string()),
            ],
            op in proptest::sample::select(vec!["<", "<=", ">", ">=", "==", "!="]),
            literal in proptest::prop_oneof![
                (-1000i64..1000, 0u32..3).prop_map(|(m, s)| rust_decimal::Decimal::new(m, s).to_string()),
                proptest::sample::select(vec!["'S1'", "\"S1\"", "'é'", "'12'"]).prop_map(String::from),
            ],
            present in proptest::prelude::any::<bool>(),
        ) {
            let expr = format!("@.x {op} {literal}");
            let text = literal.starts_with(['\'', '"']);
            if text && !matches!(op, "==" | "!=") {
                return Ok(());
            }
            let record: Value = serde_json::from_str(&if present { format!("{{\"x\": {value}}}") } else { "{}".to_string() }).unwrap();
            let native = compile(None, Some(&expr), FilterMode::Keep).unwrap();
            proptest::prop_assert!(native.comparison.is_some());
            let mut general = compile(None, Some(&expr), FilterMode::Keep).unwrap();
            general.comparison = None;
            let mut borrowed = Vec::new();
            let record_text = record.to_string();
            let outcome = native.apply_borrowed(BorrowedRecord::parse(&record_text).unwrap(), &mut borrowed);
            let expected = general.passes(record.clone()).0;
            proptest::prop_assert_eq!(native.passes(record).0, expected, "{}", expr);
            if let Some(outcome) = outcome {
                proptest::prop_assert!(outcome.is_ok());
                proptest::prop_assert_eq!(borrowed.len() == 1, expected, "borrowed {}", expr);
            }
        }
    }

    #[test]
    fn where_errors_count_from_the_expression() {
        let err = compile(None, Some("@.unit_price <"), FilterMode::Keep).unwrap_err();
        assert!(
            err[0].to_string().starts_with("pipeline[0].filter.where: invalid filter expression at position "),
            "{}",
            err[0]
        );
        let both = compile(Some("$"), Some("@"), FilterMode::Keep).unwrap_err();
        assert_eq!(both[0].to_string(), "pipeline[0].filter: give either `path` or `where`, not both");
    }

    #[test]
    fn bad_query_names_step_field_and_position() {
        let err = filter("$.lines[?@.unit_price <]", FilterMode::Keep).unwrap_err();
        assert!(err[0].to_string().starts_with("pipeline[0].filter.path: invalid JSONPath at position "), "{}", err[0]);
    }

    /// Issue 12: a `where` nested 5,000 deep overflowed the stack (exit 134); now a config error naming the
    /// position in the user's expression.
    #[test]
    fn where_nested_5000_deep_is_refused_not_a_stack_overflow() {
        let deep = format!("{}@.a > 1{}", "(".repeat(5_000), ")".repeat(5_000));
        let err = compile(None, Some(&deep), FilterMode::Keep).unwrap_err();
        assert_eq!(
            err[0].to_string(),
            "pipeline[0].filter.where: invalid filter expression at position 64: nested deeper than 64 brackets"
        );
    }
}

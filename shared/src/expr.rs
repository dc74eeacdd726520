//! Exact-decimal expressions for the `map` step's `set` operation, e.g. `quantity * unit_price - coalesce(discount, 0)`.
//! Parsed once at load (errors name the position), evaluated per record with `rust_decimal`: no floating point.
//!
//! Grammar: numbers, field names (`a` or `a.b` for nested objects), `+ - * /`, unary `-`, parentheses, and the
//! functions `coalesce(x, y, ...)` (first present, non-null argument), `abs(x)`, `round(x, digits)`,
//! `min(x, y, ...)`, `max(x, y, ...)`. A missing or null field is an error, except inside `coalesce`.

use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

use crate::borrowed::BorrowedRecord;
use crate::decimal::decimal_from_view;
use crate::error::RecordError;
use crate::view::{ObjectView, View};

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Number(Decimal),
    Field(Vec<String>),
    Neg(Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    Call(Function, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Coalesce,
    Abs,
    Round,
    Min,
    Max,
}

impl Expr {
    /// Parses an expression; the error names the 1-based character position.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let mut p = Parser { chars: text.char_indices().collect(), pos: 0, text, depth: 0 };
        let (e, _) = p.expr()?;
        p.skip_ws();
        if p.pos < p.chars.len() {
            return Err(p.error("unexpected input after the expression"));
        }
        Ok(e)
    }

    /// Evaluates over a record's fields.
    pub fn eval(&self, record: &Value) -> Result<Decimal, RecordError> {
        self.eval_in(record).unwrap_or_else(|| Err(RecordError::field("", "a field path this record cannot follow")))
    }

    /// Evaluates over the fields of a tree or of a borrowed record; `None` when `fields` cannot look up a
    /// path the expression names (a nested path in a borrowed record: the caller then uses the `Value` path).
    pub fn eval_in<F: ExprFields + ?Sized>(&self, fields: &F) -> Option<Result<Decimal, RecordError>> {
        match self.eval_opt(fields, false) {
            Ok(Some(d)) => Some(Ok(d)),
            Ok(None) => Some(Err(RecordError::field("", "coalesce: every argument is missing"))),
            Err(Stop::Error(e)) => Some(Err(e)),
            Err(Stop::Unsupported) => None,
        }
    }

    /// `Ok(None)` only for a missing field inside `coalesce` (`lenient`).
    fn eval_opt<F: ExprFields + ?Sized>(&self, fields: &F, lenient: bool) -> Result<Option<Decimal>, Stop> {
        let strict = |e: &Expr| match e.eval_opt(fields, false)? {
            Some(d) => Ok(d),
            None => Err(Stop::Error(RecordError::field("", "coalesce: every argument is missing"))),
        };
        let fail = |path: &str, message: &str| Err(Stop::Error(RecordError::field(path, message)));
        Ok(Some(match self {
            Expr::Number(d) => *d,
            Expr::Field(path) => {
                let found = fields.at(path).ok_or(Stop::Unsupported)?;
                match found {
                    None if lenient => return Ok(None),
                    None => return fail(&path.join("."), "missing"),
                    Some(View::Null) if lenient => return Ok(None),
                    Some(View::Null) => return fail(&path.join("."), "missing (null)"),
                    Some(v) => decimal_from_view(&v).map_err(|e| Stop::Error(RecordError::field(path.join("."), e)))?,
                }
            }
            Expr::Neg(e) => -strict(e)?,
            Expr::Binary(op, l, r) => {
                let (l, r) = (strict(l)?, strict(r)?);
                let result = match op {
                    BinaryOp::Add => l.checked_add(r),
                    BinaryOp::Sub => l.checked_sub(r),
                    BinaryOp::Mul => l.checked_mul(r),
                    BinaryOp::Div if r.is_zero() => return fail("", "division by zero"),
                    BinaryOp::Div => l.checked_div(r),
                };
                match result {
                    Some(d) => d,
                    None => return fail("", "decimal overflow"),
                }
            }
            Expr::Call(Function::Coalesce, args) => {
                for a in args {
                    if let Some(d) = a.eval_opt(fields, true)? {
                        return Ok(Some(d));
                    }
                }
                return if lenient { Ok(None) } else { fail("", "coalesce: every argument is missing") };
            }
            Expr::Call(Function::Abs, args) => strict(&args[0])?.abs(),
            Expr::Call(Function::Round, args) => {
                let digits = round_places(strict(&args[1])?).map_err(|e| Stop::Error(RecordError::field("", e)))?;
                strict(&args[0])?.round_dp_with_strategy(digits, RoundingStrategy::MidpointAwayFromZero)
            }
            Expr::Call(f @ (Function::Min | Function::Max), args) => {
                let mut best = strict(&args[0])?;
                for a in &args[1..] {
                    let v = strict(a)?;
                    best = if *f == Function::Min { best.min(v) } else { best.max(v) };
                }
                best
            }
        }))
    }
}

/// Why an evaluation stopped: the record's error, or a lookup the record's form cannot do.
enum Stop {
    Error(RecordError),
    Unsupported,
}

/// Where an expression reads its fields.
pub trait ExprFields {
    /// The value at `path` (`a.b`: `b` of the object `a`), `Some(None)` when missing; `None` when this form of
    /// record cannot follow the path.
    fn at(&self, path: &[String]) -> Option<Option<View<'_>>>;
}

impl ExprFields for Value {
    fn at(&self, path: &[String]) -> Option<Option<View<'_>>> {
        let mut node = self;
        for part in path {
            match node.get(part) {
                Some(v) => node = v,
                None => return Some(None),
            }
        }
        Some(Some(View::of(node)))
    }
}

impl ExprFields for BorrowedRecord<'_> {
    /// Top-level fields only.
    fn at(&self, path: &[String]) -> Option<Option<View<'_>>> {
        match path {
            [name] => Some(self.view(name)),
            _ => None,
        }
    }
}

/// How deep an expression may nest: parentheses, unary `-`, function calls and chains of operators all count
/// (the tree's height). Parsing, evaluation and drop are recursive, so an expression nested 20,000 deep
/// overflowed the stack; a real `set` expression is a few levels deep.
pub const MAX_DEPTH: usize = 128;

/// A parsed sub-expression and the height of its tree.
type Parsed = (Expr, usize);

struct Parser<'a> {
    chars: Vec<(usize, char)>,
    pos: usize,
    text: &'a str,
    /// Parentheses, unary minuses and calls currently open (the parser's own recursion).
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> String {
        format!("invalid expression at position {}: {message}", self.pos + 1)
    }

    /// Refuses a tree higher than [`MAX_DEPTH`], naming the current position.
    fn check_height(&self, height: usize) -> Result<usize, String> {
        if height > MAX_DEPTH {
            return Err(self.error(&format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(height)
    }

    /// Enters a nested construct (the parser recurses into it); [`leave`](Self::leave) when done.
    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        self.check_height(self.depth).map(drop)
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|&(_, c)| c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Result<Parsed, String> {
        let (mut left, mut height) = self.term()?;
        loop {
            let op = if self.eat('+') {
                BinaryOp::Add
            } else if self.eat('-') {
                BinaryOp::Sub
            } else {
                return Ok((left, height));
            };
            let (right, h) = self.term()?;
            height = self.check_height(height.max(h) + 1)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn term(&mut self) -> Result<Parsed, String> {
        let (mut left, mut height) = self.unary()?;
        loop {
            let op = if self.eat('*') {
                BinaryOp::Mul
            } else if self.eat('/') {
                BinaryOp::Div
            } else {
                return Ok((left, height));
            };
            let (right, h) = self.unary()?;
            height = self.check_height(height.max(h) + 1)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Parsed, String> {
        if self.eat('-') {
            self.enter()?;
            let (e, h) = self.unary()?;
            self.leave();
            return Ok((Expr::Neg(Box::new(e)), self.check_height(h + 1)?));
        }
        self.primary()
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &str {
        let start = self.chars.get(self.pos).map_or(self.text.len(), |&(i, _)| i);
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        let end = self.chars.get(self.pos).map_or(self.text.len(), |&(i, _)| i);
        &self.text[start..end]
    }

    fn primary(&mut self) -> Result<Parsed, String> {
        self.skip_ws();
        match self.peek() {
            Some('(') => {
                self.enter()?;
                self.pos += 1;
                let e = self.expr()?;
                self.leave();
                if !self.eat(')') {
                    return Err(self.error("expected ')'"));
                }
                Ok(e)
            }
            Some(c) if c.is_ascii_digit() || c == '.' => {
                let start = self.pos;
                let digits = self.take_while(|c| c.is_ascii_digit() || c == '.').to_string();
                Decimal::from_str(&digits).map(|d| (Expr::Number(d), 1)).map_err(|_| {
                    self.pos = start;
                    self.error(&format!("invalid number {digits:?}"))
                })
            }
            Some(c) if c.is_alphabetic() || c == '_' => {
                let start = self.pos;
                let name = self.take_while(|c| c.is_alphanumeric() || c == '_' || c == '.').to_string();
                if self.eat('(') {
                    let (function, arity) = match name.as_str() {
                        "coalesce" => (Function::Coalesce, 1..=usize::MAX),
                        "abs" => (Function::Abs, 1..=1),
                        "round" => (Function::Round, 2..=2),
                        "min" => (Function::Min, 1..=usize::MAX),
                        "max" => (Function::Max, 1..=usize::MAX),
                        _ => {
                            self.pos = start;
                            return Err(self
                                .error(&format!("unknown function {name:?} (known: coalesce, abs, round, min, max)")));
                        }
                    };
                    let mut args = Vec::new();
                    let mut height = 0;
                    self.enter()?;
                    if !self.eat(')') {
                        loop {
                            let (arg, h) = self.expr()?;
                            args.push(arg);
                            height = height.max(h);
                            if self.eat(')') {
                                break;
                            }
                            if !self.eat(',') {
                                return Err(self.error("expected ',' or ')'"));
                            }
                        }
                    }
                    self.leave();
                    if !arity.contains(&args.len()) {
                        self.pos = start;
                        return Err(self.error(&format!(
                            "{name} takes {} argument(s), got {}",
                            arity_text(&arity),
                            args.len()
                        )));
                    }
                    // Places that need no field (`2`, `-1`) are checked now rather than per record.
                    let constant = args.get(1).and_then(|p| p.eval(&Value::Null).ok());
                    if let (Function::Round, Some(places)) = (function, constant) {
                        round_places(places).map_err(|e| {
                            self.pos = start;
                            self.error(&e)
                        })?;
                    }
                    return Ok((Expr::Call(function, args), self.check_height(height + 1)?));
                }
                let parts: Vec<String> = name.split('.').map(str::to_string).collect();
                if parts.iter().any(String::is_empty) {
                    self.pos = start;
                    return Err(self.error(&format!("invalid field name {name:?}")));
                }
                Ok((Expr::Field(parts), 1))
            }
            Some(c) => Err(self.error(&format!("unexpected {c:?}"))),
            None => Err(self.error("unexpected end of expression")),
        }
    }
}

/// The decimal places of `round(x, places)`: a whole number from 0 to 28 (what a decimal can hold). Checked
/// at parse time when `places` is a number, per record otherwise.
fn round_places(places: Decimal) -> Result<u32, String> {
    match u32::try_from(places.normalize().mantissa()) {
        Ok(p) if places.fract().is_zero() && p <= 28 => Ok(p),
        _ => Err(format!("round: places must be a whole number from 0 to 28, got {places}")),
    }
}

fn arity_text(arity: &std::ops::RangeInclusive<usize>) -> String {
    if arity.start() == arity.end() { arity.start().to_string() } else { format!("at least {}", arity.start()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(text: &str, record: Value) -> Result<String, String> {
        Expr::parse(text).unwrap().eval(&record).map(|d| d.to_string()).map_err(|e| e.to_string())
    }

    #[test]
    fn line_total_is_exact() {
        let rec: Value = serde_json::from_str(r#"{"quantity": 3, "unit_price": 0.1, "discount": "0.05"}"#).unwrap();
        assert_eq!(eval("quantity * unit_price - coalesce(discount, 0)", rec).unwrap(), "0.25");
        assert_eq!(
            eval("quantity * unit_price - coalesce(discount, 0)", json!({"quantity": 2, "unit_price": "1.5"})).unwrap(),
            "3.0"
        );
    }

    #[test]
    fn precedence_parentheses_and_functions() {
        assert_eq!(eval("1 + 2 * 3", json!({})).unwrap(), "7");
        assert_eq!(eval("(1 + 2) * 3", json!({})).unwrap(), "9");
        assert_eq!(eval("-a.b + abs(-2)", json!({"a": {"b": 1}})).unwrap(), "1");
        assert_eq!(eval("round(10 / 3, 2)", json!({})).unwrap(), "3.33");
        assert_eq!(eval("round(2.345, 2)", json!({})).unwrap(), "2.35");
        assert_eq!(eval("max(1, 5, 3) - min(4, 2)", json!({})).unwrap(), "3");
    }

    #[test]
    fn runtime_errors_name_the_field() {
        assert_eq!(eval("quantity * unit_price", json!({"quantity": 1})).unwrap_err(), "unit_price: missing");
        assert_eq!(eval("x", json!({"x": "abc"})).unwrap_err(), "x: expected a decimal, found \"abc\"");
        assert_eq!(eval("1 / x", json!({"x": 0})).unwrap_err(), "division by zero");
    }

    #[test]
    fn parse_errors_name_the_position() {
        assert_eq!(Expr::parse("a * (b + c").unwrap_err(), "invalid expression at position 11: expected ')'");
        assert_eq!(
            Expr::parse("a + foo(1)").unwrap_err(),
            "invalid expression at position 5: unknown function \"foo\" (known: coalesce, abs, round, min, max)"
        );
        assert_eq!(Expr::parse("a +").unwrap_err(), "invalid expression at position 4: unexpected end of expression");
        assert_eq!(
            Expr::parse("round(1)").unwrap_err(),
            "invalid expression at position 1: round takes 2 argument(s), got 1"
        );
    }

    /// Issue 12: a `set` expression nested 20,000 deep overflowed the stack (exit 134); every way of nesting is
    /// now refused at parse time, naming the position, and the limit itself still parses and evaluates.
    #[test]
    fn expressions_nested_20000_deep_are_refused_not_a_stack_overflow() {
        let n = 20_000;
        let parens = format!("{}1{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(
            Expr::parse(&parens).unwrap_err(),
            "invalid expression at position 129: nested deeper than 128 levels"
        );
        let minus = format!("{}1", "-".repeat(n));
        assert!(Expr::parse(&minus).unwrap_err().contains("nested deeper than 128 levels"));
        let calls = format!("{}1{}", "abs(".repeat(n), ")".repeat(n));
        assert!(Expr::parse(&calls).unwrap_err().contains("nested deeper than 128 levels"));
        // A long flat chain builds a deep tree too (evaluated and dropped recursively).
        let chain = vec!["1"; n].join(" + ");
        assert!(Expr::parse(&chain).unwrap_err().contains("nested deeper than 128 levels"));
        let product = vec!["x"; n].join(" * ");
        assert!(Expr::parse(&product).unwrap_err().contains("nested deeper than 128 levels"));
        let ok = format!("{}1{}", "(".repeat(100), ")".repeat(100));
        assert_eq!(eval(&ok, json!({})).unwrap(), "1");
        assert_eq!(eval(&vec!["1"; 100].join(" + "), json!({})).unwrap(), "100");
    }

    /// Issue 12: `round(x, 99999999999)` and `round(x, -1)` silently rounded to 0 places.
    #[test]
    fn round_places_out_of_range_are_refused() {
        assert_eq!(
            Expr::parse("round(x, 99999999999)").unwrap_err(),
            "invalid expression at position 1: round: places must be a whole number from 0 to 28, got 99999999999"
        );
        assert_eq!(
            Expr::parse("round(x, 1.5)").unwrap_err(),
            "invalid expression at position 1: round: places must be a whole number from 0 to 28, got 1.5"
        );
        assert_eq!(
            Expr::parse("round(x, -1)").unwrap_err(),
            "invalid expression at position 1: round: places must be a whole number from 0 to 28, got -1"
        );
        assert_eq!(
            eval("round(2.5, p)", json!({"p": -1})).unwrap_err(),
            "round: places must be a whole number from 0 to 28, got -1"
        );
        assert_eq!(
            eval("round(2.5, p)", json!({"p": 29})).unwrap_err(),
            "round: places must be a whole number from 0 to 28, got 29"
        );
        assert_eq!(eval("round(2.345, p)", json!({"p": "2.0"})).unwrap(), "2.35");
        assert_eq!(eval("round(2.5, 0)", json!({})).unwrap(), "3");
        assert_eq!(eval("round(1.23456, 28)", json!({})).unwrap(), "1.23456");
    }
}

//! Text cells a spreadsheet would run as a formula. A cell that starts with `=`, `+`, `-`, `@`, a tab or a
//! carriage return is written with a leading `'` (the usual CSV-injection defence: spreadsheets show the text
//! instead of evaluating it). A cell that already starts with `'` gets one more, so the escaping is reversible:
//! [`restore`] gives back the source text exactly. Only text columns go through here; numbers never do.

use std::borrow::Cow;

/// The characters that make a spreadsheet treat a cell as a formula.
pub const FORMULA_TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The text to write for a source text value.
pub fn neutralize(text: &str) -> Cow<'_, str> {
    match text.chars().next() {
        Some(c) if c == '\'' || FORMULA_TRIGGERS.contains(&c) => Cow::Owned(format!("'{text}")),
        _ => Cow::Borrowed(text),
    }
}

/// The source text of a written cell: the inverse of [`neutralize`].
pub fn restore(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formula_prefixes_are_neutralized() {
        for (source, written) in [
            ("=SUM(A1:A9)", "'=SUM(A1:A9)"),
            ("+33 1 23", "'+33 1 23"),
            ("-50% promo", "'-50% promo"),
            ("@cmd", "'@cmd"),
            ("\tTab", "'\tTab"),
            ("\rCR", "'\rCR"),
            ("'quoted", "''quoted"),
            ("Crème brûlée", "Crème brûlée"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(neutralize(source), written, "{source:?}");
            assert_eq!(restore(&neutralize(source)), source);
        }
    }

    proptest! {
        #[test]
        fn neutralize_is_reversible_and_never_leaves_a_trigger_first(s in "\\PC*|[=+\\-@\t\r'].*") {
            let written = neutralize(&s);
            prop_assert_eq!(restore(&written), s.as_str());
            let first = written.chars().next();
            prop_assert!(first.is_none_or(|c| !FORMULA_TRIGGERS.contains(&c)));
        }
    }
}

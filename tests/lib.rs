//! Repository-level tests live in `tests/*.rs` beside this file; this library is empty on purpose.

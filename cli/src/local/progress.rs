//! The progress display of the long local commands, on stderr: a spinner with a status line (`dev`, `produce`),
//! or a bar over a known number of records (`demo`) or objects (`replay`).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A spinner with the elapsed time and a message; hidden with `--quiet` or when stderr is not a terminal.
pub fn spinner(quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}").expect("valid template"));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A bar over `total` records with the rate, a prefix (what is running) and a message; hidden with `--quiet`.
pub fn records_bar(quiet: bool, total: u64) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {prefix} [{bar:30}] {human_pos}/{human_len} records, {per_sec:.bold}, {msg} {elapsed}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar
}

/// A bar over `total` objects with the rate and a message; hidden with `--quiet`.
pub fn objects_bar(quiet: bool, total: u64) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{bar:30}] {human_pos}/{human_len} objects, {per_sec}, {msg} {elapsed}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar
}

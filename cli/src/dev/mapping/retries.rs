//! How the mapping retries a failing batch: what a handler's answer means for its batch ([`outcome`]), and a
//! shard's retry state ([`Retries`]): retry from the first failed record, bisect on a function error, give up
//! after `--max-retries`.

use std::collections::VecDeque;
use std::time::Duration;

/// What an invocation's result means for its batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every record was handled.
    Done,
    /// `batchItemFailures`: the records before this index were handled, retry from it.
    RetryFrom(usize),
    /// A function error (the handler panicked, or its `batchItemFailures` name no record of the batch — Lambda
    /// treats both as a failure of the whole batch).
    FunctionError(String),
}

/// Reads a handler's `batchItemFailures` (`None` for an item without an `itemIdentifier`) against the batch's
/// sequence numbers. Like Lambda, the lowest failed sequence number is where the retry starts, and an
/// identifier that is missing, empty or not in the batch fails the whole batch.
pub fn outcome(sequences: &[&str], failures: &[Option<&str>]) -> Outcome {
    let mut first: Option<usize> = None;
    for failure in failures {
        let Some(id) = failure.filter(|id| !id.is_empty()) else {
            return Outcome::FunctionError("a batchItemFailures item has no itemIdentifier".into());
        };
        let Some(at) = sequences.iter().position(|s| *s == id) else {
            return Outcome::FunctionError(format!("batchItemFailures names {id}, which is not in the batch"));
        };
        first = Some(first.map_or(at, |f| f.min(at)));
    }
    first.map_or(Outcome::Done, Outcome::RetryFrom)
}

/// A run of records at the front of the shard's buffer still to invoke on its own, after a bisection, and how
/// many failed invocations its records have been in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub len: usize,
    pub attempts: u32,
}

/// What to do after an invocation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// Go on with the next batch.
    Continue,
    /// Invoke again (from the first record not handled) after a back-off.
    Retry,
    /// The batch failed with a function error: invoke its two halves separately, these lengths, after a back-off.
    Split(usize, usize),
    /// Retries exhausted: the `discarded` records go to the on-failure destination.
    GiveUp,
}

/// The result of [`Retries::after`]: the first `delivered` records of the batch were handled and the next
/// `discarded` ones are given up (checkpoint both); `attempts` is the failed invocations counted so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub delivered: usize,
    pub discarded: usize,
    pub attempts: u32,
    pub action: Action,
}

/// A shard's retry state. Outside a bisection the next batch is as long as the batch size allows and
/// `attempts` counts its failures (reset by any progress, as before). A function error splits the batch into
/// two spans invoked one after the other; a span that fails again is split again, down to one record. The
/// halves inherit the failed invocations of the batch they come from, so bisecting counts against
/// `--max-retries`: once a span's records have been in more than `max_retries` failed invocations, the span is
/// given up.
#[derive(Debug, Default)]
pub struct Retries {
    spans: VecDeque<Span>,
    attempts: u32,
}

impl Retries {
    /// Whether a bisection is under way (its spans are already read: invoke without reading more first).
    pub fn bisecting(&self) -> bool {
        !self.spans.is_empty()
    }

    /// How many records the next batch holds, when `available` fit the batch size and the payload limit.
    pub fn batch_len(&self, available: usize) -> usize {
        self.spans.front().map_or(available, |s| s.len.min(available))
    }

    /// The first `n` records of the buffer were dropped (too old): forget them. Returns the failed invocations
    /// they had been in.
    pub fn discard_front(&mut self, mut n: usize) -> u32 {
        let attempts = self.spans.front().map_or(self.attempts, |s| s.attempts);
        if self.spans.is_empty() {
            self.attempts = 0;
        }
        while n > 0 {
            let Some(front) = self.spans.front_mut() else { break };
            let taken = front.len.min(n);
            front.len -= taken;
            n -= taken;
            if front.len == 0 {
                self.spans.pop_front();
            }
        }
        attempts
    }

    /// Decides what follows the invocation of a batch of `len` records (from [`Retries::batch_len`]).
    pub fn after(&mut self, len: usize, outcome: &Outcome, max_retries: u32, bisect: bool) -> Step {
        let attempts = self.spans.front().map_or(self.attempts, |s| s.attempts);
        let step = |delivered, discarded, attempts, action| Step { delivered, discarded, attempts, action };
        match *outcome {
            Outcome::Done => {
                self.consume(len);
                self.attempts = 0;
                step(len, 0, attempts, Action::Continue)
            }
            Outcome::RetryFrom(at) => {
                let at = at.min(len);
                // Progress resets the count, as Lambda's checkpoint does.
                let attempts = if at > 0 { 1 } else { attempts + 1 };
                self.consume(at);
                if attempts > max_retries {
                    self.consume(len - at);
                    self.attempts = 0;
                    step(at, len - at, attempts, Action::GiveUp)
                } else {
                    self.set_attempts(attempts);
                    step(at, 0, attempts, Action::Retry)
                }
            }
            Outcome::FunctionError(_) => {
                let attempts = attempts + 1;
                if attempts > max_retries {
                    self.consume(len);
                    self.attempts = 0;
                    step(0, len, attempts, Action::GiveUp)
                } else if let (true, Some((a, b))) = (bisect, halves(len)) {
                    self.consume(len);
                    self.spans.push_front(Span { len: b, attempts });
                    self.spans.push_front(Span { len: a, attempts });
                    self.attempts = 0;
                    step(0, 0, attempts, Action::Split(a, b))
                } else {
                    self.set_attempts(attempts);
                    step(0, 0, attempts, Action::Retry)
                }
            }
        }
    }

    fn set_attempts(&mut self, attempts: u32) {
        match self.spans.front_mut() {
            Some(front) => front.attempts = attempts,
            None => self.attempts = attempts,
        }
    }

    /// `n` records of the front span are done with.
    fn consume(&mut self, n: usize) {
        if let Some(front) = self.spans.front_mut() {
            front.len = front.len.saturating_sub(n);
            if front.len == 0 {
                self.spans.pop_front();
            }
        }
    }
}

/// How long to wait before retry `attempt` (1, 2, ...): 200 ms doubling up to 5 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((100u64 << attempt.min(6)).min(5_000))
}

/// The two halves a failing batch of `len` records is split into (the first gets the odd record); `None` for a
/// single record, which cannot be split.
pub fn halves(len: usize) -> Option<(usize, usize)> {
    (len >= 2).then(|| (len.div_ceil(2), len / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_lambda() {
        let seqs = ["10", "11", "12", "13"];
        assert_eq!(outcome(&seqs, &[]), Outcome::Done);
        assert_eq!(outcome(&seqs, &[Some("12")]), Outcome::RetryFrom(2));
        // The lowest failed sequence number wins, whatever the order of the list.
        assert_eq!(outcome(&seqs, &[Some("13"), Some("11")]), Outcome::RetryFrom(1));
        assert!(matches!(outcome(&seqs, &[Some("99")]), Outcome::FunctionError(_)));
        assert!(matches!(outcome(&seqs, &[Some("")]), Outcome::FunctionError(_)));
        assert!(matches!(outcome(&seqs, &[Some("11"), None]), Outcome::FunctionError(_)));
    }

    #[test]
    fn backoff_doubles_up_to_five_seconds() {
        let ms: Vec<u128> = (1..=8).map(|a| backoff(a).as_millis()).collect();
        assert_eq!(ms, [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    }

    #[test]
    fn halves_split_down_to_one_record() {
        assert_eq!(halves(1000), Some((500, 500)));
        assert_eq!(halves(5), Some((3, 2)));
        assert_eq!(halves(2), Some((1, 1)));
        assert_eq!(halves(1), None);
        assert_eq!(halves(0), None);
    }

    /// (start, len) of records.
    type Ranges = Vec<(usize, usize)>;

    /// Runs a batch of `len` records through `Retries`, the handler failing with a function error whenever
    /// the batch holds `bad` (an index), and returns the invocations (start, len) and what was given up.
    fn simulate(len: usize, bad: usize, max_retries: u32) -> (Ranges, Ranges) {
        let mut retries = Retries::default();
        let (mut at, mut calls, mut given_up) = (0, Vec::new(), Vec::new());
        while at < len {
            let n = retries.batch_len(len - at);
            calls.push((at, n));
            let outcome =
                if (at..at + n).contains(&bad) { Outcome::FunctionError("boom".into()) } else { Outcome::Done };
            let step = retries.after(n, &outcome, max_retries, true);
            if step.discarded > 0 {
                given_up.push((at + step.delivered, step.discarded));
            }
            at += step.delivered + step.discarded;
            assert!(calls.len() < 1000, "no progress");
        }
        assert!(!retries.bisecting());
        (calls, given_up)
    }

    #[test]
    fn a_function_error_bisects_down_to_the_bad_record() {
        let (calls, given_up) = simulate(8, 5, 5);
        assert_eq!(
            calls,
            [
                (0, 8), // fails: attempt 1, split 4 + 4
                (0, 4), // good
                (4, 4), // fails: attempt 2, split 2 + 2
                (4, 2), // fails: attempt 3, split 1 + 1
                (4, 1), // good
                (5, 1), // the bad record alone: attempts 4, 5, then 6 > 5: given up
                (5, 1),
                (5, 1),
                (6, 2), // the other half of the 4, still on its own
            ]
        );
        assert_eq!(given_up, [(5, 1)]);
    }

    #[test]
    fn bisecting_counts_against_the_retry_limit() {
        // 1000 records, 2 retries: 1000 fails (1), 500 fails (2), 250 fails (3 > 2): 250 records given up.
        let (calls, given_up) = simulate(1000, 0, 2);
        assert_eq!(&calls[..3], [(0, 1000), (0, 500), (0, 250)]);
        assert_eq!(given_up, [(0, 250)]);
        // The bad record at the end goes the same way: halves inherit their batch's failures.
        let (_, given_up) = simulate(1000, 999, 2);
        assert_eq!(given_up, [(750, 250)]);
        // No retries: the whole batch is given up at once, not bisected.
        let (calls, given_up) = simulate(10, 3, 0);
        assert_eq!(calls[0], (0, 10));
        assert_eq!(given_up[0], (0, 10));
    }

    #[test]
    fn partial_failures_retry_from_the_reported_record() {
        let mut retries = Retries::default();
        let step = retries.after(10, &Outcome::RetryFrom(4), 2, true);
        assert_eq!(step, Step { delivered: 4, discarded: 0, attempts: 1, action: Action::Retry });
        // Not bisected: the next batch is as long as the batch size allows.
        assert_eq!(retries.batch_len(100), 100);
        let step = retries.after(6, &Outcome::RetryFrom(0), 2, true);
        assert_eq!(step.attempts, 2);
        let step = retries.after(6, &Outcome::RetryFrom(0), 2, true);
        assert_eq!(step, Step { delivered: 0, discarded: 6, attempts: 3, action: Action::GiveUp });
        assert_eq!(retries.after(3, &Outcome::Done, 2, true).attempts, 0);
    }

    #[test]
    fn without_bisect_a_function_error_retries_the_batch() {
        let mut retries = Retries::default();
        let step = retries.after(10, &Outcome::FunctionError("x".into()), 1, false);
        assert_eq!(step.action, Action::Retry);
        assert!(!retries.bisecting());
        let step = retries.after(10, &Outcome::FunctionError("x".into()), 1, false);
        assert_eq!(step, Step { delivered: 0, discarded: 10, attempts: 2, action: Action::GiveUp });
    }

    #[test]
    fn a_partial_failure_inside_a_span_keeps_to_the_span() {
        let mut retries = Retries::default();
        assert_eq!(retries.after(10, &Outcome::FunctionError("x".into()), 5, true).action, Action::Split(5, 5));
        assert_eq!(retries.batch_len(10), 5);
        let step = retries.after(5, &Outcome::RetryFrom(2), 5, true);
        assert_eq!((step.delivered, step.action), (2, Action::Retry));
        assert_eq!(retries.batch_len(8), 3);
        retries.after(3, &Outcome::Done, 5, true);
        assert_eq!(retries.batch_len(5), 5);
        retries.after(5, &Outcome::Done, 5, true);
        assert!(!retries.bisecting());
    }

    #[test]
    fn dropped_records_leave_the_spans() {
        let mut retries = Retries::default();
        retries.after(8, &Outcome::FunctionError("x".into()), 5, true);
        assert_eq!(retries.discard_front(5), 1);
        assert_eq!(retries.batch_len(100), 3);
        retries.discard_front(10);
        assert!(!retries.bisecting());
        // Outside a bisection the dropped records were the ones failing: the count starts again.
        retries.after(4, &Outcome::RetryFrom(0), 5, true);
        assert_eq!(retries.discard_front(1), 1);
        assert_eq!(retries.after(4, &Outcome::RetryFrom(0), 5, true).attempts, 1);
    }
}

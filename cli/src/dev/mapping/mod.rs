//! `dev`'s event source mapping for one shard, as a state machine free of I/O, so every decision Lambda's
//! mapping makes is tested without LocalStack. The loop that talks to Kinesis asks [`Mapping::next`] what to do
//! and tells the machine what happened:
//!
//! ```text
//!            ┌──────── offer(records read) ◄── Read ◄───────┐
//!            ▼                                              │
//!   next() ──┼─► Wait(d)      poll a caught-up shard, let the batching window fill, back off before a retry
//!            ├─► Expire(…)    records older than --max-record-age: to the on-failure destination, checkpoint
//!            ├─► Invoke(batch) ──► report(outcome) → delivered / retried / bisected / given up, checkpoint
//!            └─► Finished     a closed shard read and handled to its end: its children may start
//! ```
//!
//! Times come in as arguments (an [`Instant`] for the batching window, wall-clock milliseconds for record
//! ages); the machine never reads a clock.

mod retries;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use retries::Retries;
pub use retries::{Action, Outcome, Step, backoff, outcome};

/// Lambda's limit on an invocation's payload; a batch is cut before it.
pub const MAX_PAYLOAD_BYTES: usize = 6 << 20;

/// What the mapping needs of a record.
pub trait ShardRecord: Clone {
    fn sequence_number(&self) -> &str;
    /// `approximateArrivalTimestamp`, in milliseconds since the epoch.
    fn arrival_ms(&self) -> i64;
    /// The record's data, in bytes (before base64).
    fn data_len(&self) -> usize;
}

/// How the mapping batches and retries (the template's `Ingest*` parameters, `dev`'s flags).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Records per invocation, at most (at least 1).
    pub batch_size: usize,
    /// How long to gather records before invoking with a partial batch.
    pub batching_window: Duration,
    /// Records older than this are not delivered; zero is no limit.
    pub max_record_age: Duration,
    /// Failed invocations a record may be in before it is given up.
    pub max_retries: u32,
    /// Split a batch in two on a function error.
    pub bisect: bool,
    /// How long to wait between reads of a caught-up shard.
    pub poll: Duration,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next<R> {
    /// Read the shard (GetRecords) and [`Mapping::offer`] what came back.
    Read,
    /// Nothing to do for this long.
    Wait(Duration),
    /// Records too old to deliver: send them to the on-failure destination and checkpoint.
    Expire(Expired<R>),
    /// Invoke the function with this batch and [`Mapping::report`] the outcome.
    Invoke(Vec<R>),
    /// The shard is closed, and every record of it is read and handled.
    Finished,
}

/// Records older than the maximum age, taken off the front of the shard.
#[derive(Debug, Clone, PartialEq)]
pub struct Expired<R> {
    pub records: Vec<R>,
    /// The failed invocations they had been in.
    pub attempts: u32,
    /// The new checkpoint: the last of them.
    pub checkpoint: String,
}

/// What an invocation's outcome settled: the [`Step`] (records delivered, given up, what follows), and the new
/// checkpoint when records were delivered or given up.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub step: Step,
    pub checkpoint: Option<String>,
}

/// One shard's mapping: the records read and not yet handled, the batching window, the retry state and the
/// checkpoint.
#[derive(Debug)]
pub struct Mapping<R> {
    settings: Settings,
    buffer: VecDeque<R>,
    /// When the oldest buffered record was read: the batching window runs from there.
    first_buffered: Option<Instant>,
    /// The last read found nothing behind it (or nothing at all).
    caught_up: bool,
    /// The shard is closed and read to its end: no read will bring more.
    closed: bool,
    /// Caught up with nothing buffered.
    idle: bool,
    /// A wait decided by the last offer or report, before anything else.
    pause: Option<Duration>,
    retries: Retries,
    /// The length of the batch handed out by [`Mapping::next`], until its outcome is reported.
    in_flight: Option<usize>,
    checkpoint: Option<String>,
}

impl<R: ShardRecord> Mapping<R> {
    /// A mapping resuming after `checkpoint` (the last sequence number handled), or from the start.
    pub fn new(mut settings: Settings, checkpoint: Option<String>) -> Mapping<R> {
        settings.batch_size = settings.batch_size.max(1);
        Mapping {
            settings,
            buffer: VecDeque::new(),
            first_buffered: None,
            caught_up: false,
            closed: false,
            idle: false,
            pause: None,
            retries: Retries::default(),
            in_flight: None,
            checkpoint,
        }
    }

    /// Where a new shard iterator starts: after the last record read, or else after the checkpoint.
    pub fn resume_after(&self) -> Option<&str> {
        self.buffer.back().map(ShardRecord::sequence_number).or(self.checkpoint.as_deref())
    }

    /// Whether the shard is caught up with nothing buffered.
    pub fn idle(&self) -> bool {
        self.idle
    }

    /// Records read, `millis_behind` the tip of the shard (`MillisBehindLatest`), at `now`.
    pub fn offer(&mut self, records: Vec<R>, millis_behind: i64, now: Instant) {
        let got = records.len();
        self.caught_up = millis_behind == 0 || got == 0;
        if got > 0 {
            self.idle = false;
            self.first_buffered.get_or_insert(now);
            self.buffer.extend(records);
        } else if self.buffer.is_empty() {
            self.idle = true;
            self.pause = Some(self.settings.poll);
            return;
        }
        if self.caught_up && self.buffer.len() < self.settings.batch_size {
            // Let the window fill the batch, polling meanwhile.
            let left = self.window_left(now);
            if !left.is_zero() {
                self.pause = Some(left.min(self.settings.poll));
            }
        }
    }

    /// The shard is closed and every record of it has been read.
    pub fn end_of_shard(&mut self) {
        self.closed = true;
    }

    /// What to do at `now` (`now_ms` on the wall clock, for record ages).
    pub fn next(&mut self, now: Instant, now_ms: i64) -> Next<R> {
        if let Some(wait) = self.pause.take() {
            return Next::Wait(wait);
        }
        let window_left = self.window_left(now);
        let read_more = self.buffer.len() < self.settings.batch_size && !self.retries.bisecting();
        if read_more && !(self.caught_up && window_left.is_zero() && !self.buffer.is_empty()) {
            if !self.closed {
                return Next::Read;
            }
            if self.buffer.is_empty() {
                return Next::Finished;
            }
            // Nothing more will come: the last records wait out their window like any partial batch.
            self.caught_up = true;
            if !window_left.is_zero() {
                return Next::Wait(window_left);
            }
        }
        if let Some(expired) = self.expire(now_ms) {
            return Next::Expire(expired);
        }
        let len = self.retries.batch_len(self.batch_len());
        self.in_flight = Some(len);
        Next::Invoke(self.buffer.iter().take(len).cloned().collect())
    }

    /// The outcome of the batch [`Mapping::next`] handed out: takes what was delivered or given up off the
    /// shard, and backs off before a retry.
    pub fn report(&mut self, outcome: &Outcome) -> Settled {
        let len = self.in_flight.take().unwrap_or(0);
        let s = &self.settings;
        let step = self.retries.after(len, outcome, s.max_retries, s.bisect);
        let handled = step.delivered + step.discarded;
        let checkpoint = (handled > 0).then(|| self.take_front(handled)).flatten();
        if matches!(step.action, Action::Retry | Action::Split(..)) {
            self.pause = Some(backoff(step.attempts));
        }
        Settled { step, checkpoint }
    }

    /// The batching window still to run at `now` (zero when nothing is buffered).
    fn window_left(&self, now: Instant) -> Duration {
        self.first_buffered.map_or(Duration::ZERO, |t| self.settings.batching_window.saturating_sub(now - t))
    }

    /// How many buffered records one invocation takes: up to the batch size and Lambda's payload limit
    /// (base64 and the envelope included), at least one.
    fn batch_len(&self) -> usize {
        let mut take = 0;
        let mut bytes = 0;
        for r in self.buffer.iter().take(self.settings.batch_size) {
            let size = r.data_len() * 4 / 3 + 400;
            if take > 0 && bytes + size > MAX_PAYLOAD_BYTES {
                break;
            }
            bytes += size;
            take += 1;
        }
        take
    }

    /// Takes the records too old to deliver (`MaximumRecordAgeInSeconds`) off the front, a batch at most.
    fn expire(&mut self, now_ms: i64) -> Option<Expired<R>> {
        let arrivals = self.buffer.iter().map(ShardRecord::arrival_ms);
        let n = expired_prefix(arrivals, now_ms, self.settings.max_record_age).min(self.settings.batch_size);
        if n == 0 {
            return None;
        }
        let attempts = self.retries.discard_front(n);
        let records: Vec<R> = self.buffer.iter().take(n).cloned().collect();
        let checkpoint = self.take_front(n)?;
        Some(Expired { records, attempts, checkpoint })
    }

    /// Drops the first `n` records, handled: the last of them is the new checkpoint.
    fn take_front(&mut self, n: usize) -> Option<String> {
        let last = self.buffer.drain(..n.min(self.buffer.len())).last()?;
        if self.buffer.is_empty() {
            self.first_buffered = None;
        }
        self.checkpoint = Some(last.sequence_number().to_string());
        self.checkpoint.clone()
    }
}

/// How many records at the front (arrival times in milliseconds, in shard order) are older than `max_age` at
/// `now_ms`: they are not delivered. A record exactly `max_age` old is still delivered; a zero `max_age`
/// means no limit.
pub fn expired_prefix(arrivals_ms: impl IntoIterator<Item = i64>, now_ms: i64, max_age: Duration) -> usize {
    if max_age.is_zero() {
        return 0;
    }
    let max_ms = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
    arrivals_ms.into_iter().take_while(|&arrived| now_ms.saturating_sub(arrived) > max_ms).count()
}

#[cfg(test)]
mod tests;

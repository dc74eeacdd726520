//! Every transition of [`Mapping`], on records that are only a sequence number, an arrival time and a size.

use super::*;

#[derive(Debug, Clone, PartialEq)]
struct Rec {
    seq: String,
    arrival_ms: i64,
    len: usize,
}

impl ShardRecord for Rec {
    fn sequence_number(&self) -> &str {
        &self.seq
    }
    fn arrival_ms(&self) -> i64 {
        self.arrival_ms
    }
    fn data_len(&self) -> usize {
        self.len
    }
}

/// The wall clock of the tests, in milliseconds: records arrive just before it.
const NOW_MS: i64 = 1_800_000_000_000;

/// Records `from..to`, sequence numbers `s<n>`, arrived a second before [`NOW_MS`].
fn recs(from: usize, to: usize) -> Vec<Rec> {
    (from..to).map(|i| Rec { seq: format!("s{i}"), arrival_ms: NOW_MS - 1000, len: 200 }).collect()
}

fn seqs(records: &[Rec]) -> Vec<String> {
    records.iter().map(|r| r.seq.clone()).collect()
}

fn settings() -> Settings {
    Settings {
        batch_size: 10,
        batching_window: Duration::from_secs(5),
        max_record_age: Duration::from_secs(3600),
        max_retries: 2,
        bisect: true,
        poll: Duration::from_secs(1),
    }
}

fn mapping() -> Mapping<Rec> {
    Mapping::new(settings(), None)
}

/// `next` at `t0 + secs`.
fn next(m: &mut Mapping<Rec>, t0: Instant, secs: u64) -> Next<Rec> {
    m.next(t0 + Duration::from_secs(secs), NOW_MS)
}

fn invoked(n: Next<Rec>) -> Vec<String> {
    match n {
        Next::Invoke(batch) => seqs(&batch),
        other => panic!("expected an invocation, got {other:?}"),
    }
}

/// A mapping that read records `0..n` caught up at `t0` and has invoked its first batch, at `t0 + 5 s`.
fn in_flight(n: usize) -> (Mapping<Rec>, Instant) {
    let t0 = Instant::now();
    let mut m = mapping();
    m.offer(recs(0, n), 0, t0);
    invoke_after_waits(&mut m, t0, 5);
    (m, t0)
}

/// The next invocation at `t0 + secs`, past the waits before it (a poll, a back-off).
fn invoke_after_waits(m: &mut Mapping<Rec>, t0: Instant, secs: u64) -> Vec<String> {
    loop {
        match next(m, t0, secs) {
            Next::Wait(_) => continue,
            n => return invoked(n),
        }
    }
}

#[test]
fn a_new_mapping_reads_and_resumes_after_its_checkpoint() {
    let t0 = Instant::now();
    let mut m: Mapping<Rec> = Mapping::new(settings(), Some("s41".into()));
    assert_eq!(m.resume_after(), Some("s41"));
    assert_eq!(next(&mut m, t0, 0), Next::Read);
    m.offer(recs(42, 44), 5000, t0);
    assert_eq!(m.resume_after(), Some("s43"), "after the last record read");
}

#[test]
fn a_shard_behind_is_read_again_at_once() {
    let t0 = Instant::now();
    let mut m = mapping();
    m.offer(recs(0, 3), 60_000, t0);
    assert_eq!(next(&mut m, t0, 0), Next::Read);
    assert!(!m.idle());
}

#[test]
fn a_full_batch_is_invoked_without_waiting() {
    let t0 = Instant::now();
    let mut m = mapping();
    m.offer(recs(0, 25), 60_000, t0);
    assert_eq!(invoked(next(&mut m, t0, 0)), seqs(&recs(0, 10)));
}

#[test]
fn a_caught_up_partial_batch_waits_for_its_window_polling() {
    let t0 = Instant::now();
    let mut m = mapping();
    m.offer(recs(0, 3), 0, t0);
    // The window has 5 s to run: poll every second meanwhile.
    assert_eq!(next(&mut m, t0, 0), Next::Wait(Duration::from_secs(1)));
    assert_eq!(next(&mut m, t0, 1), Next::Read);
    m.offer(recs(3, 5), 0, t0 + Duration::from_millis(4500));
    assert_eq!(next(&mut m, t0, 4), Next::Wait(Duration::from_millis(500)), "what is left of the window");
    assert_eq!(invoked(next(&mut m, t0, 5)), seqs(&recs(0, 5)));
}

#[test]
fn an_empty_caught_up_shard_is_idle_and_polled() {
    let t0 = Instant::now();
    let mut m = mapping();
    m.offer(Vec::new(), 0, t0);
    assert!(m.idle());
    assert_eq!(next(&mut m, t0, 0), Next::Wait(Duration::from_secs(1)));
    assert_eq!(next(&mut m, t0, 1), Next::Read);
    m.offer(recs(0, 1), 0, t0);
    assert!(!m.idle());
}

#[test]
fn a_batch_stops_before_the_payload_limit() {
    let t0 = Instant::now();
    let mut m = mapping();
    let mut records = recs(0, 4);
    // Two of these (base64 and envelope included) are more than 6 MB.
    records[0].len = 3 << 20;
    records[1].len = 3 << 20;
    m.offer(records, 0, t0);
    assert_eq!(invoke_after_waits(&mut m, t0, 5), ["s0"]);
    m.report(&Outcome::Done);
    assert_eq!(invoked(next(&mut m, t0, 5)), ["s1", "s2", "s3"]);
    // One record alone goes whatever its size.
    let mut m = mapping();
    m.offer(vec![Rec { len: 10 << 20, ..recs(0, 1)[0].clone() }], 0, t0);
    assert_eq!(invoke_after_waits(&mut m, t0, 5), ["s0"]);
}

#[test]
fn a_handled_batch_is_checkpointed_and_dropped() {
    let t0 = Instant::now();
    let mut m = mapping();
    m.offer(recs(0, 12), 0, t0);
    assert_eq!(invoked(next(&mut m, t0, 0)).len(), 10);
    let settled = m.report(&Outcome::Done);
    assert_eq!(settled.checkpoint.as_deref(), Some("s9"));
    assert_eq!((settled.step.delivered, settled.step.discarded, settled.step.action), (10, 0, Action::Continue));
    // The rest was read a while ago: its window is over.
    assert_eq!(invoked(next(&mut m, t0, 5)), ["s10", "s11"]);
    assert_eq!(m.report(&Outcome::Done).checkpoint.as_deref(), Some("s11"));
    assert_eq!(m.resume_after(), Some("s11"));
    assert_eq!(next(&mut m, t0, 5), Next::Read);
}

#[test]
fn a_partial_failure_checkpoints_before_it_and_retries_from_it_after_a_back_off() {
    let (mut m, t0) = in_flight(6);
    let settled = m.report(&Outcome::RetryFrom(4));
    assert_eq!(settled.checkpoint.as_deref(), Some("s3"));
    assert_eq!((settled.step.delivered, settled.step.attempts, settled.step.action), (4, 1, Action::Retry));
    assert_eq!(next(&mut m, t0, 5), Next::Wait(backoff(1)));
    assert_eq!(invoked(next(&mut m, t0, 5)), ["s4", "s5"]);
}

#[test]
fn a_function_error_bisects_without_reading_more() {
    let (mut m, t0) = in_flight(6);
    let settled = m.report(&Outcome::FunctionError("boom".into()));
    assert_eq!(settled.checkpoint, None);
    assert_eq!(settled.step.action, Action::Split(3, 3));
    assert_eq!(next(&mut m, t0, 5), Next::Wait(backoff(1)));
    // The buffer holds less than a batch, but the halves come first.
    assert_eq!(invoked(next(&mut m, t0, 5)), ["s0", "s1", "s2"]);
    assert_eq!(m.report(&Outcome::Done).checkpoint.as_deref(), Some("s2"));
    assert_eq!(invoked(next(&mut m, t0, 5)), ["s3", "s4", "s5"]);
    m.report(&Outcome::Done);
    assert_eq!(next(&mut m, t0, 5), Next::Read);
}

#[test]
fn a_batch_failing_past_the_retry_limit_is_given_up_and_checkpointed() {
    let t0 = Instant::now();
    let mut m = Mapping::new(Settings { bisect: false, ..settings() }, None);
    m.offer(recs(0, 4), 0, t0);
    invoke_after_waits(&mut m, t0, 5);
    for attempt in 1..=2 {
        let settled = m.report(&Outcome::FunctionError("boom".into()));
        assert_eq!((settled.step.action, settled.checkpoint), (Action::Retry, None));
        assert_eq!(next(&mut m, t0, 5), Next::Wait(backoff(attempt)));
        invoked(next(&mut m, t0, 5));
    }
    let settled = m.report(&Outcome::FunctionError("boom".into()));
    assert_eq!(settled.step, Step { delivered: 0, discarded: 4, attempts: 3, action: Action::GiveUp });
    assert_eq!(settled.checkpoint.as_deref(), Some("s3"), "given up is handled: the shard moves on");
    assert_eq!(next(&mut m, t0, 5), Next::Read, "no back-off after giving up");
}

#[test]
fn records_past_the_maximum_age_expire_before_delivery() {
    let t0 = Instant::now();
    let mut m = mapping();
    let mut records = recs(0, 14);
    for r in &mut records[..12] {
        r.arrival_ms = NOW_MS - 3_600_001;
    }
    m.offer(records, 0, t0);
    // A batch at most at a time, with the checkpoint at its end.
    let Next::Expire(first) = next(&mut m, t0, 5) else { panic!("expected an expiry") };
    assert_eq!((seqs(&first.records).len(), first.checkpoint.as_str(), first.attempts), (10, "s9", 0));
    let Next::Expire(second) = next(&mut m, t0, 5) else { panic!("expected an expiry") };
    assert_eq!((seqs(&second.records), second.checkpoint.as_str()), (vec!["s10".into(), "s11".into()], "s11"));
    assert_eq!(invoked(next(&mut m, t0, 5)), ["s12", "s13"]);
}

#[test]
fn expired_records_inside_a_bisection_carry_its_failures() {
    let (mut m, t0) = in_flight(4);
    assert_eq!(m.report(&Outcome::FunctionError("boom".into())).step.action, Action::Split(2, 2));
    assert_eq!(next(&mut m, t0, 5), Next::Wait(backoff(1)));
    // An hour passes: everything is too old now, both halves go, with the failure they were in.
    let Next::Expire(expired) = m.next(t0, NOW_MS + 3_600_000) else { panic!("expected an expiry") };
    assert_eq!((seqs(&expired.records).len(), expired.attempts), (4, 1));
    assert_eq!(m.next(t0, NOW_MS + 3_600_000), Next::Read, "the bisection is over");
}

#[test]
fn a_closed_shard_delivers_what_is_left_then_finishes() {
    let t0 = Instant::now();
    let mut m = mapping();
    m.offer(recs(0, 2), 0, t0);
    m.end_of_shard();
    assert_eq!(next(&mut m, t0, 0), Next::Wait(Duration::from_secs(1)), "the offer's poll");
    // Nothing more to read: the window runs out without polling.
    assert_eq!(next(&mut m, t0, 1), Next::Wait(Duration::from_secs(4)));
    assert_eq!(invoked(next(&mut m, t0, 5)), ["s0", "s1"]);
    m.report(&Outcome::Done);
    assert_eq!(next(&mut m, t0, 5), Next::Finished);
    // A shard closed before anything was read finishes at once.
    let mut m = mapping();
    m.end_of_shard();
    assert_eq!(next(&mut m, t0, 0), Next::Finished);
}

#[test]
fn a_report_without_a_batch_changes_nothing() {
    let mut m = mapping();
    let settled = m.report(&Outcome::Done);
    assert_eq!((settled.step.delivered, settled.checkpoint), (0, None));
}

#[test]
fn a_zero_batch_size_is_one() {
    let t0 = Instant::now();
    let mut m = Mapping::new(Settings { batch_size: 0, ..settings() }, None);
    m.offer(recs(0, 3), 0, t0);
    assert_eq!(invoked(next(&mut m, t0, 0)), ["s0"]);
}

#[test]
fn records_older_than_the_maximum_age_are_cut_from_the_front() {
    let hour = 3_600_000;
    let now = 10 * hour;
    let six_hours = Duration::from_secs(6 * 3600);
    let arrivals = [now - 7 * hour, now - 6 * hour - 1, now - 6 * hour, now - hour];
    assert_eq!(expired_prefix(arrivals, now, six_hours), 2);
    assert_eq!(expired_prefix([now - hour, now - 7 * hour], now, six_hours), 0, "only a prefix");
    assert_eq!(expired_prefix(arrivals, now, Duration::ZERO), 0, "0 is no limit");
    assert_eq!(expired_prefix([], now, six_hours), 0);
    // A clock behind the arrival times expires nothing.
    assert_eq!(expired_prefix([now + hour], now, Duration::from_secs(60)), 0);
}

//! One shard's event source mapping, the I/O half: the [`Mapping`] decides; this loop reads the shard with
//! GetRecords, invokes the ingest handler, sends what is not delivered to the on-failure destination, writes
//! the checkpoint file and counts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use aws_sdk_kinesis::types::{Record, ShardIteratorType};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use salesflow_ingest::{MetricsOutput, StreamEvent};
use tokio::sync::watch;

use super::destination::{Condition, Failure};
use super::mapping::{self, Action, Expired, Mapping, Next, Outcome, Settled, ShardRecord, backoff};
use super::{Ctx, StartingPosition, sleep_or_stop};
use crate::aws::{self, SdkContext};

impl ShardRecord for Record {
    fn sequence_number(&self) -> &str {
        &self.sequence_number
    }
    fn arrival_ms(&self) -> i64 {
        arrival(self).as_millisecond()
    }
    fn data_len(&self) -> usize {
        self.data.as_ref().len()
    }
}

fn arrival(r: &Record) -> Timestamp {
    r.approximate_arrival_timestamp
        .and_then(|t| t.to_millis().ok())
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Reads, batches, invokes, checkpoints and retries one shard until it is read to its end or told to stop.
pub async fn read_shard(ctx: Arc<Ctx>, shard: String, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    if !parents_done(&ctx, &shard, &mut stop).await {
        return Ok(());
    }
    let checkpoint = Checkpoint(ctx.checkpoints.join(&shard));
    let mut mapping = Mapping::new(ctx.mapping_settings(), checkpoint.read());
    let mut reader = Reader { ctx: &ctx, shard: &shard, iterator: None, errors: 0 };
    reader.renew(&mut mapping).await?;
    loop {
        if *stop.borrow() {
            break;
        }
        let stopped = match mapping.next(Instant::now(), Timestamp::now().as_millisecond()) {
            Next::Read => reader.read(&mut mapping, &mut stop).await?,
            Next::Wait(wait) => sleep_or_stop(&mut stop, wait).await,
            Next::Expire(expired) => {
                expire(&ctx, &shard, &expired).await?;
                checkpoint.write(&expired.checkpoint)?;
                false
            }
            Next::Invoke(batch) => {
                let (outcome, error) = invoke(&ctx, &shard, &batch).await;
                let settled = mapping.report(&outcome);
                settle(&ctx, &shard, &batch, &settled, &error).await?;
                if let Some(at) = &settled.checkpoint {
                    checkpoint.write(at)?;
                }
                false
            }
            Next::Finished => {
                shard_finished(&ctx, &shard).await;
                ctx.shards.lock().expect("not poisoned").set_idle(&shard, true);
                true
            }
        };
        if stopped {
            break;
        }
    }
    Ok(())
}

/// Waits until the shard's parents (after a split or a merge) are read to their end, so a partition key's
/// records stay in order. `false` when told to stop meanwhile.
async fn parents_done(ctx: &Ctx, shard: &str, stop: &mut watch::Receiver<bool>) -> bool {
    let mut announced = false;
    loop {
        let waiting = ctx.shards.lock().expect("not poisoned").waiting_for(shard);
        if waiting.is_empty() {
            return true;
        }
        if !announced {
            eprintln!("dev: {shard} waits for its parent shard(s) {} to be read to their end", waiting.join(", "));
            announced = true;
        }
        if sleep_or_stop(stop, ctx.args.poll).await {
            return false;
        }
    }
}

/// A shard's iterator and its GetRecords calls.
struct Reader<'a> {
    ctx: &'a Ctx,
    shard: &'a str,
    iterator: Option<String>,
    /// GetRecords failures in a row.
    errors: u32,
}

impl Reader<'_> {
    /// A new iterator after the last record read (or the checkpoint, or `--starting-position`).
    async fn renew(&mut self, mapping: &mut Mapping<Record>) -> anyhow::Result<()> {
        let ctx = self.ctx;
        let request = ctx.kinesis.get_shard_iterator().stream_name(&ctx.args.stream).shard_id(self.shard);
        let request = match (mapping.resume_after(), ctx.args.starting_position) {
            (Some(seq), _) => {
                request.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).starting_sequence_number(seq)
            }
            (None, StartingPosition::TrimHorizon) => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            (None, StartingPosition::Latest) => request.shard_iterator_type(ShardIteratorType::Latest),
        };
        self.iterator = request.send().await.sdk_context(|| format!("GetShardIterator {}", self.shard))?.shard_iterator;
        if self.iterator.is_none() {
            mapping.end_of_shard();
        }
        Ok(())
    }

    /// One GetRecords call, its records offered to the mapping; a failure is retried after a back-off, at most
    /// 10 times in a row (throttling without limit). Returns whether it was told to stop.
    async fn read(&mut self, mapping: &mut Mapping<Record>, stop: &mut watch::Receiver<bool>) -> anyhow::Result<bool> {
        let ctx = self.ctx;
        let Some(iterator) = &self.iterator else {
            mapping.end_of_shard();
            return Ok(false);
        };
        let limit = ctx.args.batch_size.clamp(100, 10_000) as i32;
        match ctx.kinesis.get_records().shard_iterator(iterator).limit(limit).send().await {
            Ok(out) => {
                self.errors = 0;
                self.iterator = out.next_shard_iterator;
                let behind = out.millis_behind_latest.unwrap_or(0);
                ctx.stats.set_lag(behind);
                if !out.records.is_empty() {
                    ctx.stats.touch();
                }
                mapping.offer(out.records, behind, Instant::now());
                ctx.shards.lock().expect("not poisoned").set_idle(self.shard, mapping.idle());
                if self.iterator.is_none() {
                    mapping.end_of_shard();
                }
                Ok(false)
            }
            Err(e) => {
                let service = e.as_service_error();
                if service.is_some_and(|s| s.is_expired_iterator_exception()) {
                    self.renew(mapping).await?;
                    return Ok(false);
                }
                self.errors += 1;
                let (shard, errors) = (self.shard, self.errors);
                if !service.is_some_and(|s| s.is_provisioned_throughput_exceeded_exception()) {
                    eprintln!("dev: GetRecords on {shard} failed (try {errors}): {}", aws::sdk_error(&e));
                    if errors >= 10 {
                        anyhow::bail!("GetRecords on {shard} failed 10 times in a row: {}", aws::sdk_error(&e));
                    }
                }
                Ok(sleep_or_stop(stop, backoff(errors)).await)
            }
        }
    }
}

/// Sends records too old to deliver to the on-failure destination.
async fn expire(ctx: &Ctx, shard: &str, expired: &Expired<Record>) -> anyhow::Result<()> {
    let reason = format!("record age exceeds --max-record-age ({} s)", ctx.args.max_record_age.as_secs());
    let records = &expired.records;
    let failure = Failure {
        shard,
        records,
        condition: Condition::RecordAgeExceeded,
        invoke_count: expired.attempts,
        reason: &reason,
    };
    send_failure(ctx, &failure).await?;
    ctx.stats.add(|t| t.expired_records += records.len() as u64);
    if let (Some(first), Some(last)) = (records.first(), records.last()) {
        eprintln!(
            "dev: {shard} records {}..{} ({}) not delivered: {reason}; sent to {}",
            first.sequence_number,
            last.sequence_number,
            records.len(),
            ctx.destination.describe()
        );
    }
    Ok(())
}

/// Invokes the ingest handler on a batch, in a task of its own so that a panic is caught: it is this runner's
/// function error. Returns the outcome and the error to report with it.
async fn invoke(ctx: &Arc<Ctx>, shard: &str, batch: &[Record]) -> (Outcome, String) {
    let records = batch
        .iter()
        .map(|r| {
            let data = STANDARD.encode(r.data.as_ref());
            ctx.stream.record(
                shard,
                &r.sequence_number,
                r.partition_key.as_deref().unwrap_or_default(),
                arrival(r),
                data,
            )
        })
        .collect();
    let now = Timestamp::now();
    let handler = ctx.clone();
    let invoked = tokio::spawn(async move { handler.ingest.process(StreamEvent { records }, now).await }).await;
    ctx.stats.add(|t| t.batches += 1);
    let (outcome, error) = match invoked {
        Ok(report) => {
            if ctx.args.metrics {
                report.metrics.emit(now, MetricsOutput::Stderr);
            }
            let landed = &ctx.ingest.settings().layout.landed;
            let arrivals: Vec<Timestamp> = batch.iter().map(arrival).collect();
            ctx.stats.landed(report.written.iter().filter(|k| k.starts_with(landed.as_str())).cloned(), &arrivals);
            let sequences: Vec<&str> = batch.iter().map(|r| r.sequence_number.as_str()).collect();
            let failures: Vec<Option<&str>> =
                report.response.batch_item_failures.iter().map(|f| f.item_identifier.as_deref()).collect();
            let outcome = mapping::outcome(&sequences, &failures);
            if outcome == Outcome::Done {
                ctx.stats.add(|t| t.handled.merge(&report.metrics.counts));
            }
            (outcome, report.error.map(|e| e.to_string()).unwrap_or_default())
        }
        Err(e) => {
            let message = panic_message(e);
            (Outcome::FunctionError(message.clone()), message)
        }
    };
    match outcome {
        Outcome::FunctionError(reason) => {
            ctx.stats.add(|t| t.function_errors += 1);
            (Outcome::FunctionError(reason.clone()), format!("function error: {reason}"))
        }
        outcome => (outcome, error),
    }
}

/// Acts on what an invocation settled: counts, gives records up, says what is retried.
async fn settle(ctx: &Ctx, shard: &str, batch: &[Record], settled: &Settled, error: &str) -> anyhow::Result<()> {
    let step = settled.step;
    ctx.stats.add(|t| t.records += step.delivered as u64);
    if step.discarded > 0 {
        let records = &batch[step.delivered..step.delivered + step.discarded];
        let condition = Condition::RetryAttemptsExhausted;
        send_failure(ctx, &Failure { shard, records, condition, invoke_count: step.attempts, reason: error }).await?;
        eprintln!(
            "dev: {shard} records {}..{} failed {} times ({error}); sent to {}",
            records[0].sequence_number,
            records[records.len() - 1].sequence_number,
            step.attempts,
            ctx.destination.describe()
        );
        ctx.stats.add(|t| t.failed_batches += 1);
    }
    let max = ctx.args.max_retries;
    match step.action {
        Action::Continue | Action::GiveUp => return Ok(()),
        Action::Retry => {
            let from = &batch[step.delivered].sequence_number;
            eprintln!("dev: {shard} batch failed from {from} ({error}); retry {} of {max}", step.attempts);
        }
        Action::Split(first, second) => {
            ctx.stats.add(|t| t.bisections += 1);
            eprintln!(
                "dev: {shard} batch of {} from {} failed ({error}); bisected into {first} + {second} records, \
                 retry {} of {max}",
                batch.len(),
                batch[0].sequence_number,
                step.attempts,
            );
        }
    }
    ctx.stats.add(|t| t.retries += 1);
    Ok(())
}

async fn send_failure(ctx: &Ctx, failure: &Failure<'_, Record>) -> anyhow::Result<()> {
    match failure.message(&ctx.origin, &ctx.stream, Timestamp::now()) {
        Some(message) => ctx.destination.send(&message).await,
        None => Ok(()),
    }
}

/// What a handler task that did not finish says: its panic message.
fn panic_message(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .map_or_else(|| "the handler panicked".into(), |m| format!("the handler panicked: {m}"))
}

/// Marks a closed shard read to its end, and lists the shards again to start reading its children.
async fn shard_finished(ctx: &Ctx, shard: &str) {
    ctx.shards.lock().expect("not poisoned").finish(shard);
    match aws::list_shards(&ctx.kinesis, &ctx.args.stream).await {
        Ok(listed) => {
            let added = ctx.shards.lock().expect("not poisoned").add(&listed);
            for child in added {
                eprintln!("dev: {shard} is closed and read to its end; new shard {child} found");
                let _ = ctx.new_shards.send(child);
            }
        }
        Err(e) => eprintln!("dev: {shard} is closed, but listing the shards again failed: {e:#}"),
    }
}

/// A shard's checkpoint file, `<state dir>/checkpoints/<stream>/<shard>`: the last sequence number handled.
struct Checkpoint(PathBuf);

impl Checkpoint {
    fn read(&self) -> Option<String> {
        std::fs::read_to_string(&self.0).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
    }

    /// Replaces the checkpoint atomically (a file renamed over the old one).
    fn write(&self, sequence: &str) -> anyhow::Result<()> {
        let tmp = self.0.with_extension("tmp");
        std::fs::write(&tmp, format!("{sequence}\n")).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.0).with_context(|| format!("cannot write {}", self.0.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_are_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = Checkpoint(dir.path().join("shardId-000000000000"));
        assert_eq!(checkpoint.read(), None);
        checkpoint.write("4959").unwrap();
        checkpoint.write("4960").unwrap();
        assert_eq!(checkpoint.read().as_deref(), Some("4960"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }
}

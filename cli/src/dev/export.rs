//! The export side of `dev`: the S3 notifications of landed objects, received from the queue and handed to the
//! export handler (a message is deleted only after it succeeded, retried through its visibility, and sent to
//! the on-failure destination after `--max-retries`), and the export's schedule.

use std::sync::Arc;

use anyhow::Context as _;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::mapping::backoff;
use super::{Ctx, sleep_or_stop};
use crate::aws::{self, SdkContext};

/// Receives the S3 notifications and exports them, ten at a time, until told to stop.
pub async fn export_loop(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let mut errors = 0u32;
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let received = ctx
            .sqs
            .receive_message()
            .queue_url(&ctx.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await;
        let messages = match received {
            Ok(out) => {
                errors = 0;
                out.messages.unwrap_or_default()
            }
            Err(e) => {
                errors += 1;
                eprintln!("dev: ReceiveMessage failed (try {errors}): {}", aws::sdk_error(&e));
                if errors >= 10 {
                    anyhow::bail!("ReceiveMessage failed 10 times in a row: {}", aws::sdk_error(&e));
                }
                if sleep_or_stop(&mut stop, backoff(errors)).await {
                    return Ok(());
                }
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        ctx.stats.touch();
        let mut running = tokio::task::JoinSet::new();
        for message in messages {
            let ctx = ctx.clone();
            running.spawn(async move { export_message(&ctx, message).await });
        }
        while let Some(done) = running.join_next().await {
            done.context("export task")??;
        }
        ctx.stats.touch();
    }
}

/// One notification: exported and deleted, or left to come back, or given up.
async fn export_message(ctx: &Ctx, message: Message) -> anyhow::Result<()> {
    ctx.stats.add(|t| t.messages += 1);
    let receipt = message.receipt_handle.clone().unwrap_or_default();
    let body = message.body.clone().unwrap_or_default();
    let receive_count: u32 = message
        .attributes
        .as_ref()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let delete = || async {
        ctx.sqs
            .delete_message()
            .queue_url(&ctx.queue_url)
            .receipt_handle(&receipt)
            .send()
            .await
            .sdk_context(|| "DeleteMessage")
    };
    let payload: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "dev: a queue message is not JSON ({e}); dropped: {}",
                body.chars().take(200).collect::<String>()
            );
            delete().await?;
            return Ok(());
        }
    };
    match ctx.exporter.handle(&payload, Timestamp::now()).await {
        Ok(summary) => {
            delete().await?;
            let done = Timestamp::now();
            let exported = summary.objects.iter().filter(|o| o.status == "exported").count() as u64;
            ctx.stats.add(|t| t.objects_exported += exported);
            ctx.stats.exported(summary.objects.iter().map(|o| o.source.key.as_str()), done);
        }
        Err(e) => {
            ctx.stats.add(|t| t.export_errors += 1);
            if receive_count > ctx.args.max_retries {
                let message = json!({"condition": "RetryAttemptsExhausted", "error": e.to_string(), "event": payload});
                ctx.destination.send(&message).await?;
                eprintln!(
                    "dev: export failed {receive_count} times ({e}); event sent to {}",
                    ctx.destination.describe()
                );
                delete().await?;
            } else {
                eprintln!("dev: export failed (attempt {receive_count}, the message comes back): {e}");
                let _ = ctx
                    .sqs
                    .change_message_visibility()
                    .queue_url(&ctx.queue_url)
                    .receipt_handle(&receipt)
                    .visibility_timeout(backoff(receive_count).as_secs().max(1) as i32)
                    .send()
                    .await;
            }
        }
    }
    Ok(())
}

/// The export's scheduled run (compaction, manifests), now.
pub async fn scheduled_run(ctx: &Ctx) -> anyhow::Result<()> {
    let now = Timestamp::now();
    let summary = ctx.exporter.handle(&ctx.origin.scheduled(now), now).await.context("the export's scheduled run")?;
    ctx.stats.add(|t| t.scheduled_runs += 1);
    if let Some(s) = summary.scheduled {
        eprintln!(
            "dev: scheduled run: {} hour(s) compacted, {} manifest(s) written, {} file(s) deleted",
            s.hours_compacted.len(),
            s.manifests_written.len(),
            s.files_deleted.len()
        );
    }
    Ok(())
}

/// The schedule: a scheduled run every `--schedule`; a failed run is retried at the next tick.
pub async fn schedule_loop(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    loop {
        if sleep_or_stop(&mut stop, ctx.args.schedule).await {
            return Ok(());
        }
        if let Err(e) = scheduled_run(&ctx).await {
            eprintln!("dev: {e:#} (retried at the next tick)");
        }
    }
}

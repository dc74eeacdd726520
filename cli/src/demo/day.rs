//! What the stores send on a simulated day: how many receipts each trading hour (a morning start, a lunch
//! peak, an evening peak; last week a little less, with other categories selling), the receipts themselves
//! (the seed's generator, a few spoiled into bad records and a few from the training tills), and the sender's
//! books ([`Ledger`]) the datasets are checked against. Hours are generated ahead, on a blocking thread, while
//! the one before streams ([`Hours`]).

use std::collections::BTreeMap;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use salesflow_core::generate::{Generator, spread_times};
use salesflow_core::receipt::Receipt;
use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinHandle;

use super::DemoArgs;

/// The hour the stores open, store time.
pub const OPENING_HOUR: i8 = 8;
/// The seed's rate: receipts per store per minute (on average over the day).
const RECEIPTS_PER_MINUTE: f64 = 10.0;
/// Last week's traffic relative to today's: the chain grew.
const LAST_WEEK_VOLUME: f64 = 0.95;
/// Receipts from the training tills of store S00000 (the sample pipeline filters them out).
const TRAINING_SHARE: f64 = 0.004;
/// Bad records: broken JSON, invalid fields, data that is not base64.
const BAD_SHARE: f64 = 0.003;

/// The kinds of bad records mixed in.
const BAD_KINDS: [&str; 5] = ["not JSON", "no UTC offset", "bad price", "no store", "not base64"];

/// How busy stores are at each hour of the day (store time), relative: a morning start, a lunch peak, an
/// evening peak.
fn traffic(hour: i8) -> f64 {
    match hour {
        8 => 0.55,
        9 => 0.75,
        10 => 0.95,
        11 => 1.2,
        12 => 1.4,
        13 => 1.15,
        14 => 0.85,
        15 => 0.8,
        16 => 0.95,
        17 => 1.3,
        18 => 1.5,
        19 => 1.2,
        20 => 0.8,
        21 => 0.6,
        22 => 0.45,
        _ => 0.3,
    }
}

/// What differs between the two weeks, per category: the share of lines kept in that week's receipts. This week
/// has a wine fair and a toy promotion; it rained, so the garden sold less; fish was short.
fn lines_kept(today: bool, category: &str) -> f64 {
    match (today, category) {
        (true, "Garden") => 0.78,
        (true, "Fish") => 0.9,
        (false, "Wine & Spirits") => 0.76,
        (false, "Toys") => 0.86,
        (false, "Baby") => 0.93,
        _ => 1.0,
    }
}

/// One simulated day.
#[derive(Debug, Clone)]
pub struct DayPlan {
    pub date: Date,
    pub label: &'static str,
    pub today: bool,
    pub seed: u64,
    pub open: Timestamp,
    pub close: Timestamp,
    pub hours: u8,
    /// Receipts emitted in each trading hour (index 0 is the opening hour).
    pub receipts_per_hour: Vec<usize>,
}

impl DayPlan {
    pub fn new(args: &DemoArgs, date: Date, label: &'static str, zone: &TimeZone) -> anyhow::Result<DayPlan> {
        let today = label == "today";
        let open = zone.to_timestamp(date.at(OPENING_HOUR, 0, 0, 0))?;
        let close = open + SignedDuration::from_hours(args.hours.into());
        let weights: Vec<f64> = (0..args.hours as i8).map(|h| traffic(OPENING_HOUR + h)).collect();
        let mean = weights.iter().sum::<f64>() / weights.len() as f64;
        let volume = if today { 1.0 } else { LAST_WEEK_VOLUME };
        let per_hour = f64::from(args.stores) * RECEIPTS_PER_MINUTE * 60.0 / f64::from(args.speed) * volume;
        let receipts_per_hour = weights.iter().map(|w| (per_hour * w / mean).round().max(1.0) as usize).collect();
        let seed = if today { args.seed } else { args.seed ^ 0x1A57_3EEC_u64.rotate_left(32) };
        Ok(DayPlan { date, label, today, seed, open, close, hours: args.hours, receipts_per_hour })
    }

    pub fn total_receipts(&self) -> usize {
        self.receipts_per_hour.iter().sum()
    }

    /// `08:00–20:00 Europe/Paris`
    pub fn hours_label(&self) -> String {
        let end = i32::from(OPENING_HOUR) + i32::from(self.hours);
        format!("{OPENING_HOUR:02}:00–{end:02}:00 {CHAIN_ZONE_NAME}")
    }

    /// `Thursday 2026-06-11`
    pub fn describe(&self) -> String {
        format!("{} {}", self.date.strftime("%A"), self.date)
    }

    /// The local hour of the last trading hour.
    pub fn last_hour(&self) -> i8 {
        OPENING_HOUR + self.hours as i8 - 1
    }
}

pub const CHAIN_ZONE_NAME: &str = salesflow_core::generate::CHAIN_TIME_ZONE;

/// The sender's books for a day: valid receipts from real stores, their lines, the training-till receipts, the
/// bad records by kind, and the turnover rung up (exact decimals): in total, per category, per store-time hour.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ledger {
    #[serde(rename = "sent_receipts")]
    pub receipts: u64,
    #[serde(rename = "sent_lines")]
    pub lines: u64,
    #[serde(rename = "sent_training")]
    pub training: u64,
    #[serde(rename = "sent_bad")]
    pub bad: BTreeMap<String, u64>,
    pub turnover: Decimal,
    #[serde(rename = "turnover_by_category")]
    pub by_category: BTreeMap<String, Decimal>,
    #[serde(rename = "turnover_by_hour")]
    pub by_hour: BTreeMap<i8, Decimal>,
}

impl Ledger {
    /// Every record sent.
    pub fn records(&self) -> u64 {
        self.receipts + self.training + self.bad.values().sum::<u64>()
    }

    pub fn merge(&mut self, other: Ledger) {
        self.receipts += other.receipts;
        self.lines += other.lines;
        self.training += other.training;
        self.turnover += other.turnover;
        for (k, v) in other.bad {
            *self.bad.entry(k).or_default() += v;
        }
        for (k, v) in other.by_category {
            *self.by_category.entry(k).or_default() += v;
        }
        for (k, v) in other.by_hour {
            *self.by_hour.entry(k).or_default() += v;
        }
    }
}

/// One record ready for the stream.
pub struct Pending {
    pub at: Timestamp,
    pub partition_key: String,
    pub data: String,
}

/// The generator and the spoiler's random numbers, with the hour they generated and its books.
type Generated = (Generator, ChaCha8Rng, Vec<Pending>, Ledger);

/// A day's receipts, hour by hour: the next hour is generated on a blocking thread while this one streams.
pub struct Hours {
    plan: DayPlan,
    /// The next hour to hand out (0 is the opening hour).
    next: usize,
    /// The generator and the spoiler's random numbers, unless they are generating an hour ahead.
    state: Option<(Generator, ChaCha8Rng)>,
    ahead: Option<JoinHandle<Generated>>,
}

impl Hours {
    pub fn new(plan: &DayPlan, stores: u32) -> Hours {
        let state = (Generator::new(plan.seed, stores), ChaCha8Rng::seed_from_u64(plan.seed ^ 0xBAD));
        Hours { plan: plan.clone(), next: 0, state: Some(state), ahead: None }
    }

    /// The next hour's records, in emission order, and its books; `None` after the closing hour.
    pub async fn next(&mut self) -> anyhow::Result<Option<(Vec<Pending>, Ledger)>> {
        let hours = usize::from(self.plan.hours);
        if self.next >= hours {
            return Ok(None);
        }
        let (g, r, records, ledger) = match self.ahead.take() {
            Some(handle) => handle.await.context("a generator thread failed")?,
            None => {
                let (mut g, mut r) = self.state.take().context("the generator is gone")?;
                let mut ledger = Ledger::default();
                let records = generate_hour(&self.plan, &mut g, &mut r, self.next, &mut ledger);
                (g, r, records, ledger)
            }
        };
        self.next += 1;
        if self.next < hours {
            let (plan, hour, mut g, mut r) = (self.plan.clone(), self.next, g, r);
            self.ahead = Some(tokio::task::spawn_blocking(move || {
                let mut ledger = Ledger::default();
                let records = generate_hour(&plan, &mut g, &mut r, hour, &mut ledger);
                (g, r, records, ledger)
            }));
        } else {
            self.state = Some((g, r));
        }
        Ok(Some((records, ledger)))
    }
}

/// One hour of receipts, generated, some spoiled, encoded; `ledger` counts the good ones.
fn generate_hour(
    plan: &DayPlan,
    generator: &mut Generator,
    rng: &mut ChaCha8Rng,
    hour: usize,
    ledger: &mut Ledger,
) -> Vec<Pending> {
    let start = plan.open + SignedDuration::from_hours(hour as i64);
    let local_hour = OPENING_HOUR + hour as i8;
    let n = plan.receipts_per_hour[hour];
    let times = spread_times(plan.seed.wrapping_add(hour as u64), start, SignedDuration::from_hours(1), n);
    let mut out = Vec::with_capacity(n);
    for (i, at) in times.into_iter().enumerate() {
        let mut receipt = generator.receipt_at(at);
        keep_lines(&mut receipt, plan.today, rng);
        let store_id = receipt["store_id"].as_str().unwrap_or_default().to_string();
        // Every day opens with one bad record of each kind and a training receipt, so even a tiny demo shows
        // rejects and filtering; after that they come at random.
        let forced = if hour == 0 && i % 4 == 3 && i / 4 <= BAD_KINDS.len() { Some(i / 4) } else { None };
        let roll: f64 = match forced {
            Some(k) if k < BAD_KINDS.len() => -1.0 - k as f64,
            Some(_) => BAD_SHARE,
            None => rng.random(),
        };
        let (payload, base64_ok) = if roll < BAD_SHARE {
            let kind = match forced {
                Some(k) => BAD_KINDS[k],
                None => BAD_KINDS[rng.random_range(0..BAD_KINDS.len())],
            };
            *ledger.bad.entry(kind.to_string()).or_default() += 1;
            (spoil(&mut receipt, kind), kind != "not base64")
        } else {
            if roll < BAD_SHARE + TRAINING_SHARE {
                receipt["store_id"] = "S00000".into();
                ledger.training += 1;
            } else {
                let parsed = Receipt::from_value(&receipt).expect("generated receipts are valid");
                ledger.receipts += 1;
                for line in &parsed.lines {
                    ledger.lines += 1;
                    let total = line.total().expect("generated line totals fit");
                    ledger.turnover += total;
                    *ledger.by_category.entry(line.category.clone()).or_default() += total;
                    *ledger.by_hour.entry(local_hour).or_default() += total;
                }
            }
            (serde_json::to_vec(&receipt).expect("JSON values serialize"), true)
        };
        let data = if base64_ok { STANDARD.encode(&payload) } else { "!!this is not base64!!".to_string() };
        out.push(Pending { at, partition_key: store_id, data });
    }
    out
}

/// Drops lines of the categories that sold less that week (a receipt keeps at least one line).
fn keep_lines(receipt: &mut Value, today: bool, rng: &mut ChaCha8Rng) {
    let Some(Value::Array(lines)) = receipt.get_mut("lines") else { return };
    let first = lines.first().cloned();
    lines.retain(|line| {
        let keep = lines_kept(today, line["category"].as_str().unwrap_or_default());
        keep >= 1.0 || rng.random_bool(keep)
    });
    if lines.is_empty()
        && let Some(line) = first
    {
        lines.push(line);
    }
}

/// A bad record of the given kind, from a good receipt.
fn spoil(receipt: &mut Value, kind: &str) -> Vec<u8> {
    match kind {
        "not JSON" => {
            let mut bytes = serde_json::to_vec(receipt).expect("JSON values serialize");
            bytes.truncate(bytes.len() / 2);
            return bytes;
        }
        "no UTC offset" => {
            let text = receipt["emitted_at"].as_str().unwrap_or_default();
            receipt["emitted_at"] = text.get(..19).unwrap_or(text).to_string().into();
        }
        "bad price" => receipt["lines"][0]["unit_price"] = "12,99".into(),
        "no store" => {
            receipt.as_object_mut().map(|o| o.remove("store_id"));
        }
        _ => {}
    }
    serde_json::to_vec(receipt).expect("JSON values serialize")
}

//! `dashboard.html`: one self-contained page (inline SVG and CSS, no network) with the views of the source
//! articles, built from the `hourly_sales` CSV files the daily QuickSight manifests list — the same files
//! QuickSight would import. Views: total sales per hour (line, today and the same day last week), sales of the
//! day by category (treemap), sales by store location in the last hour (bubbles on longitude/latitude over an
//! outline of France), turnover per category today vs the same day last week, sales by manager, and today's
//! cumulative sales against a least-squares trend line with its R².

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use salesflow_core::datasets::hourly_sales::{self, HourlyRow};
use salesflow_core::datasets::read_rows;
use salesflow_core::keys::ObjectLocation;
use salesflow_core::manifest::Manifest;

use super::day::{DayPlan, OPENING_HOUR};
use super::simulate::DayResult;
use super::svg::{Anchor, Rect, Svg, esc, linear_fit, short_eur, squarify, ticks};
use super::{DemoArgs, change, count, money};

/// One store's sales in an hour.
#[derive(Debug, Clone, Default)]
struct StoreSales {
    city: String,
    region: String,
    latitude: f64,
    longitude: f64,
    turnover: Decimal,
    lines: u64,
}

/// One day, aggregated from `hourly_sales` rows.
#[derive(Debug, Clone, Default)]
struct DayData {
    total: Decimal,
    by_hour: BTreeMap<i8, Decimal>,
    by_category: BTreeMap<String, Decimal>,
    /// manager → (region, turnover)
    by_manager: BTreeMap<String, (String, Decimal)>,
    last_hour_stores: BTreeMap<String, StoreSales>,
    stores: BTreeSet<String>,
    lines: u64,
    returns: u64,
}

/// The data the page shows, and where it came from.
pub struct Dashboard {
    today: DayData,
    last_week: DayData,
    manifests: Vec<String>,
    files: usize,
    rows: u64,
}

impl Dashboard {
    /// Reads both days' `hourly_sales` through their daily manifests in the bucket directory.
    pub fn load(bucket_dir: &Path, bucket: &str, today: &DayPlan, last_week: &DayPlan) -> anyhow::Result<Dashboard> {
        let mut board = Dashboard {
            today: DayData::default(),
            last_week: DayData::default(),
            manifests: Vec::new(),
            files: 0,
            rows: 0,
        };
        for (plan, is_today) in [(today, true), (last_week, false)] {
            let mut data = DayData::default();
            for path in manifests_of(bucket_dir, plan)? {
                let manifest: Manifest = serde_json::from_slice(&std::fs::read(&path)?)
                    .with_context(|| format!("{}: not a QuickSight manifest", path.display()))?;
                board.manifests.push(path.strip_prefix(bucket_dir).unwrap_or(&path).display().to_string());
                for uri in manifest.uris() {
                    let at: ObjectLocation = uri.parse().with_context(|| format!("{}: bad URI", path.display()))?;
                    anyhow::ensure!(at.bucket == bucket, "{}: {uri} is in another bucket", path.display());
                    board.rows += read_hourly(&bucket_dir.join(&at.key), plan, &mut data)?;
                    board.files += 1;
                }
            }
            if is_today {
                board.today = data;
            } else {
                board.last_week = data;
            }
        }
        Ok(board)
    }

    /// Whether the datasets add up to exactly what the stores rang up, per category and per hour, both days.
    pub fn matches(&self, today: &DayResult, last_week: &DayResult) -> bool {
        // Decimals compare by value: 1.50 == 1.5.
        [(&self.today, today), (&self.last_week, last_week)].iter().all(|(data, day)| {
            let sent = &day.sent;
            data.by_category == sent.by_category && data.by_hour == sent.by_hour && data.lines == sent.lines
        })
    }

    pub fn render(&self, args: &DemoArgs, today: &DayPlan, last_week: &DayPlan) -> String {
        let t = &self.today;
        let l = &self.last_week;
        let top = t.by_category.iter().max_by_key(|(_, v)| **v).map(|(k, _)| k.clone()).unwrap_or_default();
        let kpis = [
            ("Turnover today", format!("€{}", money(t.total)), format!("{} trading hours", today.hours)),
            (
                "vs same day last week",
                change(t.total, l.total),
                format!("€{} on {}", money(l.total), last_week.date.strftime("%a %-d %b")),
            ),
            ("Lines sold", count(t.lines), format!("{} return lines", count(t.returns))),
            ("Stores trading", count(t.stores.len() as u64), format!("{} managers", t.by_manager.len())),
            ("Top category", top.clone(), format!("€{}", money(t.by_category.get(&top).copied().unwrap_or_default()))),
        ];
        let mut tiles = String::new();
        for (label, value, note) in kpis {
            tiles.push_str(&format!(
                r#"<div class="kpi"><div class="kpi-label">{}</div><div class="kpi-value">{}</div><div class="kpi-note">{}</div></div>"#,
                esc(label),
                esc(&value),
                esc(&note)
            ));
        }
        let last = today.last_hour();
        let (slope, r2, trend_svg) = self.trend_chart(today);
        let cards = [
            card(
                "Total sales per hour",
                &format!("Turnover by store-time hour, today and {} (same weekday last week)", last_week.date),
                &self.hourly_chart(today),
            ),
            card(
                "Cumulative sales today vs linear trend",
                &format!(
                    "Least-squares trend on today's hourly cumulative turnover: {} per hour, R² = {r2:.3}",
                    short_eur(slope)
                ),
                &trend_svg,
            ),
            card(
                "Sales within the day by category",
                "Today's turnover by category; area is proportional to turnover",
                &self.treemap(),
            ),
            card(
                &format!("Sales by store location, last hour ({last:02}:00–{:02}:00)", last + 1),
                "One bubble per store at its latitude/longitude; area is proportional to the hour's turnover",
                &self.map(),
            ),
            card(
                "Turnover per category vs same day last week",
                &format!(
                    "Today ({}) against {} ({}), with the change",
                    today.date,
                    last_week.date,
                    last_week.date.strftime("%A")
                ),
                &self.category_comparison(),
            ),
            card(
                "Sales by manager",
                "Today's turnover of each sales manager's stores, with the change on the same day last week",
                &self.managers(),
            ),
        ];
        let manifests =
            self.manifests.iter().map(|m| format!("<code>{}</code>", esc(m))).collect::<Vec<_>>().join(", ");
        format!(
            r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>salesflow — sales dashboard, {date}</title>
<style>{CSS}</style>
</head>
<body>
<header>
  <div>
    <h1>salesflow · real-time sales</h1>
    <p class="sub">{weekday} {date}, {hours} · {stores} stores · built from the CSV datasets QuickSight reads</p>
  </div>
</header>
<section class="kpis">{tiles}</section>
<main class="grid">{cards}</main>
<footer>
  Generated by <code>salesflow demo --stores {stores_raw} --hours {hours_raw} --speed {speed} --seed {seed}</code>
  (time compressed {speed}×). Data: {files} <code>hourly_sales</code> CSV files ({rows} rows) listed by {manifests}.
  Hover a mark for its exact value.
</footer>
<script>
// Render check (scripts/check-dashboard): every chart has a laid-out box and data marks.
(function () {{
  var charts = document.querySelectorAll("svg.chart"), ok = 0;
  for (var i = 0; i < charts.length; i++) {{
    var box = charts[i].getBoundingClientRect();
    if (box.width > 0 && box.height > 0 && charts[i].querySelectorAll("[data-mark]").length > 0) ok++;
  }}
  document.body.setAttribute("data-charts", charts.length);
  document.body.setAttribute("data-charts-rendered", ok);
}})();
</script>
</body>
</html>
"#,
            date = today.date,
            weekday = today.date.strftime("%A"),
            hours = today.hours_label(),
            stores = count(u64::from(args.stores)),
            stores_raw = args.stores,
            hours_raw = args.hours,
            speed = args.speed,
            seed = args.seed,
            cards = cards.join("\n"),
            files = self.files,
            rows = count(self.rows),
        )
    }

    fn hourly_chart(&self, today: &DayPlan) -> String {
        let (w, h) = (640.0, 330.0);
        let (left, right, top, bottom) = (64.0, 16.0, 34.0, 40.0);
        let hours: Vec<i8> = (0..today.hours as i8).map(|i| OPENING_HOUR + i).collect();
        let value = |d: &DayData, hour: i8| d.by_hour.get(&hour).copied().unwrap_or_default().to_f64().unwrap_or(0.0);
        let max = hours.iter().flat_map(|h| [value(&self.today, *h), value(&self.last_week, *h)]).fold(0.0, f64::max);
        let ys = ticks(max, 5);
        let y_max = *ys.last().expect("ticks");
        let x = |i: usize| left + (w - left - right) * (i as f64 + 0.5) / hours.len() as f64;
        let y = |v: f64| top + (h - top - bottom) * (1.0 - v / y_max);
        let mut svg = Svg::new("hourly", w, h, "Total sales per hour");
        y_axis(&mut svg, &ys, left, w - right, &y);
        for (i, hour) in hours.iter().enumerate() {
            if hours.len() <= 12 || i % 2 == 0 {
                svg.text(x(i), h - bottom + 18.0, &format!("{hour:02}:00"), Anchor::Middle, "tick");
            }
        }
        for (data, color, dash, name) in [
            (&self.last_week, GREY, r#"stroke-dasharray="6 4""#, "same day last week"),
            (&self.today, BLUE, "", "today"),
        ] {
            let points: Vec<(f64, f64)> = hours.iter().enumerate().map(|(i, hr)| (x(i), y(value(data, *hr)))).collect();
            svg.polyline(&points, &format!(r#"stroke="{color}" stroke-width="2.5" {dash}"#));
            for ((px, py), hr) in points.iter().zip(&hours) {
                let tip = format!(
                    "{name}, {hr:02}:00–{:02}:00: €{}",
                    hr + 1,
                    money(data.by_hour.get(hr).copied().unwrap_or_default())
                );
                svg.circle(*px, *py, 4.0, &format!(r#"fill="{color}" stroke="white" stroke-width="1.5""#), Some(&tip));
            }
        }
        legend(&mut svg, w - right, 16.0, &[("today", BLUE, false), ("same day last week", GREY, true)]);
        svg.finish()
    }

    /// Today's cumulative turnover at the end of each hour, the least-squares line through it, last week's
    /// cumulative for reference. Returns (slope per hour, R², the chart).
    fn trend_chart(&self, today: &DayPlan) -> (f64, f64, String) {
        let (w, h) = (640.0, 330.0);
        let (left, right, top, bottom) = (64.0, 16.0, 34.0, 40.0);
        let n = usize::from(today.hours);
        let cumulative = |d: &DayData| -> Vec<f64> {
            let mut sum = 0.0;
            (0..n)
                .map(|i| {
                    sum += d.by_hour.get(&(OPENING_HOUR + i as i8)).and_then(|v| v.to_f64()).unwrap_or(0.0);
                    sum
                })
                .collect()
        };
        let now = cumulative(&self.today);
        let before = cumulative(&self.last_week);
        let points: Vec<(f64, f64)> = now.iter().enumerate().map(|(i, v)| (i as f64 + 1.0, *v)).collect();
        let (slope, intercept, r2) = linear_fit(&points);
        let trend_end = slope * n as f64 + intercept;
        let max = now.iter().chain(&before).cloned().fold(trend_end, f64::max);
        let ys = ticks(max, 5);
        let y_max = *ys.last().expect("ticks");
        // x: hours since opening, 0 to n.
        let x = |t: f64| left + (w - left - right) * t / n as f64;
        let y = |v: f64| top + (h - top - bottom) * (1.0 - v / y_max);
        let mut svg = Svg::new("trend", w, h, "Cumulative sales today vs linear trend");
        y_axis(&mut svg, &ys, left, w - right, &y);
        for i in 0..=n {
            if n <= 12 || i % 2 == 0 {
                svg.text(
                    x(i as f64),
                    h - bottom + 18.0,
                    &format!("{:02}:00", OPENING_HOUR + i as i8),
                    Anchor::Middle,
                    "tick",
                );
            }
        }
        let before_pts: Vec<(f64, f64)> = std::iter::once((x(0.0), y(0.0)))
            .chain(before.iter().enumerate().map(|(i, v)| (x(i as f64 + 1.0), y(*v))))
            .collect();
        svg.polyline(&before_pts, &format!(r#"stroke="{GREY}" stroke-width="1.5""#));
        let t0 = intercept.max(0.0).min(y_max);
        let x0 = if intercept < 0.0 && slope > 0.0 { -intercept / slope } else { 0.0 };
        svg.line(
            x(x0),
            y(if intercept < 0.0 { 0.0 } else { t0 }),
            x(n as f64),
            y(trend_end),
            &format!(r#"stroke="{ORANGE}" stroke-width="2" stroke-dasharray="7 5""#),
        );
        let now_pts: Vec<(f64, f64)> = std::iter::once((x(0.0), y(0.0)))
            .chain(now.iter().enumerate().map(|(i, v)| (x(i as f64 + 1.0), y(*v))))
            .collect();
        svg.polyline(&now_pts, &format!(r#"stroke="{BLUE}" stroke-width="2.5""#));
        for (i, v) in now.iter().enumerate() {
            let tip = format!(
                "today by {:02}:00: €{} (trend €{})",
                OPENING_HOUR + i as i8 + 1,
                money(Decimal::from_f64_retain(*v).unwrap_or_default()),
                money(Decimal::from_f64_retain(slope * (i as f64 + 1.0) + intercept).unwrap_or_default())
            );
            svg.circle(
                x(i as f64 + 1.0),
                y(*v),
                3.5,
                &format!(r#"fill="{BLUE}" stroke="white" stroke-width="1.5""#),
                Some(&tip),
            );
        }
        svg.text(left + 10.0, top + 14.0, &format!("R² = {r2:.3}"), Anchor::Start, "note strong");
        svg.text(left + 10.0, top + 32.0, &format!("trend {} / hour", short_eur(slope)), Anchor::Start, "note");
        legend(
            &mut svg,
            w - right,
            16.0,
            &[("today (cumulative)", BLUE, false), ("linear trend", ORANGE, true), ("same day last week", GREY, false)],
        );
        (slope, r2, svg.finish())
    }

    fn treemap(&self) -> String {
        let (w, h) = (640.0, 500.0);
        let mut items: Vec<(&String, f64)> =
            self.today.by_category.iter().map(|(k, v)| (k, v.to_f64().unwrap_or(0.0).max(0.0))).collect();
        items.sort_by(|a, b| b.1.total_cmp(&a.1));
        let total: f64 = items.iter().map(|i| i.1).sum();
        let values: Vec<f64> = items.iter().map(|i| i.1).collect();
        let rects = squarify(&values, Rect { x: 2.0, y: 2.0, w: w - 4.0, h: h - 4.0 });
        let colors = self.category_colors();
        let mut svg = Svg::new("treemap", w, h, "Sales within the day by category");
        for ((name, v), r) in items.iter().zip(&rects) {
            let color = colors.get(*name).copied().unwrap_or(GREY);
            let share = if total > 0.0 { v / total * 100.0 } else { 0.0 };
            let tip =
                format!("{name}: €{} ({share:.1}% of today)", money(Decimal::from_f64_retain(*v).unwrap_or_default()));
            svg.rect(r.x, r.y, r.w, r.h, color, r#"stroke="white" stroke-width="2""#, Some(&tip));
            let ink = if dark(color) { "light" } else { "dark" };
            if r.w > 64.0 && r.h > 38.0 {
                let size = if r.w > 150.0 && r.h > 70.0 { "big" } else { "small" };
                let max_chars = ((r.w - 12.0) / if size == "big" { 8.2 } else { 6.6 }) as usize;
                svg.text(
                    r.x + 7.0,
                    r.y + 19.0,
                    &clip(name, max_chars),
                    Anchor::Start,
                    &format!("tm-name {size} {ink}"),
                );
                let long = format!("{} · {share:.1}%", short_eur(*v));
                let value = if long.chars().count() as f64 * 6.4 < r.w - 12.0 { long } else { short_eur(*v) };
                svg.text(r.x + 7.0, r.y + 35.0, &value, Anchor::Start, &format!("tm-value {ink}"));
            } else if r.w > 30.0 && r.h > 16.0 {
                svg.text(
                    r.x + 4.0,
                    r.y + 13.0,
                    &clip(name, ((r.w - 6.0) / 6.0) as usize),
                    Anchor::Start,
                    &format!("tm-value {ink}"),
                );
            }
        }
        svg.finish()
    }

    fn map(&self) -> String {
        let (w, h) = (640.0, 500.0);
        // Equirectangular, x scaled by cos(46.5°), fitted to mainland France and Corsica.
        let (lon0, lon1, lat0, lat1) = (-5.3, 9.8, 41.2, 51.3);
        let kx = 46.5f64.to_radians().cos();
        let scale = ((w - 20.0) / ((lon1 - lon0) * kx)).min((h - 20.0) / (lat1 - lat0));
        let ox = (w - (lon1 - lon0) * kx * scale) / 2.0;
        let oy = (h - (lat1 - lat0) * scale) / 2.0;
        let px = |lon: f64| ox + (lon - lon0) * kx * scale;
        let py = |lat: f64| oy + (lat1 - lat) * scale;
        let mut svg = Svg::new("map", w, h, "Sales by store location in the last hour");
        for outline in [FRANCE, CORSICA] {
            let d: Vec<String> = outline
                .iter()
                .enumerate()
                .map(|(i, (lon, lat))| format!("{}{:.1},{:.1}", if i == 0 { "M" } else { "L" }, px(*lon), py(*lat)))
                .collect();
            svg.path(&format!("{}Z", d.join("")), r##"fill="#eef2f7" stroke="#b8c2d0" stroke-width="1.2""##);
        }
        let mut stores: Vec<(&String, &StoreSales)> = self.today.last_hour_stores.iter().collect();
        stores.sort_by_key(|s| std::cmp::Reverse(s.1.turnover));
        let max = stores.first().map_or(1.0, |s| s.1.turnover.to_f64().unwrap_or(1.0).max(1.0));
        let radius = |v: f64| 2.0 + 14.0 * (v.max(0.0) / max).sqrt();
        for (id, s) in &stores {
            let v = s.turnover.to_f64().unwrap_or(0.0);
            let tip =
                format!("{id} {} ({}): €{} in the last hour, {} lines", s.city, s.region, money(s.turnover), s.lines);
            svg.circle(
                px(s.longitude),
                py(s.latitude),
                radius(v),
                &format!(r#"fill="{BLUE}" fill-opacity="0.45" stroke="{BLUE_DARK}" stroke-width="0.8""#),
                Some(&tip),
            );
        }
        // The biggest cities by the hour's turnover, named.
        let mut cities: BTreeMap<&str, (f64, f64, f64)> = BTreeMap::new();
        for (_, s) in &stores {
            let e = cities.entry(s.city.as_str()).or_insert((0.0, s.longitude, s.latitude));
            e.0 += s.turnover.to_f64().unwrap_or(0.0);
        }
        let mut by_size: Vec<_> = cities.into_iter().collect();
        by_size.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
        let mut placed: Vec<(f64, f64)> = Vec::new();
        for (city, (v, lon, lat)) in &by_size {
            let (x, y) = (px(*lon) + 12.0, py(*lat) - 12.0);
            if placed.len() == 6 || placed.iter().any(|(px, py)| (px - x).abs() < 110.0 && (py - y).abs() < 16.0) {
                continue;
            }
            placed.push((x, y));
            svg.text(x, y, &format!("{city} {}", short_eur(*v)), Anchor::Start, "map-label");
        }
        // Size legend, in the sea off Brittany.
        let (lx, ly) = (16.0, 40.0);
        svg.text(lx, ly - 8.0, "turnover, last hour", Anchor::Start, "tick");
        for (i, f) in [1.0, 0.25].iter().enumerate() {
            let r = radius(max * f);
            let cx = lx + 20.0 + i as f64 * 60.0;
            svg.circle(
                cx,
                ly + 22.0,
                r,
                &format!(r#"fill="{BLUE}" fill-opacity="0.25" stroke="{BLUE_DARK}" stroke-width="0.8""#),
                None,
            );
            svg.text(cx, ly + 54.0, &short_eur(max * f), Anchor::Middle, "tick");
        }
        svg.text(12.0, h - 12.0, &format!("{} stores traded in the last hour", stores.len()), Anchor::Start, "tick");
        svg.finish()
    }

    fn category_comparison(&self) -> String {
        let mut items: Vec<(&String, Decimal, Decimal)> = self
            .today
            .by_category
            .iter()
            .map(|(k, v)| (k, *v, self.last_week.by_category.get(k).copied().unwrap_or_default()))
            .collect();
        items.sort_by_key(|i| std::cmp::Reverse(i.1));
        let row = 25.0;
        let (w, top) = (640.0, 30.0);
        let h = top + row * items.len() as f64 + 30.0;
        let (left, right) = (138.0, 70.0);
        let max = items.iter().flat_map(|i| [i.1, i.2]).max().and_then(|m| m.to_f64()).unwrap_or(1.0);
        let xs = ticks(max, 4);
        let x_max = *xs.last().expect("ticks");
        let x = |v: f64| left + (w - left - right) * v.max(0.0) / x_max;
        let mut svg = Svg::new("categories", w, h, "Turnover per category vs same day last week");
        for t in &xs {
            svg.line(x(*t), top - 4.0, x(*t), h - 26.0, r#"class="gridline""#);
            svg.text(x(*t), h - 10.0, &short_eur(*t), Anchor::Middle, "tick");
        }
        for (i, (name, now, before)) in items.iter().enumerate() {
            let y0 = top + row * i as f64;
            let (n, b) = (now.to_f64().unwrap_or(0.0), before.to_f64().unwrap_or(0.0));
            svg.text(left - 8.0, y0 + 15.0, &clip(name, 20), Anchor::End, "label");
            svg.rect(left, y0 + 3.0, x(n) - left, 9.0, BLUE, "", Some(&format!("{name} today: €{}", money(*now))));
            svg.rect(
                left,
                y0 + 12.0,
                x(b) - left,
                8.0,
                GREY_LIGHT,
                "",
                Some(&format!("{name} same day last week: €{}", money(*before))),
            );
            let delta = change(*now, *before);
            let class = if delta.starts_with('-') { "delta down" } else { "delta up" };
            svg.text(w - 6.0, y0 + 16.0, &delta, Anchor::End, class);
        }
        legend(&mut svg, w - right, 14.0, &[("today", BLUE, false), ("same day last week", GREY_LIGHT, false)]);
        svg.finish()
    }

    fn managers(&self) -> String {
        let mut items: Vec<(&String, &String, Decimal)> =
            self.today.by_manager.iter().map(|(m, (region, v))| (m, region, *v)).collect();
        items.sort_by_key(|i| std::cmp::Reverse(i.2));
        let row = 30.0;
        let (w, top) = (640.0, 14.0);
        let h = top + row * items.len() as f64 + 30.0;
        let (left, right) = (230.0, 120.0);
        let max = items.first().and_then(|i| i.2.to_f64()).unwrap_or(1.0);
        let xs = ticks(max, 4);
        let x_max = *xs.last().expect("ticks");
        let x = |v: f64| left + (w - left - right) * v.max(0.0) / x_max;
        let mut svg = Svg::new("managers", w, h, "Sales by manager");
        for t in &xs {
            svg.line(x(*t), top - 4.0, x(*t), h - 26.0, r#"class="gridline""#);
            svg.text(x(*t), h - 10.0, &short_eur(*t), Anchor::Middle, "tick");
        }
        for (i, (manager, region, v)) in items.iter().enumerate() {
            let y0 = top + row * i as f64;
            svg.text(left - 8.0, y0 + 13.0, manager, Anchor::End, "label");
            svg.text(left - 8.0, y0 + 25.0, &clip(region, 30), Anchor::End, "tick");
            let vf = v.to_f64().unwrap_or(0.0);
            svg.rect(
                left,
                y0 + 4.0,
                x(vf) - left,
                18.0,
                TEAL,
                r#"rx="2""#,
                Some(&format!("{manager} ({region}): €{} today", money(*v))),
            );
            let before = self.last_week.by_manager.get(*manager).map(|m| m.1).unwrap_or_default();
            let delta = change(*v, before);
            svg.text(x(vf) + 6.0, y0 + 17.0, &short_eur(vf), Anchor::Start, "value");
            let class = if delta.starts_with('-') { "delta down" } else { "delta up" };
            svg.text(w - 6.0, y0 + 17.0, &delta, Anchor::End, class);
        }
        svg.finish()
    }

    /// A fixed color per category (alphabetical order over both days), so colors match across charts and runs.
    fn category_colors(&self) -> BTreeMap<String, &'static str> {
        let names: BTreeSet<&String> = self.today.by_category.keys().chain(self.last_week.by_category.keys()).collect();
        names.into_iter().enumerate().map(|(i, n)| (n.clone(), PALETTE[i % PALETTE.len()])).collect()
    }
}

/// The daily manifests (with their split parts) of the UTC dates the trading day falls on.
fn manifests_of(bucket_dir: &Path, plan: &DayPlan) -> anyhow::Result<Vec<PathBuf>> {
    let dir = bucket_dir.join("manifests").join("hourly_sales");
    let utc = jiff::tz::TimeZone::UTC;
    let dates: BTreeSet<String> = [plan.open, plan.close - jiff::SignedDuration::from_secs(1)]
        .iter()
        .map(|t| utc.to_datetime(*t).date().to_string())
        .collect();
    let mut out = Vec::new();
    for date in dates {
        let base = format!("dt={date}.json");
        let part = format!("dt={date}.part-");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| *n == base || (n.starts_with(&part) && n.ends_with(".json")))
            .collect();
        names.sort_by_key(|n| (n.len(), n.clone()));
        anyhow::ensure!(!names.is_empty(), "no manifest {} for {}", dir.join(&base).display(), plan.label);
        out.extend(names.into_iter().map(|n| dir.join(n)));
    }
    Ok(out)
}

/// Adds one `hourly_sales` file's rows of the plan's store-time date into `data`; returns the rows read.
fn read_hourly(path: &Path, plan: &DayPlan, data: &mut DayData) -> anyhow::Result<u64> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let records = read_rows(BufReader::new(file), &hourly_sales::COLUMNS)
        .with_context(|| format!("{}: not an hourly_sales file", path.display()))?;
    let last = plan.last_hour();
    let mut rows = 0;
    for record in records {
        let record = record.with_context(|| format!("{}: bad CSV", path.display()))?;
        let row = HourlyRow::from_row(&record).with_context(|| format!("{}: bad row", path.display()))?;
        rows += 1;
        if row.date != plan.date {
            continue;
        }
        let v = row.turnover;
        let region = row.region.unwrap_or_default();
        data.total += v;
        *data.by_hour.entry(row.hour).or_default() += v;
        *data.by_category.entry(row.key.category).or_default() += v;
        let m =
            data.by_manager.entry(row.manager.unwrap_or_default()).or_insert_with(|| (region.clone(), Decimal::ZERO));
        m.1 += v;
        data.stores.insert(row.key.store_id.clone());
        data.lines += row.lines;
        data.returns += row.returns;
        if row.hour == last {
            let s = data.last_hour_stores.entry(row.key.store_id).or_insert_with(|| StoreSales {
                city: row.city.unwrap_or_default(),
                region,
                latitude: row.latitude.and_then(|d| d.to_f64()).unwrap_or(0.0),
                longitude: row.longitude.and_then(|d| d.to_f64()).unwrap_or(0.0),
                ..StoreSales::default()
            });
            s.turnover += v;
            s.lines += row.lines;
        }
    }
    Ok(rows)
}

fn card(title: &str, subtitle: &str, svg: &str) -> String {
    format!(r#"<section class="card"><h2>{}</h2><p class="sub">{}</p>{svg}</section>"#, esc(title), esc(subtitle))
}

/// Horizontal gridlines with their labels at the left.
fn y_axis(svg: &mut Svg, ys: &[f64], left: f64, right: f64, y: &impl Fn(f64) -> f64) {
    for v in ys {
        svg.line(left, y(*v), right, y(*v), r#"class="gridline""#);
        svg.text(left - 8.0, y(*v) + 4.0, &short_eur(*v), Anchor::End, "tick");
    }
}

/// A legend, right-aligned at (x, y): a swatch and a name per series.
fn legend(svg: &mut Svg, x: f64, y: f64, items: &[(&str, &str, bool)]) {
    let mut cursor = x;
    for (name, color, dashed) in items.iter().rev() {
        let width = name.chars().count() as f64 * 6.6;
        cursor -= width;
        svg.text(cursor, y + 4.0, name, Anchor::Start, "legend");
        cursor -= 26.0;
        let dash = if *dashed { r#"stroke-dasharray="5 3""# } else { "" };
        svg.line(cursor, y, cursor + 20.0, y, &format!(r#"stroke="{color}" stroke-width="3" {dash}"#));
        cursor -= 14.0;
    }
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let kept: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

/// Whether white text reads better than dark text on this `#rrggbb` color.
fn dark(color: &str) -> bool {
    let c = u32::from_str_radix(color.trim_start_matches('#'), 16).unwrap_or(0);
    let (r, g, b) = (f64::from((c >> 16) & 255), f64::from((c >> 8) & 255), f64::from(c & 255));
    0.299 * r + 0.587 * g + 0.114 * b < 150.0
}

const BLUE: &str = "#2563eb";
const BLUE_DARK: &str = "#1e3a8a";
const GREY: &str = "#9ca3af";
const GREY_LIGHT: &str = "#cbd5e1";
const ORANGE: &str = "#ea580c";
const TEAL: &str = "#0d9488";
const PALETTE: [&str; 20] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
    "#499894", "#d37295", "#86bcb6", "#b6992d", "#8cd17d", "#f1ce63", "#a0cbe8", "#79706e", "#fabfd2", "#ffbe7d",
];

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;background:#f3f5f9;color:#1f2937}
header{padding:20px 28px 8px}
h1{margin:0;font-size:24px;font-weight:700;letter-spacing:-.01em}
.sub{margin:4px 0 0;color:#6b7280;font-size:13px}
.kpis{display:grid;grid-template-columns:repeat(5,1fr);gap:14px;padding:12px 28px}
.kpi{background:#fff;border-radius:10px;padding:12px 16px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
.kpi-label{font-size:12px;color:#6b7280;text-transform:uppercase;letter-spacing:.04em}
.kpi-value{font-size:24px;font-weight:700;margin-top:4px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.kpi-note{font-size:12px;color:#6b7280;margin-top:2px}
.grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:16px;padding:8px 28px 16px}
.card{background:#fff;border-radius:10px;padding:14px 16px 10px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
.card h2{margin:0;font-size:16px;font-weight:650}
.card .sub{margin-bottom:6px}
svg.chart{display:block;width:100%;height:auto}
svg text{font-family:inherit}
.tick{font-size:11px;fill:#6b7280}
.label{font-size:12px;fill:#374151}
.value{font-size:11px;fill:#374151}
.legend{font-size:11px;fill:#4b5563}
.note{font-size:12px;fill:#4b5563}
.strong{font-weight:700;font-size:14px;fill:#111827}
.gridline{stroke:#e5e7eb;stroke-width:1}
.delta{font-size:12px;font-weight:650}
.delta.up{fill:#15803d}
.delta.down{fill:#b91c1c}
.tm-name{font-weight:650}
.tm-name.big{font-size:14px}
.tm-name.small,.tm-value{font-size:11px}
.light{fill:#fff}
.dark{fill:#1f2937}
.map-label{font-size:11px;font-weight:600;fill:#1e3a8a;paint-order:stroke;stroke:#fff;stroke-width:3px}
footer{padding:4px 28px 24px;color:#6b7280;font-size:12px;line-height:1.5}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:11px;background:#e5e7eb;padding:1px 4px;border-radius:3px}
@media (max-width:1000px){.grid{grid-template-columns:1fr}.kpis{grid-template-columns:repeat(2,1fr)}}
"#;

/// A light outline of mainland France (longitude, latitude), simplified to a few dozen points.
const FRANCE: &[(f64, f64)] = &[
    (2.55, 51.09),
    (3.10, 50.78),
    (4.15, 50.28),
    (4.85, 50.15),
    (4.80, 49.95),
    (5.45, 49.50),
    (6.36, 49.46),
    (7.10, 49.15),
    (8.20, 48.97),
    (7.80, 48.50),
    (7.55, 47.60),
    (6.85, 47.40),
    (6.95, 47.03),
    (6.10, 46.43),
    (6.80, 46.42),
    (7.04, 45.92),
    (6.62, 45.10),
    (7.00, 44.25),
    (7.53, 43.78),
    (7.27, 43.70),
    (6.95, 43.55),
    (6.65, 43.25),
    (5.90, 43.10),
    (5.35, 43.20),
    (4.80, 43.40),
    (4.00, 43.50),
    (3.20, 43.20),
    (3.05, 42.55),
    (1.75, 42.45),
    (0.70, 42.80),
    (-0.30, 42.80),
    (-1.45, 43.30),
    (-1.78, 43.38),
    (-1.40, 44.00),
    (-1.20, 44.70),
    (-1.25, 45.60),
    (-1.20, 46.20),
    (-2.10, 46.80),
    (-2.50, 47.30),
    (-3.30, 47.70),
    (-4.35, 47.80),
    (-4.75, 48.35),
    (-4.10, 48.70),
    (-3.00, 48.80),
    (-2.00, 48.65),
    (-1.55, 48.65),
    (-1.60, 49.20),
    (-1.90, 49.70),
    (-1.25, 49.70),
    (-1.10, 49.35),
    (0.10, 49.40),
    (0.20, 49.70),
    (1.40, 50.10),
    (1.60, 50.70),
];

const CORSICA: &[(f64, f64)] = &[
    (9.40, 43.02),
    (9.48, 42.65),
    (9.55, 42.15),
    (9.40, 41.70),
    (9.22, 41.37),
    (8.80, 41.55),
    (8.60, 41.90),
    (8.60, 42.35),
    (9.00, 42.65),
    (9.30, 42.70),
];

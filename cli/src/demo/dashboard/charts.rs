//! The dashboard's charts, each an inline SVG of its card drawn from the two days' data: total sales per hour,
//! today's cumulative sales against a linear trend, the categories' treemap, the stores of the last hour on a
//! map of France, the categories against last week, and the managers.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::france::{CORSICA, FRANCE};
use super::{Dashboard, DayData, StoreSales};
use crate::demo::day::{DayPlan, OPENING_HOUR};
use crate::demo::svg::{Anchor, Rect, Svg, linear_fit, short_eur, squarify, ticks};
use crate::demo::{change, money};

impl Dashboard {
    pub(super) fn hourly_chart(&self, today: &DayPlan) -> String {
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
    pub(super) fn trend_chart(&self, today: &DayPlan) -> (f64, f64, String) {
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

    pub(super) fn treemap(&self) -> String {
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

    pub(super) fn map(&self) -> String {
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

    pub(super) fn category_comparison(&self) -> String {
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
        let mut svg = Svg::new("categories", w, h, "Turnover per category vs same day last week");
        let x = value_axis(&mut svg, max, (left, w - right), (top, h));
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

    pub(super) fn managers(&self) -> String {
        let mut items: Vec<(&String, &String, Decimal)> =
            self.today.by_manager.iter().map(|(m, (region, v))| (m, region, *v)).collect();
        items.sort_by_key(|i| std::cmp::Reverse(i.2));
        let row = 30.0;
        let (w, top) = (640.0, 14.0);
        let h = top + row * items.len() as f64 + 30.0;
        let (left, right) = (230.0, 120.0);
        let max = items.first().and_then(|i| i.2.to_f64()).unwrap_or(1.0);
        let mut svg = Svg::new("managers", w, h, "Sales by manager");
        let x = value_axis(&mut svg, max, (left, w - right), (top, h));
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
    pub(super) fn category_colors(&self) -> BTreeMap<String, &'static str> {
        let names: BTreeSet<&String> = self.today.by_category.keys().chain(self.last_week.by_category.keys()).collect();
        names.into_iter().enumerate().map(|(i, n)| (n.clone(), PALETTE[i % PALETTE.len()])).collect()
    }
}

/// Horizontal gridlines with their labels at the left.
fn y_axis(svg: &mut Svg, ys: &[f64], left: f64, right: f64, y: &impl Fn(f64) -> f64) {
    for v in ys {
        svg.line(left, y(*v), right, y(*v), r#"class="gridline""#);
        svg.text(left - 8.0, y(*v) + 4.0, &short_eur(*v), Anchor::End, "tick");
    }
}

/// The value axis of a horizontal bar chart: ticks up to `max` across `x0..x1`, vertical gridlines from just
/// above `top` to the labels at the bottom of a chart `h` high. Returns the scale, value → x.
fn value_axis(svg: &mut Svg, max: f64, (x0, x1): (f64, f64), (top, h): (f64, f64)) -> impl Fn(f64) -> f64 + use<> {
    let xs = ticks(max, 4);
    let x_max = *xs.last().expect("ticks");
    let x = move |v: f64| x0 + (x1 - x0) * v.max(0.0) / x_max;
    for t in &xs {
        svg.line(x(*t), top - 4.0, x(*t), h - 26.0, r#"class="gridline""#);
        svg.text(x(*t), h - 10.0, &short_eur(*t), Anchor::Middle, "tick");
    }
    x
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

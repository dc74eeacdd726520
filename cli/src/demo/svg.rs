//! Hand-built inline SVG: a small writer, axis ticks, money labels and the squarified treemap layout. Every data
//! mark carries `data-mark` (the page's render check counts them) and a `<title>` (the browser's tooltip).

use std::fmt::Write as _;

/// An SVG document being written, scaled to its container by its `viewBox`.
pub struct Svg {
    out: String,
}

/// Text placement.
#[derive(Clone, Copy)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn attr(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }
}

impl Svg {
    pub fn new(chart: &str, width: f64, height: f64, label: &str) -> Svg {
        let mut out = String::with_capacity(16 << 10);
        let _ = write!(
            out,
            r#"<svg class="chart" data-chart="{chart}" viewBox="0 0 {width} {height}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
            esc(label)
        );
        Svg { out }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, extra: &str, tip: Option<&str>) {
        let _ = write!(
            self.out,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{fill}" {extra}"#,
            w.max(0.0),
            h.max(0.0)
        );
        self.close("rect", tip);
    }

    pub fn circle(&mut self, cx: f64, cy: f64, r: f64, style: &str, tip: Option<&str>) {
        let _ = write!(self.out, r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="{r:.1}" {style}"#);
        self.close("circle", tip);
    }

    pub fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, style: &str) {
        let _ = write!(self.out, r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" {style}/>"#);
    }

    /// A polyline through the points.
    pub fn polyline(&mut self, points: &[(f64, f64)], style: &str) {
        let pts: Vec<String> = points.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = write!(self.out, r#"<polyline points="{}" fill="none" {style}/>"#, pts.join(" "));
    }

    pub fn path(&mut self, d: &str, style: &str) {
        let _ = write!(self.out, r#"<path d="{d}" {style}/>"#);
    }

    pub fn text(&mut self, x: f64, y: f64, text: &str, anchor: Anchor, class: &str) {
        let _ = write!(
            self.out,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{}" class="{class}">{}</text>"#,
            anchor.attr(),
            esc(text)
        );
    }

    fn close(&mut self, element: &str, tip: Option<&str>) {
        match tip {
            Some(t) => {
                let _ = write!(self.out, r#" data-mark="1"><title>{}</title></{element}>"#, esc(t));
            }
            None => self.out.push_str("/>"),
        }
    }

    pub fn finish(mut self) -> String {
        self.out.push_str("</svg>");
        self.out
    }
}

/// XML-escapes text and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Round tick values from 0 to at least `max`, about `n` of them.
pub fn ticks(max: f64, n: usize) -> Vec<f64> {
    let max = if max > 0.0 { max } else { 1.0 };
    let raw = max / n.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = match raw / magnitude {
        r if r <= 1.0 => 1.0,
        r if r <= 2.0 => 2.0,
        r if r <= 2.5 => 2.5,
        r if r <= 5.0 => 5.0,
        _ => 10.0,
    } * magnitude;
    let mut out = vec![0.0];
    while *out.last().expect("not empty") < max - 1e-9 {
        out.push(out.len() as f64 * step);
    }
    out
}

/// `€1.23M`, `€456k`, `€789`
pub fn short_eur(v: f64) -> String {
    let (sign, a) = if v < 0.0 { ("-", -v) } else { ("", v) };
    let body = if a >= 1e6 {
        format!("{:.2}M", a / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", a / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", a / 1e3)
    } else {
        format!("{a:.0}")
    };
    format!("{sign}€{body}")
}

/// A rectangle of a layout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// Squarified treemap (Bruls, Huizing, van Wijk): `values` sorted largest first and positive, laid out in
/// `area`; one rectangle per value, in the same order, areas proportional to the values.
pub fn squarify(values: &[f64], area: Rect) -> Vec<Rect> {
    let total: f64 = values.iter().sum();
    if total <= 0.0 {
        return values.iter().map(|_| Rect { w: 0.0, h: 0.0, ..area }).collect();
    }
    let scale = area.w * area.h / total;
    let sizes: Vec<f64> = values.iter().map(|v| v * scale).collect();
    let worst = |row: &[f64], side: f64| {
        let s: f64 = row.iter().sum();
        let max = row.iter().cloned().fold(f64::MIN, f64::max);
        let min = row.iter().cloned().fold(f64::MAX, f64::min);
        (side * side * max / (s * s)).max(s * s / (side * side * min))
    };
    let mut out = Vec::with_capacity(values.len());
    let mut free = area;
    let mut i = 0;
    while i < sizes.len() {
        let side = free.w.min(free.h);
        let mut j = i + 1;
        while j < sizes.len() && worst(&sizes[i..=j], side) <= worst(&sizes[i..j], side) {
            j += 1;
        }
        let row = &sizes[i..j];
        let s: f64 = row.iter().sum();
        if free.w >= free.h {
            let cw = if free.h > 0.0 { s / free.h } else { 0.0 };
            let mut y = free.y;
            for a in row {
                let h = if cw > 0.0 { a / cw } else { 0.0 };
                out.push(Rect { x: free.x, y, w: cw, h });
                y += h;
            }
            free.x += cw;
            free.w -= cw;
        } else {
            let rh = if free.w > 0.0 { s / free.w } else { 0.0 };
            let mut x = free.x;
            for a in row {
                let w = if rh > 0.0 { a / rh } else { 0.0 };
                out.push(Rect { x, y: free.y, w, h: rh });
                x += w;
            }
            free.y += rh;
            free.h -= rh;
        }
        i = j;
    }
    out
}

/// Least squares line through the points: (slope, intercept, R²).
pub fn linear_fit(points: &[(f64, f64)]) -> (f64, f64, f64) {
    let n = points.len() as f64;
    if points.len() < 2 {
        return (0.0, points.first().map_or(0.0, |p| p.1), 1.0);
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let intercept = my - slope * mx;
    let ss_tot: f64 = points.iter().map(|p| (p.1 - my).powi(2)).sum();
    let ss_res: f64 = points.iter().map(|p| (p.1 - (slope * p.0 + intercept)).powi(2)).sum();
    let r2 = if ss_tot > 0.0 { 1.0 - ss_res / ss_tot } else { 1.0 };
    (slope, intercept, r2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn treemap_areas_are_proportional_and_inside() {
        let values = [6.0, 6.0, 4.0, 3.0, 2.0, 2.0, 1.0];
        let area = Rect { x: 10.0, y: 20.0, w: 600.0, h: 400.0 };
        let rects = squarify(&values, area);
        let total: f64 = values.iter().sum();
        for (v, r) in values.iter().zip(&rects) {
            assert!((r.w * r.h - v / total * 240_000.0).abs() < 1e-6, "{r:?}");
            assert!(r.x >= 10.0 - 1e-9 && r.y >= 20.0 - 1e-9);
            assert!(r.x + r.w <= 610.0 + 1e-6 && r.y + r.h <= 420.0 + 1e-6);
        }
    }

    #[test]
    fn a_perfect_line_fits_with_r2_one() {
        let (slope, intercept, r2) = linear_fit(&[(1.0, 3.0), (2.0, 5.0), (3.0, 7.0)]);
        assert!((slope - 2.0).abs() < 1e-12 && (intercept - 1.0).abs() < 1e-12 && (r2 - 1.0).abs() < 1e-12);
        let (_, _, r2) = linear_fit(&[(1.0, 1.0), (2.0, 3.0), (3.0, 2.0)]);
        assert!((r2 - 0.25).abs() < 1e-12, "{r2}");
    }

    #[test]
    fn ticks_are_round_and_cover_the_max() {
        assert_eq!(ticks(87.0, 5), [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(short_eur(1_234_567.0), "€1.23M");
        assert_eq!(short_eur(45_600.0), "€46k");
        assert_eq!(esc("Côtes <du> \"Rhône\" & co"), "Côtes &lt;du&gt; &quot;Rhône&quot; &amp; co");
    }
}

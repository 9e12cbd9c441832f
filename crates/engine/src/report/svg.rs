//! Inline SVG charts drawn in Rust: line/dot charts over time, vertical bars,
//! stacked horizontal bars and log-scale histograms. Every chart is an
//! `<svg class="chart">` with `data-points` (how many data points it drew), so
//! tests can check that a chart has data without rendering it.
//!
//! Charts are built as strings and inserted into `report.html` unescaped
//! (`PreEscaped` in html.rs), so this module escapes its own text: every id,
//! title, axis label, legend, bar and segment name goes through [`esc`] (they
//! can hold step names, error classes and transaction kinds); the rest is
//! numbers and `PALETTE` colours.

use std::fmt::Write;

use super::fmt::{esc, num};

pub const W: f64 = 580.0;
pub const H: f64 = 240.0;
const ML: f64 = 58.0;
const MR: f64 = 14.0;
const MT: f64 = 30.0;
const MB: f64 = 40.0;

/// A colour-blind-friendly palette (Okabe–Ito, then greys).
pub const PALETTE: [&str; 10] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
    "#7f7f7f", "#bcbd22",
];

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Line,
    Dashed,
    Dots,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub color: String,
    pub style: Style,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(name: &str, color: &str, style: Style, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.to_string(),
            color: color.to_string(),
            style,
            points: points
                .into_iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .collect(),
        }
    }
}

/// A round step for about `n` ticks up to `max`.
fn nice_step(max: f64, n: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / n;
    let p = 10f64.powf(raw.log10().floor());
    let f = raw / p;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * p
}

fn open(out: &mut String, id: &str, title: &str, points: usize, height: f64) {
    let _ = write!(
        out,
        r##"<svg class="chart" id="{id}" data-points="{points}" viewBox="0 0 {W} {height}" width="{W}" height="{height}" role="img" aria-label="{t}"><title>{t}</title><rect class="bg" x="0" y="0" width="{W}" height="{height}" fill="#ffffff"/><text class="ctitle" x="{ML}" y="18" font-size="13" font-weight="600" fill="#222">{t}</text>"##,
        id = esc(id),
        t = esc(title),
    );
}

fn empty_note(out: &mut String, msg: &str, height: f64) {
    let _ = write!(
        out,
        r##"<text x="{}" y="{}" font-size="12" fill="#888" text-anchor="middle">{}</text>"##,
        W / 2.0,
        height / 2.0,
        esc(msg)
    );
}

/// A chart of series over a shared numeric x axis. `hline` draws a labelled reference line.
pub fn line_chart(
    id: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    hline: Option<(f64, &str)>,
) -> String {
    let n: usize = series.iter().map(|s| s.points.len()).sum();
    let mut o = String::new();
    open(&mut o, id, title, n, H);
    if n == 0 {
        empty_note(&mut o, "no data", H);
        o.push_str("</svg>");
        return o;
    }
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
    for p in all {
        x0 = x0.min(p.0);
        x1 = x1.max(p.0);
        y1 = y1.max(p.1);
    }
    if let Some((v, _)) = hline {
        y1 = y1.max(v);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let ystep = nice_step(y1 * 1.05, 4.0);
    let ymax = (y1 * 1.05 / ystep).ceil().max(1.0) * ystep;
    let (pw, ph) = (W - ML - MR, H - MT - MB);
    let sx = |x: f64| ML + (x - x0) / (x1 - x0) * pw;
    let sy = |y: f64| MT + ph - y / ymax * ph;
    axes(&mut o, x0, x1, ymax, ystep, x_label, y_label, H);
    if let Some((v, label)) = hline {
        let _ = write!(
            o,
            r##"<line x1="{ML}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#c00" stroke-width="1" stroke-dasharray="4 3"/><text x="{}" y="{:.1}" font-size="10" fill="#c00" text-anchor="end">{}</text>"##,
            W - MR,
            W - MR - 2.0,
            sy(v) - 3.0,
            esc(label),
            y = sy(v)
        );
    }
    for s in series {
        if s.points.is_empty() {
            continue;
        }
        match s.style {
            Style::Dots => {
                for p in &s.points {
                    let _ = write!(
                        o,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="3.2" fill="{}" fill-opacity="0.85"/>"#,
                        sx(p.0),
                        sy(p.1),
                        s.color
                    );
                }
            }
            Style::Line | Style::Dashed => {
                let pts: Vec<String> = s
                    .points
                    .iter()
                    .map(|p| format!("{:.1},{:.1}", sx(p.0), sy(p.1)))
                    .collect();
                let dash = if s.style == Style::Dashed {
                    r#" stroke-dasharray="6 4""#
                } else {
                    ""
                };
                let _ = write!(
                    o,
                    r#"<polyline class="series" points="{}" fill="none" stroke="{}" stroke-width="2.2" stroke-linejoin="round"{dash}/>"#,
                    pts.join(" "),
                    s.color
                );
            }
        }
    }
    legend(
        &mut o,
        &series
            .iter()
            .map(|s| (s.name.as_str(), s.color.as_str()))
            .collect::<Vec<_>>(),
    );
    o.push_str("</svg>");
    o
}

/// Horizontal grid lines with their labels, every `ystep` up to `ymax`, in a
/// plot area `pw` × `ph` at the standard margins.
fn y_grid(o: &mut String, ymax: f64, ystep: f64, pw: f64, ph: f64) {
    let mut y = 0.0;
    while y <= ymax + ystep * 0.01 {
        let py = MT + ph - y / ymax * ph;
        let _ = write!(
            o,
            r##"<line x1="{ML}" x2="{:.1}" y1="{py:.1}" y2="{py:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#555" text-anchor="end">{}</text>"##,
            ML + pw,
            ML - 4.0,
            py + 3.0,
            num(y)
        );
        y += ystep;
    }
}

#[allow(clippy::too_many_arguments)]
fn axes(
    o: &mut String,
    x0: f64,
    x1: f64,
    ymax: f64,
    ystep: f64,
    x_label: &str,
    y_label: &str,
    height: f64,
) {
    let (pw, ph) = (W - ML - MR, height - MT - MB);
    y_grid(o, ymax, ystep, pw, ph);
    let xstep = nice_step(x1 - x0, 6.0);
    let mut x = (x0 / xstep).ceil() * xstep;
    while x <= x1 + xstep * 0.01 {
        let px = ML + (x - x0) / (x1 - x0) * pw;
        let _ = write!(
            o,
            r##"<line x1="{px:.1}" x2="{px:.1}" y1="{:.1}" y2="{:.1}" stroke="#999"/><text x="{px:.1}" y="{:.1}" font-size="10" fill="#555" text-anchor="middle">{}</text>"##,
            MT + ph,
            MT + ph + 4.0,
            MT + ph + 15.0,
            num(x)
        );
        x += xstep;
    }
    let _ = write!(
        o,
        r##"<line x1="{ML}" x2="{ML}" y1="{MT}" y2="{:.1}" stroke="#999"/><line x1="{ML}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#999"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#444" text-anchor="middle">{}</text><text x="12" y="{:.1}" font-size="11" fill="#444" text-anchor="middle" transform="rotate(-90 12 {:.1})">{}</text>"##,
        MT + ph,
        ML + pw,
        MT + ph,
        MT + ph,
        ML + pw / 2.0,
        height - 8.0,
        esc(x_label),
        MT + ph / 2.0,
        MT + ph / 2.0,
        esc(y_label)
    );
}

fn legend(o: &mut String, items: &[(&str, &str)]) {
    let mut x = W - MR;
    // Right-aligned, laid out from the right edge.
    let mut parts = Vec::new();
    for (name, color) in items.iter().rev() {
        let w = 16.0 + name.chars().count() as f64 * 6.2;
        x -= w;
        parts.push(format!(
            r##"<rect x="{x:.1}" y="9" width="10" height="10" fill="{color}"/><text x="{:.1}" y="18" font-size="11" fill="#333">{}</text>"##,
            x + 13.0,
            esc(name)
        ));
        x -= 8.0;
    }
    o.push_str(r#"<g class="legend">"#);
    for p in parts {
        o.push_str(&p);
    }
    o.push_str("</g>");
}

/// Vertical bars with a label under each.
pub fn bar_chart(
    id: &str,
    title: &str,
    y_label: &str,
    bars: &[(String, f64)],
    color: &str,
) -> String {
    let mut o = String::new();
    open(&mut o, id, title, bars.len(), H);
    if bars.is_empty() {
        empty_note(&mut o, "no data", H);
        o.push_str("</svg>");
        return o;
    }
    let y1 = bars.iter().map(|b| b.1).fold(0.0, f64::max);
    let ystep = nice_step(y1 * 1.05, 4.0);
    let ymax = (y1 * 1.05 / ystep).ceil().max(1.0) * ystep;
    let (pw, ph) = (W - ML - MR, H - MT - MB);
    y_grid(&mut o, ymax, ystep, pw, ph);
    let slot = pw / bars.len() as f64;
    let bw = (slot * 0.7).max(1.0);
    let label_every = (bars.len() / 16).max(1);
    for (i, (label, v)) in bars.iter().enumerate() {
        let h = v / ymax * ph;
        let x = ML + i as f64 * slot + (slot - bw) / 2.0;
        let _ = write!(
            o,
            r#"<rect class="bar" x="{x:.1}" y="{:.1}" width="{bw:.1}" height="{h:.1}" fill="{color}"><title>{}: {}</title></rect>"#,
            MT + ph - h,
            esc(label),
            num(*v)
        );
        if i % label_every == 0 {
            let _ = write!(
                o,
                r##"<text x="{:.1}" y="{:.1}" font-size="10" fill="#555" text-anchor="middle">{}</text>"##,
                x + bw / 2.0,
                MT + ph + 14.0,
                esc(label)
            );
        }
    }
    let _ = write!(
        o,
        r##"<line x1="{ML}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#999"/><text x="12" y="{:.1}" font-size="11" fill="#444" text-anchor="middle" transform="rotate(-90 12 {:.1})">{}</text>"##,
        ML + pw,
        MT + ph,
        MT + ph,
        MT + ph / 2.0,
        MT + ph / 2.0,
        esc(y_label)
    );
    o.push_str("</svg>");
    o
}

/// Horizontal stacked bars: each row is a label and its segments (name, ms).
pub fn stacked_hbars(id: &str, title: &str, rows: &[(String, Vec<(String, f64)>)]) -> String {
    let height = 70.0 + rows.len() as f64 * 46.0 + 40.0;
    let n: usize = rows.iter().map(|r| r.1.len()).sum();
    let mut o = String::new();
    open(&mut o, id, title, n, height);
    let total_max = rows
        .iter()
        .map(|r| r.1.iter().map(|s| s.1).sum::<f64>())
        .fold(0.0, f64::max)
        .max(1e-9);
    let mut names: Vec<&str> = Vec::new();
    for r in rows {
        for s in &r.1 {
            if !names.contains(&s.0.as_str()) {
                names.push(&s.0);
            }
        }
    }
    let color =
        |name: &str| PALETTE[names.iter().position(|n| *n == name).unwrap_or(0) % PALETTE.len()];
    let (x0, pw) = (110.0, W - 110.0 - MR);
    for (i, (label, segs)) in rows.iter().enumerate() {
        let y = 36.0 + i as f64 * 46.0;
        let _ = write!(
            o,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#333" text-anchor="end">{}</text>"##,
            x0 - 6.0,
            y + 18.0,
            esc(label)
        );
        let mut x = x0;
        for (name, v) in segs {
            let w = v / total_max * pw;
            let _ = write!(
                o,
                r##"<rect class="seg" x="{x:.1}" y="{y:.1}" width="{w:.2}" height="28" fill="{}" stroke="#fff" stroke-width="0.5"><title>{}: {}</title></rect>"##,
                color(name),
                esc(name),
                super::fmt::ms(*v)
            );
            if w > 46.0 {
                let _ = write!(
                    o,
                    r##"<text x="{:.1}" y="{:.1}" font-size="9" fill="#fff" text-anchor="middle">{}</text>"##,
                    x + w / 2.0,
                    y + 18.0,
                    esc(name)
                );
            }
            x += w;
        }
        let total: f64 = segs.iter().map(|s| s.1).sum();
        let _ = write!(
            o,
            r##"<text x="{:.1}" y="{:.1}" font-size="10" fill="#333">{}</text>"##,
            (x + 4.0).min(W - 50.0),
            y + 40.0,
            super::fmt::ms(total)
        );
    }
    // Legend in rows under the bars.
    let (mut lx, mut ly) = (x0, 36.0 + rows.len() as f64 * 46.0 + 12.0);
    for name in &names {
        let w = 18.0 + name.chars().count() as f64 * 6.2;
        if lx + w > W - MR {
            lx = x0;
            ly += 16.0;
        }
        let _ = write!(
            o,
            r##"<rect x="{lx:.1}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#333">{}</text>"##,
            ly - 9.0,
            color(name),
            lx + 13.0,
            ly,
            esc(name)
        );
        lx += w + 6.0;
    }
    o.push_str("</svg>");
    o
}

/// A histogram of latencies on a log x axis: bins are (low ms, high ms, count).
pub fn histogram(id: &str, title: &str, bins: &[(f64, f64, u64)], color: &str) -> String {
    let (w, h) = (280.0, 150.0);
    let n: u64 = bins.iter().map(|b| b.2).sum();
    let mut o = String::new();
    let _ = write!(
        o,
        r##"<svg class="chart hist" id="{id}" data-points="{n}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}"><title>{t}</title><rect class="bg" x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/><text x="8" y="15" font-size="12" font-weight="600" fill="#222">{t}</text>"##,
        id = esc(id),
        t = esc(title)
    );
    if bins.is_empty() || n == 0 {
        let _ = write!(
            o,
            r##"<text x="{}" y="{}" font-size="11" fill="#888" text-anchor="middle">no samples</text></svg>"##,
            w / 2.0,
            h / 2.0
        );
        return o;
    }
    let lo = bins.first().map_or(1.0, |b| b.0).max(1e-3);
    let hi = bins.last().map_or(2.0, |b| b.1).max(lo * 1.01);
    let (x0, pw, y0, ph) = (10.0, w - 20.0, 22.0, h - 52.0);
    let sx = |v: f64| x0 + (v.max(lo).ln() - lo.ln()) / (hi.ln() - lo.ln()) * pw;
    let cmax = bins.iter().map(|b| b.2).max().unwrap_or(1).max(1) as f64;
    for b in bins {
        let bh = b.2 as f64 / cmax * ph;
        let (a, z) = (sx(b.0), sx(b.1));
        let _ = write!(
            o,
            r#"<rect class="bar" x="{a:.1}" y="{:.1}" width="{:.2}" height="{bh:.1}" fill="{color}"><title>{}–{}: {}</title></rect>"#,
            y0 + ph - bh,
            (z - a - 0.5).max(0.5),
            super::fmt::ms(b.0),
            super::fmt::ms(b.1),
            b.2
        );
    }
    let _ = write!(
        o,
        r##"<line x1="{x0}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#999"/><text x="{x0}" y="{:.1}" font-size="10" fill="#555">{}</text><text x="{:.1}" y="{:.1}" font-size="10" fill="#555" text-anchor="end">{}</text><text x="{:.1}" y="{:.1}" font-size="10" fill="#555" text-anchor="middle">{} samples, log scale</text></svg>"##,
        x0 + pw,
        y0 + ph,
        y0 + ph,
        y0 + ph + 13.0,
        super::fmt::ms(lo),
        x0 + pw,
        y0 + ph + 13.0,
        super::fmt::ms(hi),
        w / 2.0,
        h - 6.0,
        n
    );
    o
}

/// Log-spaced bins of an HDR histogram in microseconds, as (low ms, high ms, count).
pub fn hdr_bins(h: &hdrhistogram::Histogram<u64>, n: usize) -> Vec<(f64, f64, u64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let lo = (h.min().max(1)) as f64;
    let hi = (h.max().max(h.min() + 1)) as f64 * 1.001;
    let ratio = (hi / lo).powf(1.0 / n as f64);
    let mut edges: Vec<f64> = (0..=n).map(|i| lo * ratio.powi(i as i32)).collect();
    if let Some(l) = edges.last_mut() {
        *l = hi;
    }
    let mut counts = vec![0u64; n];
    for v in h.iter_recorded() {
        let x = v.value_iterated_to() as f64;
        let i = edges
            .iter()
            .position(|e| *e > x)
            .map_or(n - 1, |p| p.saturating_sub(1))
            .min(n - 1);
        counts[i] += v.count_at_value();
    }
    (0..n)
        .map(|i| (edges[i] / 1000.0, edges[i + 1] / 1000.0, counts[i]))
        .collect()
}

//! Inline SVG charts drawn in Rust: line/dot charts over time, vertical bars,
//! stacked horizontal bars and log-scale histograms. Every chart is an
//! `<svg class="chart">` with `data-points` (how many data points it drew), so
//! tests can check that a chart has data without rendering it.
//!
//! Charts are built with [`maud::html!`] and returned as [`Markup`], which
//! escapes every interpolated value by default: ids, titles, axis labels,
//! legend, bar and segment names can hold step names, error classes and
//! transaction kinds, and nothing here escapes by hand. No `PreEscaped` is
//! used; empty SVG elements are written as `<path …></path>` (valid inline
//! SVG in HTML5).

use maud::{Markup, html};

use super::fmt::num;

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

/// One decimal, as coordinates are written.
fn f1(v: f64) -> String {
    format!("{v:.1}")
}

/// Two decimals.
fn f2(v: f64) -> String {
    format!("{v:.2}")
}

/// A plain number (`58`, `290`, `2.5`), as `{}` formats an f64.
fn n(v: f64) -> String {
    format!("{v}")
}

/// The `<svg class="chart">` frame: background, title and `body`.
fn frame(id: &str, title: &str, points: usize, height: f64, body: Markup) -> Markup {
    html! {
        svg class="chart" id=(id) data-points=(points) viewBox=(format!("0 0 {W} {height}")) width=(n(W)) height=(n(height)) role="img" aria-label=(title) {
            title { (title) }
            rect class="bg" x="0" y="0" width=(n(W)) height=(n(height)) fill="#ffffff" {}
            text class="ctitle" x=(n(ML)) y="18" font-size="13" font-weight="600" fill="#222" { (title) }
            (body)
        }
    }
}

fn empty_note(msg: &str, height: f64) -> Markup {
    html! {
        text x=(n(W / 2.0)) y=(n(height / 2.0)) font-size="12" fill="#888" text-anchor="middle" { (msg) }
    }
}

/// A chart of series over a shared numeric x axis. `hline` draws a labelled reference line.
pub fn line_chart(
    id: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    hline: Option<(f64, &str)>,
) -> Markup {
    let n_pts: usize = series.iter().map(|s| s.points.len()).sum();
    if n_pts == 0 {
        return frame(id, title, 0, H, empty_note("no data", H));
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
    let body = html! {
        (axes(x0, x1, ymax, ystep, x_label, y_label, H))
        @if let Some((v, label)) = hline {
            line x1=(n(ML)) x2=(n(W - MR)) y1=(f1(sy(v))) y2=(f1(sy(v))) stroke="#c00" stroke-width="1" stroke-dasharray="4 3" {}
            text x=(n(W - MR - 2.0)) y=(f1(sy(v) - 3.0)) font-size="10" fill="#c00" text-anchor="end" { (label) }
        }
        @for s in series.iter().filter(|s| !s.points.is_empty()) {
            @match s.style {
                Style::Dots => {
                    @for p in &s.points {
                        circle cx=(f1(sx(p.0))) cy=(f1(sy(p.1))) r="3.2" fill=(s.color) fill-opacity="0.85" {}
                    }
                }
                Style::Line | Style::Dashed => {
                    polyline class="series"
                        points=(s.points.iter().map(|p| format!("{:.1},{:.1}", sx(p.0), sy(p.1))).collect::<Vec<_>>().join(" "))
                        fill="none" stroke=(s.color) stroke-width="2.2" stroke-linejoin="round"
                        stroke-dasharray=[(s.style == Style::Dashed).then_some("6 4")] {}
                }
            }
        }
        (legend(&series.iter().map(|s| (s.name.as_str(), s.color.as_str())).collect::<Vec<_>>()))
    };
    frame(id, title, n_pts, H, body)
}

/// Horizontal grid lines with their labels, every `ystep` up to `ymax`, in a
/// plot area `pw` × `ph` at the standard margins.
fn y_grid(ymax: f64, ystep: f64, pw: f64, ph: f64) -> Markup {
    let mut ticks = Vec::new();
    let mut y = 0.0;
    while y <= ymax + ystep * 0.01 {
        ticks.push((y, MT + ph - y / ymax * ph));
        y += ystep;
    }
    html! {
        @for (y, py) in ticks {
            line x1=(n(ML)) x2=(f1(ML + pw)) y1=(f1(py)) y2=(f1(py)) stroke="#e4e4e4" {}
            text x=(f1(ML - 4.0)) y=(f1(py + 3.0)) font-size="10" fill="#555" text-anchor="end" { (num(y)) }
        }
    }
}

/// The y label, written vertically at the left edge.
fn y_label_text(y_label: &str, ph: f64) -> Markup {
    html! {
        text x="12" y=(f1(MT + ph / 2.0)) font-size="11" fill="#444" text-anchor="middle" transform=(format!("rotate(-90 12 {:.1})", MT + ph / 2.0)) { (y_label) }
    }
}

#[allow(clippy::too_many_arguments)]
fn axes(
    x0: f64,
    x1: f64,
    ymax: f64,
    ystep: f64,
    x_label: &str,
    y_label: &str,
    height: f64,
) -> Markup {
    let (pw, ph) = (W - ML - MR, height - MT - MB);
    let xstep = nice_step(x1 - x0, 6.0);
    let mut ticks = Vec::new();
    let mut x = (x0 / xstep).ceil() * xstep;
    while x <= x1 + xstep * 0.01 {
        ticks.push((x, ML + (x - x0) / (x1 - x0) * pw));
        x += xstep;
    }
    html! {
        (y_grid(ymax, ystep, pw, ph))
        @for (x, px) in ticks {
            line x1=(f1(px)) x2=(f1(px)) y1=(f1(MT + ph)) y2=(f1(MT + ph + 4.0)) stroke="#999" {}
            text x=(f1(px)) y=(f1(MT + ph + 15.0)) font-size="10" fill="#555" text-anchor="middle" { (num(x)) }
        }
        line x1=(n(ML)) x2=(n(ML)) y1=(n(MT)) y2=(f1(MT + ph)) stroke="#999" {}
        line x1=(n(ML)) x2=(f1(ML + pw)) y1=(f1(MT + ph)) y2=(f1(MT + ph)) stroke="#999" {}
        text x=(f1(ML + pw / 2.0)) y=(f1(height - 8.0)) font-size="11" fill="#444" text-anchor="middle" { (x_label) }
        (y_label_text(y_label, ph))
    }
}

fn legend(items: &[(&str, &str)]) -> Markup {
    // Right-aligned, laid out from the right edge.
    let mut x = W - MR;
    let mut parts = Vec::new();
    for (name, color) in items.iter().rev() {
        let w = 16.0 + name.chars().count() as f64 * 6.2;
        x -= w;
        parts.push((x, *name, *color));
        x -= 8.0;
    }
    html! {
        g class="legend" {
            @for (x, name, color) in parts {
                rect x=(f1(x)) y="9" width="10" height="10" fill=(color) {}
                text x=(f1(x + 13.0)) y="18" font-size="11" fill="#333" { (name) }
            }
        }
    }
}

/// Vertical bars with a label under each.
pub fn bar_chart(
    id: &str,
    title: &str,
    y_label: &str,
    bars: &[(String, f64)],
    color: &str,
) -> Markup {
    if bars.is_empty() {
        return frame(id, title, 0, H, empty_note("no data", H));
    }
    let y1 = bars.iter().map(|b| b.1).fold(0.0, f64::max);
    let ystep = nice_step(y1 * 1.05, 4.0);
    let ymax = (y1 * 1.05 / ystep).ceil().max(1.0) * ystep;
    let (pw, ph) = (W - ML - MR, H - MT - MB);
    let slot = pw / bars.len() as f64;
    let bw = (slot * 0.7).max(1.0);
    let label_every = (bars.len() / 16).max(1);
    let body = html! {
        (y_grid(ymax, ystep, pw, ph))
        @for (i, (label, v)) in bars.iter().enumerate() {
            @let h = v / ymax * ph;
            @let x = ML + i as f64 * slot + (slot - bw) / 2.0;
            rect class="bar" x=(f1(x)) y=(f1(MT + ph - h)) width=(f1(bw)) height=(f1(h)) fill=(color) {
                title { (label) ": " (num(*v)) }
            }
            @if i % label_every == 0 {
                text x=(f1(x + bw / 2.0)) y=(f1(MT + ph + 14.0)) font-size="10" fill="#555" text-anchor="middle" { (label) }
            }
        }
        line x1=(n(ML)) x2=(f1(ML + pw)) y1=(f1(MT + ph)) y2=(f1(MT + ph)) stroke="#999" {}
        (y_label_text(y_label, ph))
    };
    frame(id, title, bars.len(), H, body)
}

/// Horizontal stacked bars: each row is a label and its segments (name, ms).
pub fn stacked_hbars(id: &str, title: &str, rows: &[(String, Vec<(String, f64)>)]) -> Markup {
    let height = 70.0 + rows.len() as f64 * 46.0 + 40.0;
    let n_segs: usize = rows.iter().map(|r| r.1.len()).sum();
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
    // Segments laid out left to right: (row y, x, width, name, ms).
    let mut bars = Vec::new();
    for (i, (label, segs)) in rows.iter().enumerate() {
        let y = 36.0 + i as f64 * 46.0;
        let mut x = x0;
        let mut placed = Vec::new();
        for (name, v) in segs {
            let w = v / total_max * pw;
            placed.push((x, w, name.as_str(), *v));
            x += w;
        }
        let total: f64 = segs.iter().map(|s| s.1).sum();
        bars.push((y, label.as_str(), placed, x, total));
    }
    // Legend in rows under the bars.
    let mut keys = Vec::new();
    let (mut lx, mut ly) = (x0, 36.0 + rows.len() as f64 * 46.0 + 12.0);
    for name in &names {
        let w = 18.0 + name.chars().count() as f64 * 6.2;
        if lx + w > W - MR {
            lx = x0;
            ly += 16.0;
        }
        keys.push((lx, ly, *name));
        lx += w + 6.0;
    }
    let body = html! {
        @for (y, label, placed, end, total) in &bars {
            text x=(f1(x0 - 6.0)) y=(f1(y + 18.0)) font-size="11" fill="#333" text-anchor="end" { (label) }
            @for (x, w, name, v) in placed {
                rect class="seg" x=(f1(*x)) y=(f1(*y)) width=(f2(*w)) height="28" fill=(color(name)) stroke="#fff" stroke-width="0.5" {
                    title { (name) ": " (super::fmt::ms(*v)) }
                }
                @if *w > 46.0 {
                    text x=(f1(x + w / 2.0)) y=(f1(y + 18.0)) font-size="9" fill="#fff" text-anchor="middle" { (name) }
                }
            }
            text x=(f1((end + 4.0).min(W - 50.0))) y=(f1(y + 40.0)) font-size="10" fill="#333" { (super::fmt::ms(*total)) }
        }
        @for (lx, ly, name) in keys {
            rect x=(f1(lx)) y=(f1(ly - 9.0)) width="10" height="10" fill=(color(name)) {}
            text x=(f1(lx + 13.0)) y=(f1(ly)) font-size="10" fill="#333" { (name) }
        }
    };
    frame(id, title, n_segs, height, body)
}

/// A histogram of latencies on a log x axis: bins are (low ms, high ms, count).
pub fn histogram(id: &str, title: &str, bins: &[(f64, f64, u64)], color: &str) -> Markup {
    let (w, h) = (280.0, 150.0);
    let count: u64 = bins.iter().map(|b| b.2).sum();
    let lo = bins.first().map_or(1.0, |b| b.0).max(1e-3);
    let hi = bins.last().map_or(2.0, |b| b.1).max(lo * 1.01);
    let (x0, pw, y0, ph) = (10.0, w - 20.0, 22.0, h - 52.0);
    let sx = |v: f64| x0 + (v.max(lo).ln() - lo.ln()) / (hi.ln() - lo.ln()) * pw;
    let cmax = bins.iter().map(|b| b.2).max().unwrap_or(1).max(1) as f64;
    html! {
        svg class="chart hist" id=(id) data-points=(count) viewBox=(format!("0 0 {w} {h}")) width=(n(w)) height=(n(h)) role="img" aria-label=(title) {
            title { (title) }
            rect class="bg" x="0" y="0" width=(n(w)) height=(n(h)) fill="#ffffff" {}
            text x="8" y="15" font-size="12" font-weight="600" fill="#222" { (title) }
            @if bins.is_empty() || count == 0 {
                text x=(n(w / 2.0)) y=(n(h / 2.0)) font-size="11" fill="#888" text-anchor="middle" { "no samples" }
            } @else {
                @for b in bins {
                    @let bh = b.2 as f64 / cmax * ph;
                    @let (a, z) = (sx(b.0), sx(b.1));
                    rect class="bar" x=(f1(a)) y=(f1(y0 + ph - bh)) width=(f2((z - a - 0.5).max(0.5))) height=(f1(bh)) fill=(color) {
                        title { (super::fmt::ms(b.0)) "–" (super::fmt::ms(b.1)) ": " (b.2) }
                    }
                }
                line x1=(n(x0)) x2=(f1(x0 + pw)) y1=(f1(y0 + ph)) y2=(f1(y0 + ph)) stroke="#999" {}
                text x=(n(x0)) y=(f1(y0 + ph + 13.0)) font-size="10" fill="#555" { (super::fmt::ms(lo)) }
                text x=(f1(x0 + pw)) y=(f1(y0 + ph + 13.0)) font-size="10" fill="#555" text-anchor="end" { (super::fmt::ms(hi)) }
                text x=(f1(w / 2.0)) y=(f1(h - 6.0)) font-size="10" fill="#555" text-anchor="middle" { (count) " samples, log scale" }
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_chart_text_is_escaped() {
        let m = r#"<script>x</script>"&"#;
        let e = "&lt;script&gt;x&lt;/script&gt;&quot;&amp;";
        let s = [Series::new(
            m,
            PALETTE[0],
            Style::Line,
            vec![(0.0, 1.0), (1.0, 2.0)],
        )];
        let charts = [
            line_chart(m, m, m, m, &s, Some((1.5, m))).into_string(),
            bar_chart(m, m, m, &[(m.to_string(), 3.0)], PALETTE[1]).into_string(),
            stacked_hbars(m, m, &[(m.to_string(), vec![(m.to_string(), 900.0)])]).into_string(),
            histogram(m, m, &[(1.0, 2.0, 5)], PALETTE[2]).into_string(),
        ];
        for c in &charts {
            assert!(!c.contains("<script>"), "{c}");
            assert!(c.contains(&format!("id=\"{e}\"")), "{c}");
            assert!(c.contains(&format!("<title>{e}</title>")), "{c}");
            assert!(c.starts_with("<svg class=\"chart"), "{c}");
            assert!(c.ends_with("</svg>"), "{c}");
        }
        // The legend of the line chart and the bar label carry the name as text.
        assert!(charts[0].contains("<g class=\"legend\">"), "{}", charts[0]);
        assert!(
            charts[0].contains(&format!(">{e}</text></g>")),
            "{}",
            charts[0]
        );
        assert!(
            charts[1].contains(&format!("<title>{e}: 3</title>")),
            "{}",
            charts[1]
        );
    }
}

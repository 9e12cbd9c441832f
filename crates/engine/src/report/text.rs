//! The end-of-run summary for a terminal, in k6's manner: the verdict and why,
//! every criterion and threshold with ✓/✗, its measured value and its limit,
//! the users and end-to-end latency, the flow's own counts per journey (each
//! over the journeys it names), the step table in the flow's order, the
//! bottleneck sentence and where the results are. `vana-load run` prints it
//! when a run ends and `vana-load report DIR` when it re-renders a directory;
//! the Markdown summary ([`super::markdown`]) shows the same content.
//!
//! Colour comes from crossterm's styling and only when asked for: the caller
//! decides (a terminal, no `NO_COLOR`), so piped output carries no escape codes.

use std::fmt::Write;

use crossterm::style::Stylize;

use super::checks::{Check, CheckKind, checks};
use super::data::RunData;
use super::fmt::{oms, users_sentence};
use crate::schema::Verdict;

/// The files of a results directory worth pointing at, in the order shown.
pub const RESULT_FILES: [&str; 8] = [
    "report.html",
    "summary.json",
    "junit.xml",
    "steps.csv",
    "timeseries.csv",
    "timeseries.jsonl",
    "events.jsonl",
    "histograms.hlog",
];

/// The files of [`RESULT_FILES`] that `d.dir` holds.
pub fn present_files(d: &RunData) -> Vec<&'static str> {
    RESULT_FILES
        .into_iter()
        .filter(|f| d.dir.join(f).is_file())
        .collect()
}

/// Applies a style only when colour is on.
struct Paint(bool);

impl Paint {
    fn mark(&self, pass: bool) -> String {
        match (pass, self.0) {
            (true, true) => "✓".green().to_string(),
            (false, true) => "✗".red().to_string(),
            (true, false) => "✓".into(),
            (false, false) => "✗".into(),
        }
    }

    fn verdict(&self, v: Verdict) -> String {
        let s = v.as_str().to_uppercase();
        if !self.0 {
            return s;
        }
        match v {
            Verdict::Pass => s.green().bold().to_string(),
            Verdict::Fail => s.red().bold().to_string(),
            Verdict::Inconclusive => s.yellow().bold().to_string(),
        }
    }

    fn head(&self, s: &str) -> String {
        if self.0 {
            s.bold().to_string()
        } else {
            s.to_string()
        }
    }
}

/// The shard this run was, or the shards it was merged from, each with its schedule lag.
fn render_shards(o: &mut String, d: &RunData, paint: &Paint) {
    if let Some(line) = super::shards::shard_sentence(d) {
        let _ = writeln!(o, "\n  {}  {line}", paint.head("SHARD"));
    }
    let Some(line) = super::shards::merged_sentence(d) else {
        return;
    };
    let _ = writeln!(o, "\n  {}  {line}", paint.head("SHARDS"));
    let rows = super::shards::rows(d);
    let mut w = super::shards::HEADER.map(|h| h.chars().count());
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: [&str; 8]| -> String {
        let mut l = String::from("   ");
        for (c, wi) in cells.iter().zip(w) {
            let _ = write!(l, " {c:<wi$} ");
        }
        l.trim_end().to_string()
    };
    let _ = writeln!(o, "{}", line(super::shards::HEADER));
    for r in &rows {
        let _ = writeln!(o, "{}", line(r.each_ref().map(String::as_str)));
    }
}

/// Renders the summary; `color` adds ANSI styles (for a terminal only).
pub fn render(d: &RunData, color: bool) -> String {
    let paint = Paint(color);
    let s = &d.summary;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "\nvana-load {}  profile {} · target {} · run {}",
        paint.verdict(s.verdict),
        d.profile(),
        d.target(),
        d.run_id()
    );
    if let Some(scope) = d.partial_scope() {
        let _ = writeln!(o, "  scope: {scope}");
    }
    if let Some(why) = &s.verdict_reason {
        let _ = writeln!(o, "  why: {why}");
    }

    let all = checks(d);
    for (kind, title) in [
        (CheckKind::Criterion, "CRITERIA"),
        (CheckKind::Threshold, "THRESHOLDS"),
    ] {
        let list: Vec<&Check> = all.iter().filter(|c| c.kind == kind).collect();
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(o, "\n  {}", paint.head(title));
        let wn = list
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(0);
        let wm = list
            .iter()
            .map(|c| c.measured.chars().count())
            .max()
            .unwrap_or(0)
            .min(40);
        for c in list {
            let _ = write!(
                o,
                "    {} {:<wn$}  {:<wm$}  {} {}",
                paint.mark(c.pass),
                c.name,
                c.measured,
                c.limit_word(),
                c.limit
            );
            if let (false, Some(r)) = (c.pass, &c.reason) {
                let _ = write!(o, " — {r}");
            }
            o.push('\n');
        }
    }

    render_shards(&mut o, d, &paint);
    let _ = writeln!(o, "\n  {}  {}", paint.head("USERS"), users_sentence(s));
    let _ = writeln!(
        o,
        "  {}    p50 {}, p95 {}, p99 {}, max {} ({})",
        paint.head("E2E"),
        oms(s.e2e_ms.p50),
        oms(s.e2e_ms.p95),
        oms(s.e2e_ms.p99),
        oms(s.e2e_ms.max),
        s.e2e_population
    );
    for (name, c) in &s.counts {
        let _ = writeln!(o, "  {}  {}", paint.head("COUNT"), c.sentence(name));
    }

    let order = d.step_order();
    if !order.is_empty() {
        let rows: Vec<[String; 7]> = order
            .iter()
            .filter_map(|st| {
                let x = s.steps.get(st)?;
                Some([
                    st.clone(),
                    d.component_of(st).to_string(),
                    x.count.to_string(),
                    x.errors.to_string(),
                    oms(x.p50_ms),
                    oms(x.p95_ms),
                    oms(x.p99_ms),
                ])
            })
            .collect();
        let header = ["STEPS", "component", "count", "errors", "p50", "p95", "p99"];
        let mut w = header.map(|h| h.chars().count());
        for r in &rows {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let line = |cells: [&str; 7]| -> String {
            let mut l = String::from("  ");
            for (i, (c, wi)) in cells.iter().zip(w).enumerate() {
                let _ = if i < 2 {
                    write!(l, "{c:<wi$}  ")
                } else {
                    write!(l, "{c:>wi$}  ")
                };
            }
            l.trim_end().to_string()
        };
        let head = line(header);
        let rest = head.strip_prefix("  STEPS").unwrap_or(&head);
        let _ = writeln!(o, "\n  {}{rest}", paint.head("STEPS"));
        for r in &rows {
            let _ = writeln!(o, "{}", line(r.each_ref().map(String::as_str)));
        }
    }

    if let Some(b) = s.bottleneck.as_ref().and_then(|b| b.sentences.first()) {
        let _ = writeln!(o, "\n  {}  {b}", paint.head("BOTTLENECK"));
    }
    let failing = s.bottleneck.as_ref().and_then(|b| {
        b.sentences
            .iter()
            .skip(1)
            .find(|x| x.starts_with(super::analysis::FAILED_BY_COMPONENT))
    });
    if let Some(f) = failing {
        let _ = writeln!(o, "              {f}");
    }
    let _ = writeln!(o, "\n  {}  {}", paint.head("RESULTS"), d.dir.display());
    let files = present_files(d);
    if !files.is_empty() {
        let _ = writeln!(o, "    {}", files.join("  "));
    }
    o
}

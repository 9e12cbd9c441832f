//! The Markdown summary of a run, fit for a CI job summary
//! (`$GITHUB_STEP_SUMMARY`): the end-of-run summary of [`super::text`] —
//! verdict and why, every criterion and threshold with ✓/✗, its measured
//! value and its limit, end-to-end and per-step latency in the flow's step
//! order, the bottleneck, where the results are — plus the alerts that fired
//! and the RPC success rate, the load generator's machine (peak CPU and RSS),
//! the capacity sentences and the top errors.

use std::fmt::Write;

use super::Analysis;
use super::checks::{CheckKind, checks};
use super::data::RunData;
use super::fmt::{group, num, oms, secs, users_sentence};

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Renders the summary.
pub fn render(d: &RunData, a: &Analysis) -> String {
    let s = &d.summary;
    let mut o = String::new();
    let icon = match s.verdict {
        crate::schema::Verdict::Pass => "✅",
        crate::schema::Verdict::Fail => "❌",
        crate::schema::Verdict::Inconclusive => "⚠️",
    };
    let _ = writeln!(
        o,
        "## {icon} vana-load: {} — profile `{}`, target `{}`\n",
        s.verdict.as_str().to_uppercase(),
        d.profile(),
        cell(&d.target())
    );
    if let Some(scope) = d.partial_scope() {
        let _ = writeln!(o, "**Scope**: {}\n", cell(scope));
    }
    let _ = writeln!(o, "{}.\n", users_sentence(s));
    if let Some(why) = &s.verdict_reason {
        let _ = writeln!(
            o,
            "**{}**: {}\n",
            s.verdict.as_str().to_uppercase(),
            cell(why)
        );
    }
    let _ = writeln!(
        o,
        "E2E p95 {} over {}.\n",
        s.e2e_ms
            .p95
            .map_or("–".into(), |v| format!("{} ms", num(v))),
        s.e2e_population
    );
    for (name, c) in &s.counts {
        let _ = writeln!(o, "{}.\n", cell(&c.sentence(name)));
    }
    if let Some(line) = super::shards::shard_sentence(d) {
        let _ = writeln!(o, "{}.\n", cell(&line));
    }
    if let Some(line) = super::shards::merged_sentence(d) {
        let _ = writeln!(o, "Shards: {}.\n", cell(&line));
        let _ = writeln!(o, "| {} |", super::shards::HEADER.join(" | "));
        let _ = writeln!(o, "|{}", "---|".repeat(super::shards::HEADER.len()));
        for r in super::shards::rows(d) {
            let cells: Vec<String> = r.iter().map(|c| cell(c)).collect();
            let _ = writeln!(o, "| {} |", cells.join(" | "));
        }
        o.push('\n');
    }
    let all = checks(d);
    for (kind, head) in [
        (
            CheckKind::Criterion,
            "| criterion | target | actual | result |\n|---|---|---|---|\n",
        ),
        (
            CheckKind::Threshold,
            "\n| threshold | limit | measured | result |\n|---|---|---|---|\n",
        ),
    ] {
        let list: Vec<_> = all.iter().filter(|c| c.kind == kind).collect();
        if list.is_empty() {
            continue;
        }
        o.push_str(head);
        for c in list {
            let result = match (c.pass, &c.reason) {
                (true, _) => "✓ pass".to_string(),
                (false, None) => "✗ **fail**".to_string(),
                (false, Some(r)) => format!("✗ **fail**: {}", cell(r)),
            };
            let _ = writeln!(
                o,
                "| `{}` | {} | {} | {result} |",
                cell(&c.name),
                cell(&c.limit),
                cell(&c.measured)
            );
        }
    }
    alerts(&mut o, d);
    let _ = writeln!(
        o,
        "\n**E2E**: p50 {}, p95 {}, p99 {}, max {}\n",
        oms(s.e2e_ms.p50),
        oms(s.e2e_ms.p95),
        oms(s.e2e_ms.p99),
        oms(s.e2e_ms.max)
    );
    if let Some(sys) = d.system_stats() {
        let rss: Vec<String> = sys
            .processes
            .iter()
            .filter_map(|p| p.peak_rss_mb.map(|r| format!("{} {} MiB", p.name, num(r))))
            .collect();
        let _ = writeln!(
            o,
            "**Machine**: peak host CPU {} of {} cores{}; peak RSS {}.\n",
            sys.host
                .peak_pct
                .map_or("–".into(), |v| format!("{v:.0} %")),
            sys.cores,
            sys.limit.as_ref().map_or(String::new(), |l| format!(
                ", of which the run may use {}",
                l.describe()
            )),
            if rss.is_empty() {
                "–".to_string()
            } else {
                rss.join(", ")
            }
        );
    }
    o.push_str("| step | component | count | errors | p50 | p95 | p99 |\n|---|---|---:|---:|---:|---:|---:|\n");
    for st in d.step_order() {
        if let Some(x) = s.steps.get(&st) {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} |",
                st,
                d.component_of(&st),
                x.count,
                x.errors,
                oms(x.p50_ms),
                oms(x.p95_ms),
                oms(x.p99_ms)
            );
        }
    }
    o.push_str("\n### Bottleneck\n\n");
    for line in &a.bottleneck.sentences {
        let _ = writeln!(o, "- {line}");
    }
    o.push_str("\n### Capacity\n\n");
    for line in &a.capacity.sentences {
        let _ = writeln!(o, "- {line}");
    }
    let files = super::text::present_files(d);
    let _ = writeln!(
        o,
        "\n**Results**: `{}`{}{}",
        cell(&d.dir.display().to_string()),
        if files.is_empty() { "" } else { " — " },
        files
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !s.errors.is_empty() {
        o.push_str("\n### Top errors\n\n| class | count |\n|---|---:|\n");
        let mut e: Vec<_> = s.errors.iter().collect();
        e.sort_by_key(|x| std::cmp::Reverse(*x.1));
        for (k, v) in e.iter().take(10) {
            let _ = writeln!(o, "| `{}` | {} |", cell(k), v);
        }
    }
    o
}

/// The alerts that fired (a table), or a line saying none did; the RPC success rate.
fn alerts(o: &mut String, d: &RunData) {
    let s = &d.summary;
    if s.alerts.is_empty() {
        o.push_str("\nNo alert fired.");
    } else {
        o.push_str("\n**Alerts** (reported, not judged; each over the last minute):\n");
        o.push_str("\n| alert | fires when | times fired | first | last | worst |\n|---|---|---:|---:|---:|---:|\n");
        for (name, a) in &s.alerts {
            let op = if name.fires_below() { "<" } else { ">" };
            let _ = writeln!(
                o,
                "| ⚠️ {} | {} {op} {} | {} | {} | {} | {} |",
                name,
                name.label(),
                name.show(a.limit),
                a.count,
                secs(a.first_s),
                secs(a.last_s),
                name.show(a.worst)
            );
        }
        // A blank line ends the table.
        o.push('\n');
    }
    if let Some(rpc) = &s.rpc {
        let _ = write!(
            o,
            " JSON-RPC calls: {} (error {}, timeout {}), success rate {}.",
            group(rpc.calls.total() as i128),
            rpc.calls.error,
            rpc.calls.timeout,
            rpc.success_rate
                .map_or("–".into(), |r| crate::schema::AlertName::RpcSuccessRate
                    .show(r))
        );
    }
    o.push('\n');
}

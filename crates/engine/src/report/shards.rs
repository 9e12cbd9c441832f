//! The shards of a run as the reports show them: for a merged run, one row per
//! shard with its own schedule lag (and how late it started); for one shard's
//! own results, the slice it ran. The text, Markdown and HTML reports all read
//! these, so they say the same.

use super::data::RunData;
use super::fmt::oms;

/// Column names of [`rows`].
pub const HEADER: [&str; 8] = [
    "shard",
    "status",
    "planned",
    "succeeded",
    "not succeeded",
    "start lag",
    "schedule lag p99",
    "own verdict",
];

/// One row per merged shard (empty for a run that was not merged).
pub fn rows(d: &RunData) -> Vec<[String; 8]> {
    d.details
        .shards
        .iter()
        .map(|s| {
            [
                format!("{}/{}", s.index, s.count),
                format!("{:?}", s.status).to_lowercase(),
                s.planned.to_string(),
                s.succeeded.to_string(),
                s.not_succeeded.to_string(),
                oms(s.start_lag_ms),
                oms(s.schedule_lag_ms.p99),
                s.verdict.as_str().to_string(),
            ]
        })
        .collect()
}

/// The sentence above the shard table of a merged run: how many shards, and
/// which are missing.
pub fn merged_sentence(d: &RunData) -> Option<String> {
    let m = d.run.merged.as_ref()?;
    let mut s = format!(
        "merged from {} of {} shards; the verdict is judged on the merged data, \
         the shards' own verdicts are for reference",
        m.merged.len(),
        m.count
    );
    if !m.missing.is_empty() {
        let list: Vec<String> = m
            .missing
            .iter()
            .map(|i| format!("{i}/{}", m.count))
            .collect();
        s.push_str(&format!("; missing: {}", list.join(", ")));
    }
    Some(s)
}

/// For one shard's own results: which slice it ran.
pub fn shard_sentence(d: &RunData) -> Option<String> {
    let s = d.run.shard.as_ref()?;
    let mut out = format!(
        "shard {}/{} of run {}: {} of {} users, {} of {} concurrency slots",
        s.index,
        s.count,
        d.run_id(),
        s.users,
        d.run.total_users,
        s.max_concurrent_users,
        s.total_max_concurrent_users
    );
    if let Some(lag) = d.run.start_lag_ms {
        out.push_str(&format!(", started {} after --start-at", oms(Some(lag))));
    }
    Some(out)
}

/// The report page's section: the shard sentence, or the merged shards' table.
pub fn html(d: &RunData) -> maud::Markup {
    maud::html! {
        @if let Some(line) = shard_sentence(d) {
            p class="note" id="shard" { (line) }
        }
        @if let Some(line) = merged_sentence(d) {
            section id="shards" {
                h2 { "Shards" }
                p class="note" { (line) "." }
                table {
                    tr { @for h in HEADER { th { (h) } } }
                    @for r in rows(d) {
                        tr { @for c in r { td { (c) } } }
                    }
                }
            }
        }
    }
}

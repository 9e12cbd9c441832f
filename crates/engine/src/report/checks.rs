//! The pass/fail checks of a run as every end-of-run output shows them: the
//! terminal summary, the Markdown summary and `junit.xml` all read this one
//! list, so they agree on what was checked, what was measured and against
//! what limit.
//!
//! `summary.json` holds the plan's criteria and the profile's thresholds in
//! one `criteria` list; a threshold is the entry whose name parses as a
//! threshold expression (`p95(register) < 10s`). Its measured value is shown
//! in the unit it was compared in (milliseconds for latencies, a fraction for
//! rates), and its limit in the same unit.

use super::data::RunData;
use super::fmt::measured;
use crate::schema::Criterion;
use crate::threshold::{Agg, Threshold};

/// Which list a check comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    /// One of the plan's criteria (`users_succeeded`, `p95_e2e_ms`, …).
    Criterion,
    /// A k6-style threshold of the profile.
    Threshold,
}

impl CheckKind {
    /// The JUnit class name of the kind's test cases.
    pub fn classname(self) -> &'static str {
        match self {
            CheckKind::Criterion => "vana-load.criteria",
            CheckKind::Threshold => "vana-load.thresholds",
        }
    }
}

/// One check of a run, ready to show.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub kind: CheckKind,
    /// The criterion's name or the threshold's expression.
    pub name: String,
    /// The measured value with its unit (`61.24 ms`, `0.0123`, `40`), or
    /// `no data`.
    pub measured: String,
    /// What it was judged against (`< 30 ms`, `>= 59 of 60 planned …`).
    pub limit: String,
    pub pass: bool,
    /// Why it failed when the value alone does not say.
    pub reason: Option<String>,
}

impl Check {
    /// What [`Check::limit`] is called: a threshold's `limit` (an operator
    /// and a number), a criterion's `target` (a sentence).
    pub fn limit_word(&self) -> &'static str {
        match self.kind {
            CheckKind::Criterion => "target",
            CheckKind::Threshold => "limit",
        }
    }

    /// `measured 61.24 ms, limit < 30 ms` (plus the reason, if any): the
    /// failure message of a failed check.
    pub fn message(&self) -> String {
        let mut m = format!(
            "measured {}, {} {}",
            self.measured,
            self.limit_word(),
            self.limit
        );
        if let Some(r) = &self.reason {
            m.push_str(&format!(" ({r})"));
        }
        m
    }
}

/// Every check of the run, criteria first, each in the order judged.
pub fn checks(d: &RunData) -> Vec<Check> {
    let (mut crit, mut thr): (Vec<Check>, Vec<Check>) = d
        .summary
        .criteria
        .iter()
        .map(check)
        .partition(|c| c.kind == CheckKind::Criterion);
    crit.append(&mut thr);
    crit
}

fn check(c: &Criterion) -> Check {
    let value = c.actual.as_f64();
    match Threshold::parse(&c.name) {
        Ok(t) => {
            let unit = if t.agg.is_latency() { " ms" } else { "" };
            let show = |v: f64| match t.agg {
                Agg::Count => format!("{v:.0}"),
                _ => format!("{}{unit}", measured(v)),
            };
            Check {
                kind: CheckKind::Threshold,
                name: c.name.clone(),
                measured: value.map_or_else(|| "no data".into(), &show),
                limit: format!("{} {}", t.op.symbol(), show(t.value)),
                pass: c.pass,
                reason: c.reason.clone(),
            }
        }
        Err(_) => {
            let unit = if c.name.ends_with("_ms") { " ms" } else { "" };
            let measured = match (&c.actual, value) {
                (_, Some(v)) => format!("{}{unit}", measured(v)),
                (serde_json::Value::String(s), _) => s.clone(),
                (serde_json::Value::Null, _) => "no data".into(),
                (v, _) => v.to_string(),
            };
            Check {
                kind: CheckKind::Criterion,
                name: c.name.clone(),
                measured,
                limit: c.target.clone(),
                pass: c.pass,
                reason: c.reason.clone(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crit(name: &str, target: &str, actual: serde_json::Value, pass: bool) -> Criterion {
        Criterion {
            name: name.into(),
            target: target.into(),
            actual,
            pass,
            reason: None,
        }
    }

    #[test]
    fn thresholds_are_told_apart_and_shown_in_the_unit_they_were_judged_in() {
        let l = check(&crit("p95(register) < 30ms", "< 30", json!(61.2449), false));
        assert_eq!(l.kind, CheckKind::Threshold);
        assert_eq!(l.measured, "61.24 ms");
        assert_eq!(l.limit, "< 30 ms");
        assert_eq!(l.message(), "measured 61.24 ms, limit < 30 ms");
        let r = check(&crit("rate(errors) < 2%", "< 0.02", json!(0.0123), true));
        assert_eq!(
            (r.measured.as_str(), r.limit.as_str()),
            ("0.0123", "< 0.02")
        );
        let n = check(&crit("count(dropped) == 0", "== 0", json!(null), false));
        assert_eq!((n.measured.as_str(), n.limit.as_str()), ("no data", "== 0"));
    }

    #[test]
    fn criteria_keep_their_target_and_show_strings_as_they_are() {
        let p = check(&crit("p95_e2e_ms", "< 30000 (…)", json!(1234.5), true));
        assert_eq!(p.kind, CheckKind::Criterion);
        assert_eq!(p.measured, "1234.5 ms");
        assert_eq!(p.limit, "< 30000 (…)");
        assert_eq!(p.message(), "measured 1234.5 ms, target < 30000 (…)");
        let c = check(&crit(
            "completed",
            "the whole schedule ran",
            json!("completed"),
            true,
        ));
        assert_eq!(c.measured, "completed");
        let u = check(&crit("users_succeeded", ">= 59 of 60", json!(60), true));
        assert_eq!(u.measured, "60");
    }
}

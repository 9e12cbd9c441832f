//! The evidence for a knee: what changed between the knee's step and the
//! first failing step, from their own results. Every figure is one measured in
//! one of the two steps; nothing is fitted or extrapolated.
//!
//! - The journey as a whole: E2E p95 against its target, the error rate
//!   against its budget, goodput against the arrival rate.
//! - The journey step that degraded most ([`Degradation`]): the one whose
//!   failures grew most (by at least 3 and 1 % of its samples), else the one
//!   whose p95 grew most.
//!   Its component is the limit's first suspect when the within-run analysis
//!   names none.
//! - The concurrency cap: whether journeys in flight reached it, and the
//!   arrivals that waited for a slot or were dropped.
//! - The machine: its CPU over each hold, the run's processes apart, and what
//!   processes outside the run took (a shared machine moves the knee).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::output::StepRecord;
use crate::report::RunData;
use crate::report::fmt::{ms, oms};
use crate::report::machine::host_cpu_between;

/// Processes outside the run taking more than this share of a core (100 =
/// one core) during a step are named in the evidence.
pub const OTHERS_NOTED_PCT: f64 = 25.0;

/// A process's CPU per journey growing by this factor from the knee to the
/// first failing step is named in the evidence...
pub const COST_GREW: f64 = 1.5;

/// ...when the growth is at least this share of the whole journey's CPU at
/// the knee (all watched processes): an idle helper going from 1 to 3 ms
/// beside a 400 ms journey is sampling noise, not a slower component.
pub const COST_GREW_MATERIAL: f64 = 0.05;

/// The machine's CPU over a step's hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepCpu {
    /// Busy share of all cores (0–100), mean over the hold's snapshots.
    pub host_pct: f64,
    pub cores: u32,
    /// Mean CPU of each of the run's watched processes (100 = one core).
    pub processes: BTreeMap<String, f64>,
    /// The host's busy CPU less the run's processes: what other processes
    /// on the machine took (100 = one core; never below 0).
    pub others_pct: f64,
    /// CPU milliseconds each watched process spent per successful journey
    /// that finished during the hold (a cost that grows from step to step
    /// is a component slowing down, whatever the rate).
    #[serde(default)]
    pub per_journey_ms: BTreeMap<String, f64>,
    /// When the run may use less than the machine: that limit, and the
    /// share of it (0–100) the watched processes used together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<crate::sysmon::CpuLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_used_pct: Option<f64>,
}

/// The machine's CPU over the first `hold` seconds of a step's run.
pub fn step_cpu(data: &RunData, hold: f64) -> Option<StepCpu> {
    let h = host_cpu_between(data, 0.0, hold)?;
    let own: f64 = h.processes.values().sum();
    let done = data
        .journeys
        .iter()
        .filter(|j| j.ok() && (j.who.intended_ms + j.duration_ms) / 1000.0 <= hold)
        .count();
    // A mean of `pct` % of a core over `hold` s is pct × hold × 10 ms.
    let per_journey_ms = if done > 0 {
        h.processes
            .iter()
            .map(|(n, pct)| (n.clone(), pct * hold * 10.0 / done as f64))
            .collect()
    } else {
        BTreeMap::new()
    };
    Some(StepCpu {
        host_pct: h.mean_pct,
        cores: h.cores,
        others_pct: (h.mean_pct * f64::from(h.cores) - own).max(0.0),
        processes: h.processes,
        per_journey_ms,
        limit: h.limited.as_ref().map(|l| l.limit.clone()),
        limit_used_pct: h.limited.as_ref().map(|l| l.mean_pct),
    })
}

/// One journey step's figures in one capacity step (its `summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepFigures {
    pub step: String,
    pub component: String,
    /// Samples of the step (successful and failed).
    pub count: u64,
    pub errors: u64,
    /// p95 of its successful samples (ms).
    pub p95_ms: Option<f64>,
}

/// A run's journey steps, in the flow's order.
pub fn step_figures(data: &RunData) -> Vec<StepFigures> {
    data.step_order()
        .into_iter()
        .filter_map(|st| {
            let s = data.summary.steps.get(&st)?;
            Some(StepFigures {
                component: data.component_of(&st).to_string(),
                count: s.count,
                errors: s.errors,
                p95_ms: s.p95_ms,
                step: st,
            })
        })
        .collect()
}

/// The journey step that degraded most from the knee to the first failing rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Degradation {
    pub step: String,
    pub component: String,
    /// What singled it out: `errors` (its failures grew most) or `p95`.
    pub by: String,
    pub knee_p95_ms: Option<f64>,
    pub bad_p95_ms: Option<f64>,
    pub knee_errors: u64,
    pub bad_errors: u64,
    pub knee_count: u64,
    pub bad_count: u64,
}

/// Fewest added failures that single out the step that degraded most.
pub const MIN_ADDED_FAILURES: u64 = 3;

/// The step of `bad` that degraded most against `knee`: most added failures
/// (when material), else most added p95 (None when no step got worse).
pub fn degradation(knee: &StepRecord, bad: &StepRecord) -> Option<Degradation> {
    let at_knee = |name: &str| knee.flow_steps.iter().find(|s| s.step == name);
    let pairs = bad.flow_steps.iter().map(|b| (at_knee(&b.step), b));
    let added_errors = |(k, b): &(Option<&StepFigures>, &StepFigures)| {
        b.errors.saturating_sub(k.map_or(0, |k| k.errors))
    };
    let added_p95 = |(k, b): &(Option<&StepFigures>, &StepFigures)| match (
        k.and_then(|k| k.p95_ms),
        b.p95_ms,
    ) {
        (Some(k), Some(b)) => b - k,
        _ => 0.0,
    };
    // Added failures single a step out when they are material: at least
    // [`MIN_ADDED_FAILURES`] and 1 % of its samples (one stray failure is not
    // where a step degraded).
    let material = |p: &(Option<&StepFigures>, &StepFigures)| {
        let n = added_errors(p);
        n >= MIN_ADDED_FAILURES && n as f64 >= 0.01 * p.1.count as f64
    };
    let by_errors = pairs.clone().filter(material).max_by_key(added_errors);
    let (pick, by) = match by_errors {
        Some(p) => (p, "errors"),
        None => (
            pairs
                .filter(|p| added_p95(p) > 0.0)
                .max_by(|a, b| added_p95(a).total_cmp(&added_p95(b)))?,
            "p95",
        ),
    };
    let (k, b) = pick;
    Some(Degradation {
        step: b.step.clone(),
        component: b.component.clone(),
        by: by.into(),
        knee_p95_ms: k.and_then(|k| k.p95_ms),
        bad_p95_ms: b.p95_ms,
        knee_errors: k.map_or(0, |k| k.errors),
        bad_errors: b.errors,
        knee_count: k.map_or(0, |k| k.count),
        bad_count: b.count,
    })
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.1} %", v * 100.0))
}

/// The evidence as sentences: the journey, the step that degraded most, and
/// the concurrency cap at the first failing rate.
pub fn sentences(knee: &StepRecord, bad: &StepRecord, d: Option<&Degradation>) -> Vec<String> {
    let mut v = vec![format!(
        "from {:.2}/s to {:.2}/s: E2E p95 {} → {} (target {}); errors {} → {} of the users \
         that arrived; goodput {:.2}/s ({:.0} % of arrivals) → {:.2}/s ({:.0} %)",
        knee.rate_per_s,
        bad.rate_per_s,
        oms(knee.p95_ms),
        oms(bad.p95_ms),
        ms(bad.p95_target_ms),
        pct(knee.error_rate),
        pct(bad.error_rate),
        knee.goodput_per_s,
        knee.completion_ratio * 100.0,
        bad.goodput_per_s,
        bad.completion_ratio * 100.0,
    )];
    if let Some(d) = d {
        v.push(format!(
            "the step that degraded most ({}): `{}` ({}): p95 {} → {}, failed {} of {} → {} of {}",
            if d.by == "errors" {
                "most added failures"
            } else {
                "most added p95"
            },
            d.step,
            d.component,
            oms(d.knee_p95_ms),
            oms(d.bad_p95_ms),
            d.knee_errors,
            d.knee_count,
            d.bad_errors,
            d.bad_count,
        ));
    }
    if let (Some(k), Some(b)) = (&knee.cpu, &bad.cpu) {
        let procs: Vec<String> = b
            .processes
            .iter()
            .map(|(n, c)| {
                let at_knee = k.processes.get(n).map_or("–".into(), |v| format!("{v:.0}"));
                let mut p = format!("{n} {at_knee} → {c:.0} %");
                if let (Some(a), Some(b)) = (k.per_journey_ms.get(n), b.per_journey_ms.get(n)) {
                    p.push_str(&format!(" ({a:.0} → {b:.0} ms per successful journey)"));
                }
                p
            })
            .collect();
        let mut s = format!(
            "host CPU ({} cores) {:.0} % → {:.0} % busy; of one core: {}, other processes {:.0} → {:.0} %",
            b.cores,
            k.host_pct,
            b.host_pct,
            procs.join(", "),
            k.others_pct,
            b.others_pct,
        );
        if let (Some(l), Some(used)) = (&b.limit, b.limit_used_pct) {
            s.push_str(&format!(
                "; the run may use {}: its processes used {} → {used:.0} % of that",
                l.describe(),
                k.limit_used_pct
                    .map_or("–".to_string(), |u| format!("{u:.0} %")),
            ));
        }
        let slower = grew_per_journey(k, b);
        if !slower.is_empty() {
            s.push_str(&format!(
                "; CPU per successful journey grew ({}): the work per journey grew with the \
                 step, not only the rate",
                slower.join(", ")
            ));
        }
        if k.others_pct.max(b.others_pct) > OTHERS_NOTED_PCT {
            s.push_str(
                " (processes outside the run shared the machine: the knee is this machine's \
                 as it was then)",
            );
        }
        v.push(s);
    }
    if let Some(b) = &bad.bottleneck {
        let reached = b.cap_reached_s.is_some() || b.in_flight_max >= b.in_flight_cap;
        v.push(format!(
            "at {:.2}/s journeys in flight reached {} of the cap of {}{}; {} arrivals waited \
             for a slot, {} were dropped",
            bad.rate_per_s,
            b.in_flight_max,
            b.in_flight_cap,
            match (reached, b.cap_reached_s) {
                (true, Some(t)) => format!(" (the cap was reached {t:.0} s into the step)"),
                (true, None) => " (the cap was reached)".to_string(),
                (false, _) => String::new(),
            },
            b.delayed,
            b.dropped,
        ));
    }
    v
}

/// The processes whose CPU per journey grew materially from the knee to the
/// failing step, as `name ×factor`: slower per journey, not only busier (the
/// search's target changed under them).
fn grew_per_journey(k: &StepCpu, b: &StepCpu) -> Vec<String> {
    let whole: f64 = k.per_journey_ms.values().sum();
    b.per_journey_ms
        .iter()
        .filter_map(|(n, &ms)| {
            let at_knee = *k.per_journey_ms.get(n)?;
            (at_knee >= 1.0
                && ms >= COST_GREW * at_knee
                && ms - at_knee >= COST_GREW_MATERIAL * whole)
                .then(|| format!("{n} ×{:.1}", ms / at_knee))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::output::StepPhase;
    use super::*;

    fn fig(step: &str, count: u64, errors: u64, p95: f64) -> StepFigures {
        StepFigures {
            step: step.into(),
            component: format!("{step}-component"),
            count,
            errors,
            p95_ms: Some(p95),
        }
    }

    fn rec(steps: Vec<StepFigures>) -> StepRecord {
        let mut r = StepRecord::new(0, StepPhase::Climb, 1.0);
        r.flow_steps = steps;
        r
    }

    #[test]
    fn the_step_that_degraded_most_is_named_by_material_failures_else_by_p95() {
        let knee = rec(vec![fig("a", 100, 0, 100.0), fig("b", 100, 0, 1_000.0)]);
        // One stray failure in `a`; `b` slowed down 4 s.
        let bad = rec(vec![fig("a", 100, 1, 90.0), fig("b", 100, 0, 5_000.0)]);
        let d = degradation(&knee, &bad).unwrap();
        assert_eq!((d.step.as_str(), d.by.as_str()), ("b", "p95"));
        assert_eq!(
            (d.knee_p95_ms, d.bad_p95_ms),
            (Some(1_000.0), Some(5_000.0))
        );
        // Five failures of 100 in `a`: that is where it degraded.
        let bad = rec(vec![fig("a", 100, 5, 90.0), fig("b", 100, 0, 5_000.0)]);
        let d = degradation(&knee, &bad).unwrap();
        assert_eq!((d.step.as_str(), d.by.as_str()), ("a", "errors"));
        assert_eq!(d.component, "a-component");
        let said = sentences(&knee, &bad, Some(&d));
        assert!(said[1].contains("`a` (a-component)"), "{said:?}");
        // Nothing got worse: no step is named.
        assert_eq!(degradation(&knee, &knee), None);
    }

    fn cpu(per_journey: &[(&str, f64)]) -> StepCpu {
        StepCpu {
            host_pct: 50.0,
            cores: 2,
            processes: BTreeMap::new(),
            others_pct: 0.0,
            per_journey_ms: per_journey
                .iter()
                .map(|(n, ms)| (n.to_string(), *ms))
                .collect(),
            limit: None,
            limit_used_pct: None,
        }
    }

    #[test]
    fn a_process_is_named_slower_only_when_its_growth_is_material() {
        // The smoke search's own figures: the fork source ×3 on 1 → 3 ms of a
        // 400 ms journey is noise; anvil's +2 ms likewise (and under ×1.5).
        let knee = cpu(&[("anvil", 64.0), ("fork", 1.0), ("vana-load", 335.0)]);
        let bad = cpu(&[("anvil", 66.0), ("fork", 3.0), ("vana-load", 354.0)]);
        assert!(grew_per_journey(&knee, &bad).is_empty());
        // anvil 11 → 20 ms of a 50 ms journey: named, the others not.
        let knee = cpu(&[("anvil", 11.0), ("fork", 0.3), ("vana-load", 38.0)]);
        let bad = cpu(&[("anvil", 20.0), ("fork", 0.9), ("vana-load", 40.0)]);
        assert_eq!(grew_per_journey(&knee, &bad), ["anvil ×1.8"]);
        let said = sentences(&rec_cpu(&knee), &rec_cpu(&bad), None);
        assert!(
            said.iter()
                .any(|s| s.contains("CPU per successful journey grew (anvil ×1.8)")),
            "{said:?}"
        );
        // A run pinned to one core says how much of it its processes used.
        let limit = Some(crate::sysmon::CpuLimit {
            cores: 1.0,
            by: "affinity".into(),
        });
        let (mut k1, mut b1) = (knee.clone(), bad.clone());
        (k1.limit, k1.limit_used_pct) = (limit.clone(), Some(90.0));
        (b1.limit, b1.limit_used_pct) = (limit, Some(99.0));
        let said = sentences(&rec_cpu(&k1), &rec_cpu(&b1), None);
        assert!(
            said.iter().any(|s| s.contains(
                "the run may use 1 core (CPU affinity): its processes used 90 % → 99 % of that"
            )),
            "{said:?}"
        );
        // A process absent at the knee is not compared.
        let bad = cpu(&[("other", 30.0)]);
        assert!(grew_per_journey(&knee, &bad).is_empty());
    }

    fn rec_cpu(c: &StepCpu) -> StepRecord {
        let mut r = rec(vec![]);
        r.cpu = Some(c.clone());
        r
    }
}

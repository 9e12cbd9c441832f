//! The analysis in words: the sentences the reports print, and the
//! reader-facing names and knobs of components.

use super::super::data::RunData;
use super::super::fmt::{ms as fmt_ms, num, secs};
use super::{Bottleneck, ComponentSignal};

/// How the sentence naming every failing component begins (the text
/// summary shows it next to the first sentence).
pub const FAILED_BY_COMPONENT: &str = "Failed steps by component";

/// The knob that raises a component's capacity.
pub fn knob_of(component: &str) -> String {
    match component {
        "relayer" => "relayer keys (each key sends its transactions in nonce order; more keys send in parallel)".into(),
        "inference" => "inference workers (GPUs serving predictions)".into(),
        "personal_server" => "personal server workers/replicas".into(),
        "chain" => "RPC endpoints and block gas (chain throughput)".into(),
        "indexer" => "indexer poll interval and RPC endpoints".into(),
        "storage" => "storage upload concurrency/bandwidth".into(),
        "tee" => "TEE instances (more TEE keys answering proofs)".into(),
        "client" | "driver_cpu" => "load-generator CPU (more engine machines)".into(),
        "host_cpu" => {
            "CPU for the machine (more cores, or the driver and the twin on separate machines)"
                .into()
        }
        other => format!("capacity of `{other}`"),
    }
}

pub(super) fn sentences(b: &Bottleneck, data: &RunData) -> Vec<String> {
    let mut out = Vec::new();
    match &b.component {
        Some(c) => {
            let sig = b.components.iter().find(|s| &s.component == c);
            let how = if sig.is_some_and(|s| s.saturated) {
                "it saturates first"
            } else {
                "its failures rise with load first"
            };
            let mut s = format!(
                "The bottleneck is the {} ({}): {how}, from t = {}.",
                component_name(c),
                c,
                secs(sig.and_then(|s| s.onset_s).unwrap_or(0.0))
            );
            if let Some(sig) = sig {
                for e in &sig.evidence {
                    s.push_str(&format!(" {}.", capitalise(e)));
                }
                s.push_str(&format!(
                    " It passed at most {} journeys/s. Raise {}.",
                    num(sig.throughput_per_s),
                    sig.knob
                ));
            }
            out.push(s);
        }
        None => {
            let top = b.steps.first();
            let mut s =
                "No component saturated: no step's latency grew with load and no queue gauge rose while journeys fell behind arrivals."
                    .to_string();
            if let Some(g) = top {
                s.push_str(&format!(
                    " The largest change was `{}` ({} → {}, r = {:.2}), within noise.",
                    g.step,
                    fmt_ms(g.low_p50_ms),
                    fmt_ms(g.high_p50_ms),
                    g.correlation
                ));
            }
            s.push_str(" Measured capacity is therefore a lower bound.");
            out.push(s);
        }
    }
    if let Some(g) = b.steps.iter().find(|g| g.grows) {
        out.push(format!(
            "The step whose latency grows most with load is `{}` ({}): its median went from {} at {} journeys in flight to {} at {} (+{}, ×{}; correlation with in-flight r = {:.2}).",
            g.step,
            g.component,
            fmt_ms(g.low_p50_ms),
            num(g.low_in_flight),
            fmt_ms(g.high_p50_ms),
            num(g.high_in_flight),
            fmt_ms(g.added_ms),
            num(g.ratio),
            g.correlation
        ));
    }
    match b.cap_reached_s {
        Some(t) => out.push(format!(
            "Journeys in flight reached the cap of {} at t = {}; {} arrivals waited for a slot and {} were dropped.",
            b.in_flight_cap,
            secs(t),
            b.delayed,
            b.dropped
        )),
        None if !data.series.is_empty() => out.push(format!(
            "Journeys in flight peaked at {} of the cap of {}; {} arrivals waited for a slot, {} were dropped.",
            b.in_flight_max, b.in_flight_cap, b.delayed, b.dropped
        )),
        None => {}
    }
    let mut errs: Vec<&ComponentSignal> = b
        .components
        .iter()
        .filter(|c| c.errors > 0 && c.first_error_s.is_some())
        .collect();
    errs.sort_by(|a, b| {
        a.first_error_s
            .unwrap_or(0.0)
            .total_cmp(&b.first_error_s.unwrap_or(0.0))
    });
    if let Some(c) = errs.first() {
        out.push(format!(
            "Errors began at t = {} in the {} ({} failed steps in all).",
            secs(c.first_error_s.unwrap_or(0.0)),
            component_name(&c.component),
            c.errors
        ));
    }
    if errs.len() > 1 {
        // Where failures come from, every failing component named: faults in
        // several places show here even when nothing saturates.
        let mut by_count = errs.clone();
        by_count.sort_by(|a, b| b.errors.cmp(&a.errors).then(a.component.cmp(&b.component)));
        let parts: Vec<String> = by_count
            .iter()
            .map(|c| {
                format!(
                    "the {} ({}) {}",
                    component_name(&c.component),
                    c.component,
                    c.errors
                )
            })
            .collect();
        out.push(format!("{FAILED_BY_COMPONENT}: {}.", parts.join(", ")));
    }
    out
}

/// A reader-facing name of a component.
pub fn component_name(c: &str) -> String {
    match c {
        "inference" => "inference backend".into(),
        "personal_server" => "personal server".into(),
        "tee" => "TEE (proof of contribution)".into(),
        "chain" => "chain (RPC and blocks)".into(),
        "host_cpu" => "host CPU (driver and twin share it)".into(),
        "driver_cpu" => "load generator's CPU".into(),
        other => other.replace('_', " "),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

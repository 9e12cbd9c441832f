//! The machine as a component of the bottleneck analysis. When the driver and
//! a local twin share a machine whose CPU is saturated, by the run's own
//! processes, at the onset of what would otherwise be named, the knee is the
//! machine's (`host_cpu`), not a service's; against a remote target a
//! saturated driver (`driver_cpu`) makes the figures suspect. The CPU comes
//! from the time series' `system` samples ([`crate::sysmon`]).

use std::collections::BTreeMap;

use super::analysis::{Bottleneck, ComponentSignal, component_name, knob_of};
use super::data::RunData;
use super::fmt::secs;

/// Whether a component is the machine the run ran on rather than a service:
/// `host_cpu` (the driver and a local twin share it) or `driver_cpu` (the load
/// generator's own machine, against a remote target).
pub fn is_machine(component: &str) -> bool {
    matches!(component, "host_cpu" | "driver_cpu")
}

/// Host CPU (busy share of all cores) at or above which the machine counts as
/// saturated around a component's onset.
pub const HOST_CPU_SATURATED_PCT: f64 = 85.0;

/// Share of the busy host CPU that the run's own processes (driver and twin)
/// must account for before the host is named.
const OWN_SHARE_TWIN: f64 = 2.0 / 3.0;
/// The same against a remote target, for the driver alone.
const OWN_SHARE_DRIVER: f64 = 0.5;

/// The machine's CPU over a stretch of the run, from `series[].system`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostCpu {
    /// Busy share of all cores (0–100): mean, least and most over the snapshots.
    pub mean_pct: f64,
    pub min_pct: f64,
    pub max_pct: f64,
    pub cores: u32,
    pub samples: usize,
    /// Mean CPU of each watched process then (100 = one core).
    pub processes: BTreeMap<String, f64>,
    /// When the run may use less than the machine: that limit, and the
    /// share of it the run's processes used.
    pub limited: Option<LimitedCpu>,
}

/// The run's processes' CPU as a share of what the run may use.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitedCpu {
    pub limit: crate::sysmon::CpuLimit,
    /// Share of the limit (0–100) the watched processes used together:
    /// mean, least and most over the snapshots.
    pub mean_pct: f64,
    pub min_pct: f64,
    pub max_pct: f64,
}

/// The host's CPU over the snapshots whose interval (from the previous
/// snapshot to this one) overlaps `[from, to]`; `None` when none recorded it.
pub fn host_cpu_between(data: &RunData, from: f64, to: f64) -> Option<HostCpu> {
    let mut h = HostCpu {
        min_pct: f64::INFINITY,
        ..Default::default()
    };
    let mut procs: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let mut limited: Option<LimitedCpu> = None;
    let mut prev_t: Option<f64> = None;
    for p in &data.series {
        let start = prev_t.unwrap_or(p.t_s - data.config.metrics_interval);
        prev_t = Some(p.t_s);
        if p.t_s < from || start > to {
            continue;
        }
        let Some(sys) = &p.system else { continue };
        let Some(v) = sys.host_cpu_pct else { continue };
        h.samples += 1;
        h.mean_pct += v;
        h.min_pct = h.min_pct.min(v);
        h.max_pct = h.max_pct.max(v);
        h.cores = h.cores.max(sys.host_cores);
        let mut own = 0.0;
        for (name, ps) in &sys.processes {
            if let Some(c) = ps.cpu_pct {
                let e = procs.entry(name.clone()).or_default();
                e.0 += c;
                e.1 += 1;
                own += c;
            }
        }
        if let Some(limit) = sys.cpu_limit.as_ref().filter(|l| l.cores > 0.0) {
            let used = (own / limit.cores).min(100.0);
            let l = limited.get_or_insert_with(|| LimitedCpu {
                limit: limit.clone(),
                mean_pct: 0.0,
                min_pct: f64::INFINITY,
                max_pct: 0.0,
            });
            l.mean_pct += used;
            l.min_pct = l.min_pct.min(used);
            l.max_pct = l.max_pct.max(used);
        }
    }
    if h.samples == 0 {
        return None;
    }
    h.mean_pct /= h.samples as f64;
    h.limited = limited.map(|mut l| {
        l.mean_pct /= h.samples as f64;
        l
    });
    h.processes = procs
        .into_iter()
        .map(|(k, (sum, n))| (k, sum / n as f64))
        .collect();
    Some(h)
}

/// The machine as the bottleneck: when the host's CPU was at least
/// [`HOST_CPU_SATURATED_PCT`] busy over the snapshots within `half_width`
/// seconds of the onset of the component `b` would name, the knee is the
/// machine's. With a local twin that is `host_cpu` (the driver and the twin
/// share it; the service figures are a lower bound); against a remote target
/// it is `driver_cpu`, the load generator itself, whose figures are then
/// suspect. Never a network component.
pub(super) fn machine_saturation(
    data: &RunData,
    b: &Bottleneck,
    half_width: f64,
) -> Option<ComponentSignal> {
    let name = b.component.as_deref()?;
    let sig = b.components.iter().find(|c| c.component == name)?;
    let onset = sig.onset_s?;
    let cpu = host_cpu_between(data, onset - half_width, onset + half_width)?;
    // A run allowed less than the machine (pinned CPUs, a container's CPU
    // quota) is saturated when its processes use what it may use, whatever
    // the other cores do; the processes are the run's own by construction.
    let (mean, min, max) = match &cpu.limited {
        Some(l) => (l.mean_pct, l.min_pct, l.max_pct),
        None => (cpu.mean_pct, cpu.min_pct, cpu.max_pct),
    };
    if mean < HOST_CPU_SATURATED_PCT {
        return None;
    }
    // The run's own processes must be what keeps the machine busy (the driver
    // and the twin; against a remote target, the driver alone): when other
    // work on the machine takes the CPU (a build, parallel tests), the knee
    // cannot be pinned on this run's load.
    let own: f64 = cpu
        .processes
        .iter()
        .filter(|(n, _)| data.local_twin() || n.as_str() == crate::sysmon::SELF_NAME)
        .map(|(_, c)| c)
        .sum::<f64>()
        / f64::from(cpu.cores.max(1));
    let need = if data.local_twin() {
        OWN_SHARE_TWIN
    } else {
        OWN_SHARE_DRIVER
    };
    if cpu.limited.is_none() && own < need * cpu.mean_pct {
        return None;
    }
    let busy = if max - min < 1.0 {
        format!("{mean:.0} % busy")
    } else {
        format!("{min:.0}–{max:.0} % busy (mean {mean:.0} %)")
    };
    let cores = match cpu.cores {
        0 => "cores".to_string(),
        1 => "one core".to_string(),
        n => format!("{n} cores"),
    };
    let when = format!("around t = {}", secs(onset));
    let displaced = component_name(name);
    let procs = (!cpu.processes.is_empty()).then(|| {
        let mut v: Vec<(&String, &f64)> = cpu.processes.iter().collect();
        v.sort_by(|a, b| b.1.total_cmp(a.1));
        format!(
            "the watched processes used {} then (100 % = one core)",
            v.iter()
                .map(|(n, c)| format!("{n} {:.0} %", c))
                .collect::<Vec<_>>()
                .join(", ")
        )
    });
    let then = format!("{when}, when the {displaced} would otherwise be named");
    let saturated = match (&cpu.limited, data.local_twin()) {
        // What was saturated: the share of the machine the run may use...
        (Some(l), true) => format!(
            "the run may use {} of the machine's {cores}, and its processes kept that {busy} {then}",
            l.limit.describe()
        ),
        (Some(l), false) => format!(
            "the load generator may use {} of its machine's {cores}, and it kept that {busy} {then}",
            l.limit.describe()
        ),
        // ...or the machine.
        (None, true) => format!("the machine's {cores} were {busy} {then}"),
        (None, false) => {
            format!("the load generator's machine had its {cores} {busy} {then}")
        }
    };
    let component = if data.local_twin() {
        "host_cpu"
    } else {
        "driver_cpu"
    };
    let mut evidence = vec![saturated];
    if cpu.limited.is_some() {
        evidence.push("that limit, not the machine, ran out".to_string());
    }
    evidence.extend(procs);
    evidence.push(if component == "host_cpu" {
        "the driver and the twin share this machine, so the knee is the machine's, not a service's: the service figures are a lower bound".to_string()
    } else {
        format!(
            "the load generator itself was saturated, so the figures are suspect (its own delays are in the latencies and rates it measured) and the {displaced} is not named"
        )
    });
    Some(ComponentSignal {
        component: component.to_string(),
        steps: Vec::new(),
        saturated: true,
        onset_s: Some(onset),
        latency_growth_ms: 0.0,
        queue: None,
        errors: 0,
        first_error_s: None,
        throughput_per_s: sig.throughput_per_s,
        knob: match &cpu.limited {
            Some(l) => format!(
                "the run's CPU limit ({}: the CPUs it is pinned to, or the container's CPU limit), then {}",
                l.limit.describe(),
                knob_of(component)
            ),
            None => knob_of(component),
        },
        evidence,
    })
}

//! The twin's gauges the report reads (relayer pending, inference queue,
//! indexer lag, storage bytes), their series over a run, and when a queue gauge
//! counts as rising: well above its start while journeys fall behind arrivals.

use std::collections::BTreeMap;

use super::super::data::RunData;
use super::super::timeline::Timeline;
use super::GaugeSignal;

/// Gauges the report charts, by the metric names the twin exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GaugeKind {
    RelayerPending,
    InferenceQueue,
    IndexerLag,
    StorageBytes,
}

impl GaugeKind {
    pub const ALL: [GaugeKind; 4] = [
        GaugeKind::RelayerPending,
        GaugeKind::InferenceQueue,
        GaugeKind::IndexerLag,
        GaugeKind::StorageBytes,
    ];
    pub fn classify(source: &str, metric: &str) -> Option<GaugeKind> {
        let name = metric.split('{').next().unwrap_or(metric);
        let both = format!("{source} {name}");
        if name.contains("queue_depth") {
            Some(GaugeKind::InferenceQueue)
        } else if name.contains("pending") && both.contains("relayer") {
            Some(GaugeKind::RelayerPending)
        } else if name.contains("lag_blocks") {
            Some(GaugeKind::IndexerLag)
        } else if name.contains("quota_used_bytes") {
            Some(GaugeKind::StorageBytes)
        } else {
            None
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            GaugeKind::RelayerPending => "Relayer pending transactions",
            GaugeKind::InferenceQueue => "Inference queue depth",
            GaugeKind::IndexerLag => "Indexer lag (blocks)",
            GaugeKind::StorageBytes => "Storage bytes used",
        }
    }
    pub fn id(self) -> &'static str {
        match self {
            GaugeKind::RelayerPending => "relayer-pending",
            GaugeKind::InferenceQueue => "inference-queue",
            GaugeKind::IndexerLag => "indexer-lag",
            GaugeKind::StorageBytes => "storage-bytes",
        }
    }
    pub fn component(self) -> &'static str {
        match self {
            GaugeKind::RelayerPending => "relayer",
            GaugeKind::InferenceQueue => "inference",
            GaugeKind::IndexerLag => "indexer",
            GaugeKind::StorageBytes => "storage",
        }
    }
    pub(super) fn is_queue(self) -> bool {
        self != GaugeKind::StorageBytes
    }
}

/// Each gauge kind's series over time (summed over sources and labels).
pub fn gauge_series(data: &RunData) -> BTreeMap<GaugeKind, Vec<(f64, f64)>> {
    let mut out: BTreeMap<GaugeKind, Vec<(f64, f64)>> = BTreeMap::new();
    for p in &data.series {
        let mut at: BTreeMap<GaugeKind, f64> = BTreeMap::new();
        for (src, m) in &p.gauges {
            for (k, v) in m {
                if let Some(kind) = GaugeKind::classify(src, k) {
                    *at.entry(kind).or_default() += v;
                }
            }
        }
        for (k, v) in at {
            out.entry(k).or_default().push((p.t_s, v));
        }
    }
    out
}

/// Completions at or above this share of arrivals keep pace with them.
const KEEPING_PACE: f64 = 0.95;

/// A queue gauge counts as rising when it climbs well above its starting
/// level *and* the journeys fall behind the arrivals from then on
/// (completions below [`KEEPING_PACE`] of arrivals). A queue that grows with
/// the load but is drained as fast as work arrives is ordinary queueing
/// (Little's law), not saturation.
pub(super) fn gauge_signal(
    kind: GaugeKind,
    pts: &[(f64, f64)],
    tl: Option<&Timeline>,
) -> GaugeSignal {
    let first = pts.first().map_or(0.0, |p| p.1);
    let max = pts.iter().map(|p| p.1).fold(0.0, f64::max);
    let climbs = kind.is_queue() && max >= 3.0 && max >= 3.0 * (first + 1.0);
    let level = (0.25 * max).max(2.0);
    let onset_s = climbs
        .then(|| pts.iter().find(|p| p.1 >= level).map(|p| p.0))
        .flatten();
    let (mut cps, mut aps, mut dps) = (None, None, None);
    if let (Some(t), Some(tl)) = (onset_s, tl) {
        let from = tl.bins.index(t);
        // Bins after the onset while arrivals are still coming. Arrivals count
        // the dropped ones (queue timeout, breaker shed): they arrived and did
        // not complete, so dropping work never makes a queue keep pace.
        let idx: Vec<usize> = (from..tl.bins.n)
            .filter(|&i| tl.arrivals_per_s[i] > 0.0)
            .collect();
        if !idx.is_empty() {
            let n = idx.len() as f64;
            let mean = |v: &[f64]| {
                idx.iter()
                    .map(|&i| v.get(i).copied().unwrap_or(0.0))
                    .sum::<f64>()
                    / n
            };
            cps = Some(mean(&tl.completions_per_s));
            aps = Some(mean(&tl.arrivals_per_s));
            dps = Some(mean(&tl.dropped_per_s));
        }
    }
    let keeps_pace = matches!((cps, aps), (Some(c), Some(a)) if c >= KEEPING_PACE * a);
    let rising = climbs && !keeps_pace;
    GaugeSignal {
        gauge: kind.title().to_string(),
        first,
        max,
        rising,
        onset_s: onset_s.filter(|_| rising),
        completions_per_s_after: cps,
        arrivals_per_s_after: aps,
        dropped_per_s_after: dps,
    }
}

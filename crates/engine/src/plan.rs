//! `vana-load plan`: what a profile will do before it runs — the arrival curve,
//! the peak rate, and the expected journeys in flight by Little's law
//! (L = λ·W, integrated over a sliding window of one journey duration W), with
//! warnings where the concurrency cap would bind or where the profile's numbers
//! disagree with each other.

use std::fmt::Write;

use crate::config::LoadTestConfig;
use crate::schedule::RateCurve;

/// The analysis of a profile.
#[derive(Debug, Clone)]
pub struct PlanReport {
    pub curve: RateCurve,
    pub total_users: u64,
    pub cap: u64,
    pub time_scale: f64,
    /// Journey duration W used for Little's law (seconds) and where it came from.
    pub journey_secs: f64,
    pub journey_source: String,
    /// Highest expected number in flight: max over t of Λ(t) − Λ(t − W).
    pub peak_in_flight: f64,
    /// Seconds of the schedule during which the expected in-flight exceeds the cap.
    pub cap_binding_secs: f64,
    pub warnings: Vec<String>,
}

impl PlanReport {
    /// `measured_journey_secs` (e.g. the last run's p50) overrides the config's assumption.
    pub fn new(cfg: &LoadTestConfig, measured_journey_secs: Option<(f64, String)>) -> PlanReport {
        let curve = RateCurve::from_config(cfg);
        let (w, source) = measured_journey_secs.unwrap_or((
            cfg.assumed_journey_secs,
            "assumed (assumedJourneySecs)".to_string(),
        ));
        let in_flight = |t: f64| curve.cumulative(t) - curve.cumulative(t - w);
        let dur = curve.duration();
        let steps = 2000;
        let mut peak: f64 = 0.0;
        let mut binding = 0.0;
        let horizon = dur + w;
        for i in 0..=steps {
            let t = horizon * i as f64 / steps as f64;
            let l = in_flight(t);
            peak = peak.max(l);
            if l > cfg.max_concurrent_users as f64 {
                binding += horizon / steps as f64;
            }
        }
        let cap = cfg.max_concurrent_users as f64;
        let mut warnings = Vec::new();
        if peak > cap {
            warnings.push(format!(
                "the concurrency cap binds: about {peak:.0} journeys would be in flight at peak (λ={:.2}/s × W={w:.0}s) but maxConcurrentUsers is {}; for about {binding:.0}s arrivals will be delayed, and dropped after maxQueueWaitSecs = {}s",
                curve.peak, cfg.max_concurrent_users, cfg.max_queue_wait_secs
            ));
        } else if peak > 0.8 * cap {
            warnings.push(format!(
                "expected peak in flight ({peak:.0}) is within 20% of maxConcurrentUsers ({}); slower journeys will make the cap bind",
                cfg.max_concurrent_users
            ));
        } else if peak < 0.25 * cap && cfg.max_concurrent_users > 1 {
            let w_needed = cap / curve.peak;
            let n_needed = cfg.total_users as f64 * cap / peak.max(1e-9);
            warnings.push(format!(
                "totals and rates disagree with the cap: {} users over this schedule give a peak of {:.2} arrivals/s, so only about {peak:.0} journeys are in flight at once, never the {} of maxConcurrentUsers; reaching {} concurrent would need journeys of about {w_needed:.0}s or about {n_needed:.0} users",
                cfg.total_users, curve.peak, cfg.max_concurrent_users, cfg.max_concurrent_users
            ));
        }
        // The plan's Artillery formula (arrivalRate = maxConcurrent / rampUp, over ramp-up + sustain).
        if cfg.ramp_up_minutes > 0.0 {
            let rate = cfg.max_concurrent_users as f64 / (cfg.ramp_up_minutes * 60.0);
            let artillery = rate * (cfg.ramp_up_minutes + cfg.sustain_minutes) * 60.0;
            if (artillery - cfg.total_users as f64).abs() > 0.05 * cfg.total_users as f64 {
                warnings.push(format!(
                    "note: the plan's Artillery formula (arrivalRate = maxConcurrentUsers / rampUp = {rate:.2}/s over ramp-up + sustain) would start about {artillery:.0} users, not {}; this engine solves the peak rate so arrivals integrate to totalUsers",
                    cfg.total_users
                ));
            }
        }
        if w > dur && dur > 0.0 {
            warnings.push(format!(
                "the journey duration ({w:.0}s) is longer than the whole schedule ({dur:.0}s): most of the run is spent draining"
            ));
        }
        if cfg.time_scale != 1.0 {
            warnings.push(format!(
                "timeScale {} makes arrivals {:.1}× faster but journeys take as long as ever, so in-flight grows by the same factor",
                cfg.time_scale,
                1.0 / cfg.time_scale
            ));
        }
        PlanReport {
            curve,
            total_users: cfg.total_users,
            cap: cfg.max_concurrent_users,
            time_scale: cfg.time_scale,
            journey_secs: w,
            journey_source: source,
            peak_in_flight: peak,
            cap_binding_secs: binding,
            warnings,
        }
    }

    /// An ASCII chart of the arrival rate over time (`width` × `height` cells).
    pub fn ascii_curve(&self, width: usize, height: usize) -> String {
        let dur = self.curve.duration();
        let peak = self.curve.peak;
        let mut grid = vec![vec![' '; width]; height];
        for (x, col) in (0..width).map(|x| (x, x)) {
            let t = dur * (col as f64 + 0.5) / width as f64;
            let r = self.curve.rate(t);
            let h = if peak > 0.0 {
                (r / peak * height as f64).round() as usize
            } else {
                0
            };
            for row in grid.iter_mut().rev().take(h.min(height)) {
                row[x] = '█';
            }
        }
        let mut s = String::new();
        for (i, row) in grid.iter().enumerate() {
            let label = if i == 0 {
                format!("{:>8.2}/s ┤", peak)
            } else if i == height - 1 {
                format!("{:>8}   ┤", "")
            } else {
                format!("{:>10} │", "")
            };
            let _ = writeln!(s, "{label}{}", row.iter().collect::<String>());
        }
        let _ = writeln!(s, "{:>10} └{}", "0", "─".repeat(width));
        let _ = writeln!(
            s,
            "{:>12}0{:>w$}",
            "",
            fmt_dur(dur),
            w = width.saturating_sub(1)
        );
        s
    }

    /// The full text report.
    pub fn render(&self, cfg: &LoadTestConfig) -> String {
        let (u, su, d) = cfg.scaled_phases();
        let mut s = String::new();
        let _ = writeln!(s, "profile          {}", cfg.profile);
        let _ = writeln!(
            s,
            "users            {} (distinct wallets; maxWallets {})",
            cfg.total_users, cfg.max_wallets
        );
        let _ = writeln!(
            s,
            "schedule         ramp-up {} · sustain {} · ramp-down {} = {}{}",
            fmt_dur(u),
            fmt_dur(su),
            fmt_dur(d),
            fmt_dur(u + su + d),
            if cfg.time_scale != 1.0 {
                format!(" (timeScale {})", cfg.time_scale)
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            s,
            "arrivals         {:?} spacing, seed {}",
            cfg.arrival, cfg.seed
        );
        let _ = writeln!(
            s,
            "peak rate        {:.3} arrivals/s ({:.1}/min)",
            self.curve.peak,
            self.curve.peak * 60.0
        );
        let _ = writeln!(
            s,
            "journey W        {:.1}s, {}",
            self.journey_secs, self.journey_source
        );
        let _ = writeln!(
            s,
            "in flight (L=λW) ≈ {:.0} at peak; cap maxConcurrentUsers = {}{}",
            self.peak_in_flight,
            self.cap,
            if self.cap_binding_secs > 0.0 {
                format!(" (binds for ~{})", fmt_dur(self.cap_binding_secs))
            } else {
                " (does not bind)".into()
            }
        );
        let _ = writeln!(
            s,
            "criteria         p95(e2e) < {}s, error rate < {}{}",
            cfg.p95_e2e_target_secs,
            cfg.error_budget,
            if cfg.thresholds.is_empty() {
                String::new()
            } else {
                format!("; thresholds: {}", threshold_list(cfg))
            }
        );
        let _ = writeln!(s, "\narrival rate");
        s.push_str(&self.ascii_curve(60, 10));
        if !self.warnings.is_empty() {
            let _ = writeln!(s);
            for w in &self.warnings {
                let _ = writeln!(s, "warning: {w}");
            }
        }
        s
    }
}

/// The thresholds as written, `!` marking those that abort the run.
fn threshold_list(cfg: &LoadTestConfig) -> String {
    cfg.thresholds
        .iter()
        .map(|t| {
            if t.abort_on_fail {
                format!("!{}", t.expr)
            } else {
                t.expr.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn fmt_dur(secs: f64) -> String {
    if secs >= 3600.0 {
        format!("{:.1}h", secs / 3600.0)
    } else if secs >= 60.0 {
        format!("{:.1}m", secs / 60.0)
    } else {
        format!("{secs:.1}s")
    }
}

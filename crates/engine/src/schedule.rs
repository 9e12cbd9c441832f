//! The open-model arrival schedule.
//!
//! The arrival rate ramps linearly 0 → peak over `rampUp`, holds the peak for
//! `sustain`, and ramps peak → 0 over `rampDown`. The peak is solved so that the
//! rate integrates to `totalUsers`:
//! `peak = N / (rampUp/2 + sustain + rampDown/2)`.
//! Every duration is multiplied by `timeScale` (so rates are multiplied by its inverse;
//! the integral is unchanged).
//!
//! Intended start offsets are precomputed (8 bytes per user) from the inverse
//! cumulative rate Λ⁻¹: uniform spacing puts user k at Λ⁻¹(k); Poisson spacing
//! draws the order statistics of N points of a non-homogeneous Poisson process
//! (seeded), which keeps exactly N arrivals.

use rand::SeedableRng;
use rand_distr::{Distribution, Exp1};

use crate::config::{LoadTestConfig, Spacing};

/// Phases of a run, by schedule time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    RampUp,
    Sustain,
    RampDown,
    /// The schedule is over; in-flight journeys are finishing.
    Drain,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::RampUp => "ramp_up",
            Phase::Sustain => "sustain",
            Phase::RampDown => "ramp_down",
            Phase::Drain => "drain",
        }
    }
}

/// The rate curve (seconds, already time-scaled).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateCurve {
    pub ramp_up: f64,
    pub sustain: f64,
    pub ramp_down: f64,
    pub total: f64,
    /// Arrivals per second at the plateau.
    pub peak: f64,
}

impl RateCurve {
    /// The curve for `total` users over the given (scaled) phase durations in seconds.
    pub fn new(total: f64, ramp_up: f64, sustain: f64, ramp_down: f64) -> RateCurve {
        let area = ramp_up / 2.0 + sustain + ramp_down / 2.0;
        let peak = if area > 0.0 {
            total / area
        } else {
            f64::INFINITY
        };
        RateCurve {
            ramp_up,
            sustain,
            ramp_down,
            total,
            peak,
        }
    }

    pub fn from_config(c: &LoadTestConfig) -> RateCurve {
        let (u, s, d) = c.scaled_phases();
        RateCurve::new(c.total_users as f64, u, s, d)
    }

    /// Length of the schedule in seconds.
    pub fn duration(&self) -> f64 {
        self.ramp_up + self.sustain + self.ramp_down
    }

    /// The arrival rate at time `t` (per second).
    pub fn rate(&self, t: f64) -> f64 {
        let (u, s, d, p) = (self.ramp_up, self.sustain, self.ramp_down, self.peak);
        if t < 0.0 || t > u + s + d {
            0.0
        } else if t < u {
            p * t / u
        } else if t <= u + s {
            p
        } else if d > 0.0 {
            p * (1.0 - (t - u - s) / d)
        } else {
            0.0
        }
    }

    /// Λ(t): expected arrivals by time `t`.
    pub fn cumulative(&self, t: f64) -> f64 {
        let (u, s, d, p) = (self.ramp_up, self.sustain, self.ramp_down, self.peak);
        if t <= 0.0 {
            return 0.0;
        }
        if t < u {
            return p * t * t / (2.0 * u);
        }
        let a = p * u / 2.0;
        if t <= u + s {
            return a + p * (t - u);
        }
        let b = a + p * s;
        if t >= u + s + d {
            return self.total;
        }
        let tau = t - u - s;
        b + p * (tau - tau * tau / (2.0 * d))
    }

    /// Λ⁻¹(y): the time by which `y` arrivals are expected (y in [0, total]).
    pub fn inverse(&self, y: f64) -> f64 {
        let (u, s, d, p) = (self.ramp_up, self.sustain, self.ramp_down, self.peak);
        let y = y.clamp(0.0, self.total);
        let a = p * u / 2.0;
        if y < a {
            return (2.0 * u * y / p).sqrt();
        }
        let b = a + p * s;
        if y <= b || d == 0.0 {
            return (u + (y - a) / p).min(u + s);
        }
        let z = ((y - b) / (p * d / 2.0)).min(1.0);
        u + s + d * (1.0 - (1.0 - z).max(0.0).sqrt())
    }

    pub fn phase(&self, t: f64) -> Phase {
        if t < self.ramp_up {
            Phase::RampUp
        } else if t < self.ramp_up + self.sustain {
            Phase::Sustain
        } else if t < self.duration() {
            Phase::RampDown
        } else {
            Phase::Drain
        }
    }
}

/// The precomputed intended start offsets (seconds from the schedule start), sorted.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub curve: RateCurve,
    offsets: Vec<f64>,
}

impl Schedule {
    pub fn from_config(c: &LoadTestConfig) -> Schedule {
        Schedule::new(RateCurve::from_config(c), c.total_users, c.arrival, c.seed)
    }

    pub fn new(curve: RateCurve, n: u64, spacing: Spacing, seed: u64) -> Schedule {
        let n_usize = n as usize;
        let offsets = match spacing {
            Spacing::Uniform => (0..n).map(|k| curve.inverse(k as f64)).collect(),
            Spacing::Poisson => {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                let mut cum = Vec::with_capacity(n_usize);
                let mut acc = 0.0f64;
                for _ in 0..n {
                    let e: f64 = Exp1.sample(&mut rng);
                    acc += e;
                    cum.push(acc);
                }
                let e: f64 = Exp1.sample(&mut rng);
                let norm = acc + e;
                cum.iter()
                    .map(|c| curve.inverse(c / norm * n as f64))
                    .collect()
            }
        };
        Schedule { curve, offsets }
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Intended start of user `i`, in seconds from the schedule start.
    pub fn offset(&self, i: usize) -> f64 {
        self.offsets[i]
    }

    pub fn offsets(&self) -> &[f64] {
        &self.offsets
    }

    /// Number of arrivals with an intended start ≤ `t`.
    pub fn arrivals_by(&self, t: f64) -> usize {
        self.offsets.partition_point(|o| *o <= t)
    }
}

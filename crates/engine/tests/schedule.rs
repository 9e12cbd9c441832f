//! The arrival schedule: peak solving, integrals under time-scale, spacing.

use vana_load_engine::config::{LoadTestConfig, Preset, Spacing};
use vana_load_engine::schedule::{RateCurve, Schedule};

fn integral(c: &RateCurve, steps: usize) -> f64 {
    // Trapezoidal integration of the rate curve, independent of `cumulative`.
    let d = c.duration();
    let h = d / steps as f64;
    (0..steps)
        .map(|i| 0.5 * h * (c.rate(i as f64 * h) + c.rate((i + 1) as f64 * h)))
        .sum()
}

#[test]
fn peak_is_solved_so_arrivals_integrate_to_total_users() {
    let c = RateCurve::from_config(&LoadTestConfig::default());
    assert!(
        (c.peak - 12_500.0 / 9_000.0).abs() < 1e-12,
        "peak {}",
        c.peak
    );
    assert!((integral(&c, 100_000) - 12_500.0).abs() < 0.01);
}

#[test]
fn time_scaled_schedules_match_the_plans_integral() {
    for preset in [Preset::Burst, Preset::Conservative, Preset::Smoke] {
        for scale in [1.0, 1.0 / 9.0, 0.01, 2.0] {
            let mut cfg = preset.config();
            cfg.time_scale = scale;
            let c = RateCurve::from_config(&cfg);
            let unscaled = RateCurve::from_config(&preset.config());
            assert!((c.duration() - unscaled.duration() * scale).abs() < 1e-6);
            assert!((c.peak - unscaled.peak / scale).abs() < 1e-6 * unscaled.peak / scale);
            let n = cfg.total_users as f64;
            assert!(
                (integral(&c, 200_000) - n).abs() < 1e-3 * n,
                "{} × {scale}",
                preset.name()
            );
            assert!((c.cumulative(c.duration()) - n).abs() < 1e-9);
            for spacing in [Spacing::Uniform, Spacing::Poisson] {
                let s = Schedule::new(c, cfg.total_users, spacing, 7);
                assert_eq!(s.len() as u64, cfg.total_users);
                assert!(s.offsets().windows(2).all(|w| w[0] <= w[1]), "sorted");
                assert!(*s.offsets().last().unwrap() <= c.duration() + 1e-9);
                // Arrivals by time t track Λ(t).
                let tol = match spacing {
                    Spacing::Uniform => 1.0 + 1e-6,
                    Spacing::Poisson => 5.0 * n.sqrt() + 1.0,
                };
                for i in 0..=100 {
                    let t = c.duration() * i as f64 / 100.0;
                    let got = s.arrivals_by(t) as f64;
                    assert!(
                        (got - c.cumulative(t)).abs() <= tol,
                        "{spacing:?} t={t} got {got} want {}",
                        c.cumulative(t)
                    );
                }
            }
        }
    }
}

#[test]
fn inverse_is_the_inverse_of_cumulative() {
    for (u, s, d) in [
        (1800.0, 7200.0, 1800.0),
        (0.0, 60.0, 0.0),
        (30.0, 0.0, 30.0),
        (10.0, 5.0, 0.0),
        (0.0, 5.0, 10.0),
    ] {
        let c = RateCurve::new(500.0, u, s, d);
        for i in 0..=500 {
            let y = i as f64;
            let t = c.inverse(y);
            assert!(
                (c.cumulative(t) - y).abs() < 1e-6,
                "({u},{s},{d}) y={y} t={t}"
            );
        }
    }
}

#[test]
fn poisson_spacing_is_seeded_and_exponential_in_sustain() {
    let c = RateCurve::new(20_000.0, 0.0, 1000.0, 0.0);
    let a = Schedule::new(c, 20_000, Spacing::Poisson, 42);
    let b = Schedule::new(c, 20_000, Spacing::Poisson, 42);
    let other = Schedule::new(c, 20_000, Spacing::Poisson, 43);
    assert_eq!(a.offsets(), b.offsets());
    assert_ne!(a.offsets(), other.offsets());
    // Gaps of a Poisson process at rate 20/s: mean 0.05 s, coefficient of variation ≈ 1.
    let gaps: Vec<f64> = a.offsets().windows(2).map(|w| w[1] - w[0]).collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
    assert!((mean - 0.05).abs() < 0.002, "mean {mean}");
    assert!(
        (var.sqrt() / mean - 1.0).abs() < 0.05,
        "cv {}",
        var.sqrt() / mean
    );
    let u = Schedule::new(c, 20_000, Spacing::Uniform, 42);
    let ugaps: Vec<f64> = u.offsets().windows(2).map(|w| w[1] - w[0]).collect();
    assert!(ugaps.iter().all(|g| (g - 0.05).abs() < 1e-9));
}

/// The shards of a run, each computing the schedule and keeping its stripe,
/// give back the single-process schedule user by user: every user in exactly
/// one shard, at the same intended start. For several n, including n that do
/// not divide the user count, and both spacings. Every prefix of the schedule
/// is split evenly (each shard offers 1/n of the rate all along).
#[test]
fn the_union_of_the_shards_is_the_single_schedule() {
    use vana_load_engine::Shard;
    for total in [1u64, 60, 61, 100, 997] {
        let mut cfg = Preset::Smoke.config();
        cfg.total_users = total;
        for spacing in [Spacing::Uniform, Spacing::Poisson] {
            cfg.arrival = spacing;
            let single = Schedule::from_config(&cfg);
            for n in [1u32, 2, 3, 4, 7, 13] {
                if n as u64 > total {
                    continue;
                }
                let mut union: Vec<(u64, f64)> = Vec::new();
                for shard in Shard::all(n) {
                    // Each shard builds the schedule on its own, as its process does.
                    let own = Schedule::from_config(&cfg);
                    let mine: Vec<(u64, f64)> = shard
                        .users(total)
                        .map(|u| (u, own.offset(u as usize)))
                        .collect();
                    assert_eq!(mine.len() as u64, shard.count_below(total));
                    // Any prefix: within one user of an even split.
                    for m in 0..=total {
                        let due = mine.iter().filter(|(u, _)| *u < m).count() as f64;
                        assert!(
                            (due - m as f64 / n as f64).abs() < 1.0,
                            "{shard} of {total} by {m}"
                        );
                    }
                    union.extend(mine);
                }
                union.sort_by_key(|(u, _)| *u);
                let want: Vec<(u64, f64)> =
                    (0..total).map(|u| (u, single.offset(u as usize))).collect();
                assert_eq!(union, want, "{total} users, {n} shards, {spacing:?}");
            }
        }
    }
}

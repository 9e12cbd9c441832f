//! `plan`: peak rate, Little's law, warnings.

use vana_load_engine::PlanReport;
use vana_load_engine::config::Preset;

#[test]
fn burst_plan_shows_the_cap_never_binds_and_the_artillery_mismatch() {
    let cfg = Preset::Burst.config();
    let r = PlanReport::new(&cfg, None);
    assert!((r.curve.peak - 12_500.0 / 9_000.0).abs() < 1e-9);
    // λ·W = 1.389/s × 60 s ≈ 83 in flight at the plateau.
    assert!(
        (r.peak_in_flight - 12_500.0 / 9_000.0 * 60.0).abs() < 0.5,
        "{}",
        r.peak_in_flight
    );
    assert_eq!(r.cap_binding_secs, 0.0);
    assert!(
        r.warnings.iter().any(|w| w.contains("never the 1000")),
        "{:?}",
        r.warnings
    );
    // The plan's Artillery formula: 1000/1800 s over 150 min = 5000 users, not 12,500.
    assert!(
        r.warnings.iter().any(|w| w.contains("about 5000 users")),
        "{:?}",
        r.warnings
    );
    let text = r.render(&cfg);
    assert!(text.contains("peak rate        1.389 arrivals/s"), "{text}");
    assert!(text.contains('█'));
}

#[test]
fn time_scaled_burst_binds_the_cap() {
    let mut cfg = Preset::Burst.config();
    cfg.time_scale = 0.05; // 9 minutes
    let r = PlanReport::new(&cfg, Some((60.0, "given".into())));
    assert!((r.peak_in_flight - 12_500.0 / 450.0 * 60.0).abs() < 1.0);
    assert!(r.cap_binding_secs > 0.0);
    assert!(
        r.warnings.iter().any(|w| w.contains("cap binds")),
        "{:?}",
        r.warnings
    );
    // A shorter measured journey makes it fit.
    let r = PlanReport::new(&cfg, Some((20.0, "measured".into())));
    assert_eq!(r.cap_binding_secs, 0.0);
    assert!(r.peak_in_flight < 1000.0);
}

#[test]
fn ascii_curve_has_the_trapezoid_shape() {
    let cfg = Preset::Conservative.config();
    let r = PlanReport::new(&cfg, None);
    let art = r.ascii_curve(60, 10);
    let rows: Vec<&str> = art.lines().collect();
    let top = rows[0];
    let bottom = rows[9];
    // The plateau reaches the top row only in the middle; the bottom row is full.
    let filled = |s: &str| s.chars().filter(|c| *c == '█').count();
    assert!(filled(top) >= 35 && filled(top) <= 45, "{art}");
    assert!(filled(bottom) >= 58, "{art}");
}

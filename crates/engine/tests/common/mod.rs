//! Helpers shared by the engine's integration tests: a flat schedule, run
//! options that write into a test directory, and the journal read back.

#![allow(dead_code)]

use std::time::Duration;

use vana_load_engine::config::{LoadTestConfig, Preset};
use vana_load_engine::schema::{Event, Journey};
use vana_load_engine::{LiveMode, RunOptions, StepDef};

/// Steps of the given names, each its own component, with a generous deadline.
pub fn defs(names: &[&'static str]) -> Vec<StepDef> {
    names
        .iter()
        .map(|&n| StepDef::new(n, n, Duration::from_secs(600), n == "register"))
        .collect()
}

pub fn cfg(users: u64, sustain_secs: f64, cap: u64) -> LoadTestConfig {
    let mut c = Preset::Smoke.config();
    c.total_users = users;
    c.max_wallets = users.max(1);
    c.max_concurrent_users = cap;
    c.ramp_up_minutes = 0.0;
    c.ramp_down_minutes = 0.0;
    c.sustain_minutes = sustain_secs / 60.0;
    c.test_duration_minutes = sustain_secs / 60.0;
    c.metrics_interval = 1.0;
    c
}

pub fn opts(dir: &std::path::Path) -> RunOptions {
    RunOptions {
        out_dir: Some(dir.to_path_buf()),
        live: LiveMode::Off,
        run_id: Some("t".into()),
        ..Default::default()
    }
}

pub fn events(dir: &std::path::Path) -> Vec<Event> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The journeys (complete and failed) of a run's journal.
pub fn journeys(ev: &[Event]) -> Vec<&Journey> {
    ev.iter().filter_map(Event::journey).collect()
}

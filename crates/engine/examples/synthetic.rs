//! Runs the engine against a synthetic flow (eleven sleeping steps, ~3 % failures),
//! to see the live view and the results directory without any network:
//!
//! `cargo run -p vana-load-engine --example synthetic -- [PRESET] [TIME_SCALE] [OUT_DIR]`
//! e.g. `... --example synthetic -- smoke 0.2 /tmp/synthetic-run`.

use std::sync::Arc;
use std::time::Duration;

use vana_load_engine::config::Preset;
use vana_load_engine::{
    Flow, FlowError, FlowResult, Progress, RunOptions, StepDef, StepSample, run,
};

#[path = "../tests/report_support/steps.rs"]
mod steps;

struct Synthetic;

impl Flow for Synthetic {
    fn steps(&self) -> Vec<StepDef> {
        steps::defs()
    }

    async fn run(&self, user: u64, progress: &Progress) -> FlowResult {
        let mut steps = Vec::new();
        for (i, &name) in steps::NAMES.iter().enumerate() {
            progress.begin(name);
            let ms = 20 + (user * 31 + i as u64 * 17) % 200;
            let d = Duration::from_millis(ms);
            tokio::time::sleep(d).await;
            if name == "infer_wait" && user % 33 == 7 {
                steps.push(StepSample::failed(name, d, "inference_failed"));
                return FlowResult {
                    steps,
                    error: Some(FlowError {
                        step: name,
                        class: "inference_failed".into(),
                        message: "status failed".into(),
                    }),
                    txs: vec![],
                    counts: Default::default(),
                };
            }
            progress.end(StepSample::ok(name, d));
            steps.push(StepSample::ok(name, d));
        }
        FlowResult::ok(steps)
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let preset: Preset = args
        .first()
        .map_or("smoke", String::as_str)
        .parse()
        .expect("preset");
    let mut cfg = preset.config();
    if let Some(f) = args.get(1) {
        cfg.time_scale = f.parse().expect("time scale");
    }
    let opts = RunOptions {
        out_dir: args.get(2).map(Into::into),
        handle_signals: true,
        ..Default::default()
    };
    match run(cfg, Arc::new(Synthetic), opts).await {
        Ok(out) => {
            println!("{}", serde_json::to_string_pretty(&out.summary).unwrap());
            println!("results in {}", out.out_dir.display());
            std::process::ExitCode::from(out.exit_code())
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}

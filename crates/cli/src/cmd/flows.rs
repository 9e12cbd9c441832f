//! `--flow journey|http` and `--steps LIST`, shared by `run` and `capacity`:
//! which flow the engine drives.
//!
//! - The journey (default): all eleven steps, or with `--steps` only those
//!   (component mode; [`client::component::plan`] holds the rule of which
//!   subsets can be timed alone, and refuses the others by name before
//!   anything starts).
//! - `--flow http`: the pure-HTTP flow ([`super::http_flow`]).
//!
//! Each can also be set as `VANA_LOAD_FLOW` / `VANA_LOAD_STEPS`; the flag
//! wins over its variable.

use std::sync::Arc;

use client::component::Plan;
use client::steps::{Step, StepTimeouts};
use engine::{
    Flow, FlowResult, FlowScope, LoadTestConfig, PrepareError, Progress, RpcCounts, StepDef,
};

use super::http_flow::HttpFlow;
use super::run::{JourneyFlow, journey_flow, plan_steps};

/// Which flow to run.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlowKind {
    /// The Vana journey (all steps, or those of --steps).
    #[default]
    Journey,
    /// Pure HTTP: storage upload, gateway read, subgraph query (no chain, no crypto).
    Http,
}

#[derive(clap::Args, Debug, Default, Clone)]
pub struct FlowArgs {
    /// The flow to run.
    #[arg(long, value_enum, default_value_t = FlowKind::Journey, env = "VANA_LOAD_FLOW")]
    pub flow: FlowKind,
    /// Time only these journey steps, comma-separated in any order, e.g.
    /// `upload,register,index` (component mode). What they need is prepared
    /// for each user before the clock; a subset that cannot be timed alone is
    /// refused with the step it misses.
    #[arg(long, value_name = "STEPS", env = "VANA_LOAD_STEPS")]
    pub steps: Option<String>,
}

/// The flow chosen, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selected {
    Journey(Plan),
    Http,
}

impl FlowArgs {
    /// The flow, or why the flags are refused.
    pub fn selected(&self) -> anyhow::Result<Selected> {
        match (self.flow, &self.steps) {
            (FlowKind::Http, Some(_)) => anyhow::bail!(
                "--steps selects steps of the journey; the http flow has its own three \
                 requests (drop --steps or --flow http)"
            ),
            (FlowKind::Http, None) => Ok(Selected::Http),
            (FlowKind::Journey, None) => Ok(Selected::Journey(Plan::whole())),
            (FlowKind::Journey, Some(list)) => list
                .parse()
                .map(Selected::Journey)
                .map_err(|e| anyhow::anyhow!("--steps {list}: {e}")),
        }
    }
}

impl Selected {
    /// The steps the flow times, as the engine sees them (default deadlines).
    pub fn steps(&self) -> Vec<StepDef> {
        match self {
            Selected::Journey(plan) => plan_steps(&StepTimeouts::default(), plan),
            Selected::Http => HttpFlow::default_steps(),
        }
    }

    /// Whether the users' wallets need funds before the clock.
    pub fn needs_funds(&self) -> bool {
        match self {
            Selected::Journey(plan) => plan.touches_chain(),
            Selected::Http => false,
        }
    }
}

/// The config the engine runs for `selected`: the `stepTimeouts` and
/// `stepComponents` of journey steps the flow does not time are dropped (the
/// loaded profile still sets the deadlines of prepared steps), then every step
/// name, threshold and the journey timeout are checked against the timed steps.
pub fn fit_config(config: &LoadTestConfig, selected: &Selected) -> anyhow::Result<LoadTestConfig> {
    let declared = selected.steps();
    let untimed =
        |name: &str| name.parse::<Step>().is_ok() && !declared.iter().any(|d| d.name == name);
    let mut config = config.clone();
    config.step_timeouts.retain(|n, _| !untimed(n));
    config.step_components.retain(|n, _| !untimed(n));
    config.validate_for(&declared)?;
    Ok(config)
}

/// The flow on `target`.
pub async fn load_flow(
    config: &LoadTestConfig,
    target: client::target::Target,
    run_id: &str,
    selected: &Selected,
) -> anyhow::Result<Arc<LoadFlow>> {
    Ok(Arc::new(match selected {
        Selected::Journey(plan) => {
            LoadFlow::Journey(journey_flow(config, target, run_id, plan.clone()).await?)
        }
        Selected::Http => LoadFlow::Http(Box::new(HttpFlow::new(config, &target, run_id)?)),
    }))
}

/// The flow the engine drives.
pub enum LoadFlow {
    Journey(JourneyFlow),
    Http(Box<HttpFlow>),
}

impl Flow for LoadFlow {
    fn steps(&self) -> Vec<StepDef> {
        match self {
            LoadFlow::Journey(f) => f.steps(),
            LoadFlow::Http(f) => f.steps(),
        }
    }

    async fn run(&self, user: u64, progress: &Progress) -> FlowResult {
        match self {
            LoadFlow::Journey(f) => f.run(user, progress).await,
            LoadFlow::Http(f) => f.run(user, progress).await,
        }
    }

    fn wallet(&self, user: u64) -> String {
        match self {
            LoadFlow::Journey(f) => f.wallet(user),
            LoadFlow::Http(f) => f.wallet(user),
        }
    }

    fn rpc(&self) -> Option<RpcCounts> {
        match self {
            LoadFlow::Journey(f) => f.rpc(),
            LoadFlow::Http(f) => f.rpc(),
        }
    }

    async fn prepare(&self, users: &[u64]) -> Result<(), PrepareError> {
        match self {
            LoadFlow::Journey(f) => f.prepare(users).await,
            LoadFlow::Http(f) => f.prepare(users).await,
        }
    }

    fn scope(&self) -> Option<FlowScope> {
        match self {
            LoadFlow::Journey(f) => f.scope(),
            LoadFlow::Http(f) => f.scope(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(flow: FlowKind, steps: Option<&str>) -> FlowArgs {
        FlowArgs {
            flow,
            steps: steps.map(String::from),
        }
    }

    #[test]
    fn flags_select_a_flow_or_are_refused_by_name() {
        assert_eq!(
            args(FlowKind::Journey, None).selected().unwrap(),
            Selected::Journey(Plan::whole())
        );
        let Selected::Journey(p) = args(FlowKind::Journey, Some("index,register"))
            .selected()
            .unwrap()
        else {
            panic!("a journey plan")
        };
        assert_eq!(p.to_string(), "register,index");
        let e = args(FlowKind::Journey, Some("upload,proof"))
            .selected()
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--steps upload,proof: `proof` needs"), "{e}");
        assert!(e.contains("`proof` needs `register`"), "{e}");
        let e = args(FlowKind::Http, Some("upload"))
            .selected()
            .unwrap_err()
            .to_string();
        assert!(e.contains("--steps"), "{e}");
        assert_eq!(
            args(FlowKind::Http, None).selected().unwrap(),
            Selected::Http
        );
    }

    #[test]
    fn a_component_run_keeps_only_the_timed_steps_settings() {
        let mut cfg = engine::Preset::Smoke.config();
        cfg.step_timeouts.insert("proof".into(), 90.0);
        cfg.step_timeouts.insert("upload".into(), 20.0);
        let sel = args(FlowKind::Journey, Some("upload")).selected().unwrap();
        let fitted = fit_config(&cfg, &sel).unwrap();
        assert_eq!(fitted.step_timeouts.keys().collect::<Vec<_>>(), ["upload"]);
        // A name that is no step at all is still refused.
        cfg.step_timeouts.insert("uplod".into(), 1.0);
        let e = fit_config(&cfg, &sel).unwrap_err().to_string();
        assert!(e.contains("uplod"), "{e}");
        // A threshold on a step the run does not time is refused.
        let mut cfg = engine::Preset::Smoke.config();
        cfg.thresholds = vec![engine::ThresholdSpec::new("p95(proof) < 10s", false)];
        let e = fit_config(&cfg, &sel).unwrap_err().to_string();
        assert!(e.contains("proof"), "{e}");
        assert!(!Selected::Http.needs_funds());
        assert!(!sel.needs_funds(), "upload prepares data and encrypt only");
    }
}

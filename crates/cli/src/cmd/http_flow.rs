//! `--flow http`: the client's pure-HTTP flow
//! ([`client::component::http`]: storage upload, gateway read, subgraph
//! query; no chain, no crypto) as an engine [`Flow`]. Each user's bytes are
//! made in [`Flow::prepare`], before the clock.

use client::component::http::{HttpComponent, HttpEvent, HttpStep, HttpStepResult};
use engine::{
    Flow, FlowError, FlowResult, FlowScope, LoadTestConfig, PrepareError, Progress, StepDef,
    StepSample,
};

use super::run::{SUBGRAPH_QUERIES, data_size};

/// The HTTP flow of a run.
pub struct HttpFlow {
    inner: HttpComponent,
    mix: engine::config::DataMix,
    seed: u64,
}

fn step_def(s: HttpStep, timeout: std::time::Duration) -> StepDef {
    StepDef::new(s.name(), s.component(), timeout, false)
}

impl HttpFlow {
    /// The flow on `target`, with the profile's data mix and `stepTimeouts`.
    pub fn new(
        config: &LoadTestConfig,
        target: &client::target::Target,
        run_id: &str,
    ) -> anyhow::Result<HttpFlow> {
        Ok(HttpFlow {
            inner: HttpComponent::new(target, config.seed, run_id, &config.step_timeouts)?,
            mix: config.data_mix,
            seed: config.seed,
        })
    }

    /// Its steps with their default deadlines (to check a profile before anything starts).
    pub fn default_steps() -> Vec<StepDef> {
        HttpStep::ALL
            .into_iter()
            .map(|s| step_def(s, s.default_timeout()))
            .collect()
    }
}

fn sample(r: &HttpStepResult) -> StepSample {
    StepSample {
        name: r.step.name(),
        duration: r.duration,
        ok: r.ok,
        error_class: r.error.as_ref().map(|e| e.class()),
    }
}

impl Flow for HttpFlow {
    fn steps(&self) -> Vec<StepDef> {
        HttpStep::ALL
            .into_iter()
            .map(|s| step_def(s, self.inner.timeout(s)))
            .collect()
    }

    async fn run(&self, user: u64, progress: &Progress) -> FlowResult {
        let observe = |ev: HttpEvent<'_>| match ev {
            HttpEvent::Begin(s) => progress.begin(s.name()),
            HttpEvent::End(r) => progress.end(sample(r)),
        };
        let results = self.inner.run_observed(user, &observe).await;
        let error = results.iter().find_map(|r| {
            r.error.as_ref().map(|e| FlowError {
                step: r.step.name(),
                class: e.class(),
                message: e.message.clone(),
            })
        });
        FlowResult {
            steps: results.iter().map(sample).collect(),
            error,
            txs: Vec::new(),
            // One GraphQL query per flow that reached its query step.
            counts: std::collections::BTreeMap::from([(
                SUBGRAPH_QUERIES,
                results.iter().filter(|r| r.step == HttpStep::Query).count() as u64,
            )]),
        }
    }

    async fn prepare(&self, users: &[u64]) -> Result<(), PrepareError> {
        self.inner.prepare(
            users
                .iter()
                .map(|&u| (u, data_size(&self.mix, self.seed, u))),
        );
        Ok(())
    }

    fn scope(&self) -> Option<FlowScope> {
        Some(FlowScope {
            flow: "http".into(),
            whole: false,
            prepared: vec!["data".into()],
            skipped: Vec::new(),
            description: "http flow: storage upload, gateway read, subgraph query \
                          (no chain, no crypto) — not the Vana journey"
                .into(),
        })
    }
}

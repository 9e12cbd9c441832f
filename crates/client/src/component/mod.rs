//! Component mode: time some steps of the journey alone, each user's earlier
//! steps prepared before the clock.
//!
//! - [`plan`]: which subsets can be timed alone and what each needs prepared
//!   (the dependency rule, in one place).
//! - [`Component`]: runs a [`Plan`]: [`Component::prepare`] runs the
//!   prepared steps for each user and keeps the journey part-way;
//!   [`Component::run_observed`] later times the selected steps on it.
//! - [`http`]: the pure-HTTP flow (storage upload, gateway read, subgraph
//!   query; no chain, no crypto), the like-for-like comparison with general
//!   HTTP load tools.

pub mod http;
pub mod plan;

pub use plan::{Plan, PlanError};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;

use crate::context::Context;
use crate::data::DataSize;
use crate::errors::JourneyError;
use crate::journey::{JourneyReport, Mode, Observer, Partial, StepEvent, StepResult};
use crate::steps::Step;

/// A user whose preparation failed: the run must not start.
#[derive(Debug, thiserror::Error)]
#[error("user {user}: step `{step}` failed before the clock: {error}")]
pub struct PrepareError {
    pub user: u64,
    pub step: Step,
    pub error: JourneyError,
}

/// A [`Plan`] and each prepared user's journey, waiting for its timed steps.
pub struct Component {
    plan: Plan,
    mode: Mode,
    ready: Mutex<HashMap<u64, Partial>>,
}

impl Component {
    pub fn new(plan: Plan, mode: Mode) -> Component {
        Component {
            plan,
            mode,
            ready: Mutex::new(HashMap::new()),
        }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Prepares `users` (each with its data size), at most `concurrency` at
    /// a time: derives each wallet and runs the plan's prepared steps. The
    /// first failure is returned (the others still finish; nothing is timed).
    pub async fn prepare(
        &self,
        ctx: &Arc<Context>,
        users: impl IntoIterator<Item = (u64, DataSize)>,
        concurrency: usize,
    ) -> Result<(), PrepareError> {
        let users: Vec<_> = users.into_iter().collect();
        let total = users.len();
        let mut done = 0usize;
        let mut first_error = None;
        let mut results = futures::stream::iter(users)
            .map(|(user, size)| self.prepare_one(ctx, user, size))
            .buffer_unordered(concurrency.max(1));
        while let Some(r) = results.next().await {
            done += 1;
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
            if done.is_multiple_of(500) || done == total {
                tracing::info!(
                    "prepared {done} of {total} users before the clock ({})",
                    self.plan.describe()
                );
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn prepare_one(
        &self,
        ctx: &Arc<Context>,
        user: u64,
        size: DataSize,
    ) -> Result<(), PrepareError> {
        let mut journey = Partial::start(ctx, user, size).map_err(|r| failure(user, &r))?;
        if !journey
            .run_steps(ctx, self.mode, self.plan.prepared(), &|_| {})
            .await
        {
            return Err(failure(user, journey.report()));
        }
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user, journey);
        Ok(())
    }

    /// Times the plan's selected steps for `user`, on the journey prepared
    /// for it; the report holds those steps only. A user that was not
    /// prepared fails its first step, classified as a setup error.
    pub async fn run_observed(
        &self,
        ctx: &Arc<Context>,
        user: u64,
        observe: Observer<'_>,
    ) -> JourneyReport {
        let prepared = self
            .ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&user);
        let Some(mut journey) = prepared else {
            let step = self.plan.selected()[0];
            let failed = StepResult {
                name: step,
                ok: false,
                duration: std::time::Duration::ZERO,
                error: Some(JourneyError::rpc(format!(
                    "user {user} was not prepared before the clock"
                ))),
            };
            observe(StepEvent::Begin(step));
            observe(StepEvent::End(&failed));
            return JourneyReport {
                user_index: user,
                steps: vec![failed],
                ..Default::default()
            };
        };
        journey.restart_report();
        journey
            .run_steps(ctx, self.mode, self.plan.selected(), observe)
            .await;
        journey.into_report()
    }
}

fn failure(user: u64, r: &JourneyReport) -> PrepareError {
    let (step, error) = r.error().map_or(
        (
            Step::Wallet,
            JourneyError::rpc("stopped without an error".to_string()),
        ),
        |(s, e)| (s, e.clone()),
    );
    PrepareError { user, step, error }
}

//! One user's task: the slot wait, the journey under the engine's journey
//! timeout, and its measurement from the intended start.
//!
//! Each user ends exactly once, as one of: complete, failed, dropped (its slot
//! wait ran past `maxQueueWaitSecs`: a failure of class `queue_timeout`, with
//! the latency it waited), or cancelled (an abort, while queued or running).
//! A [`CancelGuard`] records the cancellation when the task is dropped, so a
//! task aborted at any await still writes its event.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, timeout, timeout_at};

use super::{Shared, lock, ms};
use crate::flow::{Flow, FlowResult, Progress};
use crate::metrics::DropCause;
use crate::schema::{AbortReason, Cancelled, Dropped, Event, EventStep, EventTx, Journey, Start};

/// Records a cancellation if the user's task is dropped before it ends.
struct CancelGuard<F: Flow> {
    sh: Arc<Shared<F>>,
    user: u64,
    wallet: String,
    intended: Instant,
    probe: Option<String>,
    /// Set once the journey holds a slot.
    progress: Option<Progress>,
    armed: bool,
}

impl<F: Flow> Drop for CancelGuard<F> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let started = self.progress.is_some();
        lock(&self.sh.rec).cancelled(started);
        if started {
            self.sh.prom.in_flight.dec();
        }
        if let Some(c) = &self.probe {
            lock(&self.sh.breakers).probe_abandoned(c, Instant::now());
        }
        self.sh.events.send(Event::FlowCancelled(Cancelled {
            who: self.sh.who(self.user, &self.wallet, self.intended),
            step: self
                .progress
                .as_ref()
                .and_then(|p| p.running())
                .map(str::to_string),
            started,
        }));
    }
}

pub(super) async fn user_task<F: Flow>(
    sh: Arc<Shared<F>>,
    user: u64,
    intended: Instant,
    probe: Option<String>,
) {
    let arrived = Instant::now();
    let lag = arrived.saturating_duration_since(intended);
    lock(&sh.rec).arrival(sh.secs_since_t0(intended), lag);
    sh.prom.arrivals.inc();
    let mut guard = CancelGuard {
        wallet: sh.flow.wallet(user),
        sh: sh.clone(),
        user,
        intended,
        probe,
        progress: None,
        armed: true,
    };
    let (permit, delayed) = match sh.sem.clone().try_acquire_owned() {
        Ok(p) => (p, false),
        Err(_) => {
            lock(&sh.rec).delayed += 1;
            sh.prom.delayed.inc();
            let deadline = intended + Duration::from_secs_f64(sh.cfg.max_queue_wait_secs);
            tokio::select! {
                r = timeout_at(deadline, sh.sem.clone().acquire_owned()) => match r {
                    Ok(Ok(p)) => (p, true),
                    _ => {
                        guard.armed = false;
                        drop_arrival(&guard);
                        return;
                    }
                },
                // Aborted while queued: the guard records the cancellation.
                _ = sh.cancel.cancelled() => return,
            }
        }
    };
    if sh.cancel.is_cancelled() {
        // A slot freed during the abort's grace period: it starts nothing new.
        return;
    }
    let started = Instant::now();
    let wait = started.saturating_duration_since(intended);
    lock(&sh.rec).start(wait);
    sh.prom.started.inc();
    sh.prom.in_flight.inc();
    sh.events.send(Event::FlowStart(Start {
        who: sh.who(user, &guard.wallet, intended),
        wait_ms: ms(wait),
        delayed,
    }));

    let progress = Progress::default();
    guard.progress = Some(progress.clone());
    let mut result = match timeout(sh.journey_timeout, sh.flow.run(user, &progress)).await {
        Ok(r) => r,
        Err(_) => progress.timed_out(format!(
            "journey exceeded the journey timeout of {:.0} s",
            sh.journey_timeout.as_secs_f64()
        )),
    };
    let end = Instant::now();
    drop(permit);
    guard.armed = false;
    // Secrets leave the message here, once, before anything records it.
    if let Some(err) = result.error.as_mut() {
        err.message = crate::redact::redact_text(&err.message);
    }
    let e2e = end.saturating_duration_since(intended);
    let at_s = sh.secs_since_t0(end);
    lock(&sh.rec).finish(at_s, e2e, &result);
    sh.prom.in_flight.dec();
    for s in result.steps.iter().filter(|s| s.ok) {
        sh.prom
            .step
            .get_or_create(&vec![("step".to_string(), s.name.to_string())])
            .observe(s.duration.as_secs_f64());
    }
    let journey = journey_of(&sh, &guard, &result, e2e, wait);
    match &result.error {
        None => {
            sh.prom.completed.get_or_create(&vec![]).inc();
            sh.prom.e2e.observe(e2e.as_secs_f64());
            let comps: Vec<&str> = result
                .steps
                .iter()
                .map(|s| sh.component_of(s.name))
                .collect();
            lock(&sh.breakers).success(comps);
            sh.events.send(Event::FlowComplete(journey));
        }
        Some(err) => {
            sh.prom
                .failed
                .get_or_create(&vec![
                    ("class".to_string(), err.class.clone()),
                    ("step".to_string(), err.step.to_string()),
                ])
                .inc();
            sh.events.send(Event::FlowFailed(journey));
            let component = sh.component_of(err.step).to_string();
            let tripped = lock(&sh.breakers).failure(&component, end, at_s);
            if tripped {
                tracing::warn!("circuit breaker opened for component `{component}`");
            }
            if sh.cfg.fail_fast && sh.is_critical(&err.class) {
                sh.abort(AbortReason::FailFast {
                    user,
                    step: err.step.to_string(),
                    class: err.class.clone(),
                });
            } else if sh.cfg.fail_fast && tripped {
                sh.abort(AbortReason::Breaker { component });
            }
        }
    }
}

/// An arrival whose slot wait ran out: a `queue_timeout` failure with the time it waited.
fn drop_arrival<F: Flow>(g: &CancelGuard<F>) {
    let sh = &g.sh;
    let now = Instant::now();
    let waited = now.saturating_duration_since(g.intended);
    lock(&sh.rec).dropped(
        sh.secs_since_t0(now),
        waited,
        &DropCause::QueueTimeout,
        &format!(
            "waited {:.1} s for one of {} slots (maxQueueWaitSecs {})",
            waited.as_secs_f64(),
            sh.cfg.max_concurrent_users,
            sh.cfg.max_queue_wait_secs
        ),
    );
    sh.prom.dropped.inc();
    if let Some(c) = &g.probe {
        lock(&sh.breakers).probe_abandoned(c, now);
    }
    sh.events.send(Event::FlowDropped(Dropped {
        who: sh.who(g.user, &g.wallet, g.intended),
        error: DropCause::QueueTimeout.class(),
        wait_ms: ms(waited),
        delayed: true,
    }));
}

/// The journal line of a finished journey.
fn journey_of<F: Flow>(
    sh: &Shared<F>,
    g: &CancelGuard<F>,
    r: &FlowResult,
    e2e: Duration,
    wait: Duration,
) -> Journey {
    Journey {
        who: sh.who(g.user, &g.wallet, g.intended),
        duration_ms: ms(e2e),
        wait_ms: ms(wait),
        step: r.error.as_ref().map(|e| e.step.to_string()),
        error: r.error.as_ref().map(|e| e.class.clone()),
        message: r
            .error
            .as_ref()
            .map(|e| e.message.chars().take(500).collect()),
        steps: r
            .steps
            .iter()
            .map(|s| EventStep {
                name: s.name.to_string(),
                ms: ms(s.duration),
                ok: s.ok,
                error: s.error_class.clone(),
            })
            .collect(),
        txs: r
            .txs
            .iter()
            .map(|t| EventTx {
                kind: t.kind.to_string(),
                gas_used: t.gas_used,
                fee_wei: t.fee_wei.to_string(),
                confirm_ms: ms(t.confirm),
                block: t.block,
            })
            .collect(),
        counts: r.counts.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    }
}

//! The dispatcher: every arrival on its absolute deadline, then the drain.
//!
//! Arrivals are spawned at `t0 + offset`, never relative to the previous one,
//! so dispatch does not drift. An arrival a circuit breaker refuses is shed
//! here (a failure of class `breaker(<component>)`). After the schedule, the
//! dispatcher waits for the journeys in flight; after an abort it gives them
//! `abortGraceSecs`, then cancels the rest (each cancelled task records itself).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

use super::{Shared, lock, user};
use crate::breaker::Admit;
use crate::flow::Flow;
use crate::metrics::DropCause;
use crate::schedule::Schedule;
use crate::schema::{Dropped, Event};

/// Dispatches the users in `todo` (schedule indices, ascending).
pub(super) async fn dispatch<F: Flow>(sh: Arc<Shared<F>>, sched: Arc<Schedule>, todo: Vec<u64>) {
    let mut set = JoinSet::new();
    for &user in &todo {
        let intended = sh.t0 + Duration::from_secs_f64(sched.offset(user as usize));
        tokio::select! {
            biased;
            _ = sh.cancel.cancelled() => break,
            _ = sleep_until(intended) => {}
        }
        while set.try_join_next().is_some() {}
        let admit = lock(&sh.breakers).admit(Instant::now());
        match admit {
            Admit::Shed(component) => shed(&sh, user, intended, &component),
            Admit::Yes => {
                set.spawn(user::user_task(sh.clone(), user, intended, None));
            }
            Admit::Probe(c) => {
                set.spawn(user::user_task(sh.clone(), user, intended, Some(c)));
            }
        }
    }
    drain(&sh, set).await;
}

/// An arrival refused by an open breaker.
fn shed<F: Flow>(sh: &Shared<F>, user: u64, intended: Instant, component: &str) {
    let now = Instant::now();
    let lag = now.saturating_duration_since(intended);
    let cause = DropCause::Shed {
        component: component.to_string(),
    };
    {
        let mut r = lock(&sh.rec);
        r.arrival(sh.secs_since_t0(intended), lag);
        r.dropped(
            sh.secs_since_t0(now),
            lag,
            &cause,
            &format!("the circuit breaker of `{component}` was open"),
        );
    }
    sh.prom.arrivals.inc();
    sh.prom.dropped.inc();
    sh.events.send(Event::FlowDropped(Dropped {
        who: sh.who(user, &sh.flow.wallet(user), intended),
        error: cause.class(),
        wait_ms: super::ms(lag),
        delayed: false,
    }));
}

/// Waits for in-flight journeys; after an abort, for at most the grace period.
async fn drain<F: Flow>(sh: &Shared<F>, mut set: JoinSet<()>) {
    let grace = Duration::from_secs_f64(sh.cfg.abort_grace_secs);
    let mut deadline: Option<Instant> = None;
    loop {
        tokio::select! {
            r = set.join_next() => if r.is_none() { break },
            _ = sh.cancel.cancelled(), if deadline.is_none() => {
                deadline = Some(Instant::now() + grace);
            }
            _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                set.abort_all();
                while set.join_next().await.is_some() {}
                break;
            }
        }
    }
}

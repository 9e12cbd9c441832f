//! Per-component circuit breakers.
//!
//! A component (the component of the step a journey failed in) that fails
//! `consecutiveFailures` journeys in a row opens its breaker: new arrivals are
//! shed (counted as dropped, reported per component) for `cooldownSecs`. Then one
//! probe journey is let through (half-open); its success closes the breaker,
//! its failure reopens it. Every journey crosses every component, so any open
//! breaker sheds the whole arrival.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::config::BreakerConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open {
        until: Instant,
    },
    /// A probe is running.
    HalfOpen,
}

#[derive(Debug, Clone)]
struct Breaker {
    state: State,
    consecutive: u32,
    trips: u32,
    shed: u64,
    opened_at_s: Vec<f64>,
}

/// What the report shows of one breaker.
#[derive(Debug, Clone, Serialize, serde::Deserialize, schemars::JsonSchema, PartialEq)]
pub struct BreakerReport {
    pub component: String,
    pub trips: u32,
    pub shed: u64,
    pub opened_at_s: Vec<f64>,
    pub open_at_end: bool,
}

/// Whether an arrival may start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Start it as the probe of this component's half-open breaker.
    Probe(String),
    /// Shed because this component's breaker is open.
    Shed(String),
}

#[derive(Debug)]
pub struct Breakers {
    cfg: BreakerConfig,
    cooldown: Duration,
    map: BTreeMap<String, Breaker>,
}

impl Breakers {
    pub fn new(cfg: BreakerConfig) -> Breakers {
        Breakers {
            cfg,
            cooldown: Duration::from_secs_f64(cfg.cooldown_secs),
            map: BTreeMap::new(),
        }
    }

    /// Decides for a new arrival at `now`.
    pub fn admit(&mut self, now: Instant) -> Admit {
        if !self.cfg.enabled {
            return Admit::Yes;
        }
        let mut probe = None;
        for (name, b) in self.map.iter_mut() {
            match b.state {
                State::Closed => {}
                State::HalfOpen => {
                    b.shed += 1;
                    return Admit::Shed(name.clone());
                }
                State::Open { until } if now < until => {
                    b.shed += 1;
                    return Admit::Shed(name.clone());
                }
                State::Open { .. } => probe = Some(name.clone()),
            }
        }
        match probe {
            Some(name) => {
                if let Some(b) = self.map.get_mut(&name) {
                    b.state = State::HalfOpen;
                }
                Admit::Probe(name)
            }
            None => Admit::Yes,
        }
    }

    /// A journey succeeded, crossing `components`.
    pub fn success<'a>(&mut self, components: impl IntoIterator<Item = &'a str>) {
        for c in components {
            if let Some(b) = self.map.get_mut(c) {
                b.consecutive = 0;
                if b.state == State::HalfOpen {
                    b.state = State::Closed;
                }
            }
        }
    }

    /// A journey failed in `component`. Returns true when this opened its breaker.
    pub fn failure(&mut self, component: &str, now: Instant, at_s: f64) -> bool {
        if !self.cfg.enabled {
            return false;
        }
        let b = self
            .map
            .entry(component.to_string())
            .or_insert_with(|| Breaker {
                state: State::Closed,
                consecutive: 0,
                trips: 0,
                shed: 0,
                opened_at_s: Vec::new(),
            });
        b.consecutive += 1;
        let trip = match b.state {
            State::HalfOpen => true,
            State::Closed => b.consecutive >= self.cfg.consecutive_failures,
            State::Open { .. } => false,
        };
        if trip {
            b.state = State::Open {
                until: now + self.cooldown,
            };
            b.trips += 1;
            b.opened_at_s.push(at_s);
        }
        trip
    }

    /// A probe journey was cancelled or dropped: let another probe through later.
    pub fn probe_abandoned(&mut self, component: &str, now: Instant) {
        if let Some(b) = self.map.get_mut(component)
            && b.state == State::HalfOpen
        {
            b.state = State::Open { until: now };
        }
    }

    pub fn open_components(&self, now: Instant) -> Vec<String> {
        self.map
            .iter()
            .filter(|(_, b)| match b.state {
                State::Closed => false,
                State::HalfOpen => true,
                State::Open { until } => now < until,
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub fn report(&self, now: Instant) -> Vec<BreakerReport> {
        let open = self.open_components(now);
        self.map
            .iter()
            .filter(|(_, b)| b.trips > 0)
            .map(|(k, b)| BreakerReport {
                component: k.clone(),
                trips: b.trips,
                shed: b.shed,
                opened_at_s: b.opened_at_s.clone(),
                open_at_end: open.contains(k),
            })
            .collect()
    }
}

//! Faults on purpose: the `[faults]` section of the twin config and the
//! shared, changeable fault settings every part of the twin consults.
//!
//! ```toml
//! [faults]
//! seed = 7                 # the one RNG every injected fault draws from
//! admin_port = 0           # PUT/GET /admin/faults on loopback (the manifest lists it)
//! [faults.chain]           # the JSON-RPC proxy in front of anvil
//! error_rate = 0.02        # answered with a JSON-RPC error
//! latency_ms = 20          # added to every call
//! stall_rate = 0.0         # never answered (the caller's timeout ends it)
//! drop_tx_rate = 0.01      # eth_sendRawTransaction acknowledged but never sent on
//! [faults.storage]         # uploads (and other API calls)
//! error_rate = 0.05        # answered with `error_status` (default 503)
//! [faults.gateway]         # downloads through the storage gateway (`/ipfs/…`)
//! latency_ms = 500
//! [faults.personal_server]
//! rate_limit_rate = 0.1    # 429 with `Retry-After: retry_after_s`
//! [faults.indexer]
//! stall = true             # the indexer stops following the chain
//! [faults.inference]
//! fail_rate = 0.1          # predictions end `failed`
//! [faults.tee]
//! silent_rate = 0.2        # RunProof accepted, no proof ever comes
//! ```
//!
//! Without a `[faults]` section nothing of this runs. With one (even empty),
//! the twin puts [`chain`]'s proxy between every client and anvil, wraps
//! every service's router in [`layer`]'s fault layer, and serves [`admin`],
//! so a run can change the faults while it goes on. Every component draws
//! from one seeded RNG, so a test with a fixed seed and order of requests
//! sees the same faults each time.
//!
//! The component a service's faults come from reaches it through a task-local
//! ([`scope`]/[`current`]), set by the twin around each service's `spawn`:
//! the services keep their signatures, and one without faults pays nothing.

pub mod admin;
pub mod chain;
pub mod layer;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// `[faults]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultsConfig {
    /// Seed of the RNG every fault draws from. Default 0.
    pub seed: u64,
    /// Port of the admin endpoint on loopback. Default 0: any free port.
    pub admin_port: u16,
    pub chain: ChainFaults,
    pub storage: HttpFaults,
    pub gateway: HttpFaults,
    pub relayer: HttpFaults,
    pub indexer: HttpFaults,
    pub personal_server: HttpFaults,
    pub inference: HttpFaults,
    pub tee: HttpFaults,
}

/// `[faults.chain]`: what the JSON-RPC proxy does to calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainFaults {
    /// Probability a call is answered with a JSON-RPC error (`-32603`).
    pub error_rate: f64,
    /// Milliseconds added to every call.
    pub latency_ms: u64,
    /// Probability a call is never answered (held for `stall_ms`, then 504).
    pub stall_rate: f64,
    /// How long a stalled call is held. Default 600000.
    pub stall_ms: u64,
    /// Probability an `eth_sendRawTransaction` is acknowledged with its hash
    /// but never reaches the node: a dropped transaction.
    pub drop_tx_rate: f64,
}

impl Default for ChainFaults {
    fn default() -> Self {
        ChainFaults {
            error_rate: 0.0,
            latency_ms: 0,
            stall_rate: 0.0,
            stall_ms: DEFAULT_STALL_MS,
            drop_tx_rate: 0.0,
        }
    }
}

/// What the fault layer does to a service's HTTP requests, plus the few
/// faults only one component has (`stall`: indexer, `fail_rate`:
/// inference, `silent_rate`: TEE; validation refuses them elsewhere).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpFaults {
    /// Probability a request is answered with `error_status`.
    pub error_rate: f64,
    /// Default 503.
    pub error_status: u16,
    /// Probability a request is answered 429 with `Retry-After`.
    pub rate_limit_rate: f64,
    /// The `Retry-After` of an injected 429, in seconds. Default 1.
    pub retry_after_s: u64,
    /// Milliseconds added to every request.
    pub latency_ms: u64,
    /// Probability a request is never answered (held for `stall_ms`, then 504).
    pub stall_rate: f64,
    /// How long a stalled request is held. Default 600000.
    pub stall_ms: u64,
    /// Indexer only: stop following the chain while set.
    pub stall: bool,
    /// Inference only: probability a prediction ends `failed`.
    pub fail_rate: f64,
    /// TEE only: probability a `RunProof` is accepted and never proved.
    pub silent_rate: f64,
}

impl Default for HttpFaults {
    fn default() -> Self {
        HttpFaults {
            error_rate: 0.0,
            error_status: 503,
            rate_limit_rate: 0.0,
            retry_after_s: 1,
            latency_ms: 0,
            stall_rate: 0.0,
            stall_ms: DEFAULT_STALL_MS,
            stall: false,
            fail_rate: 0.0,
            silent_rate: 0.0,
        }
    }
}

const DEFAULT_STALL_MS: u64 = 600_000;

fn check_rate(field: String, rate: f64) -> Result<(), ConfigError> {
    if rate.is_finite() && (0.0..=1.0).contains(&rate) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            field,
            format!("must be a probability between 0 and 1 (got {rate})"),
        ))
    }
}

impl ChainFaults {
    fn validate(&self) -> Result<(), ConfigError> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("stall_rate", self.stall_rate),
            ("drop_tx_rate", self.drop_tx_rate),
        ] {
            check_rate(format!("faults.chain.{name}"), rate)?;
        }
        Ok(())
    }
}

impl HttpFaults {
    fn validate(&self, component: &str) -> Result<(), ConfigError> {
        let field = |name: &str| format!("faults.{component}.{name}");
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("rate_limit_rate", self.rate_limit_rate),
            ("stall_rate", self.stall_rate),
            ("fail_rate", self.fail_rate),
            ("silent_rate", self.silent_rate),
        ] {
            check_rate(field(name), rate)?;
        }
        if !(400..=599).contains(&self.error_status) {
            return Err(ConfigError::invalid(
                field("error_status"),
                format!(
                    "must be an HTTP error status 400..=599 (got {})",
                    self.error_status
                ),
            ));
        }
        let only = |name: &str, set: bool, owner: &str| {
            if set && component != owner {
                Err(ConfigError::invalid(
                    field(name),
                    format!("only [faults.{owner}] has {name}"),
                ))
            } else {
                Ok(())
            }
        };
        only("stall", self.stall, "indexer")?;
        only("fail_rate", self.fail_rate > 0.0, "inference")?;
        only("silent_rate", self.silent_rate > 0.0, "tee")
    }

    /// Whether this injects anything at the HTTP level.
    fn any_http(&self) -> bool {
        self.error_rate > 0.0
            || self.rate_limit_rate > 0.0
            || self.latency_ms > 0
            || self.stall_rate > 0.0
    }
}

impl FaultsConfig {
    /// The components with HTTP-level faults, by the names the twin's
    /// services and the flow's steps use.
    pub fn http(&self) -> [(&'static str, &HttpFaults); 7] {
        [
            ("storage", &self.storage),
            ("gateway", &self.gateway),
            ("relayer", &self.relayer),
            ("indexer", &self.indexer),
            ("personal_server", &self.personal_server),
            ("inference", &self.inference),
            ("tee", &self.tee),
        ]
    }

    /// Checks every rate and status; errors name the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.chain.validate()?;
        for (name, f) in self.http() {
            f.validate(name)?;
        }
        Ok(())
    }

    /// The components something is injected into (for logs and tests).
    pub fn active(&self) -> Vec<&'static str> {
        let c = &self.chain;
        let chain = c.error_rate > 0.0 || c.latency_ms > 0 || c.stall_rate > 0.0;
        let mut out: Vec<&'static str> = Vec::new();
        if chain || c.drop_tx_rate > 0.0 {
            out.push("chain");
        }
        for (name, f) in self.http() {
            if f.any_http() || f.stall || f.fail_rate > 0.0 || f.silent_rate > 0.0 {
                out.push(name);
            }
        }
        out
    }
}

/// The live fault settings of one twin; clones share them.
#[derive(Debug, Clone)]
pub struct Faults(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    config: RwLock<FaultsConfig>,
    rng: Mutex<StdRng>,
    /// Faults injected so far, by `component.kind`.
    injected: Mutex<BTreeMap<String, u64>>,
    /// Off while the twin starts: its own setup (deploying, funding,
    /// registering the TEE) is not what a fault is meant to hit.
    armed: AtomicBool,
}

impl Faults {
    pub fn new(config: FaultsConfig) -> Faults {
        Faults(Arc::new(Inner {
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            config: RwLock::new(config),
            injected: Mutex::new(BTreeMap::new()),
            armed: AtomicBool::new(false),
        }))
    }

    /// Starts injecting (the twin calls it once every service runs).
    pub fn arm(&self) {
        self.0.armed.store(true, Ordering::SeqCst);
    }

    /// Whether `[faults.indexer] stall` holds the indexer now.
    pub fn indexer_stalled(&self) -> bool {
        self.0.armed.load(Ordering::Relaxed) && self.with(|c| c.indexer.stall)
    }

    /// Counts one injected fault of `kind` in `component`.
    pub fn count(&self, component: &str, kind: &str) {
        *self
            .0
            .injected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(format!("{component}.{kind}"))
            .or_default() += 1;
    }

    /// Faults injected so far, by `component.kind` (e.g. `tee.error`).
    pub fn injected(&self) -> BTreeMap<String, u64> {
        self.0
            .injected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The settings now.
    pub fn get(&self) -> FaultsConfig {
        self.0
            .config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the settings (validated first); a new seed restarts the RNG.
    pub fn set(&self, config: FaultsConfig) -> Result<(), ConfigError> {
        config.validate()?;
        let mut current = self
            .0
            .config
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if config.seed != current.seed {
            *self.0.rng.lock().unwrap_or_else(PoisonError::into_inner) =
                StdRng::seed_from_u64(config.seed);
        }
        *current = config;
        Ok(())
    }

    /// Reads one value of the settings without cloning them all.
    pub fn with<T>(&self, f: impl FnOnce(&FaultsConfig) -> T) -> T {
        f(&self.0.config.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// `true` with probability `rate` (never for 0, always for 1).
    pub fn roll(&self, rate: f64) -> bool {
        if rate <= 0.0 || !self.0.armed.load(Ordering::Relaxed) {
            return false;
        }
        if rate >= 1.0 {
            return true;
        }
        self.0
            .rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .r#gen::<f64>()
            < rate
    }
}

tokio::task_local! {
    static CURRENT: Faults;
}

/// Runs `fut` (a service's `spawn`) with `faults` as the [`current`] ones.
pub async fn scope<F: std::future::Future>(faults: Option<Faults>, fut: F) -> F::Output {
    match faults {
        Some(f) => CURRENT.scope(f, fut).await,
        None => fut.await,
    }
}

/// The faults of the twin whose service is being spawned, if it has any.
pub fn current() -> Option<Faults> {
    CURRENT.try_with(Clone::clone).ok()
}

/// What an injected HTTP-level fault does to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpFault {
    /// Answer with this status.
    Error(u16),
    /// Answer 429 with `Retry-After` in seconds.
    RateLimited(u64),
    /// Never answer (hold the request this long, then 504).
    Stall(Duration),
}

impl HttpFault {
    /// `stall`, `error` or `rate_limit`: the kind counted in [`Faults::injected`].
    pub fn kind(&self) -> &'static str {
        match self {
            HttpFault::Error(_) => "error",
            HttpFault::RateLimited(_) => "rate_limit",
            HttpFault::Stall(_) => "stall",
        }
    }
}

impl Faults {
    /// Draws the fate of one request to `component`: its added latency and
    /// at most one fault (stall, then error, then rate limit).
    pub fn draw_http(&self, component: &str) -> (Duration, Option<HttpFault>) {
        let f = self.with(|c| {
            c.http()
                .into_iter()
                .find(|(name, _)| *name == component)
                .map(|(_, f)| f.clone())
        });
        let Some(f) = f else {
            return (Duration::ZERO, None);
        };
        if !self.0.armed.load(Ordering::Relaxed) {
            return (Duration::ZERO, None);
        }
        let latency = Duration::from_millis(f.latency_ms);
        let fault = if self.roll(f.stall_rate) {
            Some(HttpFault::Stall(Duration::from_millis(f.stall_ms)))
        } else if self.roll(f.error_rate) {
            Some(HttpFault::Error(f.error_status))
        } else if self.roll(f.rate_limit_rate) {
            Some(HttpFault::RateLimited(f.retry_after_s))
        } else {
            None
        };
        if let Some(f) = &fault {
            self.count(component, f.kind());
        }
        (latency, fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_section_injects_nothing_and_validates() {
        let c: FaultsConfig = toml::from_str("").unwrap();
        c.validate().unwrap();
        assert!(c.active().is_empty());
        let f = Faults::new(c);
        for _ in 0..100 {
            assert_eq!(f.draw_http("storage"), (Duration::ZERO, None));
        }
    }

    #[test]
    fn errors_name_the_field() {
        let c: FaultsConfig = toml::from_str("[storage]\nerror_rate = 1.5\n").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.starts_with("faults.storage.error_rate:"), "{e}");
        let c: FaultsConfig = toml::from_str("[storage]\nsilent_rate = 0.5\n").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("only [faults.tee]"), "{e}");
        let e = toml::from_str::<FaultsConfig>("[chain]\nerror_rat = 0.5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("error_rat"), "{e}");
    }

    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let c: FaultsConfig =
            toml::from_str("seed = 3\n[tee]\nerror_rate = 0.5\n[storage]\nrate_limit_rate = 0.3\n")
                .unwrap();
        let draws = |f: &Faults| {
            (0..200)
                .map(|i| f.draw_http(if i % 2 == 0 { "tee" } else { "storage" }).1)
                .collect::<Vec<_>>()
        };
        let armed = |c: FaultsConfig| {
            let f = Faults::new(c);
            f.arm();
            f
        };
        let (a, b) = (draws(&armed(c.clone())), draws(&armed(c)));
        assert_eq!(a, b);
        let errors = a
            .iter()
            .filter(|f| matches!(f, Some(HttpFault::Error(503))))
            .count();
        let limited = a
            .iter()
            .filter(|f| matches!(f, Some(HttpFault::RateLimited(1))))
            .count();
        assert!((30..=70).contains(&errors), "{errors} of 100 at rate 0.5");
        assert!((10..=50).contains(&limited), "{limited} of 100 at rate 0.3");
    }

    #[test]
    fn set_validates_and_replaces() {
        let f = Faults::new(FaultsConfig::default());
        let mut c = f.get();
        c.tee.error_rate = 1.0;
        f.set(c.clone()).unwrap();
        assert_eq!(
            f.draw_http("tee").1,
            None,
            "nothing before the twin arms it"
        );
        f.arm();
        f.set(FaultsConfig::default()).unwrap();
        c.tee.error_rate = 2.0;
        assert!(f.set(c.clone()).is_err());
        assert_eq!(f.get(), FaultsConfig::default());
        c.tee.error_rate = 1.0;
        f.set(c).unwrap();
        assert_eq!(f.draw_http("tee").1, Some(HttpFault::Error(503)));
        assert_eq!(f.get().active(), vec!["tee"]);
    }
}

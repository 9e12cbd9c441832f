//! The eleven journey steps: the one declaration of each step's name, the
//! component it exercises, its default deadline and whether it touches the
//! chain. The engine learns them through its `Flow` trait (the CLI adapts);
//! nothing else in the workspace lists step names.
//!
//! Deadlines are layered, later wins: [`Step::default_timeout`] → a target's
//! `[timeouts]` ([`StepTimeouts::from_secs_table`]) → a profile's
//! `stepTimeouts` (preset → profile file → environment → CLI).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One step of the journey, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Wallet,
    Data,
    Encrypt,
    Upload,
    Register,
    Index,
    Proof,
    InferRequest,
    InferWait,
    Result,
    Claim,
}

impl Step {
    /// All steps in journey order.
    pub const ALL: [Step; 11] = [
        Step::Wallet,
        Step::Data,
        Step::Encrypt,
        Step::Upload,
        Step::Register,
        Step::Index,
        Step::Proof,
        Step::InferRequest,
        Step::InferWait,
        Step::Result,
        Step::Claim,
    ];

    /// The name used in reports: `wallet`, `data`, …, `infer_wait`, `result`, `claim`.
    pub fn name(self) -> &'static str {
        match self {
            Step::Wallet => "wallet",
            Step::Data => "data",
            Step::Encrypt => "encrypt",
            Step::Upload => "upload",
            Step::Register => "register",
            Step::Index => "index",
            Step::Proof => "proof",
            Step::InferRequest => "infer_request",
            Step::InferWait => "infer_wait",
            Step::Result => "result",
            Step::Claim => "claim",
        }
    }

    /// The component the step exercises (breakers and bottleneck analysis).
    pub fn component(self) -> &'static str {
        match self {
            Step::Wallet | Step::Claim => "chain",
            Step::Data | Step::Encrypt => "client",
            Step::Upload => "storage",
            Step::Register => "relayer",
            Step::Index => "indexer",
            Step::Proof => "tee",
            Step::InferRequest | Step::Result => "personal_server",
            Step::InferWait => "inference",
        }
    }

    /// Whether the step sends a transaction or waits for one.
    pub fn touches_chain(self) -> bool {
        matches!(
            self,
            Step::Wallet | Step::Register | Step::Proof | Step::Claim
        )
    }

    /// The default deadline of a step.
    pub fn default_timeout(self) -> Duration {
        Duration::from_secs(match self {
            Step::Wallet => 60,
            Step::Data | Step::Encrypt => 30,
            Step::Upload => 60,
            Step::Register => 120,
            Step::Index => 60,
            Step::Proof => 180,
            Step::InferRequest => 30,
            Step::InferWait => 180,
            Step::Result => 30,
            Step::Claim => 120,
        })
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Step {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Step::ALL
            .into_iter()
            .find(|st| st.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Step::ALL.iter().map(|s| s.name()).collect();
                format!("unknown step {s:?}: expected one of {}", names.join(", "))
            })
    }
}

/// Per-step deadlines; steps not overridden use [`Step::default_timeout`].
/// The sum of the defaults is 900 s, the default journey timeout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepTimeouts {
    overrides: BTreeMap<Step, Duration>,
}

impl StepTimeouts {
    pub fn get(&self, step: Step) -> Duration {
        self.overrides
            .get(&step)
            .copied()
            .unwrap_or_else(|| step.default_timeout())
    }

    pub fn set(&mut self, step: Step, limit: Duration) {
        self.overrides.insert(step, limit);
    }

    /// Applies a `{step name: seconds}` table over these deadlines.
    pub fn apply_secs_table(&mut self, table: &BTreeMap<String, f64>) -> Result<(), String> {
        for (step, limit) in StepTimeouts::from_secs_table(table)?.overrides {
            self.set(step, limit);
        }
        Ok(())
    }

    /// From a `{step name: seconds}` table (the `[timeouts]` of a target file).
    pub fn from_secs_table(table: &BTreeMap<String, f64>) -> Result<Self, String> {
        let mut t = StepTimeouts::default();
        for (name, secs) in table {
            let step: Step = name.parse().map_err(|e| format!("[timeouts]: {e}"))?;
            let limit = Duration::try_from_secs_f64(*secs)
                .ok()
                .filter(|_| secs.is_finite() && *secs > 0.0)
                .ok_or_else(|| {
                    format!("[timeouts].{name}: must be a positive number of seconds, got {secs}")
                })?;
            t.set(step, limit);
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_too_large_for_a_duration_is_a_named_error() {
        // Found by the config fuzzer: 1e300 s used to panic in Duration.
        for secs in [1e300, f64::MAX, f64::NAN, f64::INFINITY, -1.0, 0.0] {
            let table = BTreeMap::from([("proof".to_string(), secs)]);
            let e = StepTimeouts::from_secs_table(&table).unwrap_err();
            assert!(e.starts_with("[timeouts].proof:"), "{e}");
        }
    }

    #[test]
    fn names_are_the_plans_and_round_trip() {
        let names: Vec<_> = Step::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "wallet",
                "data",
                "encrypt",
                "upload",
                "register",
                "index",
                "proof",
                "infer_request",
                "infer_wait",
                "result",
                "claim"
            ]
        );
        for s in Step::ALL {
            assert_eq!(s.name().parse::<Step>().unwrap(), s);
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.name())
            );
        }
    }

    #[test]
    fn every_step_has_a_component_and_the_chain_steps_are_the_four_transactions() {
        let chain: Vec<_> = Step::ALL
            .iter()
            .filter(|s| s.touches_chain())
            .map(|s| s.name())
            .collect();
        assert_eq!(chain, ["wallet", "register", "proof", "claim"]);
        assert_eq!(Step::Register.component(), "relayer");
        assert_eq!(Step::InferWait.component(), "inference");
        let sum: u64 = Step::ALL
            .iter()
            .map(|s| s.default_timeout().as_secs())
            .sum();
        assert_eq!(sum, 900);
    }

    #[test]
    fn a_profile_table_layers_over_a_target_table() {
        let mut target = BTreeMap::new();
        target.insert("index".to_string(), 30.0);
        target.insert("proof".to_string(), 90.0);
        let mut t = StepTimeouts::from_secs_table(&target).unwrap();
        let mut profile = BTreeMap::new();
        profile.insert("proof".to_string(), 45.0);
        t.apply_secs_table(&profile).unwrap();
        assert_eq!(t.get(Step::Index), Duration::from_secs(30));
        assert_eq!(t.get(Step::Proof), Duration::from_secs(45));
        assert_eq!(t.get(Step::Claim), Step::Claim.default_timeout());
        profile.insert("prof".to_string(), 1.0);
        assert!(
            t.apply_secs_table(&profile)
                .unwrap_err()
                .contains("\"prof\"")
        );
    }

    #[test]
    fn timeouts_override_and_validate() {
        let mut table = BTreeMap::new();
        table.insert("index".to_string(), 2.5);
        let t = StepTimeouts::from_secs_table(&table).unwrap();
        assert_eq!(t.get(Step::Index), Duration::from_millis(2500));
        assert_eq!(t.get(Step::Claim), Step::Claim.default_timeout());
        table.insert("indexx".to_string(), 1.0);
        assert!(
            StepTimeouts::from_secs_table(&table)
                .unwrap_err()
                .contains("unknown step \"indexx\"")
        );
        let mut bad = BTreeMap::new();
        bad.insert("proof".to_string(), -1.0);
        assert!(
            StepTimeouts::from_secs_table(&bad)
                .unwrap_err()
                .contains("[timeouts].proof")
        );
    }
}

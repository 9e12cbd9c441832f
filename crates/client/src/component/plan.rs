//! Which subsets of the journey can be timed alone, and what each needs
//! prepared before the clock: the dependency rule of component mode, in one
//! place.
//!
//! # The rule
//!
//! Each step reads what earlier steps produced ([`inputs`]):
//!
//! | step | inputs | what it reads |
//! |---|---|---|
//! | `wallet` | – | the user's address (it tops the wallet up if needed) |
//! | `data` | – | the user index and data size |
//! | `encrypt` | `data` | the dataset |
//! | `upload` | `encrypt` | the encrypted file |
//! | `register` | `wallet`, `encrypt`, `upload` | gas (direct mode), K, the file and grant URLs |
//! | `index` | `register` | the file id and the block of its receipt |
//! | `proof` | `wallet`, `encrypt`, `register` | the TEE fee, K, the file id |
//! | `infer_request` | `register` | the permission id |
//! | `infer_wait` | `infer_request` | the operation id |
//! | `result` | `infer_request`, `infer_wait` | a finished operation |
//! | `claim` | `wallet`, `register`, `proof` | gas, the file id, the proof index |
//!
//! A [`Plan`] times the selected steps, in journey order, for each user, and
//! prepares before the clock every step they need (transitively) that is not
//! selected. A subset is refused when:
//!
//! 1. **A waiting step is timed without its action.** `index` measures the
//!    time from `register`'s receipt until the subgraph shows the file, and
//!    `infer_wait` the time from `infer_request` until the operation
//!    finishes ([`measured_from`]). Prepared long before, the action would be
//!    finished by then and the wait would measure nothing, so the action must
//!    be selected too (`register,index`, `infer_request,infer_wait`).
//! 2. **A needed step cannot be prepared before the clock**, because it
//!    needs a selected step itself: `upload,proof` would have to run
//!    `register` (which needs the timed `upload`) untimed inside the measured
//!    flow. Select it too (`upload,register,proof`) or time less (`proof`).
//!
//! This is a refinement of "a prerequisite that is not selected must come
//! before the first selected step": what matters is what a step reads, not
//! where it sits. `wallet,upload` is allowed (`data` and `encrypt` need
//! nothing timed, so they are prepared; the timed `wallet` and `upload` are
//! independent), while any subset the positional rule accepts is accepted
//! here too. Steps that no selected step needs are not run at all (`proof`
//! alone runs no `index`: the TEE reads the file from chain, as the journey's
//! does).
//!
//! The selection may be given in any order and with repeats; it is normalised
//! to journey order (the journey's order is the only one its steps can run in).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::steps::Step;

/// The steps whose results `step` reads (direct inputs only; see the module doc).
pub fn inputs(step: Step) -> &'static [Step] {
    use Step::*;
    match step {
        Wallet | Data => &[],
        Encrypt => &[Data],
        Upload => &[Encrypt],
        Register => &[Wallet, Encrypt, Upload],
        Index => &[Register],
        Proof => &[Wallet, Encrypt, Register],
        InferRequest => &[Register],
        InferWait => &[InferRequest],
        Result => &[InferRequest, InferWait],
        Claim => &[Wallet, Register, Proof],
    }
}

/// The action a waiting step measures from, which must be timed with it.
pub fn measured_from(step: Step) -> Option<Step> {
    match step {
        Step::Index => Some(Step::Register),
        Step::InferWait => Some(Step::InferRequest),
        _ => None,
    }
}

/// Every step `step` needs, directly or through other steps.
fn needs(step: Step) -> BTreeSet<Step> {
    let mut all = BTreeSet::new();
    let mut todo = inputs(step).to_vec();
    while let Some(s) = todo.pop() {
        if all.insert(s) {
            todo.extend_from_slice(inputs(s));
        }
    }
    all
}

/// A subset of the journey that can be timed alone: what is timed and what
/// is prepared before the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    selected: Vec<Step>,
    prepared: Vec<Step>,
}

/// A subset the rule refuses, or a step list that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no steps selected: name one or more of {}", names(&Step::ALL))]
    Empty,
    #[error("unknown step {name:?}: the steps are {}{}", names(&Step::ALL), http_hint(.name))]
    Unknown { name: String },
    #[error(
        "`{step}` measures the time from `{from}` until it is done, so `{from}` must be timed \
         with it; try --steps {suggest}"
    )]
    WaitsFor {
        step: Step,
        from: Step,
        suggest: String,
    },
    #[error(
        "`{step}` needs `{missing}`, which needs the timed step `{timed}`, so it cannot be \
         prepared before the clock and would run untimed inside the measured flow; time it too \
         (--steps {suggest}){}",
        or_fewer(.alternative)
    )]
    Unpreparable {
        step: Step,
        missing: Step,
        timed: Step,
        suggest: String,
        alternative: Option<String>,
    },
}

fn names(steps: &[Step]) -> String {
    steps.iter().map(|s| s.name()).collect::<Vec<_>>().join(",")
}

fn or_fewer(alternative: &Option<String>) -> String {
    alternative
        .as_ref()
        .map(|a| format!(" or time less (--steps {a})"))
        .unwrap_or_default()
}

fn http_hint(name: &str) -> &'static str {
    if name == "http" {
        " (the pure-HTTP flow is `--flow http`)"
    } else {
        ""
    }
}

impl Plan {
    /// The whole journey: every step timed, nothing prepared.
    pub fn whole() -> Plan {
        Plan {
            selected: Step::ALL.to_vec(),
            prepared: Vec::new(),
        }
    }

    /// The plan timing `steps` (any order, repeats allowed), or why the rule refuses it.
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Result<Plan, PlanError> {
        let selected: BTreeSet<Step> = steps.into_iter().collect();
        if selected.is_empty() {
            return Err(PlanError::Empty);
        }
        match check(&selected) {
            Ok(prepared) => Ok(Plan {
                selected: selected.into_iter().collect(),
                prepared: prepared.into_iter().collect(),
            }),
            Err(refusal) => Err(refusal.explain(&selected)),
        }
    }

    /// The timed steps, in journey order.
    pub fn selected(&self) -> &[Step] {
        &self.selected
    }

    /// The steps run for each user before the clock, in journey order.
    pub fn prepared(&self) -> &[Step] {
        &self.prepared
    }

    /// The steps neither timed nor prepared.
    pub fn skipped(&self) -> Vec<Step> {
        Step::ALL
            .into_iter()
            .filter(|s| !self.selected.contains(s) && !self.prepared.contains(s))
            .collect()
    }

    /// Whether every step is timed (the ordinary journey).
    pub fn is_whole(&self) -> bool {
        self.selected.len() == Step::ALL.len()
    }

    /// Whether a timed or prepared step sends or waits for a transaction
    /// (the users' wallets then need funds).
    pub fn touches_chain(&self) -> bool {
        self.selected
            .iter()
            .chain(&self.prepared)
            .any(|s| s.touches_chain())
    }

    /// One line for a report header.
    pub fn describe(&self) -> String {
        if self.is_whole() {
            return "the whole journey".into();
        }
        let mut d = format!("component run: timed {}", names(&self.selected));
        if !self.prepared.is_empty() {
            d += &format!("; prepared before the clock {}", names(&self.prepared));
        }
        let skipped = self.skipped();
        if !skipped.is_empty() {
            d += &format!("; not run {}", names(&skipped));
        }
        d + " — not the whole journey"
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&names(&self.selected))
    }
}

impl FromStr for Plan {
    type Err = PlanError;

    /// A comma-separated list of step names, e.g. `upload,register,index`.
    fn from_str(s: &str) -> Result<Plan, PlanError> {
        let steps = s
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| {
                n.parse::<Step>().map_err(|_| PlanError::Unknown {
                    name: n.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Plan::new(steps)
    }
}

/// The first violation of the rule in a selection.
enum Refusal {
    WaitsFor {
        step: Step,
        from: Step,
    },
    Unpreparable {
        step: Step,
        missing: Step,
        timed: Step,
    },
}

/// The steps to prepare for `selected`, or the first violation (in journey order).
fn check(selected: &BTreeSet<Step>) -> Result<BTreeSet<Step>, Refusal> {
    let mut prepared = BTreeSet::new();
    for &step in selected {
        if let Some(from) = measured_from(step)
            && !selected.contains(&from)
        {
            return Err(Refusal::WaitsFor { step, from });
        }
        // The latest missing step first: the one the step reads from.
        for missing in needs(step).into_iter().rev() {
            if selected.contains(&missing) {
                continue;
            }
            if let Some(&timed) = needs(missing).intersection(selected).next() {
                return Err(Refusal::Unpreparable {
                    step,
                    missing,
                    timed,
                });
            }
            prepared.insert(missing);
        }
    }
    Ok(prepared)
}

/// `selected` grown by what each refusal asks for, until the rule accepts it
/// (it terminates: the whole journey is accepted).
fn grown(selected: &BTreeSet<Step>) -> BTreeSet<Step> {
    let mut s = selected.clone();
    while let Err(r) = check(&s) {
        s.insert(match r {
            Refusal::WaitsFor { from, .. } => from,
            Refusal::Unpreparable { missing, .. } => missing,
        });
    }
    s
}

impl Refusal {
    fn explain(self, selected: &BTreeSet<Step>) -> PlanError {
        let list = |s: &BTreeSet<Step>| names(&s.iter().copied().collect::<Vec<_>>());
        let suggest = list(&grown(selected));
        match self {
            Refusal::WaitsFor { step, from } => PlanError::WaitsFor {
                step,
                from,
                suggest,
            },
            Refusal::Unpreparable {
                step,
                missing,
                timed,
            } => {
                // Or drop the timed steps that `missing` needs, if that is accepted.
                let blocking = needs(missing);
                let fewer: BTreeSet<Step> = selected.difference(&blocking).copied().collect();
                let alternative =
                    (!fewer.is_empty() && check(&fewer).is_ok()).then(|| list(&fewer));
                PlanError::Unpreparable {
                    step,
                    missing,
                    timed,
                    suggest,
                    alternative,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(s: &str) -> Result<Plan, PlanError> {
        s.parse()
    }

    fn steps(s: &str) -> Vec<Step> {
        s.split(',').map(|n| n.parse().unwrap()).collect()
    }

    /// Every subset of the journey: 2^11.
    fn subsets() -> impl Iterator<Item = BTreeSet<Step>> {
        (1u32..(1 << Step::ALL.len())).map(|mask| {
            Step::ALL
                .into_iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, s)| s)
                .collect()
        })
    }

    #[test]
    fn the_whole_journey_is_a_plan_with_nothing_to_prepare() {
        let p = Plan::new(Step::ALL).unwrap();
        assert_eq!(p, Plan::whole());
        assert!(p.is_whole());
        assert!(p.prepared().is_empty() && p.skipped().is_empty());
        assert_eq!(p.describe(), "the whole journey");
    }

    #[test]
    fn representative_subsets_are_accepted_with_what_they_prepare() {
        let cases = [
            ("upload,register,index", "wallet,data,encrypt"),
            ("proof", "wallet,data,encrypt,upload,register"),
            ("claim", "wallet,data,encrypt,upload,register,proof"),
            (
                "infer_request,infer_wait",
                "wallet,data,encrypt,upload,register",
            ),
            (
                "result",
                "wallet,data,encrypt,upload,register,infer_request,infer_wait",
            ),
            ("upload", "data,encrypt"),
            ("wallet", ""),
            ("data", ""),
            ("encrypt", "data"),
            ("register", "wallet,data,encrypt,upload"),
            ("register,index,proof", "wallet,data,encrypt,upload"),
            // Independent of the timed wallet, so prepared before it.
            ("wallet,upload", "data,encrypt"),
            ("proof,claim", "wallet,data,encrypt,upload,register"),
        ];
        for (sel, prep) in cases {
            let p = plan(sel).unwrap_or_else(|e| panic!("{sel}: {e}"));
            assert_eq!(p.selected(), steps(sel), "{sel}");
            let want: Vec<Step> = if prep.is_empty() { vec![] } else { steps(prep) };
            assert_eq!(p.prepared(), want, "{sel}");
            // Every step is timed, prepared or skipped, exactly once.
            let mut all: Vec<Step> = p
                .selected()
                .iter()
                .chain(p.prepared())
                .copied()
                .chain(p.skipped())
                .collect();
            all.sort();
            assert_eq!(all, Step::ALL, "{sel}");
        }
        let p = plan("proof,claim").unwrap();
        assert_eq!(p.skipped(), steps("index,infer_request,infer_wait,result"));
        assert_eq!(
            p.describe(),
            "component run: timed proof,claim; prepared before the clock \
             wallet,data,encrypt,upload,register; not run index,infer_request,infer_wait,result \
             — not the whole journey"
        );
    }

    #[test]
    fn order_and_repeats_are_normalised_to_journey_order() {
        let p = plan(" index, register ,upload,register").unwrap();
        assert_eq!(p.selected(), steps("upload,register,index"));
        assert_eq!(p.to_string(), "upload,register,index");
    }

    #[test]
    fn a_waiting_step_without_its_action_is_refused_by_name() {
        let e = plan("index").unwrap_err();
        assert!(
            matches!(e, PlanError::WaitsFor { step: Step::Index, from: Step::Register, ref suggest, .. } if suggest == "register,index"),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("`index` measures the time from `register`")
        );
        assert!(e.to_string().contains("--steps register,index"), "{e}");
        let e = plan("infer_wait,result").unwrap_err();
        assert!(
            matches!(e, PlanError::WaitsFor { step: Step::InferWait, from: Step::InferRequest, ref suggest, .. } if suggest == "infer_request,infer_wait,result"),
            "{e:?}"
        );
    }

    #[test]
    fn a_prerequisite_that_needs_a_timed_step_is_refused_by_name() {
        let e = plan("upload,proof").unwrap_err();
        match &e {
            PlanError::Unpreparable {
                step,
                missing,
                timed,
                suggest,
                alternative,
                ..
            } => {
                assert_eq!(
                    (*step, *missing, *timed),
                    (Step::Proof, Step::Register, Step::Upload)
                );
                assert_eq!(suggest, "upload,register,proof");
                assert_eq!(alternative.as_deref(), Some("proof"));
            }
            other => panic!("{other:?}"),
        }
        let msg = e.to_string();
        assert!(msg.contains("`proof` needs `register`"), "{msg}");
        assert!(msg.contains("--steps upload,register,proof"), "{msg}");
        assert!(msg.contains("--steps proof"), "{msg}");
        for (sel, step, missing) in [
            ("data,upload", Step::Upload, Step::Encrypt),
            ("register,claim", Step::Claim, Step::Proof),
            ("encrypt,infer_request", Step::InferRequest, Step::Register),
            ("infer_request,result", Step::Result, Step::InferWait),
        ] {
            match plan(sel).unwrap_err() {
                PlanError::Unpreparable {
                    step: s,
                    missing: m,
                    suggest,
                    ..
                } => {
                    assert_eq!((s, m), (step, missing), "{sel}");
                    plan(&suggest).unwrap_or_else(|e| panic!("{sel} → {suggest}: {e}"));
                }
                other => panic!("{sel}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_and_empty_lists_are_refused_by_name() {
        let e = plan("upload,regster").unwrap_err();
        assert_eq!(
            e,
            PlanError::Unknown {
                name: "regster".into()
            }
        );
        assert!(e.to_string().contains("\"regster\""));
        assert!(e.to_string().contains("register"), "lists the steps: {e}");
        assert!(
            plan("http")
                .unwrap_err()
                .to_string()
                .contains("--flow http")
        );
        assert_eq!(plan(" , ").unwrap_err(), PlanError::Empty);
    }

    /// The simpler positional rule: every needed step that is not timed
    /// comes before the first timed one, and waiting steps have their action.
    fn positional(sel: &BTreeSet<Step>) -> bool {
        let first = *sel.first().unwrap();
        sel.iter().all(|&s| {
            measured_from(s).is_none_or(|f| sel.contains(&f))
                && needs(s).iter().all(|n| sel.contains(n) || *n < first)
        })
    }

    /// Over every subset of the journey: the rule's promises hold.
    #[test]
    fn every_subset_is_accepted_exactly_when_it_is_consistent() {
        let mut accepted = 0;
        for sel in subsets() {
            let result = Plan::new(sel.iter().copied());
            // Everything the positional rule accepts is accepted.
            assert!(!positional(&sel) || result.is_ok(), "{sel:?}: {result:?}");
            match result {
                Ok(p) => {
                    accepted += 1;
                    for &s in p.selected() {
                        // A waiting step is timed with its action.
                        if let Some(from) = measured_from(s) {
                            assert!(sel.contains(&from), "{p}");
                        }
                        // Everything it needs is timed or prepared.
                        for n in needs(s) {
                            assert!(sel.contains(&n) || p.prepared().contains(&n), "{p}: {n}");
                        }
                    }
                    // A prepared step needs nothing timed.
                    for &s in p.prepared() {
                        assert!(needs(s).is_disjoint(&sel), "{p}: prepared {s}");
                    }
                }
                Err(e) => {
                    // A refusal suggests a subset that is accepted and contains the given one.
                    let suggest = match &e {
                        PlanError::WaitsFor { suggest, .. }
                        | PlanError::Unpreparable { suggest, .. } => suggest.clone(),
                        other => panic!("{other:?}"),
                    };
                    let grown = plan(&suggest).unwrap();
                    assert!(sel.iter().all(|s| grown.selected().contains(s)), "{e}");
                }
            }
        }
        // Sanity: the rule neither accepts nor refuses everything.
        assert!(accepted > 100 && accepted < 2047, "{accepted}");
    }

    #[test]
    fn only_plans_with_a_chain_step_need_funded_wallets() {
        assert!(!plan("upload").unwrap().touches_chain());
        assert!(!plan("data,encrypt").unwrap().touches_chain());
        assert!(plan("proof").unwrap().touches_chain());
        assert!(
            plan("infer_request").unwrap().touches_chain(),
            "register is prepared"
        );
    }
}

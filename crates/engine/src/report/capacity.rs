//! Capacity projection and cost: daily user capacity from the measured
//! per-component throughput (at saturation, or the best observed as a lower
//! bound) against the plan's 100,000 users/day; the chain's own ceiling,
//! journeys/s ≤ block gas limit ÷ block time ÷ gas per journey, for the twin's
//! settings and a real network's; gas and fees per journey and per 100k users.

use serde::{Deserialize, Serialize};

use super::analysis::{Bottleneck, component_name};
use super::data::RunData;
use super::fmt::{group, num};
use super::machine::is_machine;

/// The plan's daily target.
pub const TARGET_USERS_PER_DAY: u64 = 100_000;
/// Default real-network block gas limit (a common EVM default; Vana's is not published in our sources).
pub const DEFAULT_BLOCK_GAS_LIMIT: u64 = 30_000_000;
/// Default real-network block time (vana-wire §6: about 6 s).
pub const DEFAULT_BLOCK_TIME_S: f64 = 6.0;

/// A chain's block gas limit and block time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChainParams {
    pub block_gas_limit: u64,
    pub block_time_s: f64,
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams {
            block_gas_limit: DEFAULT_BLOCK_GAS_LIMIT,
            block_time_s: DEFAULT_BLOCK_TIME_S,
        }
    }
}

/// The chain's ceiling for one set of parameters.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct Ceiling {
    pub label: String,
    pub block_gas_limit: u64,
    pub block_time_s: f64,
    pub journeys_per_s: f64,
    pub users_per_day: f64,
    /// users_per_day ÷ 100,000.
    pub margin: f64,
}

/// One component's projected capacity.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct ComponentCapacity {
    pub component: String,
    pub journeys_per_s: f64,
    pub users_per_day: f64,
    /// True when measured at saturation; false when the best observed (a lower bound).
    pub at_saturation: bool,
    pub knob: String,
}

/// Gas and fees.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Default)]
pub struct Cost {
    pub txs_per_journey: f64,
    pub gas_per_journey: f64,
    /// Decimal wei (may exceed JSON numbers).
    pub fee_wei_per_journey: String,
    pub fee_vana_per_journey: f64,
    pub gas_per_100k_users: f64,
    pub fee_vana_per_100k_users: f64,
    /// Per transaction kind: count, mean gas, total fee (VANA).
    pub by_kind: Vec<KindCost>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct KindCost {
    pub kind: String,
    pub count: u64,
    pub gas_mean: f64,
    pub fee_vana_total: f64,
}

/// `details.json`'s `capacity` object.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Default)]
pub struct Capacity {
    pub target_users_per_day: u64,
    /// 100,000/day as an average rate.
    pub required_journeys_per_s: f64,
    /// The profile's peak arrival rate at time scale 1 (what the plan's burst needs).
    pub plan_peak_journeys_per_s: Option<f64>,
    pub components: Vec<ComponentCapacity>,
    pub limiting_component: Option<String>,
    pub journeys_per_s: f64,
    pub users_per_day: f64,
    /// True when nothing saturated: the projection is a lower bound.
    pub lower_bound: bool,
    pub margin: f64,
    pub knob: Option<String>,
    pub chain: Vec<Ceiling>,
    pub cost: Cost,
    pub sentences: Vec<String>,
}

const WEI: f64 = 1e18;

/// Projects capacity and cost. `twin` is the twin chain's settings when known.
pub fn project(
    data: &RunData,
    b: &Bottleneck,
    real: ChainParams,
    twin: Option<ChainParams>,
) -> Capacity {
    let req = TARGET_USERS_PER_DAY as f64 / 86_400.0;
    let mut c = Capacity {
        target_users_per_day: TARGET_USERS_PER_DAY,
        required_journeys_per_s: req,
        ..Default::default()
    };
    let sched = &data.details.schedule;
    c.plan_peak_journeys_per_s = (sched.peak_rate_per_s > 0.0).then(|| {
        let f = if sched.time_scale > 0.0 {
            sched.time_scale
        } else {
            1.0
        };
        sched.peak_rate_per_s * f
    });
    c.components = b
        .components
        .iter()
        .filter(|s| s.throughput_per_s > 0.0)
        .map(|s| ComponentCapacity {
            component: s.component.clone(),
            journeys_per_s: s.throughput_per_s,
            users_per_day: s.throughput_per_s * 86_400.0,
            at_saturation: s.saturated && Some(&s.component) == b.component.as_ref(),
            knob: s.knob.clone(),
        })
        .collect();
    let limiting = match &b.component {
        Some(name) => c.components.iter().find(|x| &x.component == name),
        None => c
            .components
            .iter()
            .min_by(|a, b| a.journeys_per_s.total_cmp(&b.journeys_per_s)),
    };
    let peak_cps = data.summary.throughput.peak_flows_per_s;
    match limiting {
        Some(l) => {
            c.limiting_component = Some(l.component.clone());
            c.journeys_per_s = l.journeys_per_s;
            // A saturated machine hides the services' own ceiling.
            c.lower_bound = !l.at_saturation || is_machine(&l.component);
            c.knob = Some(l.knob.clone());
        }
        None => {
            c.journeys_per_s = peak_cps;
            c.lower_bound = true;
        }
    }
    c.users_per_day = c.journeys_per_s * 86_400.0;
    c.margin = c.users_per_day / TARGET_USERS_PER_DAY as f64;

    // Gas and fees from the transactions of successful journeys.
    let ok: Vec<_> = data.journeys.iter().filter(|e| e.ok()).collect();
    let n_ok = ok.len() as f64;
    let mut kinds: std::collections::BTreeMap<String, (u64, u128, u128)> = Default::default();
    for e in &data.journeys {
        for t in &e.txs {
            let k = kinds.entry(t.kind.clone()).or_default();
            k.0 += 1;
            k.1 += t.gas_used as u128;
            k.2 += t.fee_wei.parse::<u128>().unwrap_or(0);
        }
    }
    let (mut txs, mut gas, mut fee) = (0u64, 0u128, 0u128);
    for e in &ok {
        for t in &e.txs {
            txs += 1;
            gas += t.gas_used as u128;
            fee += t.fee_wei.parse::<u128>().unwrap_or(0);
        }
    }
    if n_ok > 0.0 && txs > 0 {
        let gpj = gas as f64 / n_ok;
        let fpj = fee / ok.len() as u128;
        c.cost = Cost {
            txs_per_journey: txs as f64 / n_ok,
            gas_per_journey: gpj,
            fee_wei_per_journey: fpj.to_string(),
            fee_vana_per_journey: fee as f64 / n_ok / WEI,
            gas_per_100k_users: gpj * 100_000.0,
            fee_vana_per_100k_users: fee as f64 / n_ok / WEI * 100_000.0,
            by_kind: kinds
                .iter()
                .map(|(k, (n, g, f))| KindCost {
                    kind: k.clone(),
                    count: *n,
                    gas_mean: *g as f64 / (*n).max(1) as f64,
                    fee_vana_total: *f as f64 / WEI,
                })
                .collect(),
        };
        let ceiling = |label: &str, p: ChainParams| {
            let jps = p.block_gas_limit as f64 / p.block_time_s / gpj;
            Ceiling {
                label: label.to_string(),
                block_gas_limit: p.block_gas_limit,
                block_time_s: p.block_time_s,
                journeys_per_s: jps,
                users_per_day: jps * 86_400.0,
                margin: jps * 86_400.0 / TARGET_USERS_PER_DAY as f64,
            }
        };
        if let Some(t) = twin {
            c.chain.push(ceiling("twin", t));
        }
        c.chain.push(ceiling("real network", real));
    }
    c.sentences = sentences(&c, twin.is_none());
    c
}

fn sentences(c: &Capacity, twin_unknown: bool) -> Vec<String> {
    let mut out = Vec::new();
    let who = c
        .limiting_component
        .as_deref()
        .map(component_name)
        .unwrap_or_else(|| "the system".into());
    let verdict = if c.margin >= 1.0 {
        format!("{}× the target of 100,000/day", num(c.margin))
    } else {
        format!(
            "short of the target of 100,000/day ({} of it)",
            super::fmt::pct(c.margin)
        )
    };
    if let Some(m) = c.limiting_component.as_deref().filter(|m| is_machine(m)) {
        out.push(format!(
            "The {who} saturated at {} journeys/s before any service did, so the services' capacity is at least that: ≥ {} users/day, {verdict}. {}",
            num(c.journeys_per_s),
            group(c.users_per_day as i128),
            if m == "host_cpu" {
                "Run the driver and the twin on separate machines (or on more cores) to find the services' own ceiling."
            } else {
                "Run more load-generator machines (or fewer journeys per machine) to find the services' own ceiling."
            }
        ));
    } else if c.lower_bound {
        out.push(format!(
            "Nothing saturated, so capacity is at least the best observed {} journeys/s: ≥ {} users/day, {verdict}. The run did not find the ceiling; run a higher load to find it.",
            num(c.journeys_per_s),
            group(c.users_per_day as i128)
        ));
    } else {
        out.push(format!(
            "At saturation the {who} passed {} journeys/s: about {} users/day, {verdict}.{}",
            num(c.journeys_per_s),
            group(c.users_per_day as i128),
            c.knob
                .as_ref()
                .map(|k| format!(" To raise it, add {k}."))
                .unwrap_or_default()
        ));
    }
    if let Some(p) = c.plan_peak_journeys_per_s {
        let ok = c.journeys_per_s >= p;
        out.push(format!(
            "The profile's peak arrival rate at full scale is {} journeys/s; measured capacity {} it.",
            num(p),
            if ok { "covers" } else { "does not cover" }
        ));
    }
    if c.cost.gas_per_journey > 0.0 {
        out.push(format!(
            "A journey sends {} transactions using {} gas in all and pays {} VANA in fees; 100,000 users use {} gas and pay {} VANA.",
            num(c.cost.txs_per_journey),
            group(c.cost.gas_per_journey as i128),
            super::fmt::vana(c.cost.fee_vana_per_journey),
            group(c.cost.gas_per_100k_users as i128),
            super::fmt::vana(c.cost.fee_vana_per_100k_users)
        ));
        for ce in &c.chain {
            out.push(format!(
                "Chain ceiling ({}): {} gas per block every {} s ÷ {} gas per journey = {} journeys/s, {} users/day ({}× the target). Above half of it ({} journeys/s, EIP-1559's gas target) blocks fuller than the target raise the base fee by up to 12.5 % each, and the users' fees with it.{}",
                ce.label,
                group(ce.block_gas_limit as i128),
                num(ce.block_time_s),
                group(c.cost.gas_per_journey as i128),
                num(ce.journeys_per_s),
                group(ce.users_per_day as i128),
                num(ce.margin),
                num(ce.journeys_per_s / 2.0),
                if ce.margin < 1.0 {
                    " Block gas is the knob: the chain cannot carry the target."
                } else {
                    ""
                }
            ));
        }
        if twin_unknown {
            out.push("The twin's block settings were not recorded for this run (pass --twin-block-gas-limit and --twin-block-time to `vana-load report` to add its ceiling).".into());
        }
    } else {
        out.push(
            "The run recorded no transactions, so gas, fees and the chain ceiling are unknown."
                .into(),
        );
    }
    out
}

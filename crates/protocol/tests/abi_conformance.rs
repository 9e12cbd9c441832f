//! Every function and event of the flow (fixtures/flow-signatures.md, 34 entries, copied from
//! the shared spec) exists in our compiled artifacts with the same canonical signature,
//! outputs, indexed flags and selector/topic0 as in the deployed ABIs (fixtures/abi/).

use alloy::json_abi::{Event, Function, JsonAbi, Param, StateMutability};
use alloy::primitives::keccak256;
use vana_load_protocol::contracts::artifact_abi;

const FLOW: &str = include_str!("fixtures/flow-signatures.md");

#[derive(Debug)]
struct Entry {
    contract: String,
    kind: &'static str,
    signature: String,
    hash: String,
}

fn entries() -> Vec<Entry> {
    let mut contract = String::new();
    let mut out = Vec::new();
    for line in FLOW.lines() {
        if let Some(name) = line.strip_prefix("### ") {
            contract = name.trim().to_owned();
        } else if let Some(rest) = line.strip_prefix("- ") {
            let (kind, rest) = if let Some(r) = rest.strip_prefix("function ") {
                ("function", r)
            } else if let Some(r) = rest.strip_prefix("event ") {
                ("event", r)
            } else {
                continue;
            };
            let mut parts = rest.split('`');
            assert_eq!(parts.next(), Some(""), "malformed line: {line}");
            let signature = parts.next().expect("signature").to_owned();
            let hash = parts.next().expect("hash").trim().to_owned();
            out.push(Entry {
                contract: contract.clone(),
                kind,
                signature,
                hash,
            });
        }
    }
    out
}

fn deployed_abi(contract: &str) -> JsonAbi {
    let path = format!(
        "{}/tests/fixtures/abi/{contract}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn types(params: &[Param]) -> String {
    params
        .iter()
        .map(|p| p.selector_type().into_owned())
        .collect::<Vec<_>>()
        .join(",")
}

fn function_signature(f: &Function) -> String {
    format!("{}({})->({})", f.name, types(&f.inputs), types(&f.outputs))
}

fn event_signature(e: &Event) -> String {
    let inputs: Vec<String> = e
        .inputs
        .iter()
        .map(|p| {
            let ty = p.selector_type().into_owned();
            if p.indexed {
                format!("{ty} indexed")
            } else {
                ty
            }
        })
        .collect();
    format!("{}({})", e.name, inputs.join(","))
}

fn find_function<'a>(abi: &'a JsonAbi, signature: &str) -> Option<&'a Function> {
    let name = signature.split('(').next().unwrap();
    abi.functions
        .get(name)?
        .iter()
        .find(|f| function_signature(f) == signature)
}

fn find_event<'a>(abi: &'a JsonAbi, signature: &str) -> Option<&'a Event> {
    let name = signature.split('(').next().unwrap();
    abi.events
        .get(name)?
        .iter()
        .find(|e| event_signature(e) == signature)
}

/// Payable and non-payable differ in behaviour; view/pure/nonpayable are compared as such.
fn mutability(m: StateMutability) -> &'static str {
    match m {
        StateMutability::Payable => "payable",
        StateMutability::NonPayable => "nonpayable",
        StateMutability::View | StateMutability::Pure => "read-only",
    }
}

#[test]
fn flow_has_34_entries_over_five_contracts() {
    let all = entries();
    assert_eq!(all.len(), 34, "{all:#?}");
    let contracts: std::collections::BTreeSet<_> =
        all.iter().map(|e| e.contract.as_str()).collect();
    let expected = [
        "DataLiquidityPool",
        "DataPortabilityGrantees",
        "DataPortabilityPermissions",
        "DataRegistry",
        "TeePoolPhala",
    ];
    assert_eq!(contracts.into_iter().collect::<Vec<_>>(), expected);
    assert_eq!(all.iter().filter(|e| e.kind == "event").count(), 9);
}

#[test]
fn every_flow_function_and_event_matches_the_deployed_abi() {
    let mut failures = Vec::new();
    for entry in entries() {
        let ours = artifact_abi(&entry.contract)
            .unwrap_or_else(|| panic!("no artifact for {}", entry.contract));
        let deployed = deployed_abi(&entry.contract);
        let what = format!("{} {} `{}`", entry.contract, entry.kind, entry.signature);
        match entry.kind {
            "function" => {
                let (Some(f), Some(d)) = (
                    find_function(&ours, &entry.signature),
                    find_function(&deployed, &entry.signature),
                ) else {
                    failures.push(format!("{what}: missing (ours or deployed)"));
                    continue;
                };
                let selector = format!("0x{}", alloy::primitives::hex::encode(f.selector()));
                if selector != entry.hash || d.selector() != f.selector() {
                    failures.push(format!(
                        "{what}: selector {selector}, expected {}",
                        entry.hash
                    ));
                }
                let check = format!(
                    "0x{}",
                    alloy::primitives::hex::encode(&keccak256(f.signature())[..4])
                );
                assert_eq!(check, selector);
                if mutability(f.state_mutability) != mutability(d.state_mutability) {
                    failures.push(format!(
                        "{what}: {:?}, deployed is {:?}",
                        f.state_mutability, d.state_mutability
                    ));
                }
            }
            "event" => {
                let (Some(e), Some(d)) = (
                    find_event(&ours, &entry.signature),
                    find_event(&deployed, &entry.signature),
                ) else {
                    failures.push(format!("{what}: missing (ours or deployed)"));
                    continue;
                };
                let topic = format!("{}", e.selector());
                if topic != entry.hash || d.selector() != e.selector() || e.anonymous != d.anonymous
                {
                    failures.push(format!("{what}: topic0 {topic}, expected {}", entry.hash));
                }
                let names: Vec<_> = e.inputs.iter().map(|p| &p.name).collect();
                let deployed_names: Vec<_> = d.inputs.iter().map(|p| &p.name).collect();
                if names != deployed_names {
                    failures.push(format!(
                        "{what}: field names {names:?} vs {deployed_names:?}"
                    ));
                }
            }
            _ => unreachable!(),
        }
    }
    assert!(
        failures.is_empty(),
        "ABI mismatches:\n{}",
        failures.join("\n")
    );
}

/// The named struct getters keep the deployed component names, so decoded structs have the
/// same field names as the SDK's.
#[test]
fn struct_getters_keep_component_names() {
    let getters = [
        ("DataRegistry", "files"),
        ("DataRegistry", "fileProofs"),
        ("DataPortabilityPermissions", "permissions"),
        ("DataPortabilityGrantees", "grantees"),
        ("TeePoolPhala", "jobs"),
        ("TeePoolPhala", "tees"),
    ];
    for (contract, name) in getters {
        let ours = artifact_abi(contract).unwrap();
        let deployed = deployed_abi(contract);
        let o = &ours.functions[name][0].outputs;
        let d = &deployed.functions[name][0].outputs;
        let comps = |ps: &Vec<Param>| -> Vec<String> {
            ps.iter()
                .flat_map(|p| {
                    p.components
                        .iter()
                        .map(|c| format!("{} {}", c.selector_type(), c.name))
                })
                .collect()
        };
        assert_eq!(comps(o), comps(d), "{contract}.{name}");
    }
}

#[test]
fn a_wrong_signature_is_reported_missing() {
    let ours = artifact_abi("DataRegistry").unwrap();
    assert!(find_function(&ours, "addFile(string)->(uint256)").is_some());
    assert!(find_function(&ours, "addFile(string)->()").is_none());
    assert!(find_event(&ours, "FileAdded(uint256 indexed,address indexed,string)").is_some());
    assert!(find_event(&ours, "FileAdded(uint256,address indexed,string)").is_none());
}

//! A journey of the Vana shape for synthetic flows: the engine holds no step
//! names of its own, so its tests declare theirs here, as a flow would.

use std::time::Duration;

use vana_load_engine::StepDef;

/// (name, component, touches the chain), in journey order.
pub const STEPS: [(&str, &str, bool); 11] = [
    ("wallet", "chain", true),
    ("data", "client", false),
    ("encrypt", "client", false),
    ("upload", "storage", false),
    ("register", "relayer", true),
    ("index", "indexer", false),
    ("proof", "tee", true),
    ("infer_request", "personal_server", false),
    ("infer_wait", "inference", false),
    ("result", "personal_server", false),
    ("claim", "chain", true),
];

/// The step names, in order.
pub const NAMES: [&str; 11] = {
    let mut n = [""; 11];
    let mut i = 0;
    while i < 11 {
        n[i] = STEPS[i].0;
        i += 1;
    }
    n
};

/// The steps as a flow declares them (60 s each).
pub fn defs() -> Vec<StepDef> {
    STEPS
        .iter()
        .map(|&(n, c, chain)| StepDef::new(n, c, Duration::from_secs(60), chain))
        .collect()
}

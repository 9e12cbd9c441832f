//! Helpers shared by the binary's integration tests.

use std::path::Path;
use std::process::Command;

/// Validates `files` against `docs/schema/<schema>` with ajv; panics with its findings.
pub fn validate(schema: &str, files: &[&Path]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let o = Command::new("node")
        .arg(root.join("crates/cli/tests/support/validate_schema.mjs"))
        .arg(root.join("docs/schema").join(schema))
        .args(files)
        .env("VANA_LOAD_TOOLS", root.join("tools"))
        .output()
        .expect("node runs");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{schema}: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains(" valid, 0 invalid"), "{out}");
}

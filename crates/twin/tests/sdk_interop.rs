//! The published Vana SDK (`@opendatalabs/vana-sdk`, pinned in `tools/`)
//! drives a twin unmodified: this test starts a twin with its defaults
//! (contracts at the SDK's Moksha addresses, the SDK's relay protocol),
//! writes its manifest and runs `tests/sdk/journey.mjs` under Node with the
//! module-resolution hooks of `tests/sdk/hooks.mjs` (the package's ESM build
//! cannot be loaded by plain Node). The script configures the SDK only from
//! the manifest's `sdk` section and checks, through the SDK's own calls:
//! the default addresses, identity, upload with a permission for the
//! server, `getUserFiles` through the subgraph, `decryptFile`,
//! `permissions.grant` (storeGrantFile + a signed Permission),
//! `createOperation` signed by the grantee then `waitForOperation` to
//! `succeeded`, revoke, and adding, untrusting and trusting a server.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use vana_load_twin::{Twin, TwinConfig};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The steps the script must report, in order.
const STEPS: [&str; 12] = [
    "addresses",
    "identity",
    "upload",
    "getUserFiles",
    "decryptFile",
    "grant",
    "createOperation",
    "revoke",
    "trust",
    "untrust",
    "trust-again",
    "all",
];

#[tokio::test(flavor = "multi_thread")]
async fn the_published_sdk_runs_every_step_against_the_twin() {
    let tools = repo().join("tools");
    let sdk = tools.join("node_modules/@opendatalabs/vana-sdk/package.json");
    assert!(
        sdk.exists(),
        "{} is missing: run `npm ci --prefix tools`",
        sdk.display()
    );
    let config = TwinConfig::ephemeral();
    let mnemonic = config.chain.mnemonic.expose().to_owned();
    let twin = Twin::start(config).await.expect("the twin starts");
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("manifest.json");
    twin.manifest().write(&manifest).unwrap();

    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk");
    let child = tokio::process::Command::new("node")
        .current_dir(&harness)
        .arg("--import")
        .arg("./register.mjs")
        .arg("journey.mjs")
        .arg(&manifest)
        .env("VANA_TOOLS_DIR", &tools)
        .env("VANA_APP_MNEMONIC", &mnemonic)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node is on PATH");
    let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .expect("the SDK journey finishes within 5 minutes")
        .unwrap();
    twin.stop().await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the SDK journey failed ({}):\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
    let reported: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ok "))
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(reported, STEPS, "{stdout}");
}

//! Tests of target files, manifests and their validation.

use super::*;
use std::collections::BTreeMap;

const MOKSHA: &str = include_str!("../../../../targets/moksha.toml");

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let m: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| m.get(k).cloned()
}

#[test]
fn moksha_has_the_real_addresses_and_lists_missing_secrets() {
    let t = Target::from_toml_str(MOKSHA, &env_of(&[])).unwrap();
    assert_eq!(t.chain_id, 14800);
    assert_eq!(t.rpc_urls[0].as_str(), "https://rpc.moksha.vana.org/");
    assert_eq!(
        t.contracts.data_registry,
        "0x8C8788f98385F6ba1adD4234e551ABba0f82Cb7C"
            .parse::<Address>()
            .unwrap()
    );
    assert_eq!(
        t.contracts.tee_pool,
        "0xE8EC6BD73b23Ad40E6B9a6f4bD343FAc411bD99A"
            .parse::<Address>()
            .unwrap()
    );
    assert_eq!(
        t.personal_server_url.as_ref().unwrap().as_str(),
        "https://test.server.vana.com/"
    );
    assert_eq!(
        t.subgraph_url.as_ref().unwrap().as_str(),
        "https://moksha.vanagraph.io/v7"
    );
    let err = t
        .require(Purpose::Journey { relayer: false })
        .unwrap_err()
        .to_string();
    for var in [
        "VANA_LOAD_MNEMONIC",
        "APP_PRIVATE_KEY",
        "PINATA_JWT",
        "MOKSHA_DLP_ADDRESS",
    ] {
        assert!(err.contains(var), "{var} not listed in: {err}");
    }
    let err = t.require(Purpose::FundWallets).unwrap_err().to_string();
    assert!(err.contains("TEST_WALLET_PRIVATE_KEY"), "{err}");
    // The pure-HTTP flow needs no keys and no chain: only the storage JWT.
    let err = t.require(Purpose::Http).unwrap_err().to_string();
    assert!(err.contains("PINATA_JWT"), "{err}");
    for var in [
        "VANA_LOAD_MNEMONIC",
        "APP_PRIVATE_KEY",
        "MOKSHA_DLP_ADDRESS",
    ] {
        assert!(!err.contains(var), "{var} is not needed for HTTP: {err}");
    }
}

#[test]
fn env_fills_secrets_and_debug_redacts_them() {
    let key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
    let env = env_of(&[
        (
            "MOKSHA_RPC_URL",
            "http://a.example:8545,http://b.example:8545",
        ),
        ("VANA_LOAD_MNEMONIC", DEFAULT_TEST_MNEMONIC),
        ("APP_PRIVATE_KEY", key),
        ("TEST_WALLET_PRIVATE_KEY", key),
        ("PINATA_JWT", "jwt-secret-value"),
        (
            "MOKSHA_DLP_ADDRESS",
            "0x0000000000000000000000000000000000000042",
        ),
        ("MOKSHA_RELAYER_URL", "https://relayer.example/api/relay"),
        (
            "MOKSHA_BATCH_FUNDER",
            "0x0000000000000000000000000000000000000043",
        ),
        ("MOKSHA_PROOF_URL", "https://proofs.example/poc.tar.gz"),
    ]);
    let t = Target::from_toml_str(MOKSHA, &env).unwrap();
    t.require(Purpose::Journey { relayer: true }).unwrap();
    t.require(Purpose::FundWallets).unwrap();
    assert_eq!(t.rpc_urls.len(), 2);
    let dbg = format!("{t:?}");
    for secret in ["jwt-secret-value", &key[2..], "test test"] {
        assert!(!dbg.contains(secret), "Debug leaks a secret");
    }
    assert!(dbg.contains("<redacted>"));
}

#[test]
fn rpc_spreading_is_deterministic_with_failover() {
    let mut t = Target::from_toml_str(
        MOKSHA,
        &env_of(&[("MOKSHA_RPC_URL", "http://a:1,http://b:1,http://c:1")]),
    )
    .unwrap();
    assert_eq!(t.rpc_order(0), vec![0, 1, 2]);
    assert_eq!(t.rpc_order(4), vec![1, 2, 0]);
    assert_eq!(t.rpc_order(5), vec![2, 0, 1]);
    t.rpc_urls.truncate(1);
    assert_eq!(t.rpc_order(7), vec![0]);
}

#[test]
fn bad_values_name_the_field() {
    let bad = MOKSHA.replace("0x8C8788f98385F6ba1adD4234e551ABba0f82Cb7C", "0x1234");
    let e = Target::from_toml_str(&bad, &env_of(&[])).unwrap_err();
    assert!(e.contains("contracts.data_registry"), "{e}");
    let e = Target::from_toml_str(MOKSHA, &env_of(&[("APP_PRIVATE_KEY", "nothex")])).unwrap_err();
    assert!(e.contains("keys.app") && !e.contains("nothex"), "{e}");
    let e = Target::from_toml_str(&format!("{MOKSHA}\n[extra]\nx=1\n"), &env_of(&[])).unwrap_err();
    assert!(e.contains("extra"), "{e}");
}

#[test]
fn from_manifest_maps_services_and_contracts() {
    let json = r#"{
      "rpc_url": "http://127.0.0.1:8545", "chain_id": 14800, "deployer_block": 1,
      "contracts": {
        "DataRegistry": "0x0000000000000000000000000000000000000001",
        "DataPortabilityPermissions": "0x0000000000000000000000000000000000000002",
        "DataPortabilityServers": "0x0000000000000000000000000000000000000003",
        "DataPortabilityGrantees": "0x0000000000000000000000000000000000000004",
        "TeePoolPhala": "0x0000000000000000000000000000000000000005",
        "DataLiquidityPool": "0x0000000000000000000000000000000000000006",
        "BatchFunder": "0x0000000000000000000000000000000000000007"
      },
      "services": {
        "storage": {"url": "http://127.0.0.1:4001", "metrics_url": "http://127.0.0.1:4001/metrics"},
        "relayer": {"url": "http://127.0.0.1:4002", "metrics_url": "http://127.0.0.1:4002/metrics"},
        "indexer": {"url": "http://127.0.0.1:4003", "metrics_url": "http://127.0.0.1:4003/metrics"}
      },
      "started_at": "2026-11-27T21:00:00Z"
    }"#;
    let m: protocol::manifest::Manifest = serde_json::from_str(json).unwrap();
    let t = Target::from_manifest(&m, Secret::new(DEFAULT_TEST_MNEMONIC)).unwrap();
    assert_eq!(t.storage.kind, StorageKind::Ipfs);
    assert_eq!(t.storage.gateway.as_str(), "http://127.0.0.1:4001/ipfs");
    assert_eq!(
        t.relayer_url.unwrap().as_str(),
        "http://127.0.0.1:4002/api/relay"
    );
    assert_eq!(
        t.subgraph_url.unwrap().as_str(),
        "http://127.0.0.1:4003/subgraphs/name/vana"
    );
    assert!(t.personal_server_url.is_none());
    assert_eq!(t.contracts.batch_funder, Some(Address::with_last_byte(7)));
    assert_eq!(t.app_key, Some(KeySource::Hd(1)));
    let mut m2 = m.clone();
    m2.contracts.remove("TeePoolPhala");
    let e = Target::from_manifest(&m2, Secret::new(DEFAULT_TEST_MNEMONIC))
        .unwrap_err()
        .to_string();
    assert!(e.contains("TeePoolPhala"), "{e}");
}

#[test]
fn infer_backoff_is_the_documented_schedule() {
    let p = PollConfig::default();
    assert_eq!(
        p.infer_delay(Duration::from_secs(3), 3),
        Duration::from_secs(1)
    );
    assert_eq!(
        p.infer_delay(Duration::from_secs(10), 10),
        Duration::from_secs(1)
    );
    assert_eq!(
        p.infer_delay(Duration::from_secs(11), 11),
        Duration::from_secs(2)
    );
    assert_eq!(
        p.infer_delay(Duration::from_secs(13), 12),
        Duration::from_secs(4)
    );
    assert_eq!(
        p.infer_delay(Duration::from_secs(17), 13),
        Duration::from_secs(5)
    );
    assert_eq!(
        p.infer_delay(Duration::from_secs(60), 30),
        Duration::from_secs(5)
    );
}

#[test]
fn poll_section_overrides_and_validates() {
    let text = MOKSHA
        .replace("index_ms = 2000", "index_ms = 500")
        .replace("block_ms = 1000", "block_ms = 250");
    let t = Target::from_toml_str(&text, &env_of(&[])).unwrap();
    assert_eq!(t.poll.index, Duration::from_millis(500));
    assert_eq!(t.poll.block, Duration::from_millis(250));
    assert_eq!(t.poll.infer_max, Duration::from_secs(5));
    let e = Target::from_toml_str(
        &MOKSHA.replace("block_ms = 1000", "block_ms = 0"),
        &env_of(&[]),
    )
    .unwrap_err();
    assert!(e.contains("poll.block_ms"), "{e}");
    let e = Target::from_toml_str(
        &MOKSHA.replace("index_ms = 2000", "index_msx = 2000"),
        &env_of(&[]),
    )
    .unwrap_err();
    assert!(e.contains("index_msx"), "{e}");
}

#[test]
fn interpolation_defaults_and_missing() {
    let mut missing = Vec::new();
    let env = env_of(&[("A", "1")]);
    assert_eq!(
        interpolate("x${A}y", "f", &env, &mut missing)
            .unwrap()
            .as_deref(),
        Some("x1y")
    );
    assert_eq!(
        interpolate("${B:-dflt}", "f", &env, &mut missing)
            .unwrap()
            .as_deref(),
        Some("dflt")
    );
    assert_eq!(interpolate("${B}", "g", &env, &mut missing).unwrap(), None);
    assert_eq!(
        missing,
        vec![MissingEnv {
            var: "B".into(),
            field: "g".into()
        }]
    );
    assert!(interpolate("${B", "h", &env, &mut missing).is_err());
}

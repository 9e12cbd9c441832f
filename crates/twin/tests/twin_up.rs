//! `twin::Twin` as a library: `Twin::start` brings up anvil with the contracts
//! deployed and every service, the manifest describes them, `stop` (and, as a
//! fallback, drop) leaves no anvil process behind.

use std::time::{Duration, Instant};

use alloy::providers::{Provider, ProviderBuilder};
use vana_load_twin::{Twin, TwinConfig, TwinError};

/// Pids of live (non-zombie) `anvil` children of this process.
fn anvil_children() -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Some((comm, state, ppid)) = proc_stat(pid)
            && ppid == me
            && comm == "anvil"
            && state != 'Z'
        {
            out.push(pid);
        }
    }
    out
}

fn proc_stat(pid: u32) -> Option<(String, char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.rfind(')')?;
    let comm = stat[stat.find('(')? + 1..close].to_string();
    let mut rest = stat[close + 2..].split(' ');
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((comm, state, ppid))
}

/// Waits (bounded) until none of `pids` is a live process.
async fn assert_gone(pids: &[u32], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive: Vec<u32> = pids
            .iter()
            .copied()
            .filter(|p| matches!(proc_stat(*p), Some((_, s, _)) if s != 'Z'))
            .collect();
        if alive.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "anvil {alive:?} still alive after {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// One test function: the /proc check counts this process's anvil children,
// so two twins must not run at once in this binary.
#[tokio::test(flavor = "multi_thread")]
async fn start_serves_everything_then_stop_and_drop_leave_no_anvil() {
    assert!(anvil_children().is_empty());

    let twin = Twin::start(TwinConfig::ephemeral()).await.unwrap();
    let m = twin.manifest().clone();
    let anvils = anvil_children();
    assert_eq!(anvils.len(), 1, "{anvils:?}");

    let provider = ProviderBuilder::new().connect_http(m.rpc_url.parse().unwrap());
    assert_eq!(provider.get_chain_id().await.unwrap(), 14800);
    assert_eq!(m.chain_id, 14800);
    assert!(!m.contracts.is_empty());
    for (name, addr) in &m.contracts {
        let code = provider.get_code_at(*addr).await.unwrap();
        assert!(!code.is_empty(), "no code at {name} ({addr})");
    }
    // Every started service is listed and answers /metrics; storage and
    // inference (enabled by default) are among them.
    assert!(m.service("storage").is_ok() && m.service("inference").is_ok());
    for (name, ep) in &m.services {
        assert_eq!(ep.metrics_url, format!("{}/metrics", ep.url));
        let body = reqwest::get(&ep.metrics_url)
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.contains("# EOF"), "{name} /metrics: {body}");
    }
    assert_eq!(twin.anvil_pid(), anvils.first().copied());
    assert_eq!(twin.processes(), vec![("anvil".to_owned(), anvils[0])]);
    assert_eq!(
        twin.deployment().data_registry,
        m.contract("DataRegistry").unwrap()
    );

    twin.stop().await;
    assert_gone(&anvils, "stop").await;
    assert!(provider.get_chain_id().await.is_err(), "RPC still answers");
    for ep in m.services.values() {
        assert!(
            reqwest::get(&ep.url).await.is_err(),
            "{} still answers",
            ep.url
        );
    }

    // Dropping without stop still kills anvil.
    let twin = Twin::start(TwinConfig::ephemeral()).await.unwrap();
    let anvils = anvil_children();
    assert_eq!(anvils.len(), 1, "{anvils:?}");
    drop(twin);
    assert_gone(&anvils, "drop").await;

    // `chain.state_root = false`: the chain is a fork of a second, idle
    // anvil, its blocks carry a zero state root, and it works the same.
    let mut config = TwinConfig::ephemeral();
    config.chain.state_root = false;
    config.chain.prune_history = true;
    let twin = Twin::start(config).await.unwrap();
    let anvils = anvil_children();
    assert_eq!(
        anvils.len(),
        2,
        "the chain and the one it forks: {anvils:?}"
    );
    let named = twin.processes();
    let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["anvil", "anvil-fork-source"]);
    assert_eq!(Some(named[0].1), twin.anvil_pid());
    let mut pids: Vec<u32> = named.iter().map(|(_, p)| *p).collect();
    pids.sort_unstable();
    let mut children = anvils.clone();
    children.sort_unstable();
    assert_eq!(pids, children);
    let m = twin.manifest().clone();
    let provider = ProviderBuilder::new().connect_http(m.rpc_url.parse().unwrap());
    assert_eq!(provider.get_chain_id().await.unwrap(), 14800);
    let head = provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .expect("latest block");
    assert!(head.header.number >= m.deployer_block);
    assert_eq!(head.header.state_root, alloy::primitives::B256::ZERO);
    for (name, addr) in &m.contracts {
        let code = provider.get_code_at(*addr).await.unwrap();
        assert!(!code.is_empty(), "no code at {name} ({addr})");
    }
    twin.stop().await;
    assert_gone(&anvils, "stop (forked chain)").await;
}

#[tokio::test]
async fn a_taken_chain_port_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut config = TwinConfig::ephemeral();
    config.chain.port = port;
    let err = Twin::start(config).await.unwrap_err();
    assert!(matches!(err, TwinError::PortInUse { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("chain.port:") && msg.contains(&format!("127.0.0.1:{port}")),
        "{msg}"
    );
}

#[tokio::test]
async fn invalid_config_is_rejected_before_anything_starts() {
    let mut config = TwinConfig::ephemeral();
    config.chain.mnemonic = vana_load_twin::config::Mnemonic::new("not a mnemonic");
    let err = Twin::start(config).await.unwrap_err();
    assert!(err.to_string().starts_with("chain.mnemonic:"), "{err}");

    let mut config = TwinConfig::ephemeral();
    config.chain.anvil = Some("/nonexistent/anvil".into());
    let err = Twin::start(config).await.unwrap_err();
    assert!(err.to_string().contains("/nonexistent/anvil"), "{err}");
}

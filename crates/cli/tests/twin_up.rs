//! `vana-load twin up`, run as the built binary: it starts the chain with the
//! contracts deployed, writes the manifest, answers `eth_chainId` = 14800,
//! shows code at every contract address, stops on SIGINT and leaves no anvil
//! behind; and bad input (port in use, malformed mnemonic, anvil missing,
//! unknown flag) fails with exit code 2 and a clear message.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use alloy::providers::{Provider, ProviderBuilder};
use protocol::manifest::Manifest;

const BIN: &str = env!("CARGO_BIN_EXE_vana-load");

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "vana-load-twin-up-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn vana_load(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_remove("VANA_LOAD_MNEMONIC")
        .env("VANA_LOAD_NO_INSTALL", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

/// Runs a command that must fail fast; returns its output.
fn run_to_end(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after 60 s; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_exit_2(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "expected {n:?} in stderr: {stderr}");
    }
    stderr
}

/// Pids of live (non-zombie) processes whose parent is `ppid` and whose
/// executable name is `anvil`.
fn anvil_children(ppid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Some((comm, state, parent)) = proc_stat(pid) else {
            continue;
        };
        if parent == ppid && comm == "anvil" && state != 'Z' {
            out.push(pid);
        }
    }
    out
}

/// (comm, state, ppid) of a process, if it exists.
fn proc_stat(pid: u32) -> Option<(String, char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let mut rest = stat[close + 2..].split(' ');
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((comm, state, ppid))
}

fn alive_not_zombie(pid: u32) -> bool {
    matches!(proc_stat(pid), Some((_, state, _)) if state != 'Z')
}

fn stderr_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn kill_quietly(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends `SIG<signal>` to the child (to vana-load only) and waits up to 30 s
/// for it to exit; kills it and fails the test otherwise.
fn signal_and_wait(child: &mut Child, signal: &str) -> std::process::ExitStatus {
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            kill_quietly(child);
            panic!("no exit within 30 s of SIG{signal}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn twin_up_serves_the_chain_and_stops_cleanly_on_sigint() {
    let scratch = Scratch::new("up");
    let manifest_path = scratch.path().join("m.json");
    let err_path = scratch.path().join("stderr.txt");
    let out_path = scratch.path().join("stdout.txt");
    let mut child = vana_load(scratch.path())
        .args(["twin", "up", "--manifest", "m.json", "--port", "0"])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();

    // The manifest appears once the chain is deployed.
    let deadline = Instant::now() + Duration::from_secs(90);
    while !manifest_path.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "twin up exited early ({status}); stderr: {}",
                stderr_text(&err_path)
            );
        }
        if Instant::now() > deadline {
            kill_quietly(&mut child);
            panic!("no manifest after 90 s; stderr: {}", stderr_text(&err_path));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let manifest = Manifest::load(&manifest_path).unwrap();
    let anvils = anvil_children(child.id());

    let check = async {
        assert_eq!(manifest.chain_id, 14800);
        assert_eq!(anvils.len(), 1, "expected one anvil child, got {anvils:?}");
        let provider = ProviderBuilder::new().connect_http(manifest.rpc_url.parse().unwrap());
        assert_eq!(provider.get_chain_id().await.unwrap(), 14800);
        let raw: String = provider
            .raw_request("eth_chainId".into(), ())
            .await
            .unwrap();
        assert_eq!(raw, "0x39d0");
        assert!(
            !manifest.contracts.is_empty(),
            "the manifest lists no contracts"
        );
        for (name, addr) in &manifest.contracts {
            let code = provider.get_code_at(*addr).await.unwrap();
            assert!(!code.is_empty(), "no code at {name} ({addr})");
        }
        let head = provider.get_block_number().await.unwrap();
        assert!(manifest.deployer_block <= head);
        for (name, ep) in &manifest.services {
            assert!(
                ep.url.starts_with("http://127.0.0.1:"),
                "{name}: {}",
                ep.url
            );
            assert_eq!(ep.metrics_url, format!("{}/metrics", ep.url));
        }
        let stdout = std::fs::read_to_string(&out_path).unwrap();
        assert!(
            stdout.contains(&manifest.rpc_url),
            "table lacks the RPC URL: {stdout}"
        );
        for ep in manifest.services.values() {
            assert!(stdout.contains(&ep.url), "table lacks {}: {stdout}", ep.url);
        }
    };
    // Never leave the twin running if a check fails.
    let result = tokio::time::timeout(Duration::from_secs(60), check).await;
    if result.is_err() {
        kill_quietly(&mut child);
        panic!("checks timed out");
    }

    // SIGINT, as Ctrl-C sends (to vana-load only).
    let status = signal_and_wait(&mut child, "INT");
    assert!(
        status.success(),
        "exit {status}; stderr: {}",
        stderr_text(&err_path)
    );
    for pid in anvils {
        assert!(!alive_not_zombie(pid), "anvil {pid} survived twin up");
    }
    let stderr = stderr_text(&err_path);
    assert!(
        !stderr.contains("test test test"),
        "mnemonic leaked: {stderr}"
    );
}

#[test]
fn port_in_use_is_a_clear_error() {
    let scratch = Scratch::new("port");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut cmd = vana_load(scratch.path());
    cmd.args([
        "twin",
        "up",
        "--manifest",
        "m.json",
        "--port",
        &port.to_string(),
    ]);
    let out = run_to_end(cmd);
    assert_exit_2(&out, &["already in use", &format!("127.0.0.1:{port}")]);
    assert!(!scratch.path().join("m.json").exists());
}

#[test]
fn malformed_mnemonic_is_a_clear_error_that_does_not_echo_it() {
    let scratch = Scratch::new("mnemonic");
    let mut cmd = vana_load(scratch.path());
    cmd.args([
        "twin",
        "up",
        "--manifest",
        "m.json",
        "--mnemonic",
        "correct horse battery staple",
    ]);
    let stderr = assert_exit_2(
        &run_to_end(cmd),
        &["--mnemonic", "malformed mnemonic", "4 words"],
    );
    assert!(!stderr.contains("horse"), "{stderr}");

    // The same through the environment.
    let mut cmd = vana_load(scratch.path());
    cmd.args(["twin", "up", "--manifest", "m.json"]).env(
        "VANA_LOAD_MNEMONIC",
        "test test test test test test test test test test test test",
    );
    let stderr = assert_exit_2(
        &run_to_end(cmd),
        &["VANA_LOAD_MNEMONIC", "malformed mnemonic", "checksum"],
    );
    assert!(!stderr.contains("test test"), "{stderr}");
    assert!(!scratch.path().join("m.json").exists());
}

#[test]
fn missing_anvil_is_a_clear_error() {
    let scratch = Scratch::new("anvil");
    let mut cmd = vana_load(scratch.path());
    cmd.args([
        "twin",
        "up",
        "--manifest",
        "m.json",
        "--anvil",
        "/nonexistent/anvil",
    ]);
    assert_exit_2(&run_to_end(cmd), &["anvil not found", "/nonexistent/anvil"]);
    assert!(!scratch.path().join("m.json").exists());
}

#[test]
fn unknown_flag_exits_2_naming_it() {
    let scratch = Scratch::new("flag");
    let mut cmd = vana_load(scratch.path());
    cmd.args(["twin", "up", "--no-such-flag"]);
    assert_exit_2(&run_to_end(cmd), &["--no-such-flag", "unexpected argument"]);
}

#[test]
fn bad_config_file_names_the_file_and_field() {
    let scratch = Scratch::new("config");
    std::fs::write(
        scratch.path().join("twin.toml"),
        "[chain]\nblock_time = -1.0\n",
    )
    .unwrap();
    let mut cmd = vana_load(scratch.path());
    cmd.args(["twin", "up", "--config", "twin.toml"]);
    assert_exit_2(&run_to_end(cmd), &["chain.block_time"]);

    std::fs::write(scratch.path().join("typo.toml"), "[chain]\nchainid = 5\n").unwrap();
    let mut cmd = vana_load(scratch.path());
    cmd.args(["twin", "up", "--config", "typo.toml"]);
    assert_exit_2(&run_to_end(cmd), &["typo.toml", "chainid"]);
}

/// Starts `twin up --port 0` in `dir` and waits for its manifest; returns the
/// child and its anvil pids.
fn start_twin(dir: &Path) -> (Child, Vec<u32>) {
    let err_path = dir.join("stderr.txt");
    let mut child = vana_load(dir)
        .args(["twin", "up", "--manifest", "m.json", "--port", "0"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !dir.join("m.json").exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("exited early ({status}): {}", stderr_text(&err_path));
        }
        if Instant::now() > deadline {
            kill_quietly(&mut child);
            panic!("no manifest after 90 s: {}", stderr_text(&err_path));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let anvils = anvil_children(child.id());
    if anvils.len() != 1 {
        kill_quietly(&mut child);
        panic!("expected one anvil child, got {anvils:?}");
    }
    (child, anvils)
}

fn wait_gone(pids: &[u32], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while pids.iter().any(|p| alive_not_zombie(*p)) {
        assert!(Instant::now() < deadline, "anvil {pids:?} survived {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_stops_cleanly_and_sigkill_leaves_no_anvil() {
    let scratch = Scratch::new("term");
    let (mut child, anvils) = start_twin(scratch.path());
    let status = signal_and_wait(&mut child, "TERM");
    assert!(status.success(), "{status}");
    wait_gone(&anvils, "SIGTERM");

    // SIGKILL gives vana-load no chance to clean up; anvil must die with it.
    let scratch = Scratch::new("kill");
    let (mut child, anvils) = start_twin(scratch.path());
    child.kill().unwrap();
    child.wait().unwrap();
    wait_gone(&anvils, "SIGKILL of vana-load");
}

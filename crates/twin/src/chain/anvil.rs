//! The anvil process: spawn it on loopback with the twin's chain settings, wait until it
//! listens, and stop it cleanly (SIGTERM, then SIGKILL) — or kill it on drop.
//!
//! No orphans: anvil runs in its own process group (a Ctrl-C in the terminal reaches only
//! vana-load, which then stops anvil itself), gets `PR_SET_PDEATHSIG(SIGKILL)` so it dies
//! with the thread that spawned it even if vana-load is killed, and is killed when the
//! [`AnvilProcess`] is dropped. Anvil prints the dev private keys on stdout, so its output is
//! drained and never logged; only the tail of stderr is kept for error messages.
//!
//! Anvil never sees the mnemonic: a command line is readable by every local user (`ps`,
//! `/proc/<pid>/cmdline`), and the same mnemonic may hold funded keys elsewhere. Anvil starts
//! with no dev accounts; once it listens, the twin derives the keys itself and funds them with
//! `anvil_setBalance`.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::ChainError;

/// How to run anvil.
#[derive(Clone)]
pub struct AnvilConfig {
    /// The anvil binary.
    pub anvil_path: PathBuf,
    /// Address to listen on (loopback by default).
    pub host: IpAddr,
    /// Port; 0 picks a free one (see [`AnvilProcess::rpc_url`]).
    pub port: u16,
    /// Chain id (Vana's 14800 by default).
    pub chain_id: u64,
    /// BIP-39 mnemonic of the dev accounts (validated before anvil starts).
    pub mnemonic: String,
    /// Interval mining; `None` mines one block per transaction (automine).
    pub block_time: Option<Duration>,
    /// Block gas limit; `None` keeps anvil's default (30M).
    pub gas_limit: Option<u64>,
    /// Number of keys funded at start (indices 0..accounts of the mnemonic).
    pub accounts: u32,
    /// Balance of each dev account, in whole ether.
    pub balance_ether: u64,
    /// How long to wait for "Listening on".
    pub startup_timeout: Duration,
    /// Extra arguments passed to anvil as is.
    pub extra_args: Vec<String>,
}

impl Default for AnvilConfig {
    fn default() -> Self {
        Self {
            anvil_path: PathBuf::from("anvil"),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            chain_id: 14800,
            mnemonic: protocol::keys::DEFAULT_TEST_MNEMONIC.to_owned(),
            block_time: None,
            gas_limit: None,
            accounts: 100,
            balance_ether: 1_000_000_000,
            startup_timeout: Duration::from_secs(30),
            extra_args: Vec::new(),
        }
    }
}

impl std::fmt::Debug for AnvilConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnvilConfig")
            .field("anvil_path", &self.anvil_path)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("chain_id", &self.chain_id)
            .field("mnemonic", &"<redacted>")
            .field("block_time", &self.block_time)
            .field("gas_limit", &self.gas_limit)
            .field("accounts", &self.accounts)
            .field("balance_ether", &self.balance_ether)
            .finish_non_exhaustive()
    }
}

impl AnvilConfig {
    /// The command-line arguments (without the binary). No key material: anvil
    /// starts without dev accounts ([`fund_accounts`] funds the keys).
    fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--host".into(),
            self.host.to_string(),
            "--port".into(),
            self.port.to_string(),
            "--chain-id".into(),
            self.chain_id.to_string(),
            "--accounts".into(),
            "0".into(),
        ];
        if let Some(block_time) = self.block_time {
            args.push("--block-time".into());
            args.push(format_seconds(block_time));
        }
        if let Some(gas_limit) = self.gas_limit {
            args.push("--gas-limit".into());
            args.push(gas_limit.to_string());
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }

    fn validate(&self) -> Result<(), ChainError> {
        protocol::keys::validate_mnemonic(&self.mnemonic)
            .map_err(|_| ChainError::MalformedMnemonic)?;
        if self.block_time.is_some_and(|bt| bt.is_zero()) {
            return Err(ChainError::Config(
                "block_time must be positive (None = automine)".into(),
            ));
        }
        if self.gas_limit == Some(0) {
            return Err(ChainError::Config("gas_limit must be positive".into()));
        }
        if self.accounts == 0 {
            return Err(ChainError::Config(
                "accounts must be at least 1 (index 0 deploys)".into(),
            ));
        }
        Ok(())
    }
}

fn format_seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{}", d.as_secs_f64())
    }
}

/// A running anvil. Killed on drop; prefer [`AnvilProcess::stop`] for a clean stop.
pub struct AnvilProcess {
    child: Option<Child>,
    addr: SocketAddr,
    chain_id: u64,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl std::fmt::Debug for AnvilProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnvilProcess")
            .field("pid", &self.pid())
            .field("addr", &self.addr)
            .field("chain_id", &self.chain_id)
            .finish()
    }
}

const STDERR_TAIL_LINES: usize = 20;

impl AnvilProcess {
    /// Starts anvil and waits until it listens. Errors name the problem: a malformed mnemonic
    /// (checked before spawning), a missing or non-executable binary, a port in use, an exit
    /// during startup (with anvil's stderr), or a startup timeout.
    pub async fn spawn(cfg: &AnvilConfig) -> Result<AnvilProcess, ChainError> {
        cfg.validate()?;
        check_binary(&cfg.anvil_path)?;
        if cfg.port != 0 {
            let addr = SocketAddr::new(cfg.host, cfg.port);
            if let Err(e) = std::net::TcpListener::bind(addr) {
                return Err(if e.kind() == std::io::ErrorKind::AddrInUse {
                    ChainError::PortInUse(addr)
                } else {
                    ChainError::Spawn {
                        path: cfg.anvil_path.clone(),
                        reason: format!("cannot listen on {addr}: {e}"),
                    }
                });
            }
        }

        let mut cmd = Command::new(&cfg.anvil_path);
        cmd.args(cfg.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| spawn_error(&cfg.anvil_path, e))?;

        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            let tail = stderr_tail.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut tail = tail.lock().expect("stderr tail lock");
                    if tail.len() == STDERR_TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            });
        }
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = tokio::sync::oneshot::channel::<SocketAddr>();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let mut tx = Some(tx);
            // Drain everything (anvil logs every transaction); never log it (it holds keys).
            while let Ok(Some(line)) = lines.next_line().await {
                let listening = line.trim().strip_prefix("Listening on ");
                if let Some(addr) =
                    listening.and_then(|rest| rest.trim().parse::<SocketAddr>().ok())
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr);
                }
            }
        });

        let mut process = AnvilProcess {
            child: Some(child),
            addr: SocketAddr::new(cfg.host, cfg.port),
            chain_id: cfg.chain_id,
            stderr_tail,
        };
        tokio::select! {
            addr = rx => match addr {
                Ok(addr) => {
                    process.addr = addr;
                    // On an error, dropping `process` kills anvil.
                    fund_accounts(&process.rpc_url(), cfg).await?;
                    Ok(process)
                }
                Err(_) => Err(process.exited_error(cfg).await),
            },
            _ = tokio::time::sleep(cfg.startup_timeout) => {
                process.kill().await;
                Err(ChainError::StartupTimeout { timeout: cfg.startup_timeout, stderr: process.stderr_tail() })
            }
        }
    }

    async fn exited_error(&mut self, cfg: &AnvilConfig) -> ChainError {
        let status = match self.child.as_mut() {
            Some(child) => tokio::time::timeout(Duration::from_secs(5), child.wait())
                .await
                .ok()
                .and_then(Result::ok),
            None => None,
        };
        self.child = None;
        // Let the stderr reader catch the last lines.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let stderr = self.stderr_tail();
        if stderr.contains("Address already in use") {
            return ChainError::PortInUse(SocketAddr::new(cfg.host, cfg.port));
        }
        ChainError::Exited {
            status: status.map_or_else(|| "unknown".to_owned(), |s| s.to_string()),
            stderr,
        }
    }

    /// The last lines anvil wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        self.stderr_tail
            .lock()
            .expect("stderr tail lock")
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The address anvil listens on (the real port when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://host:port`.
    pub fn rpc_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://host:port`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The chain id anvil was started with.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The OS process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Stops anvil: SIGTERM to its process group, then SIGKILL after 5 s.
    pub async fn stop(mut self) {
        self.terminate(Duration::from_secs(5)).await;
    }

    async fn terminate(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            // SAFETY: plain kill(2) on the process group we created (pgid == anvil's pid).
            unsafe {
                libc::kill(-(pid as libc::pid_t), libc::SIGTERM);
            }
            if tokio::time::timeout(grace, child.wait()).await.is_ok() {
                return;
            }
        }
        let _ = child.kill().await;
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

impl Drop for AnvilProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            // kill_on_drop would do it too; be explicit, and tokio reaps the zombie.
            let _ = child.start_kill();
        }
    }
}

/// Gives keys `0..accounts` of the mnemonic `balance_ether` each, as anvil's
/// own dev accounts would have had.
async fn fund_accounts(rpc_url: &str, cfg: &AnvilConfig) -> Result<(), ChainError> {
    use alloy::primitives::U256;
    use alloy::providers::Provider;
    use futures::{StreamExt, TryStreamExt};
    let rpc = |reason: String| ChainError::Rpc {
        url: rpc_url.to_owned(),
        reason,
    };
    let keys = protocol::keys::HdAccount::new(&cfg.mnemonic)
        .and_then(|hd| hd.signers(0..cfg.accounts))
        .map_err(|_| ChainError::MalformedMnemonic)?;
    let url = rpc_url
        .parse()
        .map_err(|e| rpc(format!("invalid URL: {e}")))?;
    let provider = protocol::rpc::provider(url);
    let balance = U256::from(cfg.balance_ether) * U256::from(10u64).pow(U256::from(18u64));
    let provider = &provider;
    futures::stream::iter(keys)
        .map(|key| async move {
            provider
                .raw_request::<_, ()>("anvil_setBalance".into(), (key.address(), balance))
                .await
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .map_err(|e| rpc(format!("anvil_setBalance: {e}")))?;
    Ok(())
}

fn check_binary(path: &std::path::Path) -> Result<(), ChainError> {
    use std::os::unix::fs::PermissionsExt;
    // A bare name is looked up in $PATH by the OS; only check explicit paths.
    if path.components().count() <= 1 {
        return Ok(());
    }
    let meta =
        std::fs::metadata(path).map_err(|_| ChainError::AnvilNotFound(path.to_path_buf()))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(ChainError::NotExecutable(path.to_path_buf()));
    }
    Ok(())
}

fn spawn_error(path: &std::path::Path, e: std::io::Error) -> ChainError {
    match e.kind() {
        std::io::ErrorKind::NotFound => ChainError::AnvilNotFound(path.to_path_buf()),
        std::io::ErrorKind::PermissionDenied => ChainError::NotExecutable(path.to_path_buf()),
        _ => ChainError::Spawn {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    }
}

//! The twin holds up against what the real network does to it: a job on
//! chain that no request can name, a proof transaction the node drops, a
//! chain that stops answering. And anvil never sees the mnemonic.
//!
//! Each test starts its own twin on loopback (ephemeral ports) and is bounded.

use std::time::{Duration, Instant};

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use protocol::api::storage::IpfsAddResponse;
use protocol::api::tee::RunProofRequest;
use protocol::contracts::{DataRegistry, TeePoolPhala};
use protocol::crypto;
use protocol::keys::{DEFAULT_TEST_MNEMONIC, USER_INDEX_OFFSET, derive_signer};
use vana_load_twin::faults::FaultsConfig;
use vana_load_twin::{Twin, TwinConfig};

struct Env {
    twin: Twin,
    http: reqwest::Client,
}

impl Env {
    async fn start(tweak: impl FnOnce(&mut TwinConfig)) -> Env {
        let mut config = TwinConfig::ephemeral();
        config.tee.service_time_ms = 10;
        config.tee.poll_interval_ms = 50;
        tweak(&mut config);
        Env {
            twin: Twin::start(config).await.expect("twin starts"),
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, service: &str) -> String {
        self.twin.manifest().services[service].url.clone()
    }

    fn contract(&self, name: &str) -> Address {
        self.twin.manifest().contracts[name]
    }

    fn rpc(&self) -> reqwest::Url {
        self.twin.manifest().rpc_url.parse().unwrap()
    }

    async fn raw<R: alloy::rpc::json_rpc::RpcRecv>(
        &self,
        method: &str,
        params: serde_json::Value,
    ) -> R {
        ProviderBuilder::new()
            .connect_http(self.rpc())
            .raw_request::<_, R>(method.to_owned().into(), params)
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// A user with gas, and a provider signing as them.
    async fn user(&self, index: u32) -> (PrivateKeySigner, DynProvider) {
        let user = derive_signer(DEFAULT_TEST_MNEMONIC, USER_INDEX_OFFSET + index).unwrap();
        let wei = U256::from(10u64).pow(U256::from(19u64));
        let () = self
            .raw("anvil_setBalance", serde_json::json!([user.address(), wei]))
            .await;
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(user.clone()))
            .connect_http(self.rpc())
            .erased();
        (user, provider)
    }

    /// An encrypted file in storage, registered on chain: (file id, password).
    async fn file(&self, user: &DynProvider, tag: &str) -> (u64, String) {
        let password = format!("password-{tag}");
        let plaintext = format!(r#"{{"user_profile":{{"name":"{tag}"}}}}"#);
        let ciphertext = crypto::encrypt_with_password(plaintext.as_bytes(), &password).unwrap();
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(ciphertext).file_name("f.enc"),
        );
        let added: IpfsAddResponse = self
            .http
            .post(format!("{}/api/v0/add", self.url("storage")))
            .multipart(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let registry = DataRegistry::new(self.contract("DataRegistry"), user);
        let receipt = registry
            .addFile(format!("ipfs://{}", added.hash))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        let id = receipt
            .inner
            .logs()
            .iter()
            .find_map(|l| l.log_decode::<DataRegistry::FileAddedV2>().ok())
            .map(|l| l.inner.data.fileId)
            .expect("FileAddedV2");
        (id.to(), password)
    }

    /// `requestContributionProof(file_id)` → the job id.
    async fn job(&self, user: &DynProvider, file_id: U256) -> u64 {
        let pool = TeePoolPhala::new(self.contract("TeePoolPhala"), user);
        let fee = pool.teeFee().call().await.unwrap();
        let receipt = pool
            .requestContributionProof(file_id)
            .value(fee)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        let ev = receipt
            .inner
            .logs()
            .iter()
            .find_map(|l| l.log_decode::<TeePoolPhala::JobSubmitted>().ok())
            .expect("JobSubmitted");
        ev.inner.data.jobId.to()
    }

    async fn run_proof(&self, job_id: u64, file_id: u64, key: &str) -> (u16, serde_json::Value) {
        let req = RunProofRequest {
            job_id,
            file_id,
            nonce: None,
            encryption_key: Some(key.to_owned()),
            encrypted_encryption_key: None,
            proof_url: "https://example.invalid/proof.tar.gz".into(),
            encryption_seed: None,
            env_vars: Default::default(),
            secrets: Default::default(),
            validate_permissions: None,
        };
        let r = self
            .http
            .post(format!("{}/RunProof", self.url("tee")))
            .json(&req)
            .send()
            .await
            .expect("the TEE answers");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or_default())
    }

    /// Waits until `file_id` has a proof on chain, calling `tick` each round.
    async fn proved(
        &self,
        user: &DynProvider,
        file_id: u64,
        limit: Duration,
        tick: impl AsyncFn(),
    ) {
        let registry = DataRegistry::new(self.contract("DataRegistry"), user);
        let deadline = Instant::now() + limit;
        loop {
            let proof = registry
                .fileProofs(U256::from(file_id), U256::from(1u64))
                .call()
                .await;
            if proof.is_ok_and(|p| !p.signature.is_empty()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no proof for file {file_id} within {limit:?}"
            );
            tick().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn nothing() {}

/// Every command line of `pid` and its descendants.
fn command_lines(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        if let Ok(raw) = std::fs::read(format!("/proc/{p}/cmdline")) {
            out.push(String::from_utf8_lossy(&raw).replace('\0', " "));
        }
        let children =
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        todo.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
    }
    out
}

#[tokio::test]
async fn anvil_gets_no_mnemonic_and_the_keys_it_derives_are_funded() {
    let phrase = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
    let env = Env::start(|c| {
        c.chain.mnemonic = vana_load_twin::config::Mnemonic::new(phrase);
    })
    .await;
    let pid = env.twin.anvil_pid().expect("anvil runs");
    let lines = command_lines(pid);
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(line.contains("anvil"), "{line}");
        for word in ["abandon", "about", "mnemonic"] {
            assert!(
                !line.contains(word),
                "anvil's command line shows {word:?}: {line}"
            );
        }
    }
    // The twin deployed from that mnemonic (so its deployer was funded), and
    // every key anvil used to fund is funded and can send.
    let keys = protocol::keys::HdAccount::new(phrase).unwrap();
    let provider = ProviderBuilder::new().connect_http(env.rpc());
    for index in [0u32, 1, 2, 50, 99] {
        let balance = provider
            .get_balance(keys.signer(index).unwrap().address())
            .await
            .unwrap();
        assert!(balance > U256::ZERO, "key {index} is not funded");
    }
    let sender = ProviderBuilder::new()
        .wallet(EthereumWallet::from(keys.signer(7).unwrap()))
        .connect_http(env.rpc());
    let tx = alloy::rpc::types::TransactionRequest::default()
        .to(Address::repeat_byte(9))
        .value(U256::from(1u64));
    let receipt = sender
        .send_transaction(tx)
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    env.twin.stop().await;
}

#[tokio::test]
async fn jobs_no_request_can_name_do_not_stop_the_tee() {
    let env = Env::start(|_| {}).await;
    let (_, user) = env.user(1).await;
    // A file id beyond 64 bits, and one that names no file.
    let huge = U256::from(1u64) << 70;
    let beyond = env.job(&user, huge).await;
    let missing = env.job(&user, U256::from(999_999u64)).await;
    // Let the job watcher read both logs.
    tokio::time::sleep(Duration::from_millis(600)).await;

    let (status, body) = env.run_proof(beyond, 5, "k").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "JOB_MISMATCH", "{body}");
    let (status, body) = env.run_proof(missing, 999_999, "k").await;
    assert_eq!(status, 202, "{body}");

    // Every later proof still works.
    let (file, key) = env.file(&user, "after").await;
    let job = env.job(&user, U256::from(file)).await;
    let (status, body) = env.run_proof(job, file, &key).await;
    assert_eq!(status, 202, "{body}");
    env.proved(&user, file, Duration::from_secs(30), nothing)
        .await;
    env.twin.stop().await;
}

#[tokio::test]
async fn a_dropped_proof_transaction_is_sent_again_and_does_not_block_later_ones() {
    let env = Env::start(|c| {
        c.tee.bump_after_ms = 400;
        c.tee.receipt_timeout_ms = 30_000;
    })
    .await;
    let (_, user) = env.user(2).await;
    let (file_a, key_a) = env.file(&user, "a").await;
    let (file_b, key_b) = env.file(&user, "b").await;
    let job_a = env.job(&user, U256::from(file_a)).await;
    let job_b = env.job(&user, U256::from(file_b)).await;
    let tee = env.twin.deployment().tee_address;

    // Nothing is mined from here until the test mines.
    let () = env.raw("evm_setAutomine", serde_json::json!([false])).await;
    assert_eq!(env.run_proof(job_a, file_a, &key_a).await.0, 202);
    // The node drops A's transaction as soon as it is in the pool.
    let deadline = Instant::now() + Duration::from_secs(20);
    let dropped = loop {
        let pool: serde_json::Value = env.raw("txpool_content", serde_json::json!([])).await;
        let from_tee = pool["pending"]
            .as_object()
            .and_then(|m| {
                m.iter()
                    .find(|(a, _)| a.parse::<Address>().ok() == Some(tee))
            })
            .and_then(|(_, txs)| txs.as_object()?.values().next().cloned());
        if let Some(tx) = from_tee {
            let hash = tx["hash"].as_str().unwrap().to_owned();
            let _: serde_json::Value = env
                .raw("anvil_dropTransaction", serde_json::json!([hash]))
                .await;
            break hash;
        }
        assert!(Instant::now() < deadline, "A's proof was never sent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // B's proof comes after, with the next nonce: behind the gap A left.
    assert_eq!(env.run_proof(job_b, file_b, &key_b).await.0, 202);
    let mine = async || {
        let _: serde_json::Value = env.raw("evm_mine", serde_json::json!([])).await;
    };
    env.proved(&user, file_a, Duration::from_secs(25), mine)
        .await;
    env.proved(&user, file_b, Duration::from_secs(25), mine)
        .await;
    let receipt: serde_json::Value = env
        .raw("eth_getTransactionReceipt", serde_json::json!([dropped]))
        .await;
    assert!(
        receipt.is_null(),
        "the dropped transaction was replaced, not mined"
    );
    env.twin.stop().await;
}

#[tokio::test]
async fn a_chain_that_stops_answering_fails_tee_calls_in_time_and_all_resume() {
    let env = Env::start(|c| {
        c.faults = Some(FaultsConfig::default());
        c.tee.rpc_timeout_ms = 500;
    })
    .await;
    let (_, user) = env.user(3).await;
    let (file, key) = env.file(&user, "stall").await;
    let job = env.job(&user, U256::from(file)).await;
    let faults = env.twin.faults().expect("faults are on").clone();
    let mut stalled = faults.get();
    stalled.chain.stall_rate = 1.0;
    stalled.chain.stall_ms = 3_000;
    faults.set(stalled).unwrap();

    // A job the TEE has not seen must be read from the chain, which stalls:
    // the TEE answers within its RPC timeout instead of hanging.
    let started = Instant::now();
    let (status, body) = env.run_proof(job + 1000, 1, "k").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["code"], "BLOCKCHAIN_ERROR", "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // The chain answers again: the TEE carries on.
    faults.set(FaultsConfig::default()).unwrap();
    let (status, body) = env.run_proof(job, file, &key).await;
    assert_eq!(status, 202, "{body}");
    env.proved(&user, file, Duration::from_secs(30), nothing)
        .await;
    assert!(faults.injected()["chain.stall"] >= 1);
    env.twin.stop().await;
}

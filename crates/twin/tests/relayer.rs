//! The relayer over HTTP against anvil with the real contracts: the SDK's
//! protocol by default (`signed{hash}` once broadcast, errors as HTTP 200
//! `{type:"error"}`, every primary type routed, grants stored through the
//! storage service as `ipfs://`); the extension (`wait`): signed and direct
//! operations confirmed with decoded ids, every refusal (wrong signature,
//! malformed JSON, replayed nonce or replayed request, unknown operation)
//! with its error shape and no nonce used, a pre-broadcast failure that leaves no nonce gap,
//! bump-and-replace while anvil does not mine, and the soak (100 relayed
//! transactions over 4 keys, all confirmed, no gap).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::signers::local::PrivateKeySigner;
use protocol::api::relayer::{DirectResult, RelayResponse};
use protocol::contracts::DataPortabilityPermissions;
use protocol::eip712;
use protocol::keys;
use serde_json::{Value, json};
use vana_load_twin as twin;

use twin::chain::{AnvilConfig, AnvilProcess, DeployConfig, deploy};
use twin::relayer::{Config, GrantStorage, Upstreams, WaitMode, relayer_addresses, spawn};
use twin::service::ServiceHandle;

const MNEMONIC: &str = keys::DEFAULT_TEST_MNEMONIC;

/// Anvil with the contracts deployed by `twin::chain` (the app is grantee 1).
struct Chain {
    _anvil: AnvilProcess,
    rpc_url: String,
    chain_id: u64,
    contracts: BTreeMap<String, Address>,
    grantee_id: U256,
}

async fn chain_with(block_time: Option<Duration>) -> Chain {
    let cfg = AnvilConfig {
        anvil_path: concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
        )
        .into(),
        block_time,
        // Only the deployer and app are funded by anvil: the relayer funds its own keys.
        accounts: 2,
        ..Default::default()
    };
    let anvil = AnvilProcess::spawn(&cfg).await.unwrap();
    let rpc_url = anvil.rpc_url();
    let d = deploy(&rpc_url, MNEMONIC, &DeployConfig::default())
        .await
        .unwrap();
    Chain {
        _anvil: anvil,
        rpc_url,
        chain_id: d.chain_id,
        contracts: d.contracts(),
        grantee_id: U256::from(d.grantee_id),
    }
}

async fn chain() -> Chain {
    chain_with(None).await
}

impl Chain {
    fn rpc(&self) -> RootProvider {
        RootProvider::new_http(self.rpc_url.parse().unwrap())
    }

    /// A relayer without grant storage.
    async fn relayer(&self, cfg: Config) -> ServiceHandle {
        self.relayer_via(&self.rpc_url, cfg).await
    }

    /// A relayer without grant storage that reaches the chain at `rpc_url`.
    async fn relayer_via(&self, rpc_url: &str, cfg: Config) -> ServiceHandle {
        let upstreams = Upstreams {
            rpc_url: rpc_url.to_string(),
            contracts: self.contracts.clone(),
            storage: None,
        };
        spawn(cfg, MNEMONIC, upstreams).await.unwrap()
    }

    /// A relayer that stores grants in `storage` (a twin storage service).
    async fn relayer_with_storage(&self, cfg: Config, storage: &ServiceHandle) -> ServiceHandle {
        let upstreams = Upstreams {
            rpc_url: self.rpc_url.clone(),
            contracts: self.contracts.clone(),
            storage: Some(GrantStorage {
                api_url: storage.url(),
                jwt: Some(twin::storage::DEFAULT_JWT.into()),
            }),
        };
        spawn(cfg, MNEMONIC, upstreams).await.unwrap()
    }

    fn permissions(&self) -> Address {
        self.contracts["DataPortabilityPermissions"]
    }

    async fn user_nonce(&self, user: Address) -> U256 {
        DataPortabilityPermissions::new(self.permissions(), self.rpc())
            .userNonce(user)
            .call()
            .await
            .unwrap()
    }

    /// (latest, pending) transaction counts of each relayer key.
    async fn key_nonces(&self, keys: usize) -> Vec<(u64, u64)> {
        let rpc = self.rpc();
        let mut out = Vec::new();
        for a in relayer_addresses(MNEMONIC, keys).unwrap() {
            let latest = rpc.get_transaction_count(a).latest().await.unwrap();
            let pending = rpc.get_transaction_count(a).pending().await.unwrap();
            out.push((latest, pending));
        }
        out
    }

    /// A signed `submitAddPermission` request body.
    fn add_permission(&self, user: &PrivateKeySigner, nonce: U256, file_ids: &[u64]) -> Value {
        let msg = eip712::permission::Permission {
            nonce,
            granteeId: self.grantee_id,
            grant: format!("http://127.0.0.1:1/grants/{}", user.address()),
            fileIds: file_ids.iter().map(|i| U256::from(*i)).collect(),
        };
        let domain = eip712::permissions_domain(self.chain_id, self.permissions());
        let sig = eip712::sign(user, &msg, &domain).unwrap();
        json!({
            "type": "signed",
            "operation": "submitAddPermission",
            "typedData": eip712::typed_data_json(&msg, &domain).unwrap(),
            "signature": sig.to_string(),
            "expectedUserAddress": user.address().to_string().to_lowercase(),
        })
    }
}

fn user(i: u32) -> PrivateKeySigner {
    keys::derive_signer(MNEMONIC, keys::USER_INDEX_OFFSET + i).unwrap()
}

fn file_addition(url: &str, owner: Address) -> Value {
    json!({
        "type": "direct",
        "operation": "submitFileAdditionComplete",
        "params": {
            "url": url,
            "userAddress": owner,
            "permissions": [{"account": Address::repeat_byte(0x5e), "key": "ab".repeat(257)}],
            "schemaId": 0
        }
    })
}

/// One client (one connection pool) for the whole test, like a real caller.
fn http() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new)
}

async fn post(h: &ServiceHandle, body: &Value, query: &str) -> (u16, RelayResponse) {
    let resp = http()
        .post(format!("{}/api/relay{query}", h.url()))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let parsed = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("response {status} {text:?} is not a relay response: {e}"));
    (status, parsed)
}

async fn add_file(h: &ServiceHandle, url: &str, owner: Address) -> u64 {
    match post(h, &file_addition(url, owner), "").await {
        (
            200,
            RelayResponse::Direct {
                result: DirectResult::FileAdded { file_id, .. },
            },
        ) => file_id,
        other => panic!("file addition answered {other:?}"),
    }
}

async fn metric(h: &ServiceHandle, series: &str) -> f64 {
    let text = reqwest::get(h.metrics_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(series) && l[series.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn poll_until_terminal(h: &ServiceHandle, op: &str) -> RelayResponse {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, r) = post(h, &json!({"type":"status_check","operationId": op}), "").await;
        match r {
            RelayResponse::Pending { .. } | RelayResponse::Submitted { .. } => {}
            other => return other,
        }
        assert!(Instant::now() < deadline, "operation {op} never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Signs server typed data (`TrustServer`, `UntrustServer`, `AddServer`) for the relay.
fn server_request<T: alloy::sol_types::SolStruct + alloy::sol_types::SolValue>(
    c: &Chain,
    signer: &PrivateKeySigner,
    msg: &T,
    operation: &str,
) -> Value {
    let domain = eip712::servers_domain(c.chain_id, c.contracts["DataPortabilityServers"]);
    json!({
        "type": "signed",
        "operation": operation,
        "typedData": eip712::typed_data_json(msg, &domain).unwrap(),
        "signature": eip712::sign(signer, msg, &domain).unwrap().to_string(),
    })
}

/// The SDK's protocol (the default): a signed request is answered
/// `{type:"signed", hash}` once broadcast and the caller finds the receipt
/// itself; every primary type is routed, server types to the Servers
/// contract; refusals and reverts are HTTP 200 `{type:"error"}` with the
/// handler's messages; an unknown primary type is refused by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_protocol_is_the_sdks() {
    use protocol::contracts::DataPortabilityServers;
    use protocol::eip712::server::{AddServer, TrustServer, UntrustServer};
    let c = chain().await;
    let h = c
        .relayer(Config {
            keys: 2,
            ..Config::default()
        })
        .await;
    let rpc = c.rpc();
    let dave = user(7);
    let file_id = add_file(&h, "ipfs://sdk-protocol-file", dave.address()).await;

    let receipt_of = |hash| {
        let rpc = rpc.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(r) = rpc.get_transaction_receipt(hash).await.unwrap() {
                    return r;
                }
                assert!(Instant::now() < deadline, "{hash} never mined");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let signed = |r: RelayResponse| match r {
        RelayResponse::Signed { hash } => hash,
        other => panic!("expected {{type:\"signed\"}}, got {other:?}"),
    };

    // Permission → signed{hash}; the receipt is the caller's to find.
    let body = c.add_permission(&dave, c.user_nonce(dave.address()).await, &[file_id]);
    let (status, r) = post(&h, &body, "").await;
    assert_eq!(status, 200);
    assert!(receipt_of(signed(r)).await.status());

    // The same signed Permission again: refused by the contract's error
    // name, in the SDK's error shape, and nothing is sent for it.
    let before = c.key_nonces(2).await;
    let (status, r) = post(&h, &body, "").await;
    assert_eq!(status, 200);
    let RelayResponse::Error { error } = r else {
        panic!("the replay answered {r:?}")
    };
    assert!(error.starts_with("revert(InvalidNonce"), "{error}");
    assert_eq!(c.key_nonces(2).await, before, "the replay spent a nonce");

    // AddServer, UntrustServer, TrustServer go to DataPortabilityServers.
    let servers = DataPortabilityServers::new(c.contracts["DataPortabilityServers"], rpc.clone());
    let server_key = PrivateKeySigner::random();
    let add = AddServer {
        nonce: U256::ZERO,
        serverAddress: server_key.address(),
        publicKey: "0x04aa".into(),
        serverUrl: "http://127.0.0.1:9/api/v1".into(),
    };
    let (_, r) = post(
        &h,
        &server_request(&c, &dave, &add, "submitAddAndTrustServer"),
        "",
    )
    .await;
    assert!(receipt_of(signed(r)).await.status());
    let trusted = servers
        .userServerIdsValues(dave.address())
        .call()
        .await
        .unwrap();
    assert_eq!(trusted.len(), 1, "{trusted:?}");
    let server_id = trusted[0];
    let untrust = UntrustServer {
        nonce: U256::from(1),
        serverId: server_id,
    };
    let (_, r) = post(
        &h,
        &server_request(&c, &dave, &untrust, "submitUntrustServer"),
        "",
    )
    .await;
    assert!(receipt_of(signed(r)).await.status());
    // As Vana's contract: the id stays in the set, its trust ends.
    let info = servers
        .userServers(dave.address(), server_id)
        .call()
        .await
        .unwrap();
    assert!(info.endBlock < U256::MAX, "{info:?}");
    let trust = TrustServer {
        nonce: U256::from(2),
        serverId: server_id,
    };
    let (_, r) = post(
        &h,
        &server_request(&c, &dave, &trust, "submitTrustServer"),
        "",
    )
    .await;
    assert!(receipt_of(signed(r)).await.status());
    assert_eq!(
        servers
            .userServerIdsValues(dave.address())
            .call()
            .await
            .unwrap(),
        vec![server_id]
    );

    // Refusals: HTTP 200 with the handler's message.
    let mut wrong = c.add_permission(&dave, U256::ZERO, &[]);
    wrong["expectedUserAddress"] = json!(user(8).address());
    let (status, r) = post(&h, &wrong, "").await;
    assert_eq!(status, 200);
    assert!(
        matches!(&r, RelayResponse::Error { error } if error.starts_with("Security verification failed")),
        "{r:?}"
    );
    let mut unknown = c.add_permission(&dave, U256::ZERO, &[]);
    unknown["typedData"]["primaryType"] = json!("RegisterGrantee");
    let (status, r) = post(&h, &unknown, "").await;
    assert_eq!(status, 200);
    assert_eq!(
        r,
        RelayResponse::Error {
            error: "Unsupported operation type: RegisterGrantee".into()
        }
    );
    let (status, r) = post(
        &h,
        &json!({"type":"direct","operation":"submitNothing","params":{}}),
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        matches!(&r, RelayResponse::Error { error } if error.contains("submitNothing")),
        "{r:?}"
    );
    // Without a storage service, storeGrantFile is refused by name.
    let grant = json!({"grantee": dave.address(), "operation": "llm_inference", "parameters": {}});
    let (status, r) = post(
        &h,
        &json!({"type":"direct","operation":"storeGrantFile","params": grant}),
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        matches!(&r, RelayResponse::Error { error } if error.contains("storage")),
        "{r:?}"
    );
    // The extension is still there when asked for.
    let body = c.add_permission(&dave, c.user_nonce(dave.address()).await, &[file_id]);
    let (_, r) = post(&h, &body, "?wait=confirmed").await;
    assert!(matches!(r, RelayResponse::Confirmed { .. }), "{r:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_and_direct_operations_confirm_and_refusals_use_no_nonce() {
    let c = chain().await;
    let storage = twin::storage::spawn(twin::storage::Config::default())
        .await
        .unwrap();
    let h = c
        .relayer_with_storage(
            Config {
                keys: 2,
                wait: Some(WaitMode::Confirmed),
                ..Config::default()
            },
            &storage,
        )
        .await;
    let alice = user(1);

    // Direct file addition: fileId from the receipt's FileAdded event.
    let file_id = add_file(&h, "ipfs://relayer-test-file-1", alice.address()).await;
    assert!(file_id >= 1);

    // Signed addPermission, waited until confirmed, with the decoded id.
    let nonce = c.user_nonce(alice.address()).await;
    let body = c.add_permission(&alice, nonce, &[file_id]);
    let (status, r) = post(&h, &body, "").await;
    let RelayResponse::Confirmed {
        receipt: Some(receipt),
        ..
    } = &r
    else {
        panic!("addPermission answered {status} {r:?}")
    };
    assert_eq!(status, 200);
    assert_eq!(receipt.status, "success");
    let permission_id = receipt.permission_id.expect("PermissionAdded decoded");
    assert!(permission_id >= 1);
    assert!(receipt.gas_used > 0 && receipt.effective_gas_price > 0 && receipt.block_number > 0);
    assert_eq!(c.user_nonce(alice.address()).await, nonce + U256::from(1));

    // Signed addServerFilesAndPermissions.
    let nonce = c.user_nonce(alice.address()).await;
    let server = PrivateKeySigner::random().address();
    let msg = eip712::server_files::ServerFilesAndPermission {
        nonce,
        granteeId: c.grantee_id,
        grant: "http://127.0.0.1:1/grants/sfp".into(),
        fileUrls: vec!["ipfs://relayer-test-file-2".into()],
        schemaIds: vec![U256::ZERO],
        serverAddress: server,
        serverUrl: "http://127.0.0.1:2".into(),
        serverPublicKey: "0x04".into(),
        filePermissions: vec![vec![eip712::server_files::Permission {
            account: server,
            key: "cd".repeat(257),
        }]],
    };
    let domain = eip712::permissions_domain(c.chain_id, c.permissions());
    let body = json!({
        "type": "signed",
        "operation": "submitAddServerFilesAndPermissions",
        "typedData": eip712::typed_data_json(&msg, &domain).unwrap(),
        "signature": eip712::sign(&alice, &msg, &domain).unwrap().to_string(),
        "expectedUserAddress": alice.address(),
    });
    let (status, r) = post(&h, &body, "").await;
    let RelayResponse::Confirmed {
        receipt: Some(receipt),
        ..
    } = &r
    else {
        panic!("addServerFilesAndPermissions answered {status} {r:?}")
    };
    assert_eq!(receipt.file_ids.len(), 1, "{receipt:?}");
    assert!(receipt.permission_id.unwrap() > permission_id);

    // Refusals before any transaction: no relayer nonce moves.
    let before = c.key_nonces(2).await;
    let bob = user(2);
    let mut wrong = c.add_permission(&bob, c.user_nonce(bob.address()).await, &[]);
    wrong["expectedUserAddress"] = json!(alice.address());
    let (status, r) = post(&h, &wrong, "").await;
    assert_eq!(status, 400);
    let RelayResponse::Error { error } = r else {
        panic!("{r:?}")
    };
    assert!(
        error.starts_with("Security verification failed: Recovered signer address"),
        "{error}"
    );
    let mut bad_sig = c.add_permission(&bob, U256::ZERO, &[]);
    bad_sig["signature"] = json!("0x1234");
    assert_eq!(post(&h, &bad_sig, "").await.0, 400);
    let resp = reqwest::Client::new()
        .post(format!("{}/api/relay", h.url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let r: RelayResponse = resp.json().await.unwrap();
    assert!(matches!(r, RelayResponse::Error { ref error } if error.contains("malformed")));
    let (status, r) = post(&h, &json!({"type":"bogus"}), "").await;
    assert_eq!(status, 400, "{r:?}");
    // Signed for another contract: refused here, not reverted on chain.
    let msg = eip712::permission::Permission {
        nonce: U256::ZERO,
        granteeId: c.grantee_id,
        grant: "http://127.0.0.1:1/g".into(),
        fileIds: vec![],
    };
    let elsewhere = eip712::permissions_domain(c.chain_id, Address::repeat_byte(9));
    let body = json!({
        "type": "signed",
        "operation": "submitAddPermission",
        "typedData": eip712::typed_data_json(&msg, &elsewhere).unwrap(),
        "signature": eip712::sign(&bob, &msg, &elsewhere).unwrap().to_string(),
        "expectedUserAddress": bob.address(),
    });
    let (status, r) = post(&h, &body, "").await;
    assert_eq!(status, 400);
    assert!(
        matches!(r, RelayResponse::Error { ref error } if error.contains("verifyingContract")),
        "{r:?}"
    );
    let (status, r) = post(
        &h,
        &json!({"type":"status_check","operationId":"op_nope"}),
        "",
    )
    .await;
    assert_eq!(status, 404);
    assert!(matches!(r, RelayResponse::Error { .. }));
    assert_eq!(c.key_nonces(2).await, before);

    // A replayed nonce is refused by the contract's error name after the
    // simulation, before any nonce is used; the key keeps working.
    let replay = c.add_permission(&alice, U256::ZERO, &[file_id]);
    let (status, r) = post(&h, &replay, "").await;
    let RelayResponse::Error { error } = r else {
        panic!("replay answered {r:?}")
    };
    assert_eq!(status, 422);
    assert!(error.starts_with("revert(InvalidNonce"), "{error}");
    let after = c.key_nonces(2).await;
    assert_eq!(after, before, "the replay spent a nonce");

    // Pending mode: answered at once, then polled to confirmed.
    let body = c.add_permission(&alice, c.user_nonce(alice.address()).await, &[file_id]);
    let (_, r) = post(&h, &body, "?wait=pending").await;
    let RelayResponse::Pending { operation_id } = r else {
        panic!("{r:?}")
    };
    match poll_until_terminal(&h, &operation_id).await {
        RelayResponse::Confirmed {
            receipt: Some(r), ..
        } => assert!(r.permission_id.is_some()),
        other => panic!("{other:?}"),
    }

    // Grant files are stored through the storage service and served by its gateway.
    let grant = json!({"grantee": c.contracts["DataPortabilityGrantees"], "operation": "llm_inference", "parameters": {"prompt": "hi {{data}}"}});
    let (status, r) = post(
        &h,
        &json!({"type":"direct","operation":"storeGrantFile","params": grant}),
        "",
    )
    .await;
    let RelayResponse::Direct {
        result: DirectResult::Stored { url },
    } = r
    else {
        panic!("{status} {r:?}")
    };
    let cid = url.strip_prefix("ipfs://").expect("an ipfs:// URL");
    let served: Value = reqwest::get(format!("{}/ipfs/{cid}", storage.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, grant);
    let (status, _) = post(
        &h,
        &json!({"type":"direct","operation":"storeGrantFile","params": {"operation": "x"}}),
        "",
    )
    .await;
    assert_eq!(status, 400);

    assert!(metric(&h, "relayer_key_next_nonce").await > 0.0);
    assert_eq!(metric(&h, "relayer_pending_transactions").await, 0.0);
    assert!(metric(&h, "relayer_confirm_latency_seconds_count").await >= 4.0);
    assert!(metric(&h, "relayer_errors_total").await >= 4.0);
    h.stop().await;
    storage.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_before_broadcast_leaves_no_nonce_gap() {
    let c = chain().await;
    let h = c
        .relayer(Config {
            keys: 1,
            inject_prebroadcast_failures: 1,
            ..Config::default()
        })
        .await;
    let before = c.key_nonces(1).await[0];
    let owner = user(3).address();
    let (status, r) = post(&h, &file_addition("ipfs://fault-1", owner), "").await;
    let RelayResponse::Error { error } = r else {
        panic!("{r:?}")
    };
    assert!(
        error.contains("injected pre-broadcast failure"),
        "{status} {error}"
    );
    // The next transaction of the same key confirms: the nonce was filled.
    let id = add_file(&h, "ipfs://fault-2", owner).await;
    assert!(id >= 1);
    let after = c.key_nonces(1).await[0];
    assert_eq!(after.0, before.0 + 2, "filler + the file addition");
    assert_eq!(after.0, after.1, "nothing stuck behind a gap");
    assert_eq!(metric(&h, "relayer_nonce_fills_total").await, 1.0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_transaction_is_bumped_and_replaced() {
    let c = chain().await;
    let h = c
        .relayer(Config {
            keys: 1,
            bump_after_ms: 300,
            ..Config::default()
        })
        .await;
    let rpc = c.rpc();
    let carol = user(4);
    let file_id = add_file(&h, "ipfs://bump-file", carol.address()).await;
    // Anvil stops mining: the next transaction sits in its pool.
    let _: () = rpc
        .raw_request("evm_setAutomine".into(), (false,))
        .await
        .unwrap();
    let body = c.add_permission(&carol, U256::ZERO, &[file_id]);
    let (status, r) = post(&h, &body, "?wait=submitted").await;
    let RelayResponse::Submitted { hash: first } = r else {
        panic!("{status} {r:?}")
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&h, "relayer_replacements_total").await < 2.0 {
        assert!(Instant::now() < deadline, "no replacement was sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _: String = rpc.raw_request("evm_mine".into(), ()).await.unwrap();
    let _: () = rpc
        .raw_request("evm_setAutomine".into(), (true,))
        .await
        .unwrap();
    // The operation id is not returned in submitted mode; find the mined
    // version through the chain: the key's only transaction at that nonce.
    let key = relayer_addresses(MNEMONIC, 1).unwrap()[0];
    let n = c.key_nonces(1).await[0];
    assert_eq!(n.0, n.1, "mined, nothing left pending");
    let block = rpc
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .full()
        .await
        .unwrap()
        .unwrap();
    let mined: Vec<_> = block
        .transactions
        .txns()
        .filter(|t| alloy::network::TransactionResponse::from(*t) == key)
        .map(alloy::network::TransactionResponse::tx_hash)
        .collect();
    assert_eq!(mined.len(), 1, "{mined:?}");
    assert_ne!(mined[0], first, "the mined transaction is a replacement");
    let receipt = rpc
        .get_transaction_receipt(mined[0])
        .await
        .unwrap()
        .unwrap();
    assert!(receipt.status());
    assert_eq!(c.user_nonce(carol.address()).await, U256::from(1));
    // The relayer saw it through the block stream.
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&h, "relayer_pending_transactions").await > 0.0 {
        assert!(Instant::now() < deadline, "the receipt was not matched");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.stop().await;
}

/// The acceptance soak: 50 users each add a file (direct) and then grant a
/// permission on it (signed): 100 relayed transactions over 4 keys, all
/// confirmed, no nonce gap. Prints requests/s and p50/p99 confirm latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_never_mined_ends_named_and_frees_its_slot() {
    use twin::faults::{Faults, FaultsConfig};
    let c = chain().await;
    let faults = Faults::new(FaultsConfig::default());
    faults.arm();
    let proxy = twin::faults::chain::spawn(
        "127.0.0.1:0".parse().unwrap(),
        c.rpc_url.clone(),
        faults.clone(),
    )
    .await
    .unwrap();
    // One key with one slot: the stuck call holds the only slot there is.
    let h = c
        .relayer_via(
            &proxy.url(),
            Config {
                keys: 1,
                window: 1,
                bump_after_ms: 200,
                max_replacements: 2,
                wait: Some(WaitMode::Confirmed),
                ..Config::default()
            },
        )
        .await;
    let erin = user(5);
    let file_id = add_file(&h, "ipfs://dropped-file", erin.address()).await;
    let before = c.key_nonces(1).await[0];

    // Every transaction is acknowledged and dropped: the call is replaced
    // twice and then given up by name, well within its bound.
    let mut config = faults.get();
    config.chain.drop_tx_rate = 1.0;
    faults.set(config.clone()).unwrap();
    let body = c.add_permission(&erin, c.user_nonce(erin.address()).await, &[file_id]);
    let started = Instant::now();
    let (status, r) = post(&h, &body, "").await;
    let RelayResponse::Error { error } = r else {
        panic!("a dropped transaction answered {status} {r:?}")
    };
    assert!(
        error.contains("addPermission transaction was not mined after 2 replacements"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(
        faults.injected()["chain.drop_tx"] >= 3,
        "{:?}",
        faults.injected()
    );
    // Two replacements, then the filler (which may be resent meanwhile).
    assert!(metric(&h, "relayer_replacements_total").await >= 3.0);

    // The faults lift: the same request is served in the freed slot, behind
    // the filler of the abandoned nonce, and no gap is left.
    config.chain.drop_tx_rate = 0.0;
    faults.set(config).unwrap();
    let (status, r) = post(&h, &body, "").await;
    assert!(
        matches!(r, RelayResponse::Confirmed { .. }),
        "{status} {r:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&h, "relayer_pending_transactions").await > 0.0 {
        assert!(Instant::now() < deadline, "the filler was never mined");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = c.key_nonces(1).await[0];
    assert_eq!(
        after.0,
        before.0 + 2,
        "filler + the permission: {before:?} → {after:?}"
    );
    assert_eq!(after.0, after.1, "nothing stuck behind a gap");
    assert_eq!(c.user_nonce(erin.address()).await, U256::from(1));
    h.stop().await;
    proxy.stop().await;
}

async fn soak(block_time: Option<Duration>, window: usize) {
    let c = chain_with(block_time).await;
    let h = c
        .relayer(Config {
            keys: 4,
            window,
            wait: Some(WaitMode::Confirmed),
            ..Config::default()
        })
        .await;
    let before = c.key_nonces(4).await;
    let users: Vec<PrivateKeySigner> = (0..50).map(|i| user(100 + i)).collect();
    let c = std::sync::Arc::new(c);
    let h = std::sync::Arc::new(h);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, u) in users.into_iter().enumerate() {
        let c = c.clone();
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let t = Instant::now();
            let file = add_file(&h, &format!("ipfs://soak-{i:04}"), u.address()).await;
            lat.push(t.elapsed());
            let body = c.add_permission(&u, U256::ZERO, &[file]);
            let t = Instant::now();
            let (status, r) = post(&h, &body, "").await;
            lat.push(t.elapsed());
            assert!(
                matches!(r, RelayResponse::Confirmed { .. }),
                "{status} {r:?}"
            );
            lat
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    let after = c.key_nonces(4).await;
    let used: u64 = after.iter().zip(&before).map(|(a, b)| a.0 - b.0).sum();
    assert_eq!(lat.len(), 100);
    assert_eq!(used, 100, "{before:?} → {after:?}");
    assert!(after.iter().all(|(l, p)| l == p), "gap or stuck: {after:?}");
    assert!(
        after.iter().zip(&before).all(|(a, b)| a.0 > b.0),
        "all keys used"
    );
    println!(
        "relayer soak ({}; 4 keys, window {window}): 100 tx in {:.2} s = {:.1} tx/s; request→confirmed latency p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; relayer_confirm_latency_seconds mean {:.0} ms",
        match block_time {
            None => "automine".to_string(),
            Some(b) => format!("{} ms blocks", b.as_millis()),
        },
        elapsed.as_secs_f64(),
        100.0 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        lat.last().unwrap().as_secs_f64() * 1e3,
        metric(&h, "relayer_confirm_latency_seconds_sum").await * 1e3
            / metric(&h, "relayer_confirm_latency_seconds_count").await,
    );
    assert_eq!(metric(&h, "relayer_pending_transactions").await, 0.0);
    assert_eq!(metric(&h, "relayer_nonce_fills_total").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_100_relayed_transactions_over_4_keys_automine() {
    soak(None, 16).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_100_relayed_transactions_over_4_keys_1s_blocks() {
    soak(Some(Duration::from_secs(1)), 16).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_window_answers_busy_and_an_outside_nonce_use_is_resynchronised() {
    let c = chain().await;
    let h = c
        .relayer(Config {
            keys: 1,
            window: 1,
            max_wait_ms: 200,
            wait: Some(WaitMode::Confirmed),
            ..Config::default()
        })
        .await;
    let rpc = c.rpc();
    let owner = user(5).address();
    let _: () = rpc
        .raw_request("evm_setAutomine".into(), (false,))
        .await
        .unwrap();
    let url = format!("{}/api/relay", h.url());
    let first = tokio::spawn(async move {
        http()
            .post(url)
            .json(&file_addition("ipfs://busy-0001", owner))
            .send()
            .await
            .unwrap()
            .json::<RelayResponse>()
            .await
            .unwrap()
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&h, "relayer_key_in_flight").await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the first request never got a slot"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, r) = post(&h, &file_addition("ipfs://busy-0002", owner), "").await;
    assert_eq!(status, 503, "{r:?}");
    assert!(
        matches!(r, RelayResponse::Error { ref error } if error.starts_with("relayer busy")),
        "{r:?}"
    );
    let _: String = rpc.raw_request("evm_mine".into(), ()).await.unwrap();
    let _: () = rpc
        .raw_request("evm_setAutomine".into(), (true,))
        .await
        .unwrap();
    let r = tokio::time::timeout(Duration::from_secs(20), first)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(r, RelayResponse::Direct { .. }), "{r:?}");

    // Someone else uses the relayer key: the next submission meets "nonce too
    // low", resynchronises from the node and still confirms.
    let key = keys::derive_signer(MNEMONIC, twin::relayer::RELAYER_INDEX_START).unwrap();
    let wallet = alloy::providers::ProviderBuilder::new()
        .wallet(alloy::network::EthereumWallet::from(key.clone()))
        .connect_http(c.rpc_url.parse().unwrap());
    let tx = alloy::rpc::types::TransactionRequest::default()
        .to(key.address())
        .value(U256::ZERO);
    wallet
        .send_transaction(tx)
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let id = add_file(&h, "ipfs://busy-0003", owner).await;
    assert!(id >= 1);
    let n = c.key_nonces(1).await[0];
    assert_eq!(n.0, n.1);
    h.stop().await;
}

/// On a chain with 1 s blocks, a signed request sent again while its first
/// copy still waits in the pool is refused by the contract's error name,
/// found by simulating it on the pending state, and sends nothing; the
/// first copy is mined once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_racing_its_first_copy_in_the_pool_is_refused() {
    let c = chain_with(Some(Duration::from_secs(1))).await;
    let h = c
        .relayer(Config {
            keys: 1,
            ..Config::default()
        })
        .await;
    let erin = user(9);
    let file_id = add_file(&h, "ipfs://replay-in-pool", erin.address()).await;
    let body = c.add_permission(&erin, c.user_nonce(erin.address()).await, &[file_id]);
    let (status, first) = post(&h, &body, "").await;
    assert_eq!(status, 200);
    let RelayResponse::Signed { hash } = first else {
        panic!("expected {{type:\"signed\"}}, got {first:?}")
    };
    let rpc = c.rpc();
    let before = c.key_nonces(1).await;
    let (status, r) = post(&h, &body, "").await;
    assert_eq!(status, 200);
    assert!(
        rpc.get_transaction_receipt(hash).await.unwrap().is_none(),
        "the first copy must still be pending for this test to mean anything"
    );
    let RelayResponse::Error { error } = r else {
        panic!("the replay answered {r:?}")
    };
    assert!(error.starts_with("revert(InvalidNonce"), "{error}");
    assert_eq!(c.key_nonces(1).await, before, "the replay spent a nonce");
    let deadline = Instant::now() + Duration::from_secs(20);
    while rpc.get_transaction_receipt(hash).await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "the first copy was never mined");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

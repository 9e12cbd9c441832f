//! The indexer against a real anvil with the real contracts: every SDK query
//! with its exact text, reorgs, lag, bad input and metrics.
//!
//! Each test starts its own anvil, deploys DataRegistry, Grantees, Servers and
//! Permissions behind ERC1967 proxies, emits events with real transactions and
//! reads them back over HTTP.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use protocol::api::subgraph::{
    BigInt, FileProofsData, GraphQlResponse, SUBGRAPH_PATH, SubgraphMetaData, UserFilesData,
    UserPermissionsData, UserTrustedServersData, queries,
};
use protocol::contracts::{DataPortabilityPermissions, DataPortabilityServers, DataRegistry};
use protocol::keys::{DEFAULT_TEST_MNEMONIC, DEPLOYER_INDEX, HdAccount, USER_INDEX_OFFSET};
use serde_json::{Value, json};
use twin::chain::{AnvilConfig, AnvilProcess, DeployConfig, Deployment, deploy};
use twin::indexer::{self, Config, IndexedContracts};
use twin::service::ServiceHandle;
use vana_load_twin as twin;

// ---------------------------------------------------------------- harness

fn anvil_bin() -> std::path::PathBuf {
    twin::tools::ensure_anvil(None, twin::tools::InstallPolicy::Never)
        .expect("anvil (npm ci --prefix tools)")
        .path
}

/// anvil, the deployed contracts, funded keys and a provider that signs for all of them.
struct Net {
    /// Kept alive for the test (killed on drop).
    _anvil: AnvilProcess,
    url: String,
    provider: DynProvider,
    chain_id: u64,
    deployer: PrivateKeySigner,
    deployment: Deployment,
    users: Vec<PrivateKeySigner>,
    contracts: IndexedContracts,
}

async fn send<P, T>(
    call: alloy::contract::CallBuilder<P, T, alloy::network::Ethereum>,
) -> TransactionReceipt
where
    P: Provider,
    T: alloy::contract::CallDecoder,
{
    let receipt = call
        .send()
        .await
        .expect("send")
        .get_receipt()
        .await
        .expect("receipt");
    assert!(receipt.status(), "transaction reverted: {receipt:?}");
    receipt
}

impl Net {
    async fn start() -> Net {
        Net::start_with(&[]).await
    }

    /// [`Net::start`] with extra anvil flags.
    async fn start_with(anvil_args: &[&str]) -> Net {
        let anvil = AnvilProcess::spawn(&AnvilConfig {
            anvil_path: anvil_bin(),
            accounts: 1010,
            extra_args: anvil_args.iter().map(|a| a.to_string()).collect(),
            ..AnvilConfig::default()
        })
        .await
        .expect("anvil starts");
        let url = anvil.rpc_url();
        let deployment = deploy(&url, DEFAULT_TEST_MNEMONIC, &DeployConfig::default())
            .await
            .expect("contracts deploy");
        let hd = HdAccount::new(DEFAULT_TEST_MNEMONIC).unwrap();
        let deployer = hd.signer(DEPLOYER_INDEX).unwrap();
        let users: Vec<_> = (0..4)
            .map(|i| hd.signer(USER_INDEX_OFFSET + i).unwrap())
            .collect();
        let mut wallet = EthereumWallet::new(deployer.clone());
        for u in &users {
            wallet.register_signer(u.clone());
        }
        let provider = ProviderBuilder::new()
            .wallet(wallet)
            .connect_http(url.parse().unwrap())
            .erased();
        let chain_id = provider.get_chain_id().await.unwrap();
        let contracts =
            IndexedContracts::from_manifest(&deployment.contracts(), deployment.deployer_block)
                .unwrap();
        Net {
            _anvil: anvil,
            url,
            provider,
            chain_id,
            deployer,
            deployment,
            users,
            contracts,
        }
    }

    fn registry(&self) -> DataRegistry::DataRegistryInstance<&DynProvider> {
        DataRegistry::new(self.contracts.data_registry, &self.provider)
    }

    async fn add_file(&self, user: &PrivateKeySigner, url: &str) -> (U256, TransactionReceipt) {
        let r = send(
            self.registry()
                .addFile(url.to_string())
                .from(user.address()),
        )
        .await;
        let id = r
            .inner
            .logs()
            .iter()
            .find_map(|l| l.log_decode::<DataRegistry::FileAdded>().ok())
            .expect("FileAdded")
            .inner
            .data
            .fileId;
        (id, r)
    }

    /// A signed `addPermission`, submitted by the deployer (gasless for the user).
    async fn add_permission(
        &self,
        user: &PrivateKeySigner,
        grant: &str,
        file_ids: Vec<U256>,
    ) -> (U256, TransactionReceipt) {
        let perms = DataPortabilityPermissions::new(self.contracts.permissions, &self.provider);
        let nonce = perms.userNonce(user.address()).call().await.unwrap();
        let message = protocol::eip712::permission::Permission {
            nonce,
            granteeId: U256::from(self.deployment.grantee_id),
            grant: grant.to_string(),
            fileIds: file_ids.clone(),
        };
        let domain =
            protocol::eip712::permissions_domain(self.chain_id, self.contracts.permissions);
        let signature = protocol::eip712::sign(user, &message, &domain).unwrap();
        let input = protocol::contracts::PermissionInput {
            nonce,
            granteeId: U256::from(self.deployment.grantee_id),
            grant: grant.to_string(),
            fileIds: file_ids,
        };
        let r = send(
            perms
                .addPermission(input, signature)
                .from(self.deployer.address()),
        )
        .await;
        let id = r
            .inner
            .logs()
            .iter()
            .find_map(|l| {
                l.log_decode::<DataPortabilityPermissions::PermissionAdded>()
                    .ok()
            })
            .expect("PermissionAdded")
            .inner
            .data
            .permissionId;
        (id, r)
    }

    async fn rpc(&self, method: &str, params: Value) -> Value {
        let v: Value = reqwest::Client::new()
            .post(&self.url)
            .json(&json!({"jsonrpc":"2.0","id":1,"method":method,"params":params}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(v.get("error").is_none(), "{method}: {v}");
        v["result"].clone()
    }

    async fn spawn_indexer(&self, config: Config) -> ServiceHandle {
        indexer::spawn(config, &self.url, &self.contracts)
            .await
            .expect("indexer starts")
    }
}

fn lower(a: Address) -> String {
    format!("{a:#x}")
}

async fn post(handle: &ServiceHandle, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{}{SUBGRAPH_PATH}", handle.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn query<T: serde::de::DeserializeOwned>(
    handle: &ServiceHandle,
    text: &str,
    variables: Value,
) -> T {
    let v = post(handle, json!({"query": text, "variables": variables})).await;
    let r: GraphQlResponse<T> =
        serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"));
    r.into_result().unwrap_or_else(|e| panic!("{e}: {v}"))
}

async fn meta(handle: &ServiceHandle) -> SubgraphMetaData {
    query(handle, queries::GET_SUBGRAPH_META, json!({})).await
}

/// Waits until `_meta.block.number >= block`.
async fn synced(handle: &ServiceHandle, block: u64) -> SubgraphMetaData {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = meta(handle).await;
        if m.meta.block.number >= block {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "indexer stuck at {} < {block}",
            m.meta.block.number
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn block_of(r: &TransactionReceipt) -> u64 {
    r.block_number.unwrap()
}

async fn timestamp_of(net: &Net, block: u64) -> u64 {
    net.provider
        .get_block_by_number(block.into())
        .await
        .unwrap()
        .unwrap()
        .header
        .timestamp
}

fn page(user: Address, first: i32, skip: i32, order_by: &str, dir: &str) -> Value {
    json!({
        "userId": lower(user),
        "first": first,
        "skip": skip,
        "orderBy": order_by,
        "orderDirection": dir,
    })
}

// ---------------------------------------------------------------- SDK queries

#[tokio::test]
async fn get_user_files_paginated() {
    let net = Net::start().await;
    let idx = net.spawn_indexer(Config::default()).await;
    let user = net.users[0].clone();
    let mut added = Vec::new();
    for i in 0..3 {
        added.push(net.add_file(&user, &format!("ipfs://file-{i}")).await);
    }
    // Another user's file must not show up.
    net.add_file(&net.users[1], "ipfs://other").await;
    let last = block_of(&added[2].1);
    synced(&idx, last + 1).await;

    let d: UserFilesData = query(
        &idx,
        queries::GET_USER_FILES_PAGINATED,
        page(user.address(), 2, 0, "addedAtBlock", "desc"),
    )
    .await;
    let u = d.user.expect("user");
    assert_eq!(u.id, lower(user.address()));
    let ids: Vec<_> = u.files.iter().map(|f| f.id.clone()).collect();
    assert_eq!(ids, vec![added[2].0.to_string(), added[1].0.to_string()]);
    let f = &u.files[0];
    assert_eq!(f.url, "ipfs://file-2");
    assert_eq!(f.owner.id, lower(user.address()));
    assert_eq!(f.schema_id, BigInt::from(0));
    assert_eq!(f.added_at_block, BigInt::from(last));
    assert_eq!(
        f.added_at_timestamp,
        BigInt::from(timestamp_of(&net, last).await)
    );
    assert_eq!(
        f.transaction_hash,
        format!("{:#x}", added[2].1.transaction_hash)
    );
    assert!(d.meta.block.number >= last && !d.meta.has_indexing_errors);
    assert!(d.meta.block.timestamp.is_some());

    let d: UserFilesData = query(
        &idx,
        queries::GET_USER_FILES_PAGINATED,
        page(user.address(), 2, 2, "addedAtBlock", "desc"),
    )
    .await;
    let ids: Vec<_> = d.user.unwrap().files.into_iter().map(|f| f.id).collect();
    assert_eq!(ids, vec![added[0].0.to_string()]);

    // The raw JSON keeps BigInt as strings and _meta numbers as numbers.
    let raw = post(
        &idx,
        json!({"query": queries::GET_USER_FILES_PAGINATED, "variables": page(user.address(), 1, 0, "addedAtBlock", "asc")}),
    )
    .await;
    assert!(
        raw["data"]["user"]["files"][0]["addedAtBlock"].is_string(),
        "{raw}"
    );
    assert!(raw["data"]["_meta"]["block"]["number"].is_u64(), "{raw}");
    assert_eq!(
        raw["data"]["user"]["files"][0]["id"],
        added[0].0.to_string()
    );
}

#[tokio::test]
async fn get_file_proofs() {
    let net = Net::start().await;
    let idx = net.spawn_indexer(Config::default()).await;
    let user = net.users[0].clone();
    let (f1, _) = net.add_file(&user, "ipfs://p1").await;
    let (f2, _) = net.add_file(&user, "ipfs://p2").await;
    let (f3, _) = net.add_file(&user, "ipfs://p3").await;
    let proof = |dlp: u64| protocol::contracts::Proof {
        signature: Bytes::from(vec![1u8; 65]),
        data: protocol::contracts::ProofData {
            score: U256::from(5u64 * 10u64.pow(17)),
            dlpId: U256::from(dlp),
            metadata: "{}".into(),
            proofUrl: "https://proof".into(),
            instruction: "https://instruction".into(),
        },
    };
    send(
        net.registry()
            .addProof(f1, proof(7))
            .from(net.deployer.address()),
    )
    .await;
    send(
        net.registry()
            .addProof(f1, proof(8))
            .from(net.deployer.address()),
    )
    .await;
    let r = send(
        net.registry()
            .addProof(f3, proof(9))
            .from(net.deployer.address()),
    )
    .await;
    synced(&idx, block_of(&r)).await;

    let d: FileProofsData = query(
        &idx,
        queries::GET_FILE_PROOFS,
        json!({"fileIds": [f1.to_string(), f2.to_string()]}),
    )
    .await;
    let mut got: Vec<_> = d
        .data_registry_proofs
        .iter()
        .map(|p| {
            (
                p.file_id.to_u64().unwrap(),
                p.dlp.as_ref().unwrap().id.clone(),
            )
        })
        .collect();
    got.sort();
    let f1n = f1.to::<u64>();
    assert_eq!(got, vec![(f1n, "7".to_string()), (f1n, "8".to_string())]);

    // Ids are file-<fileId>-proof-<idx>, indices start at 1, one epoch covers all.
    let v = post(
        &idx,
        json!({"query": format!("{{ dataRegistryProof(id: \"file-{f1}-proof-2\") {{ id proofIndex fileId user {{ id }} epoch {{ id }} }} }}")}),
    )
    .await;
    assert_eq!(v["data"]["dataRegistryProof"]["proofIndex"], "2", "{v}");
    assert_eq!(
        v["data"]["dataRegistryProof"]["user"]["id"],
        lower(user.address())
    );
    assert_eq!(v["data"]["dataRegistryProof"]["epoch"]["id"], "1");
}

/// The user's permissions, oldest first (first 100), through the SDK's query.
async fn user_permissions(
    idx: &ServiceHandle,
    user: Address,
) -> Vec<protocol::api::subgraph::PermissionEntity> {
    let d: UserPermissionsData = query(
        idx,
        queries::GET_USER_PERMISSIONS_PAGINATED,
        page(user, 100, 0, "addedAtBlock", "asc"),
    )
    .await;
    d.user.expect("user").permissions
}

#[tokio::test]
async fn get_user_permissions_paginated() {
    let net = Net::start().await;
    let idx = net.spawn_indexer(Config::default()).await;
    let user = net.users[0].clone();
    let (f1, _) = net.add_file(&user, "ipfs://a").await;
    let (f2, _) = net.add_file(&user, "ipfs://b").await;
    let (p1, r1) = net
        .add_permission(&user, "ipfs://grant-1", vec![f1, f2])
        .await;
    let (p2, r2) = net.add_permission(&user, "ipfs://grant-2", vec![f2]).await;
    let perms = DataPortabilityPermissions::new(net.contracts.permissions, &net.provider);
    let revoke = send(perms.revokePermission(p2).from(user.address())).await;
    synced(&idx, block_of(&revoke)).await;

    let list = user_permissions(&idx, user.address()).await;
    assert_eq!(list.len(), 2);
    let a = &list[0];
    assert_eq!(a.id, p1.to_string());
    assert_eq!(a.grant, "ipfs://grant-1");
    assert_eq!(a.nonce, BigInt::from(0));
    assert_eq!(a.signature, "0x");
    assert_eq!(a.start_block, BigInt::from(block_of(&r1)));
    assert_eq!(a.end_block, Some(BigInt(U256::MAX)));
    assert_eq!(a.added_at_block, BigInt::from(block_of(&r1)));
    assert_eq!(a.transaction_hash, format!("{:#x}", r1.transaction_hash));
    assert_eq!(a.grantee.id, net.deployment.grantee_id.to_string());
    assert_eq!(a.grantee.address, lower(net.deployment.app_address));
    let mut files: Vec<_> = a
        .file_permissions
        .iter()
        .map(|fp| (fp.file.id.clone(), fp.file.url.clone()))
        .collect();
    files.sort();
    assert_eq!(
        files,
        vec![
            (f1.to_string(), "ipfs://a".to_string()),
            (f2.to_string(), "ipfs://b".to_string())
        ]
    );
    let b = &list[1];
    assert_eq!(b.id, p2.to_string());
    assert_eq!(b.nonce, BigInt::from(1));
    assert_eq!(b.start_block, BigInt::from(block_of(&r2)));
    assert_eq!(
        b.end_block,
        Some(BigInt::from(block_of(&revoke))),
        "revocation sets endBlock"
    );
    // The PermissionFile ids are "<permId>-<fileId>".
    let v = post(
        &idx,
        json!({"query": format!("{{ permission(id: \"{p1}\") {{ filePermissions {{ id }} }} }}")}),
    )
    .await;
    assert_eq!(
        v["data"]["permission"]["filePermissions"],
        json!([{"id": format!("{p1}-{f1}")}, {"id": format!("{p1}-{f2}")}])
    );
}

/// Forwards JSON-RPC to `upstream` and records the block parameter of every
/// `permissions(uint256)` call: `(url, blocks asked)`.
async fn permission_reads_proxy(upstream: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let reads: Arc<Mutex<Vec<String>>> = Arc::default();
    let selector = alloy::hex::encode_prefixed(
        <DataPortabilityPermissions::permissionsCall as alloy::sol_types::SolCall>::SELECTOR,
    );
    let seen = reads.clone();
    let forward = move |body: axum::body::Bytes| {
        let (upstream, seen, selector) = (upstream.clone(), seen.clone(), selector.clone());
        async move {
            let call: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let tx = &call["params"][0];
            let data = tx["input"].as_str().or(tx["data"].as_str()).unwrap_or("");
            if call["method"] == "eth_call" && data.starts_with(&selector) {
                let block = call["params"][1].as_str().unwrap_or("latest").to_string();
                seen.lock().unwrap().push(block);
            }
            reqwest::Client::new()
                .post(&upstream)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let app = axum::Router::new().route("/", axum::routing::post(forward));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, reads)
}

/// `chain.prune_history` starts anvil with `--prune-history`: calls at past
/// blocks are refused, and the indexer reads `permissions(id)` from the
/// latest state instead (the user nonce of the second grant shows it: the
/// subgraph's fallback for a failed read would store 0). Only its first read
/// asks for a past block: after that refusal it knows the node keeps no
/// history and asks for `latest` directly, one call per permission.
#[tokio::test]
async fn permissions_are_indexed_on_a_chain_without_history() {
    let net = Net::start_with(&["--prune-history"]).await;
    let user = net.users[0].clone();
    let (f1, _) = net.add_file(&user, "ipfs://a").await;
    let (p1, r1) = net.add_permission(&user, "ipfs://grant-1", vec![f1]).await;
    let (p2, r2) = net.add_permission(&user, "ipfs://grant-2", vec![f1]).await;
    let (p3, r3) = net.add_permission(&user, "ipfs://grant-3", vec![f1]).await;
    // Enough blocks after the first grant that a read at its block is not
    // taken for a stale head (and asked again).
    let mut last = None;
    for i in 0..3 {
        last = Some(net.add_file(&user, &format!("ipfs://later-{i}")).await.1);
    }
    let last = last.unwrap();

    let past = json!([
        format!("{:#x}", net.users[0].address()),
        format!("{:#x}", block_of(&r1))
    ]);
    let v: Value = reqwest::Client::new()
        .post(&net.url)
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":past}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refused = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        refused.contains("BlockOutOfRange"),
        "history is pruned: {v}"
    );

    // Started after the fact, the indexer reads every permission at a past block.
    let (proxy_url, reads) = permission_reads_proxy(net.url.clone()).await;
    let idx = indexer::spawn(Config::default(), &proxy_url, &net.contracts)
        .await
        .expect("indexer starts");
    synced(&idx, block_of(&last)).await;
    let list = user_permissions(&idx, user.address()).await;
    let got: Vec<_> = list
        .iter()
        .map(|p| (p.id.clone(), p.nonce, p.start_block))
        .collect();
    assert_eq!(
        got,
        vec![
            (p1.to_string(), BigInt::from(0), BigInt::from(block_of(&r1))),
            (p2.to_string(), BigInt::from(1), BigInt::from(block_of(&r2))),
            (p3.to_string(), BigInt::from(2), BigInt::from(block_of(&r3))),
        ]
    );
    assert_eq!(
        *reads.lock().unwrap(),
        vec![
            format!("{:#x}", block_of(&r1)),
            "latest".to_string(),
            "latest".to_string(),
            "latest".to_string(),
        ],
        "one refused read at a past block, then one read at latest per permission"
    );
}

#[tokio::test]
async fn get_user_trusted_servers_paginated() {
    let net = Net::start().await;
    let idx = net.spawn_indexer(Config::default()).await;
    let user = net.users[0].clone();
    let server_key = PrivateKeySigner::random();
    let s = DataPortabilityServers::new(net.contracts.servers, &net.provider);
    let nonce = s.userNonce(user.address()).call().await.unwrap();
    let message = protocol::eip712::server::AddServer {
        nonce,
        serverAddress: server_key.address(),
        publicKey: "0x04serverpublickey".into(),
        serverUrl: "http://127.0.0.1:9/server".into(),
    };
    let domain = protocol::eip712::servers_domain(net.chain_id, net.contracts.servers);
    let signature = protocol::eip712::sign(&user, &message, &domain).unwrap();
    let input = protocol::contracts::AddServerWithSignatureInput {
        nonce,
        serverAddress: server_key.address(),
        publicKey: "0x04serverpublickey".into(),
        serverUrl: "http://127.0.0.1:9/server".into(),
    };
    let trust = send(
        s.addAndTrustServerWithSignature(input, signature)
            .from(net.deployer.address()),
    )
    .await;
    let untrust = send(s.untrustServer(U256::from(1)).from(user.address())).await;
    synced(&idx, block_of(&untrust)).await;

    let d: UserTrustedServersData = query(
        &idx,
        queries::GET_USER_TRUSTED_SERVERS_PAGINATED,
        page(user.address(), 10, 0, "trustedAtBlock", "desc"),
    )
    .await;
    let trusts = d.user.expect("user").server_trusts;
    assert_eq!(trusts.len(), 1);
    let t = &trusts[0];
    assert_eq!(t.id, format!("{}-1", lower(user.address())));
    assert_eq!(t.server.id, "1");
    assert_eq!(t.server.server_address, lower(server_key.address()));
    assert_eq!(t.server.url, "http://127.0.0.1:9/server");
    assert_eq!(t.server.public_key, "0x04serverpublickey");
    assert_eq!(t.trusted_at_block, BigInt::from(block_of(&trust)));
    assert_eq!(
        t.trusted_at,
        BigInt::from(timestamp_of(&net, block_of(&trust)).await)
    );
    assert_eq!(t.untrusted_at_block, Some(BigInt::from(block_of(&untrust))));
    assert_eq!(t.transaction_hash, format!("{:#x}", trust.transaction_hash));
}

#[tokio::test]
async fn get_subgraph_meta() {
    let net = Net::start().await;
    let idx = net
        .spawn_indexer(Config {
            deployment: "QmTwinDeployment".into(),
            ..Config::default()
        })
        .await;
    let (_, r) = net.add_file(&net.users[0], "ipfs://m").await;
    let head = block_of(&r);
    let m = synced(&idx, head).await.meta;
    let block = net
        .provider
        .get_block_by_number(head.into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.block.number, head);
    assert_eq!(m.block.hash, Some(format!("{:#x}", block.header.hash)));
    assert_eq!(m.block.timestamp, Some(block.header.timestamp));
    assert_eq!(m.deployment.as_deref(), Some("QmTwinDeployment"));
    assert!(!m.has_indexing_errors);
}

// ---------------------------------------------------------------- reorg, lag

#[tokio::test]
async fn reorg_rolls_back_to_the_fork_and_reindexes() {
    let net = Net::start().await;
    let idx = net.spawn_indexer(Config::default()).await;
    let (a, b) = (net.users[0].clone(), net.users[1].clone());
    let (kept, _) = net.add_file(&a, "ipfs://kept").await;
    let snapshot = net.rpc("evm_snapshot", json!([])).await;
    let (orphan, r) = net.add_file(&a, "ipfs://orphaned").await;
    net.rpc("anvil_mine", json!(["0x2"])).await;
    let orphan_head = block_of(&r) + 2;
    let old_hash = synced(&idx, orphan_head).await.meta.block.hash;

    net.rpc("evm_revert", json!([snapshot])).await;
    // The new branch: b adds a file that takes the orphaned file's id, then
    // the chain grows past the old head.
    let (replacement, r2) = net.add_file(&b, "ipfs://replacement").await;
    assert_eq!(replacement, orphan);
    net.rpc("anvil_mine", json!(["0x4"])).await;
    let new_head = block_of(&r2) + 4;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = meta(&idx).await.meta;
        if m.block.number >= new_head && m.block.hash != old_hash {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "indexer did not follow the new branch: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let v = post(
        &idx,
        json!({"query": format!("{{ file(id: \"{orphan}\") {{ url owner {{ id }} }} kept: file(id: \"{kept}\") {{ url }} }}")}),
    )
    .await;
    assert_eq!(v["data"]["file"]["url"], "ipfs://replacement", "{v}");
    assert_eq!(v["data"]["file"]["owner"]["id"], lower(b.address()));
    assert_eq!(v["data"]["kept"]["url"], "ipfs://kept");
    let d: UserFilesData = query(
        &idx,
        queries::GET_USER_FILES_PAGINATED,
        page(a.address(), 10, 0, "addedAtBlock", "asc"),
    )
    .await;
    let files: Vec<_> = d.user.unwrap().files.into_iter().map(|f| f.url).collect();
    assert_eq!(files, vec!["ipfs://kept"]);
    let metrics = reqwest::get(idx.metrics_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("indexer_reorgs_total 1"), "{metrics}");
}

#[tokio::test]
async fn lag_in_blocks_holds_meta_back() {
    let net = Net::start().await;
    let idx = net
        .spawn_indexer(Config {
            lag_blocks: 3,
            poll_interval_ms: 20,
            ..Config::default()
        })
        .await;
    let user = net.users[0].clone();
    let (_, r) = net.add_file(&user, "ipfs://lagged").await;
    let b = block_of(&r);
    // With the file's block as head, the indexer may go up to b - 3 only.
    synced(&idx, b - 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d: UserFilesData = query(
        &idx,
        queries::GET_USER_FILES_PAGINATED,
        page(user.address(), 10, 0, "addedAtBlock", "asc"),
    )
    .await;
    assert_eq!(d.meta.block.number, b - 3);
    assert!(d.user.is_none(), "the file is not indexed yet: {d:?}");
    net.rpc("anvil_mine", json!(["0x3"])).await;
    synced(&idx, b).await;
    let d: UserFilesData = query(
        &idx,
        queries::GET_USER_FILES_PAGINATED,
        page(user.address(), 10, 0, "addedAtBlock", "asc"),
    )
    .await;
    assert_eq!(d.user.unwrap().files.len(), 1);
}

#[tokio::test]
async fn lag_in_ms_delays_each_block() {
    let net = Net::start().await;
    let idx = net
        .spawn_indexer(Config {
            lag_ms: 1500,
            poll_interval_ms: 20,
            ..Config::default()
        })
        .await;
    let (_, r0) = net.add_file(&net.users[0], "ipfs://warmup").await;
    synced(&idx, block_of(&r0)).await;
    let sent = Instant::now();
    let (_, r) = net.add_file(&net.users[0], "ipfs://slow").await;
    let b = block_of(&r);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        meta(&idx).await.meta.block.number < b,
        "indexed before the lag"
    );
    synced(&idx, b).await;
    assert!(
        sent.elapsed() >= Duration::from_millis(1500),
        "indexed after {:?}",
        sent.elapsed()
    );
}

// ---------------------------------------------------------------- bad input, metrics

#[tokio::test]
async fn bad_input_gets_graphql_errors_or_400() {
    let net = Net::start().await;
    let idx = net.spawn_indexer(Config::default()).await;
    let url = format!("{}{SUBGRAPH_PATH}", idx.url());
    let client = reqwest::Client::new();

    // Not JSON: 400 with an error body.
    let r = client
        .post(&url)
        .body("query { _meta")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["errors"][0]["message"].as_str().unwrap().contains("JSON"),
        "{v}"
    );

    // Malformed GraphQL: 200 with errors and no data.
    let v = post(&idx, json!({"query": "query { user(id: \"0x1\" { id }"})).await;
    assert!(v["errors"].as_array().is_some_and(|e| !e.is_empty()), "{v}");
    assert!(v["data"].is_null(), "{v}");

    // Unknown field and wrong variable types.
    let v = post(&idx, json!({"query": "{ nope }"})).await;
    assert!(
        v["errors"][0]["message"].as_str().unwrap().contains("nope"),
        "{v}"
    );
    let v = post(
        &idx,
        json!({"query": queries::GET_FILE_PROOFS, "variables": {"fileIds": ["0x12"]}}),
    )
    .await;
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("BigInt"),
        "{v}"
    );

    // Page size above The Graph's limit (checked where the list is resolved,
    // so for an indexed user).
    let (_, r) = net.add_file(&net.users[0], "ipfs://exists").await;
    synced(&idx, block_of(&r)).await;
    let v = post(
        &idx,
        json!({"query": queries::GET_USER_FILES_PAGINATED, "variables": page(net.users[0].address(), 1001, 0, "addedAtBlock", "desc")}),
    )
    .await;
    assert!(
        v.to_string()
            .contains("The `first` argument must be between 0 and 1000"),
        "{v}"
    );

    // Unknown user: user null, _meta still there.
    let d: UserFilesData = query(
        &idx,
        queries::GET_USER_FILES_PAGINATED,
        page(Address::with_last_byte(0x77), 10, 0, "addedAtBlock", "desc"),
    )
    .await;
    assert!(d.user.is_none());
    let d: UserPermissionsData = query(
        &idx,
        queries::GET_USER_PERMISSIONS_PAGINATED,
        page(Address::with_last_byte(0x77), 10, 0, "addedAtBlock", "desc"),
    )
    .await;
    assert!(d.user.is_none());

    // _meta at a block not indexed yet.
    let v = post(
        &idx,
        json!({"query": "{ _meta(block: {number: 99999999}) { block { number } } }"}),
    )
    .await;
    assert!(v.to_string().contains("not yet available"), "{v}");

    let metrics = reqwest::get(idx.metrics_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("indexer_graphql_requests_total{outcome=\"bad_request\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn metrics_report_progress_entities_and_requests() {
    let net = Net::start().await;
    let idx = net.spawn_indexer(Config::default()).await;
    net.add_file(&net.users[0], "ipfs://x").await;
    let (_, r) = net.add_file(&net.users[1], "ipfs://y").await;
    synced(&idx, block_of(&r)).await;
    let text = reqwest::get(idx.metrics_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let head = net.provider.get_block_number().await.unwrap();
    assert!(
        text.contains(&format!("indexer_indexed_block {}", block_of(&r)))
            || text.contains(&format!("indexer_indexed_block {head}")),
        "{text}"
    );
    assert!(
        text.contains("indexer_entities{entity=\"File\"} 2"),
        "{text}"
    );
    // The two file owners and the app the deployment registers as grantee.
    assert!(
        text.contains("indexer_entities{entity=\"User\"} 3")
            && text.contains("indexer_entities{entity=\"Grantee\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("indexer_graphql_requests_total{outcome=\"ok\"}"),
        "{text}"
    );
    assert!(
        text.contains("indexer_graphql_request_duration_seconds_count"),
        "{text}"
    );
    assert!(text.contains("indexer_chain_head"), "{text}");
    assert!(text.contains("indexer_lag_blocks"), "{text}");
}

#[tokio::test]
async fn restart_on_the_same_database_resumes() {
    let net = Net::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        db_path: Some(dir.path().join("idx.sqlite")),
        ..Config::default()
    };
    let idx = net.spawn_indexer(config.clone()).await;
    let (_, r) = net.add_file(&net.users[0], "ipfs://persisted").await;
    synced(&idx, block_of(&r)).await;
    idx.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idx = net.spawn_indexer(config).await;
    // The stored head is served straight away, before any new poll.
    let m = meta(&idx).await.meta;
    assert!(m.block.number >= block_of(&r), "{m:?}");
    let d: UserFilesData = query(
        &idx,
        queries::GET_USER_FILES_PAGINATED,
        page(net.users[0].address(), 10, 0, "addedAtBlock", "asc"),
    )
    .await;
    assert_eq!(d.user.unwrap().files[0].url, "ipfs://persisted");
}

/// Every answer describes one indexed block: the files it lists are exactly
/// those added at or below its `_meta.block.number`, even while indexing runs.
#[tokio::test]
async fn answers_are_consistent_with_their_meta_while_indexing() {
    let net = Net::start().await;
    let idx = net
        .spawn_indexer(Config {
            poll_interval_ms: 5,
            ..Config::default()
        })
        .await;
    let user = net.users[0].clone();
    let url = format!("{}{SUBGRAPH_PATH}", idx.url());
    let stop = tokio_util::sync::CancellationToken::new();
    let mut readers = Vec::new();
    for _ in 0..6 {
        let (url, stop, user) = (url.clone(), stop.clone(), user.address());
        readers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut samples = Vec::new();
            while !stop.is_cancelled() {
                let body = json!({"query": queries::GET_USER_FILES_PAGINATED,
                    "variables": page(user, 1000, 0, "addedAtBlock", "asc")});
                let v: GraphQlResponse<UserFilesData> = client
                    .post(&url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let d = v.into_result().unwrap();
                let blocks: Vec<u64> = d
                    .user
                    .map(|u| {
                        u.files
                            .iter()
                            .map(|f| f.added_at_block.to_u64().unwrap())
                            .collect()
                    })
                    .unwrap_or_default();
                samples.push((d.meta.block.number, blocks));
            }
            samples
        }));
    }
    let mut added = Vec::new();
    for i in 0..12 {
        let (_, r) = net.add_file(&user, &format!("ipfs://c{i}")).await;
        added.push(block_of(&r));
    }
    synced(&idx, *added.last().unwrap()).await;
    stop.cancel();
    let mut checked = 0;
    for r in readers {
        for (meta, blocks) in r.await.unwrap() {
            let expected: Vec<u64> = added.iter().copied().filter(|b| *b <= meta).collect();
            assert_eq!(blocks, expected, "answer at _meta {meta}");
            checked += 1;
        }
    }
    assert!(checked > 12, "only {checked} answers");
}

/// `Twin::start` runs the indexer from the deployer block: the grantee the
/// deployment registers is served at the manifest's indexer URL.
#[tokio::test]
async fn twin_start_serves_the_subgraph() {
    let twin = twin::Twin::start(twin::TwinConfig::ephemeral())
        .await
        .unwrap();
    let url = format!(
        "{}{SUBGRAPH_PATH}",
        twin.manifest().service("indexer").unwrap().url
    );
    let expected = lower(twin.deployment().app_address);
    let id = twin.deployment().grantee_id;
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v: Value = client
            .post(&url)
            .json(&json!({"query": format!("{{ grantee(id: \"{id}\") {{ address owner {{ id }} }} }}")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !v["data"]["grantee"].is_null() {
            assert_eq!(v["data"]["grantee"]["address"], expected, "{v}");
            break;
        }
        assert!(Instant::now() < deadline, "grantee never indexed: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    twin.stop().await;
}

// ---------------------------------------------------------------- query load

/// GraphQL query load does not starve the indexing (issue #13, part 3).
///
/// The indexer and a crowd of GraphQL clients share one single-threaded
/// runtime: a stand-in for a process whose shared runtime is saturated (in a
/// load run, the client's journeys and every twin service share two cores).
/// Meanwhile a driver on its own thread mines `addFile` transactions as fast
/// as anvil takes them, and after each one reads the follower's indexed head
/// straight from the store. The follower's lag, in blocks, must stay small:
/// its RPC and its writes must not queue behind the queries. Bounded: a fixed
/// number of transactions, and query tasks that stop with the driver (or
/// after a fixed number of queries each); loopback only.
#[tokio::test]
async fn the_follower_keeps_up_while_graphql_is_hammered() {
    const TXS: usize = 80;
    const CLIENTS: usize = 64;
    const MAX_QUERIES_PER_CLIENT: usize = 2_000;
    const MAX_LAG_BLOCKS: u64 = 12;

    let net = Net::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("subgraph.sqlite");
    let idx = net
        .spawn_indexer(Config {
            poll_interval_ms: 5,
            db_path: Some(db.clone()),
            ..Config::default()
        })
        .await;
    let user = net.users[0].clone();
    // Something to read: a few files before the load starts.
    let mut last = 0;
    for i in 0..5 {
        last = block_of(&net.add_file(&user, &format!("ipfs://pre{i}")).await.1);
    }
    synced(&idx, last).await;

    let url = format!("{}{SUBGRAPH_PATH}", idx.url());
    let stop = tokio_util::sync::CancellationToken::new();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (url, stop, addr) = (url.clone(), stop.clone(), user.address());
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut answered = 0usize;
            while !stop.is_cancelled() && answered < MAX_QUERIES_PER_CLIENT {
                let body = json!({"query": queries::GET_USER_FILES_PAGINATED,
                    "variables": page(addr, 100, 0, "addedAtBlock", "desc")});
                let v: GraphQlResponse<UserFilesData> = http
                    .post(&url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                v.into_result().unwrap();
                answered += 1;
            }
            answered
        }));
    }
    // Let the query load build up before the chain moves.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (rpc_url, registry, signer) = (net.url.clone(), net.contracts.data_registry, user);
    let driver = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let provider = ProviderBuilder::new()
                .wallet(EthereumWallet::new(signer.clone()))
                .connect_http(rpc_url.parse().unwrap());
            let reg = DataRegistry::new(registry, &provider);
            let store = rusqlite::Connection::open(&db).unwrap();
            let mut lags = Vec::with_capacity(TXS);
            for i in 0..TXS {
                let _pending = reg
                    .addFile(format!("ipfs://load{i}"))
                    .from(signer.address())
                    .send()
                    .await
                    .expect("addFile is accepted");
                // anvil automines on submission: the head is the new block.
                let mined = provider.get_block_number().await.unwrap();
                let indexed = twin::indexer::store::head(&store)
                    .unwrap()
                    .map_or(0, |h| h.number);
                lags.push(mined.saturating_sub(indexed));
            }
            lags
        })
    });
    let lags = tokio::task::spawn_blocking(move || driver.join())
        .await
        .unwrap()
        .expect("the driver thread");
    stop.cancel();
    let mut queries = 0;
    for c in clients {
        queries += c.await.unwrap();
    }
    let head = net.provider.get_block_number().await.unwrap();
    synced(&idx, head).await;

    // Every client had a query in flight for the whole run, and answers kept coming.
    assert!(
        queries > CLIENTS,
        "the endpoint was hardly queried ({queries} answers)"
    );
    let worst = lags.iter().copied().max().unwrap();
    assert!(
        worst <= MAX_LAG_BLOCKS,
        "the follower fell {worst} blocks behind while {queries} queries were answered \
         (lag after each of {TXS} transactions: {lags:?})"
    );
}

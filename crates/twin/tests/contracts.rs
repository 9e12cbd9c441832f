//! The contracts on a real anvil: every call of the flow, the failure cases decoding to their
//! named errors, and the gas each flow transaction uses (printed; see contracts/README.md).
//! Also the anvil process itself: startup errors and clean stops.

use std::path::PathBuf;
use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, Bytes, U256, utils::parse_ether};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use protocol::contracts::{
    self, BatchFunder, DataLiquidityPool, DataPortabilityGrantees, DataPortabilityPermissions,
    DataPortabilityServers, DataRegistry, Permission, PermissionInput, Proof, ProofData,
    RewardToken, ServerFilesAndPermissionInput, TeePoolPhala, permissions, revert_name,
};
use protocol::eip712::{self, permission, server, server_files};
use protocol::keys::{self, DEFAULT_TEST_MNEMONIC, HdAccount};
use vana_load_twin::chain::{
    AddressLayout, AnvilConfig, AnvilProcess, ChainError, DeployConfig, Deployment,
    IMPLEMENTATION_SLOT, deploy, set_tee_url,
};

fn anvil_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
}

fn anvil_config() -> AnvilConfig {
    AnvilConfig {
        anvil_path: anvil_path(),
        ..Default::default()
    }
}

struct Env {
    anvil: AnvilProcess,
    dep: Deployment,
    keys: HdAccount,
}

impl Env {
    async fn start() -> Env {
        Env::start_with(&DeployConfig::default()).await
    }

    async fn start_with(cfg: &DeployConfig) -> Env {
        let anvil = AnvilProcess::spawn(&anvil_config())
            .await
            .expect("anvil starts");
        let dep = deploy(&anvil.rpc_url(), DEFAULT_TEST_MNEMONIC, cfg)
            .await
            .expect("deploys");
        let env = Env {
            anvil,
            dep,
            keys: HdAccount::new(DEFAULT_TEST_MNEMONIC).unwrap(),
        };
        env.fund(USER).await;
        env
    }

    fn signer(&self, index: u32) -> PrivateKeySigner {
        self.keys.signer(index).unwrap()
    }

    /// A provider signing with the key at `index`. Simple (pending-count) nonce management:
    /// alloy's default cached nonce manager reserves a nonce even when gas estimation fails
    /// on a revert, which would leave a gap after each expected revert.
    fn provider(&self, index: u32) -> DynProvider {
        ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(EthereumWallet::from(self.signer(index)))
            .connect_http(self.anvil.rpc_url().parse().unwrap())
            .erased()
    }

    /// Sends 10 ether from the deployer to the key at `index` (users are not anvil dev accounts).
    async fn fund(&self, index: u32) {
        let tx = alloy::rpc::types::TransactionRequest::default()
            .to(self.signer(index).address())
            .value(parse_ether("10").unwrap());
        let r = self
            .provider(0)
            .send_transaction(tx)
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status());
    }

    fn permissions_domain(&self) -> alloy::sol_types::Eip712Domain {
        eip712::permissions_domain(self.dep.chain_id, self.dep.data_portability_permissions)
    }
}

/// Sends a call builder and returns its receipt, asserting success.
macro_rules! send_ok {
    ($call:expr) => {{
        let receipt: TransactionReceipt = $call
            .send()
            .await
            .expect("sent")
            .get_receipt()
            .await
            .expect("receipt");
        assert!(receipt.status(), "transaction reverted");
        receipt
    }};
}

/// Sends a call builder and returns the name of the error it reverts with.
macro_rules! revert_of {
    ($call:expr) => {{
        let err = $call.send().await.expect_err("must revert");
        revert_name(&err).unwrap_or_else(|| panic!("no named revert in {err}"))
    }};
}

fn logs<E: SolEvent>(receipt: &TransactionReceipt) -> Vec<E> {
    receipt
        .inner
        .logs()
        .iter()
        .filter_map(|l| E::decode_log(&l.inner).ok().map(|l| l.data))
        .collect()
}

fn gas_line(what: &str, receipt: &TransactionReceipt) {
    println!("GAS {what}: {}", receipt.gas_used);
}

const USER: u32 = keys::USER_INDEX_OFFSET;
const RELAYER: u32 = 10;

fn key_hex() -> String {
    // An eccrypto ECIES ciphertext of K is 514 hex characters in the real flow.
    "ab".repeat(257)
}

/// Registers a file for `owner` from the relayer, returns (file id, receipt).
async fn add_file(env: &Env, url: &str, owner: Address) -> (U256, TransactionReceipt) {
    let registry = DataRegistry::new(env.dep.data_registry, env.provider(RELAYER));
    let perms = vec![Permission {
        account: env.dep.data_liquidity_pool,
        key: key_hex(),
    }];
    let receipt =
        send_ok!(registry.addFileWithPermissionsAndSchema(url.into(), owner, perms, U256::from(1)));
    let added = logs::<DataRegistry::FileAdded>(&receipt);
    (added[0].fileId, receipt)
}

#[tokio::test]
async fn data_registry_files_permissions_and_errors() {
    let env = Env::start().await;
    let user = env.signer(USER).address();
    let registry = DataRegistry::new(env.dep.data_registry, env.provider(RELAYER));

    let (id, receipt) = add_file(&env, "ipfs://file-1", user).await;
    gas_line(
        "DataRegistry.addFileWithPermissionsAndSchema (1 permission, 514-char key)",
        &receipt,
    );
    assert_eq!(id, U256::from(1), "ids start at 1");
    let v1 = logs::<DataRegistry::FileAdded>(&receipt);
    let v2 = logs::<DataRegistry::FileAddedV2>(&receipt);
    let granted = logs::<DataRegistry::PermissionGranted>(&receipt);
    assert_eq!((v1.len(), v2.len(), granted.len()), (1, 1, 1));
    assert_eq!(
        v1[0].ownerAddress, user,
        "no owner check: the relayer registers for the user"
    );
    assert_eq!(v2[0].schemaId, U256::from(1));
    assert_eq!(granted[0].account, env.dep.data_liquidity_pool);

    let file = registry.files(id).call().await.unwrap();
    assert_eq!(
        (file.id, file.ownerAddress, file.url.as_str()),
        (id, user, "ipfs://file-1")
    );
    assert_eq!(file.addedAtBlock, U256::from(receipt.block_number.unwrap()));
    assert_eq!(
        registry
            .filePermissions(id, env.dep.data_liquidity_pool)
            .call()
            .await
            .unwrap(),
        key_hex()
    );
    assert_eq!(registry.filePermissions(id, user).call().await.unwrap(), "");
    assert_eq!(registry.filesCount().call().await.unwrap(), U256::from(1));

    // Unique URLs.
    let dup =
        registry.addFileWithPermissionsAndSchema("ipfs://file-1".into(), user, vec![], U256::ZERO);
    assert_eq!(revert_of!(dup), "FileUrlAlreadyUsed");
    // Unknown schema.
    let bad = registry.addFileWithPermissionsAndSchema(
        "ipfs://file-x".into(),
        user,
        vec![],
        U256::from(9),
    );
    assert_eq!(revert_of!(bad), "InvalidSchemaId");

    // addFile and addFileWithPermissions.
    let own = DataRegistry::new(env.dep.data_registry, env.provider(USER));
    let r = send_ok!(own.addFile("ipfs://file-2".into()));
    gas_line("DataRegistry.addFile", &r);
    assert_eq!(logs::<DataRegistry::FileAdded>(&r)[0].ownerAddress, user);
    let r = send_ok!(registry.addFileWithPermissions("ipfs://file-3".into(), user, vec![]));
    assert_eq!(logs::<DataRegistry::FileAdded>(&r)[0].fileId, U256::from(3));

    // addFilePermission: owner only.
    let other = Address::repeat_byte(0x77);
    let denied = registry.addFilePermission(id, other, "k".into());
    assert_eq!(revert_of!(denied), "NotFileOwner");
    let r = send_ok!(own.addFilePermission(id, other, "k".into()));
    gas_line("DataRegistry.addFilePermission (short key)", &r);
    assert_eq!(
        registry.filePermissions(id, other).call().await.unwrap(),
        "k"
    );
}

#[tokio::test]
async fn permissions_grants_nonces_and_errors() {
    let env = Env::start().await;
    let user = env.signer(USER);
    let (file_id, _) = add_file(&env, "ipfs://grant-file", user.address()).await;
    let relayer = DataPortabilityPermissions::new(
        env.dep.data_portability_permissions,
        env.provider(RELAYER),
    );
    let domain = env.permissions_domain();

    let grant = |nonce: u64, grantee: u64, url: &str, files: Vec<U256>| permission::Permission {
        nonce: U256::from(nonce),
        granteeId: U256::from(grantee),
        grant: url.into(),
        fileIds: files,
    };
    let input = |g: &permission::Permission| PermissionInput {
        nonce: g.nonce,
        granteeId: g.granteeId,
        grant: g.grant.clone(),
        fileIds: g.fileIds.clone(),
    };

    assert_eq!(
        relayer.userNonce(user.address()).call().await.unwrap(),
        U256::ZERO
    );
    let g = grant(0, env.dep.grantee_id, "ipfs://grant-1", vec![file_id]);
    let sig = eip712::sign(&user, &g, &domain).unwrap();
    let r = send_ok!(relayer.addPermission(input(&g), sig.clone()));
    gas_line("DataPortabilityPermissions.addPermission (1 file)", &r);
    let added = logs::<DataPortabilityPermissions::PermissionAdded>(&r);
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].permissionId, U256::from(1));
    assert_eq!(
        added[0].user,
        user.address(),
        "the signer is the grantor, not the submitter"
    );
    assert_eq!(added[0].fileIds, vec![file_id]);
    assert_eq!(
        relayer.userNonce(user.address()).call().await.unwrap(),
        U256::from(1)
    );
    let info = relayer.permissions(U256::from(1)).call().await.unwrap();
    assert_eq!(
        (info.id, info.grantor, info.grant.as_str()),
        (U256::from(1), user.address(), "ipfs://grant-1")
    );
    assert_eq!(info.startBlock, U256::from(r.block_number.unwrap()));
    assert_eq!(info.endBlock, U256::MAX);
    let grantees =
        DataPortabilityGrantees::new(env.dep.data_portability_grantees, env.provider(RELAYER));
    let grantee = grantees
        .grantees(U256::from(env.dep.grantee_id))
        .call()
        .await
        .unwrap();
    assert_eq!(grantee.granteeAddress, env.dep.app_address);
    assert_eq!(grantee.permissionIds, vec![U256::from(1)]);
    assert_eq!(
        grantees
            .granteeAddressToId(env.dep.app_address)
            .call()
            .await
            .unwrap(),
        U256::from(env.dep.grantee_id)
    );

    // Replay: the nonce is used.
    assert_eq!(
        revert_of!(relayer.addPermission(input(&g), sig)),
        "InvalidNonce"
    );
    // Empty grant, unknown grantee, someone else's file.
    let g = grant(1, 1, "", vec![file_id]);
    let s = eip712::sign(&user, &g, &domain).unwrap();
    assert_eq!(
        revert_of!(relayer.addPermission(input(&g), s)),
        "EmptyGrant"
    );
    let g = grant(1, 5, "ipfs://g", vec![file_id]);
    let s = eip712::sign(&user, &g, &domain).unwrap();
    assert_eq!(
        revert_of!(relayer.addPermission(input(&g), s)),
        "GranteeNotFound"
    );
    let stranger = env.signer(USER + 1);
    let g = grant(0, 1, "ipfs://g", vec![file_id]);
    let s = eip712::sign(&stranger, &g, &domain).unwrap();
    assert_eq!(
        revert_of!(relayer.addPermission(input(&g), s)),
        "NotFileOwner"
    );
    // A signature for another chain recovers someone else (whose nonce is 0 → NotFileOwner).
    let g = grant(0, 1, "ipfs://g", vec![file_id]);
    let s = eip712::sign(
        &user,
        &g,
        &eip712::permissions_domain(1480, env.dep.data_portability_permissions),
    )
    .unwrap();
    assert_eq!(
        revert_of!(relayer.addPermission(input(&g), s)),
        "NotFileOwner"
    );

    // addServerFilesAndPermissions: server + two new files + grant in one signature.
    let server_key = env.signer(USER + 500);
    let msg = server_files::ServerFilesAndPermission {
        nonce: U256::from(1),
        granteeId: U256::from(1),
        grant: "ipfs://grant-2".into(),
        fileUrls: vec!["ipfs://sfp-1".into(), "ipfs://sfp-2".into()],
        schemaIds: vec![U256::ZERO, U256::from(1)],
        serverAddress: server_key.address(),
        serverUrl: "http://127.0.0.1:9/".into(),
        serverPublicKey: "0x04aa".into(),
        filePermissions: vec![
            vec![server_files::Permission {
                account: server_key.address(),
                key: key_hex(),
            }],
            vec![server_files::Permission {
                account: server_key.address(),
                key: key_hex(),
            }],
        ],
    };
    let sig = eip712::sign(&user, &msg, &domain).unwrap();
    let call_input = ServerFilesAndPermissionInput {
        nonce: msg.nonce,
        granteeId: msg.granteeId,
        grant: msg.grant.clone(),
        fileUrls: msg.fileUrls.clone(),
        schemaIds: msg.schemaIds.clone(),
        serverAddress: msg.serverAddress,
        serverUrl: msg.serverUrl.clone(),
        serverPublicKey: msg.serverPublicKey.clone(),
        filePermissions: msg
            .filePermissions
            .iter()
            .map(|row| {
                row.iter()
                    .map(|p| permissions::IDataRegistry::Permission {
                        account: p.account,
                        key: p.key.clone(),
                    })
                    .collect()
            })
            .collect(),
    };
    let r = send_ok!(relayer.addServerFilesAndPermissions(call_input, sig));
    gas_line(
        "DataPortabilityPermissions.addServerFilesAndPermissions (new server, 2 files)",
        &r,
    );
    let added = logs::<DataPortabilityPermissions::PermissionAdded>(&r);
    assert_eq!(added[0].permissionId, U256::from(2));
    assert_eq!(added[0].fileIds, vec![U256::from(2), U256::from(3)]);
    assert_eq!(logs::<DataRegistry::FileAdded>(&r).len(), 2);
    assert_eq!(
        logs::<DataPortabilityServers::ServerTrusted>(&r)[0].user,
        user.address()
    );
    let registry = DataRegistry::new(env.dep.data_registry, env.provider(RELAYER));
    assert_eq!(
        registry
            .files(U256::from(3))
            .call()
            .await
            .unwrap()
            .ownerAddress,
        user.address()
    );

    // Servers: separate nonce.
    let servers =
        DataPortabilityServers::new(env.dep.data_portability_servers, env.provider(RELAYER));
    assert_eq!(
        servers.userNonce(user.address()).call().await.unwrap(),
        U256::ZERO
    );
    let server2 = env.signer(USER + 501).address();
    let add = server::AddServer {
        nonce: U256::ZERO,
        serverAddress: server2,
        publicKey: "0x04bb".into(),
        serverUrl: "http://127.0.0.1:10/".into(),
    };
    let sdomain = eip712::servers_domain(env.dep.chain_id, env.dep.data_portability_servers);
    let sig = eip712::sign(&user, &add, &sdomain).unwrap();
    let add_input = contracts::AddServerWithSignatureInput {
        nonce: add.nonce,
        serverAddress: add.serverAddress,
        publicKey: add.publicKey.clone(),
        serverUrl: add.serverUrl.clone(),
    };
    let r = send_ok!(servers.addAndTrustServerWithSignature(add_input.clone(), sig.clone()));
    gas_line("DataPortabilityServers.addAndTrustServerWithSignature", &r);
    let registered = logs::<DataPortabilityServers::ServerRegistered>(&r);
    assert_eq!(
        (registered[0].serverId, registered[0].owner),
        (U256::from(2), user.address())
    );
    assert_eq!(
        revert_of!(servers.addAndTrustServerWithSignature(add_input, sig)),
        "InvalidNonce"
    );
    let untrust = server::UntrustServer {
        nonce: U256::from(1),
        serverId: U256::from(2),
    };
    let trust = server::TrustServer {
        nonce: U256::from(2),
        serverId: U256::from(2),
    };
    let s = eip712::sign(&user, &untrust, &sdomain).unwrap();
    send_ok!(servers.untrustServerWithSignature(
        contracts::UntrustServerInput {
            nonce: untrust.nonce,
            serverId: untrust.serverId
        },
        s
    ));
    let s = eip712::sign(&user, &trust, &sdomain).unwrap();
    let r = send_ok!(servers.trustServerWithSignature(
        contracts::TrustServerInput {
            nonce: trust.nonce,
            serverId: trust.serverId
        },
        s
    ));
    gas_line(
        "DataPortabilityServers.trustServerWithSignature (re-trust)",
        &r,
    );
    assert_eq!(
        servers
            .userServerIdsValues(user.address())
            .call()
            .await
            .unwrap(),
        vec![U256::from(1), U256::from(2)]
    );
    // The Permissions nonce did not move.
    assert_eq!(
        relayer.userNonce(user.address()).call().await.unwrap(),
        U256::from(2)
    );
}

fn proof(
    env: &Env,
    tee: &PrivateKeySigner,
    file_url: &str,
    score: U256,
    instruction: &str,
) -> Proof {
    let data = ProofData {
        score,
        dlpId: U256::from(env.dep.dlp_id),
        metadata: "{\"valid\":true}".into(),
        proofUrl: "https://vana-load.invalid/proofs/1.json".into(),
        instruction: instruction.into(),
    };
    let hash = contracts::proof_message_hash(file_url, &data);
    let sig = tee.sign_message_sync(hash.as_slice()).unwrap();
    Proof {
        signature: Bytes::from(sig.as_bytes().to_vec()),
        data,
    }
}

#[tokio::test]
async fn tee_pool_and_dlp_reward_flow() {
    let env = Env::start().await;
    let user = env.signer(USER);
    let tee = env.signer(keys::FIRST_TEE_INDEX);
    let (file_id, _) = add_file(&env, "ipfs://poc-file", user.address()).await;
    let pool = TeePoolPhala::new(env.dep.tee_pool, env.provider(USER));
    let fee = pool.teeFee().call().await.unwrap();
    assert_eq!(fee, env.dep.tee_fee);
    let info = pool.tees(tee.address()).call().await.unwrap();
    assert_eq!(info.publicKey, env.dep.tee_public_key);
    assert!(info.publicKey.starts_with("0x04") && info.publicKey.len() == 132);

    assert_eq!(
        revert_of!(
            pool.requestContributionProof(file_id)
                .value(fee - U256::from(1))
        ),
        "InsufficientFee"
    );
    let r = send_ok!(pool.requestContributionProof(file_id).value(fee));
    gas_line("TeePoolPhala.requestContributionProof", &r);
    let job = &logs::<TeePoolPhala::JobSubmitted>(&r)[0];
    assert_eq!(
        (job.jobId, job.fileId, job.teeAddress, job.bidAmount),
        (U256::from(1), file_id, tee.address(), fee)
    );
    let ids = pool.fileJobIds(file_id).call().await.unwrap();
    assert_eq!(ids, vec![U256::from(1)]);
    let j = pool.jobs(U256::from(1)).call().await.unwrap();
    assert_eq!(
        (j.ownerAddress, j.teeAddress, j.bidAmount),
        (user.address(), tee.address(), fee)
    );
    assert_eq!(j.status, 1, "JobStatus.Submitted");

    // Only the assigned, active TEE adds the proof.
    let good = proof(
        &env,
        &tee,
        "ipfs://poc-file",
        parse_ether("0.5").unwrap(),
        &env.dep.proof_instruction,
    );
    let as_user = pool.addProof(U256::from(1), good.clone().into());
    assert_eq!(revert_of!(as_user), "TeeNotActive");
    let admin_pool = TeePoolPhala::new(env.dep.tee_pool, env.provider(0));
    let tee2 = env.signer(keys::FIRST_TEE_INDEX + 1);
    send_ok!(admin_pool.addTee(tee2.address(), "http://127.0.0.1:2".into(), "0x04cc".into()));
    let pool_tee2 = TeePoolPhala::new(env.dep.tee_pool, env.provider(keys::FIRST_TEE_INDEX + 1));
    assert_eq!(
        revert_of!(pool_tee2.addProof(U256::from(1), good.clone().into())),
        "InvalidJobTee"
    );
    let pool_tee = TeePoolPhala::new(env.dep.tee_pool, env.provider(keys::FIRST_TEE_INDEX));
    let r = send_ok!(pool_tee.addProof(U256::from(1), good.clone().into()));
    gas_line("TeePoolPhala.addProof (→ DataRegistry.addProof)", &r);
    let reg_proof = &logs::<DataRegistry::ProofAdded>(&r)[0];
    assert_eq!(
        (
            reg_proof.fileId,
            reg_proof.proofIndex,
            reg_proof.ownerAddress
        ),
        (file_id, U256::from(1), user.address())
    );
    let pool_proof = &logs::<TeePoolPhala::ProofAdded>(&r)[0];
    assert_eq!(
        (pool_proof.attestator, pool_proof.jobId),
        (tee.address(), U256::from(1))
    );
    assert_eq!(
        revert_of!(pool_tee.addProof(U256::from(1), good.clone().into())),
        "InvalidJobStatus"
    );
    let registry = DataRegistry::new(env.dep.data_registry, env.provider(USER));
    let stored = registry
        .fileProofs(file_id, U256::from(1))
        .call()
        .await
        .unwrap();
    assert_eq!(stored, good);
    assert_eq!(pool.tees(tee.address()).call().await.unwrap().amount, fee);

    // The DLP pays fileRewardFactor * score / 1e18.
    let dlp = DataLiquidityPool::new(env.dep.data_liquidity_pool, env.provider(USER));
    assert_eq!(
        dlp.publicKey().call().await.unwrap(),
        env.dep.tee_public_key
    );
    let token = RewardToken::new(env.dep.reward_token, env.provider(USER));
    let before = token.balanceOf(user.address()).call().await.unwrap();
    let r = send_ok!(dlp.requestReward(file_id, U256::from(1)));
    gas_line("DataLiquidityPool.requestReward", &r);
    let reward = &logs::<DataLiquidityPool::RewardRequested>(&r)[0];
    let expected =
        env.dep.file_reward_factor * parse_ether("0.5").unwrap() / parse_ether("1").unwrap();
    assert_eq!(
        (reward.contributorAddress, reward.fileId, reward.proofIndex),
        (user.address(), file_id, U256::from(1))
    );
    assert_eq!(reward.rewardAmount, expected);
    assert_eq!(
        token.balanceOf(user.address()).call().await.unwrap() - before,
        expected
    );
    assert_eq!(
        revert_of!(dlp.requestReward(file_id, U256::from(1))),
        "FileAlreadyAdded"
    );

    // Proofs the DLP rejects (written straight to the registry, which has no access control).
    let reg_any = DataRegistry::new(env.dep.data_registry, env.provider(RELAYER));
    for (i, (url, signer, score, instruction, error)) in [
        (
            "ipfs://bad-1",
            env.signer(USER + 9),
            parse_ether("1").unwrap(),
            env.dep.proof_instruction.as_str(),
            "InvalidAttestator",
        ),
        (
            "ipfs://bad-2",
            tee.clone(),
            parse_ether("1").unwrap(),
            "another instruction",
            "InvalidProof",
        ),
        (
            "ipfs://bad-3",
            tee.clone(),
            U256::ZERO,
            env.dep.proof_instruction.as_str(),
            "InvalidScore",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let (id, _) = add_file(&env, url, user.address()).await;
        assert_eq!(id, U256::from(2 + i));
        send_ok!(reg_any.addProof(id, proof(&env, &signer, url, score, instruction)));
        assert_eq!(
            revert_of!(dlp.requestReward(id, U256::from(1))),
            error,
            "{url}"
        );
    }

    // The TEE claims its fees; with no active TEE, jobs are refused.
    let r = send_ok!(pool_tee.claim());
    assert_eq!(logs::<TeePoolPhala::Claimed>(&r)[0].amount, fee);
    assert_eq!(revert_of!(pool_tee.claim()), "NothingToClaim");
    send_ok!(admin_pool.removeTee(tee.address()));
    send_ok!(admin_pool.removeTee(tee2.address()));
    assert_eq!(
        revert_of!(pool.requestContributionProof(file_id).value(fee)),
        "NoActiveTee"
    );
    // Only a maintainer manages TEEs.
    assert_eq!(
        revert_of!(pool.addTee(user.address(), "u".into(), "k".into())),
        "AccessControlUnauthorizedAccount"
    );
}

#[tokio::test]
async fn batch_funder_tops_up_idempotently_and_refunds() {
    let env = Env::start().await;
    let funder = BatchFunder::new(env.dep.batch_funder, env.provider(0));
    let wallets: Vec<Address> = env
        .keys
        .signers(5000..5100)
        .unwrap()
        .iter()
        .map(|s| s.address())
        .collect();
    let target = parse_ether("0.05").unwrap();
    let short = funder
        .shortfall(wallets.clone(), target)
        .call()
        .await
        .unwrap();
    assert_eq!(
        (short.total, short.count),
        (target * U256::from(100), U256::from(100))
    );
    let r = send_ok!(
        funder
            .topUp(wallets.clone(), target)
            .value(short.total + parse_ether("1").unwrap())
    );
    gas_line("BatchFunder.topUp (100 fresh wallets)", &r);
    let provider = env.provider(0);
    for w in wallets.iter().step_by(33) {
        assert_eq!(provider.get_balance(*w).await.unwrap(), target);
    }
    assert_eq!(
        provider.get_balance(env.dep.batch_funder).await.unwrap(),
        U256::ZERO,
        "the rest is refunded"
    );
    // Again: nothing to send.
    let short = funder
        .shortfall(wallets.clone(), target)
        .call()
        .await
        .unwrap();
    assert_eq!(short.count, U256::ZERO);
    let r = send_ok!(
        funder
            .topUp(wallets.clone(), target)
            .value(parse_ether("1").unwrap())
    );
    assert_eq!(
        logs::<BatchFunder::ToppedUp>(&r)[0].walletsFunded,
        U256::ZERO
    );
    // Not enough value is refused with the amounts.
    let more = parse_ether("0.06").unwrap();
    assert_eq!(
        revert_of!(
            funder
                .topUp(wallets, more)
                .value(parse_ether("0.001").unwrap())
        ),
        "InsufficientValue"
    );
}

#[tokio::test]
async fn deployment_is_deterministic_and_wired() {
    let env = Env::start().await;
    let provider = env.provider(0);
    assert_eq!(provider.get_chain_id().await.unwrap(), 14800);
    for (name, addr) in env.dep.contracts() {
        assert!(
            !provider.get_code_at(addr).await.unwrap().is_empty(),
            "{name} has code"
        );
    }
    // Same mnemonic, fresh chain → same addresses.
    let other = AnvilProcess::spawn(&anvil_config()).await.unwrap();
    let again = deploy(
        &other.rpc_url(),
        DEFAULT_TEST_MNEMONIC,
        &DeployConfig::default(),
    )
    .await
    .unwrap();
    assert_eq!(again.contracts(), env.dep.contracts());
    other.stop().await;
    // EIP-712 domain of the proxy.
    let perms = DataPortabilityPermissions::new(env.dep.data_portability_permissions, &provider);
    let d = perms.eip712Domain().call().await.unwrap();
    assert_eq!(
        (d.name.as_str(), d.version.as_str()),
        ("VanaDataPortabilityPermissions", "1")
    );
    assert_eq!(d.verifyingContract, env.dep.data_portability_permissions);
    // The TEE URL can be set afterwards.
    set_tee_url(
        &env.anvil.rpc_url(),
        DEFAULT_TEST_MNEMONIC,
        &env.dep,
        "http://127.0.0.1:4242",
    )
    .await
    .unwrap();
    let pool = TeePoolPhala::new(env.dep.tee_pool, &provider);
    assert_eq!(
        pool.tees(env.dep.tee_address).call().await.unwrap().url,
        "http://127.0.0.1:4242"
    );
    // Deploying again at the Moksha addresses is refused by name; the plain layout makes a
    // second, fully wired set elsewhere.
    let err = deploy(
        &env.anvil.rpc_url(),
        DEFAULT_TEST_MNEMONIC,
        &DeployConfig::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("already holds code"), "{err}");
    let plain = DeployConfig {
        layout: AddressLayout::Plain,
        ..DeployConfig::default()
    };
    let second = deploy(&env.anvil.rpc_url(), DEFAULT_TEST_MNEMONIC, &plain)
        .await
        .unwrap();
    assert_ne!(second.data_registry, env.dep.data_registry);
    assert!(second.deployer_block > env.dep.deployer_block);
    // The manifest form round-trips.
    let json = serde_json::to_string(&env.dep).unwrap();
    assert_eq!(serde_json::from_str::<Deployment>(&json).unwrap(), env.dep);
}

/// The contracts the SDK knows sit at the SDK's Moksha addresses (proxies initialised in
/// ordinary transactions, so their events exist as after a constructor); the plain layout
/// keeps `CREATE` addresses.
#[tokio::test]
async fn the_sdk_contracts_sit_at_their_moksha_addresses() {
    let env = Env::start().await;
    let provider = env.provider(0);
    let contracts = env.dep.contracts();
    for (name, moksha) in protocol::moksha::ADDRESSES {
        assert_eq!(contracts[name], moksha, "{name}");
        assert!(
            !provider.get_code_at(moksha).await.unwrap().is_empty(),
            "{name}"
        );
    }
    let registry_impl = env.dep.implementations["DataRegistry"];
    let slot = provider
        .get_storage_at(env.dep.data_registry, IMPLEMENTATION_SLOT.into())
        .await
        .unwrap();
    assert_eq!(Address::from_word(slot.into()), registry_impl);
    // Initialised (owner roles granted) and the implementation announced by `Upgraded`.
    let registry = DataRegistry::new(env.dep.data_registry, &provider);
    let admin = registry
        .hasRole(alloy::primitives::B256::ZERO, env.dep.deployer)
        .call()
        .await
        .unwrap();
    assert!(
        admin,
        "the deployer is admin of the placed DataRegistry proxy"
    );
    let upgraded = provider
        .get_logs(
            &alloy::rpc::types::Filter::new()
                .address(env.dep.data_registry)
                .event_signature(alloy::primitives::keccak256("Upgraded(address)"))
                .from_block(0),
        )
        .await
        .unwrap();
    assert_eq!(upgraded.len(), 1, "{upgraded:?}");
    // The plain layout: nothing at the Moksha addresses.
    let other = AnvilProcess::spawn(&anvil_config()).await.unwrap();
    let plain = DeployConfig {
        layout: AddressLayout::Plain,
        ..DeployConfig::default()
    };
    let dep = deploy(&other.rpc_url(), DEFAULT_TEST_MNEMONIC, &plain)
        .await
        .unwrap();
    assert_ne!(dep.data_registry, env.dep.data_registry);
    let rpc = ProviderBuilder::new().connect_http(other.rpc_url().parse().unwrap());
    assert!(
        rpc.get_code_at(env.dep.data_registry)
            .await
            .unwrap()
            .is_empty()
    );
    other.stop().await;
}

/// `requestReward` draws from the funded budget (`totalContributorsRewardAmount`) and,
/// once it is spent, reverts as Vana's DLP does (the transfer of more than the pool holds).
#[tokio::test]
async fn dlp_rewards_draw_from_the_budget_until_it_is_spent() {
    let env = Env::start_with(&DeployConfig {
        reward_pool: parse_ether("15").unwrap(),
        ..DeployConfig::default()
    })
    .await;
    let user = env.signer(USER);
    let tee = env.signer(keys::FIRST_TEE_INDEX);
    let reg_any = DataRegistry::new(env.dep.data_registry, env.provider(RELAYER));
    let dlp = DataLiquidityPool::new(env.dep.data_liquidity_pool, env.provider(USER));
    assert_eq!(
        dlp.totalContributorsRewardAmount().call().await.unwrap(),
        parse_ether("15").unwrap()
    );
    let mut ids = Vec::new();
    for url in ["ipfs://budget-1", "ipfs://budget-2"] {
        let (id, _) = add_file(&env, url, user.address()).await;
        let p = proof(
            &env,
            &tee,
            url,
            parse_ether("1").unwrap(),
            &env.dep.proof_instruction,
        );
        send_ok!(reg_any.addProof(id, p));
        ids.push(id);
    }
    // A full-score reward is fileRewardFactor = 10 tokens: 5 remain.
    send_ok!(dlp.requestReward(ids[0], U256::from(1)));
    assert_eq!(
        dlp.totalContributorsRewardAmount().call().await.unwrap(),
        parse_ether("5").unwrap()
    );
    assert_eq!(
        revert_of!(dlp.requestReward(ids[1], U256::from(1))),
        "ERC20InsufficientBalance"
    );
}

/// Revoking a permission removes it from the grantor's and the grantee's sets.
#[tokio::test]
async fn revoking_removes_the_permission_from_both_sets() {
    let env = Env::start().await;
    let user = env.signer(USER);
    let (file_id, _) = add_file(&env, "ipfs://revoke-file", user.address()).await;
    let as_user =
        DataPortabilityPermissions::new(env.dep.data_portability_permissions, env.provider(USER));
    let grant = permission::Permission {
        nonce: U256::ZERO,
        granteeId: U256::from(env.dep.grantee_id),
        grant: "ipfs://revoke-grant".into(),
        fileIds: vec![file_id],
    };
    let sig = eip712::sign(&user, &grant, &env.permissions_domain()).unwrap();
    let input = PermissionInput {
        nonce: grant.nonce,
        granteeId: grant.granteeId,
        grant: grant.grant.clone(),
        fileIds: grant.fileIds.clone(),
    };
    let r = send_ok!(as_user.addPermission(input, sig));
    let id = logs::<DataPortabilityPermissions::PermissionAdded>(&r)[0].permissionId;
    let grantees =
        DataPortabilityGrantees::new(env.dep.data_portability_grantees, env.provider(USER));
    let grantee = U256::from(env.dep.grantee_id);
    assert!(
        as_user
            .userPermissionIdsValues(user.address())
            .call()
            .await
            .unwrap()
            .contains(&id)
    );
    assert!(
        grantees
            .granteePermissionIds(grantee)
            .call()
            .await
            .unwrap()
            .contains(&id)
    );
    send_ok!(as_user.revokePermission(id));
    assert!(
        !as_user
            .userPermissionIdsValues(user.address())
            .call()
            .await
            .unwrap()
            .contains(&id)
    );
    assert!(
        !grantees
            .granteePermissionIds(grantee)
            .call()
            .await
            .unwrap()
            .contains(&id)
    );
    assert_eq!(
        revert_of!(as_user.revokePermission(id)),
        "InactivePermission"
    );
}

#[tokio::test]
async fn anvil_startup_errors_are_named() {
    let mut cfg = anvil_config();
    cfg.mnemonic = "not a mnemonic".into();
    let err = AnvilProcess::spawn(&cfg).await.unwrap_err();
    assert!(matches!(err, ChainError::MalformedMnemonic), "{err}");
    assert!(!err.to_string().contains("not a mnemonic"));

    let cfg = AnvilConfig {
        anvil_path: "/nonexistent/anvil".into(),
        ..anvil_config()
    };
    assert!(matches!(
        AnvilProcess::spawn(&cfg).await.unwrap_err(),
        ChainError::AnvilNotFound(_)
    ));
    let dir = tempfile::tempdir().unwrap();
    let not_exec = dir.path().join("anvil");
    std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    let cfg = AnvilConfig {
        anvil_path: not_exec,
        ..anvil_config()
    };
    assert!(matches!(
        AnvilProcess::spawn(&cfg).await.unwrap_err(),
        ChainError::NotExecutable(_)
    ));

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let cfg = AnvilConfig {
        port,
        ..anvil_config()
    };
    let err = AnvilProcess::spawn(&cfg).await.unwrap_err();
    assert!(
        matches!(err, ChainError::PortInUse(a) if a.port() == port),
        "{err}"
    );
    assert!(err.to_string().contains(&port.to_string()));
}

fn alive(pid: u32) -> bool {
    // Zombie processes count as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.split_whitespace().nth(2).is_none_or(|state| state != "Z"))
        .unwrap_or(false)
}

#[tokio::test]
async fn anvil_stops_cleanly_and_dies_on_drop() {
    let cfg = AnvilConfig {
        block_time: Some(Duration::from_millis(500)),
        gas_limit: Some(50_000_000),
        ..anvil_config()
    };
    let anvil = AnvilProcess::spawn(&cfg).await.unwrap();
    assert_ne!(anvil.addr().port(), 0, "port 0 resolves to the real port");
    let provider = ProviderBuilder::new().connect_http(anvil.rpc_url().parse().unwrap());
    assert_eq!(provider.get_chain_id().await.unwrap(), 14800);
    let block = provider
        .get_block_by_number(Default::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(block.header.gas_limit, 50_000_000);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(
        provider.get_block_number().await.unwrap() >= 2,
        "interval mining runs"
    );
    let pid = anvil.pid().unwrap();
    anvil.stop().await;
    assert!(!alive(pid), "stopped");

    let anvil = AnvilProcess::spawn(&anvil_config()).await.unwrap();
    let pid = anvil.pid().unwrap();
    drop(anvil);
    for _ in 0..50 {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("anvil {pid} survived its handle");
}

#[tokio::test]
async fn deploys_in_a_few_blocks_with_interval_mining() {
    let cfg = AnvilConfig {
        block_time: Some(Duration::from_secs(1)),
        ..anvil_config()
    };
    let anvil = AnvilProcess::spawn(&cfg).await.unwrap();
    let started = std::time::Instant::now();
    let dep = deploy(
        &anvil.rpc_url(),
        DEFAULT_TEST_MNEMONIC,
        &DeployConfig::default(),
    )
    .await
    .unwrap();
    let provider = ProviderBuilder::new().connect_http(anvil.rpc_url().parse().unwrap());
    let last = provider.get_block_number().await.unwrap();
    // 25 transactions pipelined: a handful of 1 s blocks, not one block per transaction.
    assert!(
        last - dep.deployer_block <= 4,
        "deployment spanned blocks {}..={last}",
        dep.deployer_block
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    let grantees = DataPortabilityGrantees::new(dep.data_portability_grantees, &provider);
    assert_eq!(
        grantees.granteesCount().call().await.unwrap(),
        U256::from(1)
    );
    anvil.stop().await;
}

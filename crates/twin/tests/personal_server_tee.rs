//! The personal server and the TEE against a whole twin, over HTTP and the
//! chain, as a user and an app would drive them:
//!
//! encrypt and upload → add file and permission through the relayer →
//! create the operation → poll to `succeeded` → the output derives from the
//! decrypted data; then the DLP path: contribution proof by the TEE and the
//! reward. Plus the personal server's rejections, each with its real error
//! body and no state change.

use std::time::{Duration, Instant};

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use protocol::api::personal_server::{
    CreateOperation, ErrorBody, GrantFile, Identity, OperationCreated, OperationRequest,
    OperationState, OperationStatus, build_prompt,
};
use protocol::api::relayer::{RelayRequest, RelayResponse, SignedOperation};
use protocol::api::storage::IpfsAddResponse;
use protocol::api::tee::RunProofRequest;
use protocol::contracts::{DataLiquidityPool, DataRegistry, RewardToken, TeePoolPhala};
use protocol::crypto;
use protocol::eip712::{self, server_files};
use protocol::keys::{
    APP_INDEX, DEFAULT_TEST_MNEMONIC, DEPLOYER_INDEX, USER_INDEX_OFFSET, derive_signer,
};
use sha2::{Digest, Sha256};
use vana_load_twin::inference::ServiceTime;
use vana_load_twin::{Twin, TwinConfig};

struct Env {
    twin: Twin,
    http: reqwest::Client,
}

impl Env {
    async fn start() -> Env {
        let mut config = TwinConfig::ephemeral();
        config.inference.service_time = ServiceTime::Fixed { ms: 100 };
        config.tee.service_time_ms = 10;
        Env::with(config).await
    }

    async fn with(config: TwinConfig) -> Env {
        Env {
            twin: Twin::start(config).await.expect("twin starts"),
            http: reqwest::Client::new(),
        }
    }

    async fn get(&self, url: String) -> reqwest::Response {
        self.http.get(url).send().await.unwrap()
    }

    fn url(&self, service: &str) -> String {
        self.twin.manifest().services[service].url.clone()
    }

    fn contract(&self, name: &str) -> Address {
        self.twin.manifest().contracts[name]
    }

    async fn upload(&self, bytes: Vec<u8>, name: &str) -> String {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
        let r: IpfsAddResponse = self
            .http
            .post(format!("{}/api/v0/add", self.url("storage")))
            .multipart(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        format!("ipfs://{}", r.hash)
    }

    async fn identity(&self, user: Address) -> Identity {
        self.http
            .get(format!(
                "{}/api/v1/identity?address={user}",
                self.url("personal_server")
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn create_operation(
        &self,
        signer: &PrivateKeySigner,
        request_json: &str,
    ) -> reqwest::Response {
        let sig = signer.sign_message_sync(request_json.as_bytes()).unwrap();
        let body = CreateOperation {
            app_signature: format!("0x{}", hex::encode(sig.as_bytes())),
            operation_request_json: request_json.to_owned(),
        };
        self.http
            .post(format!("{}/api/v1/operations", self.url("personal_server")))
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

/// A user who has one encrypted file registered with a permission for the app.
struct Contribution {
    user: PrivateKeySigner,
    key: crypto::UserKey,
    plaintext: String,
    file_url: String,
    file_id: u64,
    permission_id: u64,
}

async fn contribute(env: &Env, user_index: u32, grantee: &str) -> Contribution {
    let user = derive_signer(DEFAULT_TEST_MNEMONIC, USER_INDEX_OFFSET + user_index).unwrap();
    let key = crypto::user_key(&user).unwrap();
    let plaintext = format!(
        r#"{{"user_profile":{{"name":"Ada {user_index}"}},"activity_logs":[{{"event":"login","ts":{user_index}}}],"preferences":{{}},"metadata":{{"data_size":1024}}}}"#
    );
    let ciphertext = crypto::encrypt_with_password(plaintext.as_bytes(), key.as_str()).unwrap();
    let file_url = env.upload(ciphertext, "upload.enc").await;

    let identity = env.identity(user.address()).await;
    let server_address: Address = identity.personal_server.address.parse().unwrap();
    let server_pub =
        hex::decode(identity.personal_server.public_key.trim_start_matches("0x")).unwrap();
    let wrapped = crypto::ecies::encrypt(&server_pub, key.as_str().as_bytes()).unwrap();

    let grant = GrantFile {
        grantee: grantee.to_owned(),
        operation: "llm_inference".into(),
        parameters: serde_json::from_str(r#"{"prompt":"Summarise this user: {{data}}"}"#).unwrap(),
        expires: None,
    };
    let grant_url = env
        .upload(serde_json::to_vec(&grant).unwrap(), "grant.json")
        .await;

    let message = server_files::ServerFilesAndPermission {
        nonce: U256::ZERO,
        granteeId: U256::from(1u64),
        grant: grant_url,
        fileUrls: vec![file_url.clone()],
        schemaIds: vec![U256::ZERO],
        serverAddress: server_address,
        serverUrl: env.url("personal_server"),
        serverPublicKey: identity.personal_server.public_key.clone(),
        filePermissions: vec![vec![server_files::Permission {
            account: server_address,
            key: wrapped,
        }]],
    };
    let domain = eip712::permissions_domain(14800, env.contract("DataPortabilityPermissions"));
    let signature = eip712::sign(&user, &message, &domain).unwrap();
    let request = RelayRequest::Signed {
        operation: SignedOperation::SubmitAddServerFilesAndPermissions,
        typed_data: eip712::typed_data_json(&message, &domain).unwrap(),
        signature: signature.to_string(),
        expected_user_address: Some(user.address().to_string()),
    };
    let response: RelayResponse = env
        .http
        .post(format!("{}/api/relay?wait=confirmed", env.url("relayer")))
        .json(&request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let receipt = match response {
        RelayResponse::Confirmed {
            receipt: Some(r), ..
        } => r,
        other => panic!("relayer did not confirm: {other:?}"),
    };
    Contribution {
        user,
        key,
        plaintext,
        file_url,
        file_id: receipt.file_ids[0],
        permission_id: receipt
            .permission_id
            .expect("PermissionAdded in the receipt"),
    }
}

async fn poll_to_terminal(env: &Env, id: &str) -> OperationStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status: OperationStatus = env
            .http
            .get(format!(
                "{}/api/v1/operations/{id}",
                env.url("personal_server")
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status.status.is_terminal() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "operation {id} still {:?}",
            status.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends `call`, waits for its receipt and returns the first `E` it logged.
async fn send_for_event<P, D, E>(
    call: alloy::contract::CallBuilder<P, D, alloy::network::Ethereum>,
) -> E
where
    P: Provider,
    D: alloy::contract::CallDecoder,
    E: alloy::sol_types::SolEvent,
{
    let receipt = call.send().await.unwrap().get_receipt().await.unwrap();
    receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<E>().ok())
        .map(|l| l.inner.data)
        .unwrap_or_else(|| panic!("no {} in the receipt", E::SIGNATURE))
}

async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: ErrorBody = response.json().await.expect("the server's error body");
    assert_eq!(body.detail.kind, "Error");
    (status, body.detail.error_code)
}

#[tokio::test]
async fn operation_and_contribution_proof_end_to_end() {
    let env = Env::start().await;
    let app = derive_signer(DEFAULT_TEST_MNEMONIC, APP_INDEX).unwrap();
    let c = contribute(&env, 11, &app.address().to_checksum(None)).await;

    // The operation: created (202), polled to `succeeded`.
    let request = OperationRequest::sdk_json(c.permission_id);
    let response = env.create_operation(&app, &request).await;
    assert_eq!(response.status().as_u16(), 202);
    let created: OperationCreated = response.json().await.unwrap();
    assert_eq!(created.kind, "OperationCreated");
    let status = poll_to_terminal(&env, &created.id).await;
    assert_eq!(status.status, OperationState::Succeeded);
    // The backend's output names the SHA-256 of the prompt it ran, and the
    // prompt is built from the file only the server could decrypt.
    let prompt = build_prompt(
        "Summarise this user: {{data}}",
        std::slice::from_ref(&c.plaintext),
    );
    let digest = hex::encode(Sha256::digest(prompt.as_bytes()));
    let output = status.output_text().expect("an output");
    assert!(
        output.contains(&digest),
        "output {output} does not derive from the decrypted data"
    );

    // The DLP path: request a proof, hand K to the TEE, wait for the proof, claim.
    let rpc: reqwest::Url = env.twin.manifest().rpc_url.parse().unwrap();
    let deployer = derive_signer(DEFAULT_TEST_MNEMONIC, DEPLOYER_INDEX).unwrap();
    let funder = ProviderBuilder::new()
        .wallet(EthereumWallet::from(deployer))
        .connect_http(rpc.clone());
    let fund = alloy::rpc::types::TransactionRequest::default()
        .to(c.user.address())
        .value(U256::from(10u64).pow(U256::from(18u64)));
    funder
        .send_transaction(fund)
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let user = ProviderBuilder::new()
        .wallet(EthereumWallet::from(c.user.clone()))
        .connect_http(rpc);
    let pool = TeePoolPhala::new(env.contract("TeePoolPhala"), &user);
    let fee = pool.teeFee().call().await.unwrap();
    let job: TeePoolPhala::JobSubmitted = send_for_event(
        pool.requestContributionProof(U256::from(c.file_id))
            .value(fee),
    )
    .await;
    let job_id: u64 = job.jobId.to();
    let tee_url = pool.tees(job.teeAddress).call().await.unwrap().url;
    assert_eq!(
        tee_url,
        env.url("tee"),
        "deployment registered the TEE service URL"
    );
    let run = RunProofRequest {
        job_id,
        file_id: c.file_id,
        nonce: None,
        encryption_key: Some(c.key.as_str().to_owned()),
        encrypted_encryption_key: None,
        proof_url: "https://example.invalid/proof.tar.gz".into(),
        encryption_seed: None,
        env_vars: Default::default(),
        secrets: Default::default(),
        validate_permissions: None,
    };
    let accepted = env
        .http
        .post(format!("{tee_url}/RunProof"))
        .json(&run)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status().as_u16(), 202);

    let registry = DataRegistry::new(env.contract("DataRegistry"), &user);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let file = registry.files(U256::from(c.file_id)).call().await.unwrap();
        assert_eq!(file.url, c.file_url);
        if registry
            .fileProofs(U256::from(c.file_id), U256::from(1u64))
            .call()
            .await
            .is_ok_and(|p| !p.signature.is_empty())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no proof for file {} within 30 s",
            c.file_id
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let dlp = DataLiquidityPool::new(env.contract("DataLiquidityPool"), &user);
    let token = RewardToken::new(env.contract("RewardToken"), &user);
    let before = token.balanceOf(c.user.address()).call().await.unwrap();
    let reward: DataLiquidityPool::RewardRequested =
        send_for_event(dlp.requestReward(U256::from(c.file_id), U256::from(1u64))).await;
    assert!(reward.rewardAmount > U256::ZERO);
    let after = token.balanceOf(c.user.address()).call().await.unwrap();
    assert_eq!(after - before, reward.rewardAmount);

    env.twin.stop().await;
}

#[tokio::test]
async fn personal_server_rejections_use_the_real_error_body() {
    let env = Env::start().await;
    let app = derive_signer(DEFAULT_TEST_MNEMONIC, APP_INDEX).unwrap();
    let ps = env.url("personal_server");

    // Malformed JSON and a body missing a field: FastAPI's 422 list.
    for (body, kind, loc) in [
        ("{not json", "json_invalid", serde_json::json!(1)),
        (
            r#"{"app_signature":"0x12"}"#,
            "missing",
            serde_json::json!("operation_request_json"),
        ),
    ] {
        let r = env
            .http
            .post(format!("{ps}/api/v1/operations"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 422, "{body}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["detail"][0]["type"], kind, "{v}");
        assert_eq!(
            v["detail"][0]["loc"],
            serde_json::json!(["body", loc]),
            "{v}"
        );
    }

    // A malformed identity address: VALIDATION_ERROR_{FIELD}.
    let r = env.get(format!("{ps}/api/v1/identity?address=0x12")).await;
    assert_eq!(error_of(r).await, (400, "VALIDATION_ERROR_ADDRESS".into()));

    // Unknown permission id (the contract returns a zeroed struct): 404.
    let r = env
        .create_operation(&app, &OperationRequest::sdk_json(999))
        .await;
    assert_eq!(error_of(r).await, (404, "NOT_FOUND_ERROR".into()));

    // A real permission, but signed by a key that is not its grantee.
    let c = contribute(&env, 12, &app.address().to_checksum(None)).await;
    let stranger = PrivateKeySigner::random();
    let r = env
        .create_operation(&stranger, &OperationRequest::sdk_json(c.permission_id))
        .await;
    assert_eq!(error_of(r).await, (401, "AUTHENTICATION_ERROR".into()));

    // A signature that recovers to nobody.
    let body = serde_json::json!({"app_signature": "0x1234", "operation_request_json": OperationRequest::sdk_json(c.permission_id)});
    let r = env
        .http
        .post(format!("{ps}/api/v1/operations"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (401, "AUTHENTICATION_ERROR".into()));

    // A grant file naming another grantee (lowercase: not the checksummed address).
    let other = contribute(&env, 13, &format!("{:#x}", app.address())).await;
    let r = env
        .create_operation(&app, &OperationRequest::sdk_json(other.permission_id))
        .await;
    assert_eq!(error_of(r).await, (400, "GRANT_VALIDATION_ERROR".into()));

    // Unknown and malformed operation ids.
    let r = env.get(format!("{ps}/api/v1/operations/nosuchid")).await;
    assert_eq!(error_of(r).await, (404, "NOT_FOUND_ERROR".into()));
    let r = env.get(format!("{ps}/api/v1/operations/bad%20id")).await;
    assert_eq!(
        error_of(r).await,
        (400, "VALIDATION_ERROR_OPERATION_ID".into())
    );

    // The valid operation still works afterwards, and it is the only
    // prediction the backend ever ran: no rejection reached it.
    let r = env
        .create_operation(&app, &OperationRequest::sdk_json(c.permission_id))
        .await;
    assert_eq!(r.status().as_u16(), 202);
    let created: OperationCreated = r.json().await.unwrap();
    assert_eq!(
        poll_to_terminal(&env, &created.id).await.status,
        OperationState::Succeeded
    );
    let metrics_url = env.twin.manifest().services["inference"]
        .metrics_url
        .clone();
    let metrics = env
        .http
        .get(metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ran: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("inference_predictions_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(ran, 1.0, "predictions by final status:\n{metrics}");
    env.twin.stop().await;
}

#[tokio::test]
async fn tee_rejects_bad_requests() {
    let env = Env::start().await;
    let tee = env.url("tee");
    let r = env
        .http
        .post(format!("{tee}/RunProof"))
        .body("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body = serde_json::json!({"job_id": 12345, "file_id": 1, "encryption_key": "0xabc", "proof_url": "x"});
    let r = env
        .http
        .post(format!("{tee}/RunProof"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], "JOB_NOT_FOUND");
    let body = serde_json::json!({"job_id": 1, "file_id": 1, "proof_url": "x"});
    let r = env
        .http
        .post(format!("{tee}/RunProof"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    env.twin.stop().await;
}

/// Soak (bounded, loopback): 200 users each with a permission, then 200
/// operations created at once and polled to `succeeded`, with no error.
/// `cargo test -p vana-load-twin --test personal_server_tee -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: about 30 s; run with --ignored"]
async fn soak_200_concurrent_operations() {
    const N: u32 = 200;
    let mut config = TwinConfig::ephemeral();
    config.inference.service_time = ServiceTime::Fixed { ms: 1000 };
    config.inference.workers = 64;
    let env = std::sync::Arc::new(Env::with(config).await);
    let app = derive_signer(DEFAULT_TEST_MNEMONIC, APP_INDEX).unwrap();
    let grantee = app.address().to_checksum(None);
    let setup = Instant::now();
    let mut permissions = Vec::new();
    for chunk in (100..100 + N).collect::<Vec<_>>().chunks(20) {
        let batch = chunk.iter().map(|&i| {
            let (env, grantee) = (env.clone(), grantee.clone());
            async move { contribute(&env, i, &grantee).await.permission_id }
        });
        permissions.extend(futures::future::join_all(batch).await);
    }
    eprintln!(
        "setup: {N} permissions in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let ops = permissions.iter().map(|&id| {
        let (env, app) = (env.clone(), app.clone());
        async move {
            let t = Instant::now();
            let r = env
                .create_operation(&app, &OperationRequest::sdk_json(id))
                .await;
            assert_eq!(r.status().as_u16(), 202, "permission {id}");
            let created_ms = t.elapsed().as_secs_f64() * 1000.0;
            let created: OperationCreated = r.json().await.unwrap();
            let status = poll_to_terminal(&env, &created.id).await;
            assert_eq!(status.status, OperationState::Succeeded, "{}", created.id);
            (created_ms, t.elapsed().as_secs_f64() * 1000.0)
        }
    });
    let mut results = futures::future::join_all(ops).await;
    let wall = started.elapsed().as_secs_f64();
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(f64::total_cmp);
        v[((v.len() as f64 - 1.0) * p).round() as usize]
    };
    let mut create: Vec<f64> = results.iter().map(|r| r.0).collect();
    let mut done: Vec<f64> = results.drain(..).map(|r| r.1).collect();
    eprintln!(
        "{N} operations in {wall:.1} s ({:.1}/s): create p50 {:.0} ms p99 {:.0} ms; to succeeded p50 {:.0} ms p99 {:.0} ms",
        f64::from(N) / wall,
        pct(&mut create, 0.5),
        pct(&mut create, 0.99),
        pct(&mut done, 0.5),
        pct(&mut done, 0.99)
    );
    assert_eq!(done.len(), N as usize);
}

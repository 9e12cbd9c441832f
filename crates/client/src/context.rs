//! A run's shared state: the target, one HTTP pool, the chain (providers and
//! receipt hub), one client per service, the keys, and the static facts read
//! once per run (chain id, grantee id, `teeFee`, the DLP's public key and
//! reward token, TEE endpoints as they are first met).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use protocol::contracts::{DataLiquidityPool, DataPortabilityGrantees, TeePoolPhala};
use tokio_util::sync::CancellationToken;

use crate::chain::{Chain, TxRecord, record};
use crate::data::{DataGenerator, DataSize};
use crate::errors::{ErrorKind, JourneyError};
use crate::services::{
    http_client, relayer::RelayerClient, server::ServerClient, storage::StorageClient,
    subgraph::SubgraphClient, tee::TeeClient,
};
use crate::target::{Purpose, Target};
use crate::wallets::UserWallets;

/// Facts that do not change during a run, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticFacts {
    pub chain_id: u64,
    pub app: Address,
    /// `DataPortabilityGrantees.granteeAddressToId(app)`.
    pub grantee_id: U256,
    /// `TeePool.teeFee()`.
    pub tee_fee: U256,
    /// `DataLiquidityPool.publicKey()` (ECIES key for the DLP's file permission).
    pub dlp_public_key: String,
    /// `DataLiquidityPool.token()`.
    pub reward_token: Address,
}

/// A TEE's endpoint and key, from `TeePool.tees(addr)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeeEndpoint {
    pub url: String,
    pub public_key: String,
}

/// Options of a run that are not part of the target.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub run_seed: u64,
    pub test_run_id: String,
    pub data_size: DataSize,
    /// Whether the journey goes through the relayer (default) or pays directly.
    pub relayer: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            run_seed: 1,
            test_run_id: "vana-load".into(),
            data_size: DataSize::Small,
            relayer: true,
        }
    }
}

/// Everything journeys share.
pub struct Context {
    pub target: Target,
    pub opts: RunOptions,
    pub http: reqwest::Client,
    pub chain: Chain,
    pub storage: StorageClient,
    pub relayer: Option<RelayerClient>,
    pub server: ServerClient,
    pub subgraph: SubgraphClient,
    pub tee: TeeClient,
    pub facts: StaticFacts,
    pub app: PrivateKeySigner,
    pub users: UserWallets,
    pub data: DataGenerator,
    funder: Option<PrivateKeySigner>,
    funder_lock: tokio::sync::Mutex<()>,
    tees: Mutex<HashMap<Address, TeeEndpoint>>,
    stop: CancellationToken,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("target", &self.target.name)
            .field("facts", &self.facts)
            .finish_non_exhaustive()
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn setup(msg: impl Into<String>) -> JourneyError {
    JourneyError::rpc(msg)
}

impl Context {
    /// Checks the target for a journey, connects, and reads the static facts.
    pub async fn new(target: Target, opts: RunOptions) -> Result<Arc<Self>, JourneyError> {
        target
            .require(Purpose::Journey {
                relayer: opts.relayer,
            })
            .map_err(|e| setup(e.to_string()))?;
        let stop = CancellationToken::new();
        let http = http_client();
        let chain = Chain::connect(&target, stop.clone()).await?;
        let mnemonic = target.mnemonic.as_ref();
        let app_src = target.app_key.as_ref().expect("checked by require");
        let app = app_src
            .signer(mnemonic, "keys.app")
            .map_err(|e| JourneyError::crypto(e.to_string()))?;
        let funder = match &target.funder_key {
            Some(k) => Some(
                k.signer(mnemonic, "keys.funder")
                    .map_err(|e| JourneyError::crypto(e.to_string()))?,
            ),
            None => None,
        };
        let users = UserWallets::new(
            mnemonic.expect("checked by require"),
            target.user_index_offset,
        )
        .map_err(|e| JourneyError::crypto(e.to_string()))?;
        let facts = read_facts(&target, &chain, app.address()).await?;
        let storage = StorageClient::new(http.clone(), target.storage.clone());
        let relayer = target
            .relayer_url
            .as_ref()
            .map(|u| RelayerClient::new(http.clone(), u));
        let server = ServerClient::new(
            http.clone(),
            target.personal_server_url.as_ref().expect("checked"),
        );
        // `_meta` answers are shared by every journey for one poll interval.
        let subgraph = SubgraphClient::with_meta_ttl(
            http.clone(),
            target.subgraph_url.as_ref().expect("checked"),
            target.poll.index,
        );
        let tee = TeeClient::new(http.clone());
        let data = DataGenerator::new(
            opts.run_seed,
            opts.test_run_id.clone(),
            chrono::Utc::now().timestamp_millis(),
        );
        Ok(Arc::new(Context {
            target,
            opts,
            http,
            chain,
            storage,
            relayer,
            server,
            subgraph,
            tee,
            facts,
            app,
            users,
            data,
            funder,
            funder_lock: tokio::sync::Mutex::new(()),
            tees: Mutex::new(HashMap::new()),
            stop,
        }))
    }

    /// The endpoint of the TEE at `addr` (the target's `services.tee`
    /// overrides the URL), read from chain the first time.
    pub async fn tee_endpoint(&self, addr: Address) -> Result<TeeEndpoint, JourneyError> {
        if let Some(t) = self.tees.lock().expect("poisoned").get(&addr) {
            return Ok(t.clone());
        }
        let pool = TeePoolPhala::new(self.target.contracts.tee_pool, self.chain.main().clone());
        let info = pool
            .tees(addr)
            .call()
            .await
            .map_err(|e| JourneyError::from_contract(&e))?;
        let url = match &self.target.tee_url {
            Some(u) => u.as_str().trim_end_matches('/').to_string(),
            None if !info.url.is_empty() => info.url.clone(),
            None => {
                return Err(setup(format!(
                    "TeePool.tees({addr}).url is empty and services.tee is not set"
                )));
            }
        };
        let ep = TeeEndpoint {
            url,
            public_key: info.publicKey.clone(),
        };
        self.tees.lock().expect("poisoned").insert(addr, ep.clone());
        Ok(ep)
    }

    /// Tops `user` up to the funding amount from the funder if it is below
    /// the threshold; `Ok(None)` if it already had enough.
    pub async fn ensure_funded(
        &self,
        user: u64,
        addr: Address,
        limit: Duration,
    ) -> Result<Option<TxRecord>, JourneyError> {
        let p = self.chain.provider(user).clone();
        let bal = p
            .get_balance(addr)
            .await
            .map_err(|e| JourneyError::from_transport(&e))?;
        let f = self.target.funding;
        if bal >= f.threshold {
            return Ok(None);
        }
        let Some(funder) = &self.funder else {
            return Err(JourneyError::new(
                ErrorKind::InsufficientFunds,
                format!(
                    "wallet {addr} has {bal} wei, below the threshold, and the target has no funder key"
                ),
            ));
        };
        // One funder transaction at a time between nonce read and broadcast.
        let (hash, sent) = {
            let _g = self.funder_lock.lock().await;
            let from = funder.address();
            let nonce = p
                .get_transaction_count(from)
                .pending()
                .await
                .map_err(|e| JourneyError::from_transport(&e))?;
            let fees = p
                .estimate_eip1559_fees()
                .await
                .map_err(|e| JourneyError::from_transport(&e))?;
            let tx = TransactionRequest::default()
                .with_from(from)
                .with_to(addr)
                .with_value(f.amount - bal)
                .with_nonce(nonce)
                .with_chain_id(self.chain.chain_id)
                .with_gas_limit(21_000)
                .with_max_fee_per_gas(fees.max_fee_per_gas)
                .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
            let env = tx
                .build(&EthereumWallet::from(funder.clone()))
                .await
                .map_err(|e| JourneyError::crypto(format!("signing the funding transfer: {e}")))?;
            let pending = p
                .send_tx_envelope(env)
                .await
                .map_err(|e| JourneyError::from_transport(&e))?;
            (*pending.tx_hash(), std::time::Instant::now())
        };
        let r = self.chain.receipts.wait(hash, limit).await?;
        Ok(Some(record("fund", &r, sent.elapsed())))
    }
}

async fn read_facts(
    target: &Target,
    chain: &Chain,
    app: Address,
) -> Result<StaticFacts, JourneyError> {
    let p = chain.main().clone();
    let c = &target.contracts;
    let grantees = DataPortabilityGrantees::new(c.grantees, p.clone());
    let pool = TeePoolPhala::new(c.tee_pool, p.clone());
    let dlp_addr = c.dlp.expect("checked by require");
    let dlp = DataLiquidityPool::new(dlp_addr, p.clone());
    let ctx = |what: &str, e: alloy::contract::Error| {
        let j = JourneyError::from_contract(&e);
        JourneyError::new(j.kind, format!("reading {what}: {}", j.message))
    };
    let (grantee_id, tee_fee, dlp_public_key, reward_token) = tokio::try_join!(
        async {
            grantees
                .granteeAddressToId(app)
                .call()
                .await
                .map_err(|e| ctx("Grantees.granteeAddressToId", e))
        },
        async {
            pool.teeFee()
                .call()
                .await
                .map_err(|e| ctx("TeePool.teeFee", e))
        },
        async {
            dlp.publicKey()
                .call()
                .await
                .map_err(|e| ctx("DataLiquidityPool.publicKey", e))
        },
        async {
            dlp.token()
                .call()
                .await
                .map_err(|e| ctx("DataLiquidityPool.token", e))
        },
    )?;
    if grantee_id.is_zero() {
        return Err(setup(format!(
            "the app key {app} is not a registered grantee on DataPortabilityGrantees {} (registerGrantee it first)",
            c.grantees
        )));
    }
    Ok(StaticFacts {
        chain_id: chain.chain_id,
        app,
        grantee_id,
        tee_fee,
        dlp_public_key,
        reward_token,
    })
}

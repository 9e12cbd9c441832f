//! Deterministic deployment and wiring of the Vana contracts on the twin's chain.
//!
//! Everything is sent by the deployer (key index 0) from its current nonce, so on a fresh
//! chain the addresses are always the same. Every contract address is known before the first
//! transaction (`CREATE` addresses from the nonce), so all transactions are sent pipelined
//! with explicit nonces and gas limits and their receipts awaited at the end: a deployment
//! takes about one block even with interval mining.
//!
//! **Addresses** ([`AddressLayout`]): by default every contract the published SDK knows
//! (DataRegistry, DataPortabilityPermissions/Servers/Grantees, TeePoolPhala,
//! DataRefinerRegistry) sits at its Moksha address (`protocol::moksha`), so an unmodified SDK
//! reaches it. anvil cannot `CREATE` at a chosen address, so the proxy's runtime code is put
//! there with `anvil_setCode` and its implementation slot with `anvil_setStorageAt` (the
//! proxy has no immutables and its constructor writes only that slot); the deployer then
//! calls `initialize` on it, and `upgradeToAndCall(implementation, "")` so that the
//! proxy's `Upgraded` event exists as after a constructor. Every initialiser event and
//! write happens in an ordinary transaction, exactly as behind a `CREATE`d proxy. The
//! schema registry has no constructor and no immutables: its runtime code is placed the
//! same way. Implementations, the DLP, the token and the funder stay at their `CREATE`
//! addresses. [`AddressLayout::Plain`] deploys everything with `CREATE`.
//!
//! Wiring: each Vana contract is an implementation behind an `ERC1967Proxy` initialised with
//! the deployer as owner; the Permissions proxy gets `DATA_PORTABILITY_ROLE` on the registry
//! and `PERMISSION_MANAGER_ROLE` on Grantees and Servers; the app key (index 1) is registered
//! as grantee 1; the first TEE key (index 2) is the active TEE (URL and uncompressed public
//! key); one schema (id 1) exists; the DLP is funded with reward tokens and has a proof
//! instruction; the TEE fee is set.

use std::collections::BTreeMap;

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, Bytes, U256, utils::parse_ether};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolConstructor};
use protocol::contracts::{
    BatchFunder, DataLiquidityPool, DataPortabilityGrantees, DataPortabilityPermissions,
    DataPortabilityServers, DataRefinerRegistry, DataRegistry, DlpInitParams, ERC1967Proxy,
    RewardToken, TeePoolPhala, describe_revert,
};
use protocol::keys::{APP_INDEX, DEPLOYER_INDEX, FIRST_TEE_INDEX, HdAccount};
use serde::{Deserialize, Serialize};

use super::ChainError;

/// Where the contracts the SDK knows are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressLayout {
    /// At their Moksha addresses (the SDK's table for chain 14800).
    #[default]
    Moksha,
    /// Wherever `CREATE` from the deployer's nonces puts them.
    Plain,
}

/// The ERC-1967 implementation slot: `keccak256("eip1967.proxy.implementation") - 1`.
pub const IMPLEMENTATION_SLOT: alloy::primitives::B256 =
    alloy::primitives::b256!("0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc");

/// The DLP's default reward budget in whole tokens: 25,000 rewards at the highest score
/// (10 tokens each with the default `file_reward_factor`), twice a 12,500-journey burst.
pub const DEFAULT_REWARD_BUDGET_TOKENS: u64 = 250_000;

/// What to deploy with. The defaults are the twin's.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    /// Where the contracts the SDK knows go. Default [`AddressLayout::Moksha`].
    pub layout: AddressLayout,
    /// The TEE service URL registered for the active TEE (see [`set_tee_url`] if it is known
    /// only after the deployment).
    pub tee_url: String,
    /// `TeePoolPhala.teeFee`, in wei.
    pub tee_fee: U256,
    /// `DataLiquidityPool.fileRewardFactor`: reward tokens (wei units) for a score of 1e18.
    pub file_reward_factor: U256,
    /// `DataLiquidityPool.proofInstruction` (the proof's `instruction` must equal it).
    pub proof_instruction: String,
    /// The DLP's name.
    pub dlp_name: String,
    /// The dlpId the TEE writes into its proofs.
    pub dlp_id: u64,
    /// The DLP's public key; `None` = the TEE key's (so the twin TEE can decrypt what users
    /// encrypt to the DLP).
    pub dlp_public_key: Option<String>,
    /// The grantee's public key; `None` = the app key's uncompressed public key.
    pub grantee_public_key: Option<String>,
    /// Reward token supply minted to the deployer.
    pub token_supply: U256,
    /// Reward tokens (wei units) moved into the DLP with `addRewardsForContributors`: its
    /// reward budget, which each `requestReward` draws from until it is spent.
    pub reward_pool: U256,
    /// `TeePoolPhala.cancelDelay`, in seconds.
    pub cancel_delay: u64,
}

impl Default for DeployConfig {
    fn default() -> Self {
        Self {
            layout: AddressLayout::Moksha,
            tee_url: "http://127.0.0.1:0".into(),
            tee_fee: parse_ether("0.01").expect("constant"),
            file_reward_factor: parse_ether("10").expect("constant"),
            proof_instruction: "https://vana-load.invalid/proofs/vana-load-proof-v1.tar.gz".into(),
            dlp_name: "vana-load twin DLP".into(),
            dlp_id: 1,
            dlp_public_key: None,
            grantee_public_key: None,
            token_supply: parse_ether("1000000000000").expect("constant"),
            reward_pool: U256::from(DEFAULT_REWARD_BUDGET_TOKENS)
                * parse_ether("1").expect("constant"),
            cancel_delay: 600,
        }
    }
}

/// Where everything is, and the facts the client needs about the wiring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub chain_id: u64,
    /// The block of the first deployment transaction (indexers start here).
    pub deployer_block: u64,
    pub deployer: Address,
    pub data_registry: Address,
    pub data_refiner_registry: Address,
    pub data_portability_permissions: Address,
    pub data_portability_grantees: Address,
    pub data_portability_servers: Address,
    pub tee_pool: Address,
    pub data_liquidity_pool: Address,
    pub reward_token: Address,
    pub batch_funder: Address,
    /// Implementation behind each proxy, by contract name.
    pub implementations: BTreeMap<String, Address>,
    pub app_address: Address,
    pub grantee_id: u64,
    pub tee_address: Address,
    pub tee_public_key: String,
    pub tee_url: String,
    pub tee_fee: U256,
    pub dlp_id: u64,
    pub proof_instruction: String,
    pub file_reward_factor: U256,
    /// Schema id 1 exists (a `schemaId > 0` must be known to the registry).
    pub schema_id: u64,
}

impl Deployment {
    /// Every contract (proxy) address by contract name, as in the manifest.
    pub fn contracts(&self) -> BTreeMap<String, Address> {
        BTreeMap::from([
            ("DataRegistry".to_owned(), self.data_registry),
            ("DataRefinerRegistry".to_owned(), self.data_refiner_registry),
            (
                "DataPortabilityPermissions".to_owned(),
                self.data_portability_permissions,
            ),
            (
                "DataPortabilityGrantees".to_owned(),
                self.data_portability_grantees,
            ),
            (
                "DataPortabilityServers".to_owned(),
                self.data_portability_servers,
            ),
            ("TeePoolPhala".to_owned(), self.tee_pool),
            ("DataLiquidityPool".to_owned(), self.data_liquidity_pool),
            ("RewardToken".to_owned(), self.reward_token),
            ("BatchFunder".to_owned(), self.batch_funder),
        ])
    }
}

/// The uncompressed secp256k1 public key of a signer, `0x04…` (130 hex digits).
pub fn tee_public_key_hex(signer: &PrivateKeySigner) -> String {
    let point = signer.credential().verifying_key().to_encoded_point(false);
    format!("0x{}", alloy::primitives::hex::encode(point.as_bytes()))
}

const DEPLOY_GAS: u64 = 6_000_000;
const PROXY_GAS: u64 = 1_500_000;
const CALL_GAS: u64 = 1_000_000;

/// Code (and storage) put at an address with anvil's cheat calls.
struct Placement {
    name: String,
    address: Address,
    code: Bytes,
    storage: Vec<(alloy::primitives::B256, alloy::primitives::B256)>,
}

struct Plan {
    from: Address,
    next_nonce: u64,
    layout: AddressLayout,
    placements: Vec<Placement>,
    steps: Vec<(String, TransactionRequest)>,
}

impl Plan {
    fn push(&mut self, name: impl Into<String>, tx: TransactionRequest, gas: u64) -> u64 {
        let nonce = self.next_nonce;
        self.next_nonce += 1;
        self.steps
            .push((name.into(), tx.from(self.from).nonce(nonce).gas_limit(gas)));
        nonce
    }

    /// Queues a `CREATE` and returns the address it will have.
    fn create(&mut self, name: &str, code: Vec<u8>) -> Address {
        let gas = DEPLOY_GAS.min(200_000 + 260 * code.len() as u64);
        let nonce = self.push(
            format!("deploy {name}"),
            TransactionRequest::default().with_deploy_code(code),
            gas,
        );
        self.from.create(nonce)
    }

    /// The Moksha address of `name` when the layout places it there.
    fn moksha(&self, name: &str) -> Option<Address> {
        match self.layout {
            AddressLayout::Moksha => protocol::moksha::address_of(name),
            AddressLayout::Plain => None,
        }
    }

    /// A contract without constructor: at its Moksha address, or `CREATE`d.
    fn plain(&mut self, name: &str, code: Vec<u8>, runtime: &Bytes) -> Address {
        match self.moksha(name) {
            Some(address) => {
                self.placements.push(Placement {
                    name: name.to_owned(),
                    address,
                    code: runtime.clone(),
                    storage: Vec::new(),
                });
                address
            }
            None => self.create(name, code),
        }
    }

    fn proxy(&mut self, name: &str, implementation: Address, init: Vec<u8>) -> Address {
        if let Some(address) = self.moksha(name) {
            self.placements.push(Placement {
                name: format!("{name} proxy"),
                address,
                code: ERC1967Proxy::DEPLOYED_BYTECODE.clone(),
                storage: vec![(IMPLEMENTATION_SLOT, implementation.into_word())],
            });
            self.push(
                format!("initialize {name} proxy"),
                TransactionRequest::default().to(address).input(init.into()),
                DEPLOY_GAS,
            );
            let upgrade = DataRegistry::upgradeToAndCallCall {
                newImplementation: implementation,
                data: Bytes::new(),
            };
            self.call(
                format!("announce the {name} implementation"),
                address,
                upgrade,
            );
            return address;
        }
        let code = [
            ERC1967Proxy::BYTECODE.to_vec(),
            ERC1967Proxy::constructorCall {
                implementation,
                _data: Bytes::from(init),
            }
            .abi_encode(),
        ]
        .concat();
        let nonce = self.push(
            format!("deploy {name} proxy"),
            TransactionRequest::default().with_deploy_code(code),
            PROXY_GAS,
        );
        self.from.create(nonce)
    }

    fn call(&mut self, name: impl Into<String>, to: Address, call: impl SolCall) {
        self.push(
            name,
            TransactionRequest::default()
                .to(to)
                .input(call.abi_encode().into()),
            CALL_GAS,
        );
    }
}

fn rpc_err(url: &str) -> impl Fn(alloy::transports::TransportError) -> ChainError + '_ {
    move |e| ChainError::Rpc {
        url: url.to_owned(),
        reason: e.to_string(),
    }
}

/// Deploys and wires every contract from key index 0 of `mnemonic` on the chain at `rpc_url`.
pub async fn deploy(
    rpc_url: &str,
    mnemonic: &str,
    cfg: &DeployConfig,
) -> Result<Deployment, ChainError> {
    let keys = HdAccount::new(mnemonic).map_err(|_| ChainError::MalformedMnemonic)?;
    let derive = |i| {
        keys.signer(i)
            .map_err(|e| ChainError::Config(e.to_string()))
    };
    let deployer = derive(DEPLOYER_INDEX)?;
    let app = derive(APP_INDEX)?;
    let tee = derive(FIRST_TEE_INDEX)?;
    let url = rpc_url
        .parse()
        .map_err(|e| ChainError::Config(format!("RPC URL {rpc_url:?}: {e}")))?;
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(deployer.clone()))
        .connect_http(url);
    let chain_id = provider.get_chain_id().await.map_err(rpc_err(rpc_url))?;
    let from = deployer.address();
    let start_nonce = provider
        .get_transaction_count(from)
        .await
        .map_err(rpc_err(rpc_url))?;

    let tee_public_key = tee_public_key_hex(&tee);
    let grantee_public_key = cfg
        .grantee_public_key
        .clone()
        .unwrap_or_else(|| tee_public_key_hex(&app));
    let dlp_public_key = cfg
        .dlp_public_key
        .clone()
        .unwrap_or_else(|| tee_public_key.clone());

    let mut plan = Plan {
        from,
        next_nonce: start_nonce,
        layout: cfg.layout,
        placements: Vec::new(),
        steps: Vec::new(),
    };
    let mut implementations = BTreeMap::new();

    // Implementations.
    let registry_impl = plan.create("DataRegistry", DataRegistry::BYTECODE.to_vec());
    let grantees_impl = plan.create(
        "DataPortabilityGrantees",
        DataPortabilityGrantees::BYTECODE.to_vec(),
    );
    let servers_impl = plan.create(
        "DataPortabilityServers",
        DataPortabilityServers::BYTECODE.to_vec(),
    );
    let permissions_impl = plan.create(
        "DataPortabilityPermissions",
        DataPortabilityPermissions::BYTECODE.to_vec(),
    );
    let tee_pool_impl = plan.create("TeePoolPhala", TeePoolPhala::BYTECODE.to_vec());
    let dlp_impl = plan.create("DataLiquidityPool", DataLiquidityPool::BYTECODE.to_vec());
    for (name, addr) in [
        ("DataRegistry", registry_impl),
        ("DataPortabilityGrantees", grantees_impl),
        ("DataPortabilityServers", servers_impl),
        ("DataPortabilityPermissions", permissions_impl),
        ("TeePoolPhala", tee_pool_impl),
        ("DataLiquidityPool", dlp_impl),
    ] {
        implementations.insert(name.to_owned(), addr);
    }
    // Plain contracts.
    let refiner = plan.plain(
        "DataRefinerRegistry",
        DataRefinerRegistry::BYTECODE.to_vec(),
        &DataRefinerRegistry::DEPLOYED_BYTECODE,
    );
    let token_code = [
        RewardToken::BYTECODE.to_vec(),
        RewardToken::constructorCall {
            name_: "vana-load DLP Token".into(),
            symbol_: "VLDLP".into(),
            initialSupply: cfg.token_supply,
        }
        .abi_encode(),
    ]
    .concat();
    let token = plan.create("RewardToken", token_code);
    let batch_funder = plan.create("BatchFunder", BatchFunder::BYTECODE.to_vec());

    // Proxies, initialised with the deployer as owner (no trusted forwarder).
    let registry = plan.proxy(
        "DataRegistry",
        registry_impl,
        DataRegistry::initializeCall {
            trustedForwarderAddress: Address::ZERO,
            ownerAddress: from,
        }
        .abi_encode(),
    );
    let grantees = plan.proxy(
        "DataPortabilityGrantees",
        grantees_impl,
        DataPortabilityGrantees::initializeCall {
            trustedForwarderAddress: Address::ZERO,
            ownerAddress: from,
        }
        .abi_encode(),
    );
    let servers = plan.proxy(
        "DataPortabilityServers",
        servers_impl,
        DataPortabilityServers::initializeCall {
            trustedForwarderAddress: Address::ZERO,
            ownerAddress: from,
        }
        .abi_encode(),
    );
    let permissions = plan.proxy(
        "DataPortabilityPermissions",
        permissions_impl,
        DataPortabilityPermissions::initializeCall {
            trustedForwarderAddress: Address::ZERO,
            ownerAddress: from,
            dataRegistryAddress: registry,
            serversContractAddr: servers,
            granteesContractAddr: grantees,
        }
        .abi_encode(),
    );
    let tee_pool = plan.proxy(
        "TeePoolPhala",
        tee_pool_impl,
        TeePoolPhala::initializeCall {
            trustedForwarderAddress: Address::ZERO,
            ownerAddress: from,
            dataRegistryAddress: registry,
            initialCancelDelay: U256::from(cfg.cancel_delay),
        }
        .abi_encode(),
    );
    let dlp = plan.proxy(
        "DataLiquidityPool",
        dlp_impl,
        DataLiquidityPool::initializeCall {
            params: DlpInitParams {
                ownerAddress: from,
                tokenAddress: token,
                dataRegistryAddress: registry,
                teePoolAddress: tee_pool,
                name: cfg.dlp_name.clone(),
                publicKey: dlp_public_key,
                proofInstruction: cfg.proof_instruction.clone(),
                fileRewardFactor: cfg.file_reward_factor,
            },
        }
        .abi_encode(),
    );

    // Roles.
    let role = |name: &str| alloy::primitives::keccak256(name.as_bytes());
    plan.call(
        "grant DATA_PORTABILITY_ROLE on DataRegistry to Permissions",
        registry,
        DataRegistry::grantRoleCall {
            role: role("DATA_PORTABILITY_ROLE"),
            account: permissions,
        },
    );
    plan.call(
        "grant PERMISSION_MANAGER_ROLE on Grantees to Permissions",
        grantees,
        DataPortabilityGrantees::grantRoleCall {
            role: role("PERMISSION_MANAGER_ROLE"),
            account: permissions,
        },
    );
    plan.call(
        "grant PERMISSION_MANAGER_ROLE on Servers to Permissions",
        servers,
        DataPortabilityServers::grantRoleCall {
            role: role("PERMISSION_MANAGER_ROLE"),
            account: permissions,
        },
    );
    // Schemas.
    plan.call(
        "add schema 1",
        refiner,
        DataRefinerRegistry::addSchemaCall {
            name: "vana-load synthetic profile".into(),
            dialect: "json".into(),
            definitionUrl: "https://vana-load.invalid/schemas/synthetic-profile-v1.json".into(),
        },
    );
    plan.call(
        "set the schema registry of DataRegistry",
        registry,
        DataRegistry::updateDataRefinerRegistryCall {
            newDataRefinerRegistry: refiner,
        },
    );
    // The app as grantee 1.
    plan.call(
        "register the app as grantee",
        grantees,
        DataPortabilityGrantees::registerGranteeCall {
            owner: app.address(),
            granteeAddress: app.address(),
            publicKey: grantee_public_key,
        },
    );
    // The TEE and its fee.
    plan.call(
        "add the TEE",
        tee_pool,
        TeePoolPhala::addTeeCall {
            teeAddress: tee.address(),
            url: cfg.tee_url.clone(),
            publicKey: tee_public_key.clone(),
        },
    );
    plan.call(
        "set the TEE fee",
        tee_pool,
        TeePoolPhala::updateTeeFeeCall {
            newTeeFee: cfg.tee_fee,
        },
    );
    // DLP rewards.
    plan.call(
        "approve DLP reward tokens",
        token,
        RewardToken::approveCall {
            spender: dlp,
            value: cfg.reward_pool,
        },
    );
    plan.call(
        "fund the DLP reward pool",
        dlp,
        DataLiquidityPool::addRewardsForContributorsCall {
            contributorsRewardAmount: cfg.reward_pool,
        },
    );

    let deployer_block = send_all(&provider, rpc_url, plan).await?;

    // Every address must hold code.
    let deployment = Deployment {
        chain_id,
        deployer_block,
        deployer: from,
        data_registry: registry,
        data_refiner_registry: refiner,
        data_portability_permissions: permissions,
        data_portability_grantees: grantees,
        data_portability_servers: servers,
        tee_pool,
        data_liquidity_pool: dlp,
        reward_token: token,
        batch_funder,
        implementations,
        app_address: app.address(),
        grantee_id: 1,
        tee_address: tee.address(),
        tee_public_key,
        tee_url: cfg.tee_url.clone(),
        tee_fee: cfg.tee_fee,
        dlp_id: cfg.dlp_id,
        proof_instruction: cfg.proof_instruction.clone(),
        file_reward_factor: cfg.file_reward_factor,
        schema_id: 1,
    };
    for (name, addr) in deployment
        .contracts()
        .into_iter()
        .chain(deployment.implementations.clone())
    {
        let code = provider.get_code_at(addr).await.map_err(rpc_err(rpc_url))?;
        if code.is_empty() {
            return Err(ChainError::Deploy {
                step: format!("deploy {name}"),
                reason: format!("no code at {addr}"),
            });
        }
    }
    let grantee_id = DataPortabilityGrantees::new(grantees, &provider)
        .granteeAddressToId(app.address())
        .call()
        .await
        .map_err(|e| ChainError::Deploy {
            step: "register the app as grantee".into(),
            reason: e.to_string(),
        })?;
    if grantee_id != U256::from(1) {
        return Err(ChainError::Deploy {
            step: "register the app as grantee".into(),
            reason: format!(
                "grantee id is {grantee_id}, expected 1 (was this chain deployed to before?)"
            ),
        });
    }
    Ok(deployment)
}

/// Puts code and storage in place (anvil's `anvil_setCode` / `anvil_setStorageAt`).
async fn place<P: Provider>(provider: &P, placements: &[Placement]) -> Result<(), ChainError> {
    for p in placements {
        let fail = |e: alloy::transports::TransportError| ChainError::Deploy {
            step: format!("place {} at {}", p.name, p.address),
            reason: e.to_string(),
        };
        let existing = provider.get_code_at(p.address).await.map_err(fail)?;
        if !existing.is_empty() {
            return Err(ChainError::Deploy {
                step: format!("place {} at {}", p.name, p.address),
                reason: "the address already holds code (was this chain deployed to before?)"
                    .into(),
            });
        }
        provider
            .raw_request::<_, serde_json::Value>("anvil_setCode".into(), (p.address, &p.code))
            .await
            .map_err(fail)?;
        for (slot, value) in &p.storage {
            provider
                .raw_request::<_, serde_json::Value>(
                    "anvil_setStorageAt".into(),
                    (p.address, slot, value),
                )
                .await
                .map_err(fail)?;
        }
    }
    Ok(())
}

/// How long a deployment transaction may take to be mined.
const RECEIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The receipt of `hash`, asked for every 50 ms until `limit`. Not alloy's
/// `get_receipt`, which learns of mined transactions from the blocks its
/// heartbeat sees after it starts: on a machine loaded by the whole test
/// suite a pipelined deployment step waited the full 120 s for a receipt
/// (`twin/tests/relayer.rs`, once). A deployment is a few dozen transactions
/// once per twin, so asking directly costs nothing and cannot miss one.
async fn mined<P: Provider>(
    provider: &P,
    hash: alloy::primitives::B256,
    limit: std::time::Duration,
) -> Result<alloy::rpc::types::TransactionReceipt, String> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match provider.get_transaction_receipt(hash).await {
            Ok(Some(receipt)) => return Ok(receipt),
            Ok(None) => {}
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(format!("receipt of {hash}: {e}"));
            }
            Err(_) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("transaction {hash} was not mined within {limit:?}"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Places the fixed-address code, sends every step pipelined, then checks every receipt.
/// Returns the first receipt's block.
async fn send_all<P: Provider>(provider: &P, rpc_url: &str, plan: Plan) -> Result<u64, ChainError> {
    place(provider, &plan.placements).await?;
    let base_fee = provider.get_gas_price().await.map_err(rpc_err(rpc_url))?;
    let max_fee = (base_fee * 3).max(2_000_000_000);
    let mut pending = Vec::with_capacity(plan.steps.len());
    for (name, tx) in plan.steps {
        let tx = tx
            .max_fee_per_gas(max_fee)
            .max_priority_fee_per_gas(1_000_000);
        let sent = provider
            .send_transaction(tx.clone())
            .await
            .map_err(|e| ChainError::Deploy {
                step: name.clone(),
                reason: revert_reason(&e).unwrap_or_else(|| e.to_string()),
            })?;
        pending.push((name, tx, sent));
    }
    let mut first_block = None;
    for (name, tx, sent) in pending {
        let receipt = mined(provider, *sent.tx_hash(), RECEIPT_TIMEOUT)
            .await
            .map_err(|reason| ChainError::Deploy {
                step: name.clone(),
                reason,
            })?;
        let block = receipt.block_number.unwrap_or_default();
        first_block.get_or_insert(block);
        if !receipt.status() {
            // Replay the call on the block before to name the revert.
            let reason = match provider
                .call(tx.clone())
                .block(block.saturating_sub(1).into())
                .await
            {
                Err(e) => revert_reason(&e).unwrap_or_else(|| e.to_string()),
                Ok(_) => format!("reverted (gas used {} of {:?})", receipt.gas_used, tx.gas),
            };
            return Err(ChainError::Deploy { step: name, reason });
        }
    }
    Ok(first_block.unwrap_or_default())
}

fn revert_reason(e: &alloy::transports::TransportError) -> Option<String> {
    e.as_error_resp()
        .and_then(|r| r.as_revert_data())
        .map(|d| describe_revert(&d))
}

/// Changes the active TEE's URL (when the TEE service's port is known only after deploying).
pub async fn set_tee_url(
    rpc_url: &str,
    mnemonic: &str,
    deployment: &Deployment,
    tee_url: &str,
) -> Result<(), ChainError> {
    let keys = HdAccount::new(mnemonic).map_err(|_| ChainError::MalformedMnemonic)?;
    let deployer = keys
        .signer(DEPLOYER_INDEX)
        .map_err(|e| ChainError::Config(e.to_string()))?;
    let url = rpc_url
        .parse()
        .map_err(|e| ChainError::Config(format!("RPC URL {rpc_url:?}: {e}")))?;
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(deployer))
        .connect_http(url);
    let pool = TeePoolPhala::new(deployment.tee_pool, &provider);
    let step = || "set the TEE URL".to_owned();
    let sent = pool
        .updateTee(
            deployment.tee_address,
            tee_url.to_owned(),
            deployment.tee_public_key.clone(),
        )
        .send()
        .await
        .map_err(|e| ChainError::Deploy {
            step: step(),
            reason: protocol::contracts::revert_data(&e)
                .map_or_else(|| e.to_string(), |d| describe_revert(&d)),
        })?;
    let receipt = mined(&provider, *sent.tx_hash(), RECEIPT_TIMEOUT)
        .await
        .map_err(|reason| ChainError::Deploy {
            step: step(),
            reason,
        })?;
    if !receipt.status() {
        return Err(ChainError::Deploy {
            step: step(),
            reason: "reverted".into(),
        });
    }
    Ok(())
}

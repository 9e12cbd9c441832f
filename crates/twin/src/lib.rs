//! A local twin of the Vana network, on loopback.
//!
//! A real EVM node (anvil) with the Vana contracts deployed, and one small axum
//! app per off-chain service, each speaking the real network's wire protocol:
//! storage (Pinata/IPFS), relayer, indexer (subgraph), personal server,
//! inference backend (Replicate-style) and TEE. [`Twin::start`] starts them all.

pub mod chain;
pub mod config;
pub mod faults;
pub mod fetch;
pub mod indexer;
pub mod inference;
pub mod personal_server;
pub mod relayer;
pub mod service;
pub mod storage;
pub mod tee;
pub mod tools;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use protocol::manifest::{Manifest, ServiceEndpoint};

use crate::config::{ChainConfig, ConfigError};
use crate::service::{ServiceError, ServiceHandle};
use crate::tools::{FoundAnvil, InstallPolicy, ToolsError};

pub use crate::config::TwinConfig;

/// Why the twin could not start.
#[derive(Debug, thiserror::Error)]
pub enum TwinError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tools(#[from] ToolsError),
    #[error(
        "chain.port: {addr} is already in use (stop what listens there, or choose another port; 0 picks a free one)"
    )]
    PortInUse { addr: SocketAddr },
    #[error("chain: {0}")]
    Chain(#[from] chain::ChainError),
    #[error("chain.host/chain.port: cannot listen on {addr}: {source}")]
    ChainListen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// A running twin: the anvil process, the deployed contracts and every
/// service. [`Twin::stop`] stops the services in reverse start order, then
/// anvil; dropping a `Twin` without stopping it still kills anvil.
pub struct Twin {
    manifest: Manifest,
    services: Vec<ServiceHandle>,
    anvil_path: FoundAnvil,
    chain: Option<chain_glue::RunningChain>,
    /// The live faults, with a `[faults]` section.
    faults: Option<faults::Faults>,
}

impl std::fmt::Debug for Twin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Twin")
            .field("rpc_url", &self.manifest.rpc_url)
            .field("anvil", &self.anvil_path.path)
            .field("services", &self.services.len())
            .finish()
    }
}

impl Twin {
    /// Validates `config`, finds anvil (see [`tools`]; may run `npm ci`
    /// unless `VANA_LOAD_NO_INSTALL` is set), starts and deploys the chain,
    /// then starts every enabled service that exists.
    pub async fn start(config: TwinConfig) -> Result<Twin, TwinError> {
        config.validate()?;
        let anvil_path =
            tools::ensure_anvil(config.chain.anvil.clone(), InstallPolicy::from_env())?;
        check_port_free(&config.chain)?;
        let started_at = chrono::Utc::now();
        let chain = chain_glue::start(&config.chain, &anvil_path).await?;
        let mut twin = Twin {
            manifest: Manifest {
                rpc_url: chain.rpc_url.clone(),
                chain_id: config.chain.chain_id,
                deployer_block: chain.deployer_block,
                contracts: chain.contracts.clone(),
                services: BTreeMap::new(),
                sdk: None,
                started_at,
            },
            services: Vec::new(),
            anvil_path,
            chain: Some(chain),
            faults: config.faults.clone().map(faults::Faults::new),
        };
        // On an error below, dropping `twin` stops what has started.
        twin.start_fault_injection(&config).await?;
        twin.start_services(&config).await?;
        twin.manifest.sdk = Some(sdk_endpoints(&twin.manifest, &config));
        if let Some(f) = &twin.faults {
            f.arm();
        }
        Ok(twin)
    }

    /// The live faults (with a `[faults]` section): read or change them
    /// here, or over the admin endpoint.
    pub fn faults(&self) -> Option<&faults::Faults> {
        self.faults.as_ref()
    }

    /// With faults: the admin endpoint, and the chain's fault proxy, which
    /// becomes the RPC URL every service and client uses.
    async fn start_fault_injection(&mut self, config: &TwinConfig) -> Result<(), TwinError> {
        let (Some(f), Some(section)) = (self.faults.clone(), &config.faults) else {
            return Ok(());
        };
        let admin = faults::admin::spawn(section.admin_port, f.clone()).await?;
        self.add_service(admin);
        let proxy = faults::chain::spawn(
            std::net::SocketAddr::new(config.chain.host, 0),
            self.manifest.rpc_url.clone(),
            f,
        )
        .await?;
        self.manifest.rpc_url = proxy.url();
        self.add_service(proxy);
        Ok(())
    }

    /// What this twin publishes: RPC URL, chain id, contracts, services.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The deployment: every address and the wiring facts (app, grantee id,
    /// TEE key and fee, DLP id, proof instruction, …).
    pub fn deployment(&self) -> &chain::Deployment {
        &self
            .chain
            .as_ref()
            .expect("the chain runs until stop() consumes the twin")
            .deployment
    }

    /// The anvil process id.
    pub fn anvil_pid(&self) -> Option<u32> {
        self.chain.as_ref().and_then(|c| c.pid())
    }

    /// The twin's own processes, by name, for the load generator to watch
    /// (`vana_load_engine::sysmon::SysMon::new`): `anvil`, the chain, and
    /// `anvil-fork-source`, the idle anvil the chain forks from when it runs
    /// without state roots (`chain.state_root = false`). The services run
    /// inside this process and are counted with it.
    pub fn processes(&self) -> Vec<(String, u32)> {
        self.chain
            .as_ref()
            .map(chain_glue::RunningChain::processes)
            .unwrap_or_default()
    }

    /// The anvil binary this twin runs, and where it was found.
    pub fn anvil(&self) -> &FoundAnvil {
        &self.anvil_path
    }

    /// Stops the services in reverse start order, then anvil, and waits for each.
    pub async fn stop(mut self) {
        while let Some(service) = self.services.pop() {
            service.stop().await;
        }
        if let Some(chain) = self.chain.take() {
            chain.stop().await;
        }
    }

    async fn start_services(&mut self, config: &TwinConfig) -> Result<(), TwinError> {
        // Dependency order: what a later service calls is started first
        // (storage and inference before the personal server and the TEE).
        // A new service adds its `spawn` here and its section to `TwinConfig`.
        if config.storage.enabled {
            let handle =
                faults::scope(self.faults.clone(), storage::spawn(config.storage.clone())).await?;
            self.add_service(handle);
        }
        if config.inference.enabled {
            let handle = faults::scope(
                self.faults.clone(),
                inference::spawn(config.inference.clone()),
            )
            .await?;
            self.add_service(handle);
        }
        if config.relayer.enabled {
            let storage =
                self.manifest
                    .services
                    .get(storage::NAME)
                    .map(|s| relayer::GrantStorage {
                        api_url: s.url.clone(),
                        jwt: config.storage.jwt.as_ref().map(|j| j.expose().to_owned()),
                    });
            let upstreams = relayer::Upstreams {
                rpc_url: self.manifest.rpc_url.clone(),
                contracts: self.manifest.contracts.clone(),
                storage,
            };
            let handle = faults::scope(
                self.faults.clone(),
                relayer::spawn(
                    config.relayer.clone(),
                    config.chain.mnemonic.expose(),
                    upstreams,
                ),
            )
            .await?;
            self.add_service(handle);
        }
        if config.indexer.enabled {
            let contracts = indexer::IndexedContracts::from_manifest(
                &self.manifest.contracts,
                self.manifest.deployer_block,
            )
            .map_err(|message| ServiceError::Setup {
                service: "indexer",
                message,
            })?;
            let handle = faults::scope(
                self.faults.clone(),
                indexer::spawn(config.indexer.clone(), &self.manifest.rpc_url, &contracts),
            )
            .await?;
            self.add_service(handle);
        }
        self.start_personal_server_and_tee(config).await
    }

    /// The personal server and the TEE read files through the twin's storage
    /// gateway; the personal server dispatches to the inference backend.
    async fn start_personal_server_and_tee(
        &mut self,
        config: &TwinConfig,
    ) -> Result<(), TwinError> {
        let service_url = |name: &str| self.manifest.services.get(name).map(|s| s.url.clone());
        let gateway = service_url(storage::NAME).unwrap_or_default();
        let deployment = self
            .chain
            .as_ref()
            .map(|c| c.deployment.clone())
            .ok_or_else(|| {
                TwinError::Chain(chain::ChainError::Config("the chain is not running".into()))
            })?;
        if config.personal_server.enabled {
            let inference_url =
                service_url(inference::NAME).ok_or_else(|| ServiceError::Setup {
                    service: "personal_server",
                    message: "needs the inference backend: enable [inference]".into(),
                })?;
            let upstreams = personal_server::Upstreams {
                rpc_url: self.manifest.rpc_url.clone(),
                permissions: deployment.data_portability_permissions,
                grantees: deployment.data_portability_grantees,
                data_registry: deployment.data_registry,
                inference_url,
                ipfs_gateway: gateway.clone(),
            };
            let mut ps_config = config.personal_server.clone();
            if let (true, Some(token)) = (
                ps_config.replicate_token.is_empty(),
                &config.inference.token,
            ) {
                ps_config.replicate_token = token.expose().to_owned();
            }
            let handle = faults::scope(
                self.faults.clone(),
                personal_server::spawn(ps_config, upstreams),
            )
            .await?;
            self.add_service(handle);
        }
        if config.tee.enabled {
            let tee_key = protocol::keys::derive_signer(
                config.chain.mnemonic.expose(),
                protocol::keys::FIRST_TEE_INDEX,
            )
            .map_err(|e| TwinError::Chain(chain::ChainError::Config(format!("TEE key: {e}"))))?;
            let upstreams = tee::Upstreams {
                rpc_url: self.manifest.rpc_url.clone(),
                tee_pool: deployment.tee_pool,
                data_registry: deployment.data_registry,
                dlp: deployment.data_liquidity_pool,
                ipfs_gateway: gateway,
            };
            let handle = faults::scope(
                self.faults.clone(),
                tee::spawn(config.tee.clone(), upstreams, tee_key),
            )
            .await?;
            chain::set_tee_url(
                &self.manifest.rpc_url,
                config.chain.mnemonic.expose(),
                &deployment,
                &handle.url(),
            )
            .await?;
            self.add_service(handle);
        }
        Ok(())
    }

    /// Records a started service in the manifest and in the stop order.
    fn add_service(&mut self, handle: ServiceHandle) {
        self.manifest.services.insert(
            handle.name.to_string(),
            ServiceEndpoint {
                url: handle.url(),
                metrics_url: handle.metrics_url(),
            },
        );
        self.services.push(handle);
    }
}

impl Drop for Twin {
    fn drop(&mut self) {
        // Services cancel themselves when their handles drop; anvil is killed
        // by `RunningChain`'s own drop.
        self.services.clear();
        self.chain.take();
    }
}

/// The manifest's endpoints in the SDK's form, with the twin's public test
/// credentials (the Pinata JWT and Replicate token the twin checks).
fn sdk_endpoints(manifest: &Manifest, config: &TwinConfig) -> protocol::manifest::SdkEndpoints {
    use protocol::api::{
        personal_server::API_PREFIX, relayer::RELAY_PATH, subgraph::SUBGRAPH_PATH,
    };
    let url = |name: &str, path: &str| {
        manifest
            .services
            .get(name)
            .map(|s| format!("{}{path}", s.url))
    };
    protocol::manifest::SdkEndpoints {
        rpc_url: manifest.rpc_url.clone(),
        chain_id: manifest.chain_id,
        relayer_url: url("relayer", RELAY_PATH),
        subgraph_url: url("indexer", SUBGRAPH_PATH),
        personal_server_url: url("personal_server", API_PREFIX),
        ipfs_gateway: url(storage::NAME, protocol::api::storage::GATEWAY_PREFIX),
        pinata_api_url: url(storage::NAME, ""),
        pinata_jwt: config
            .storage
            .jwt
            .as_ref()
            .filter(|_| config.storage.enabled)
            .map(|j| j.expose().to_owned()),
        replicate_token: config
            .inference
            .token
            .as_ref()
            .filter(|_| config.inference.enabled)
            .map(|t| t.expose().to_owned()),
    }
}

/// A fixed chain port that is taken gets a clear error before anvil starts.
fn check_port_free(chain: &ChainConfig) -> Result<(), TwinError> {
    if chain.port == 0 {
        return Ok(());
    }
    let addr = SocketAddr::new(chain.host, chain.port);
    match std::net::TcpListener::bind(addr) {
        Ok(listener) => {
            drop(listener);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(TwinError::PortInUse { addr }),
        Err(e) => Err(TwinError::ChainListen { addr, source: e }),
    }
}

/// The only place that calls `twin::chain`: anvil with the twin's chain
/// settings, then the deployment.
mod chain_glue {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use alloy::primitives::Address;

    use crate::TwinError;
    use crate::chain::{AnvilConfig, AnvilProcess, DeployConfig, Deployment, deploy};
    use crate::config::ChainConfig;
    use crate::tools::FoundAnvil;

    /// A running, deployed chain. Dropping it kills anvil (fields drop in
    /// order: the chain's anvil before the one it forks from).
    pub struct RunningChain {
        pub rpc_url: String,
        pub deployer_block: u64,
        pub contracts: BTreeMap<String, Address>,
        pub deployment: Deployment,
        anvil: AnvilProcess,
        /// The idle anvil the chain forks from, with `state_root = false`.
        upstream: Option<AnvilProcess>,
    }

    impl RunningChain {
        /// SIGTERM, then SIGKILL after a grace period; waits for the exit.
        pub async fn stop(self) {
            self.anvil.stop().await;
            if let Some(upstream) = self.upstream {
                upstream.stop().await;
            }
        }

        pub fn pid(&self) -> Option<u32> {
            self.anvil.pid()
        }

        /// `anvil` and, when the chain forks from one, `anvil-fork-source`.
        pub fn processes(&self) -> Vec<(String, u32)> {
            let upstream = self.upstream.as_ref().and_then(AnvilProcess::pid);
            [("anvil", self.anvil.pid()), ("anvil-fork-source", upstream)]
                .into_iter()
                .filter_map(|(name, pid)| Some((name.to_owned(), pid?)))
                .collect()
        }
    }

    /// Anvil's memory bounds from the config (`prune_history`, `keep_blocks`).
    fn anvil_memory_args(config: &ChainConfig) -> Vec<String> {
        let mut args = Vec::new();
        if config.prune_history {
            args.push("--prune-history".to_owned());
        }
        if let Some(n) = config.keep_blocks {
            args.extend(["--transaction-block-keeper".to_owned(), n.to_string()]);
        }
        args
    }

    /// Spawns anvil and deploys the contracts; on a deployment error anvil
    /// is killed (dropped) before the error is returned.
    pub async fn start(
        config: &ChainConfig,
        anvil: &FoundAnvil,
    ) -> Result<RunningChain, TwinError> {
        // What both anvils share: binary, address, chain id, keys.
        let base = AnvilConfig {
            anvil_path: anvil.path.clone(),
            host: config.host,
            chain_id: config.chain_id,
            mnemonic: config.mnemonic.expose().to_string(),
            ..AnvilConfig::default()
        };
        let mut extra_args = anvil_memory_args(config);
        let upstream = if config.state_root {
            None
        } else {
            // An empty chain to fork from: blocks of a forked anvil carry no
            // state root, so sealing one costs what its transactions cost.
            let upstream = AnvilProcess::spawn(&AnvilConfig {
                port: 0,
                accounts: 1,
                ..base.clone()
            })
            .await?;
            extra_args.extend(["--fork-url".to_owned(), upstream.rpc_url()]);
            if config.addresses == crate::chain::AddressLayout::Moksha {
                tracing::warn!(
                    "chain.state_root = false with the contracts at Moksha's addresses: every \
                     storage slot they have not written yet is read from the fork source \
                     (slow under load); set chain.addresses = \"plain\" for load runs"
                );
            }
            Some(upstream)
        };
        let anvil_config = AnvilConfig {
            port: config.port,
            block_time: config.block_time.map(Duration::from_secs_f64),
            gas_limit: Some(config.block_gas_limit),
            extra_args,
            ..base
        };
        let process = AnvilProcess::spawn(&anvil_config).await?;
        let rpc_url = process.rpc_url();
        let deploy_config = DeployConfig {
            layout: config.addresses,
            reward_pool: alloy::primitives::U256::from(config.dlp_reward_budget)
                * alloy::primitives::U256::from(10u64).pow(alloy::primitives::U256::from(18)),
            ..DeployConfig::default()
        };
        let deployment = deploy(&rpc_url, config.mnemonic.expose(), &deploy_config).await?;
        Ok(RunningChain {
            rpc_url,
            deployer_block: deployment.deployer_block,
            contracts: deployment.contracts(),
            deployment,
            anvil: process,
            upstream,
        })
    }
}

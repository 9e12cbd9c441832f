//! The events the indexer follows, decoded from raw logs into one enum.
//!
//! The signatures are those of the deployed ABIs (`vana-wire.md` §1,
//! `flow-signatures.md`); the subgraph indexes exactly these and nothing else
//! (§5: not `PermissionGranted`, not TeePool or DLP events).

use alloy::primitives::{Address, B256, U256};
use alloy::rpc::types::Log;
use alloy::sol_types::SolEvent;
use protocol::contracts::DataPortabilityGrantees::GranteeRegistered;
use protocol::contracts::DataPortabilityPermissions::{PermissionAdded, PermissionRevoked};
use protocol::contracts::DataPortabilityServers::{
    ServerRegistered, ServerTrusted, ServerUntrusted, ServerUpdated,
};
use protocol::contracts::DataRegistry::{FileAdded, FileAddedV2, ProofAdded};

/// The contracts whose events are indexed, and where to start.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexedContracts {
    pub data_registry: Address,
    pub permissions: Address,
    pub grantees: Address,
    pub servers: Address,
    /// The first block to index (the deployment block).
    pub start_block: u64,
}

impl IndexedContracts {
    /// The manifest's contract names (as in `contracts/out/<Name>.json`).
    pub const MANIFEST_NAMES: [&'static str; 4] = [
        "DataRegistry",
        "DataPortabilityPermissions",
        "DataPortabilityGrantees",
        "DataPortabilityServers",
    ];

    /// Picks the indexed contracts out of a manifest's `contracts` map; the
    /// error names the missing contract.
    pub fn from_manifest(
        contracts: &std::collections::BTreeMap<String, Address>,
        start_block: u64,
    ) -> Result<Self, String> {
        let get = |name: &str| {
            contracts.get(name).copied().ok_or_else(|| {
                format!("the deployment has no {name} address (needed by the indexer)")
            })
        };
        let [registry, permissions, grantees, servers] = Self::MANIFEST_NAMES;
        Ok(IndexedContracts {
            data_registry: get(registry)?,
            permissions: get(permissions)?,
            grantees: get(grantees)?,
            servers: get(servers)?,
            start_block,
        })
    }

    /// Every address, for the one `eth_getLogs` filter.
    pub fn addresses(&self) -> Vec<Address> {
        vec![
            self.data_registry,
            self.permissions,
            self.grantees,
            self.servers,
        ]
    }
}

/// Every topic0 indexed, for the one `eth_getLogs` filter.
pub fn topics() -> Vec<B256> {
    vec![
        FileAdded::SIGNATURE_HASH,
        FileAddedV2::SIGNATURE_HASH,
        ProofAdded::SIGNATURE_HASH,
        PermissionAdded::SIGNATURE_HASH,
        PermissionRevoked::SIGNATURE_HASH,
        GranteeRegistered::SIGNATURE_HASH,
        ServerRegistered::SIGNATURE_HASH,
        ServerUpdated::SIGNATURE_HASH,
        ServerTrusted::SIGNATURE_HASH,
        ServerUntrusted::SIGNATURE_HASH,
    ]
}

/// Where and when an event happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCtx {
    pub block: u64,
    pub block_hash: B256,
    pub timestamp: u64,
    pub tx_hash: B256,
    pub log_index: u64,
}

/// The on-chain state of a permission, read with `permissions(id)` at the
/// event's block, as the subgraph's handler does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionState {
    pub nonce: U256,
    pub start_block: U256,
    pub end_block: U256,
}

/// A decoded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    FileAdded {
        file_id: U256,
        owner: Address,
        url: String,
    },
    FileAddedV2 {
        file_id: U256,
        owner: Address,
        url: String,
        schema_id: U256,
    },
    ProofAdded {
        file_id: U256,
        owner: Address,
        proof_index: U256,
        dlp_id: U256,
    },
    PermissionAdded {
        permission_id: U256,
        user: Address,
        grantee_id: U256,
        grant: String,
        file_ids: Vec<U256>,
        /// Filled in by the follower before the event is stored.
        state: Option<PermissionState>,
    },
    PermissionRevoked {
        permission_id: U256,
    },
    GranteeRegistered {
        grantee_id: U256,
        owner: Address,
        grantee_address: Address,
        public_key: String,
    },
    ServerRegistered {
        server_id: U256,
        owner: Address,
        server_address: Address,
        public_key: String,
        url: String,
    },
    ServerUpdated {
        server_id: U256,
        url: String,
    },
    ServerTrusted {
        user: Address,
        server_id: U256,
    },
    ServerUntrusted {
        user: Address,
        server_id: U256,
    },
}

/// A log that carries one of the indexed topics but cannot be decoded.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode log {log_index} of block {block} from {address}: {message}")]
pub struct DecodeError {
    pub block: u64,
    pub log_index: u64,
    pub address: Address,
    pub message: String,
}

/// Decodes a log from one of `contracts`; `Ok(None)` for a log that is not
/// indexed (another address, or a topic this contract does not index).
pub fn decode(contracts: &IndexedContracts, log: &Log) -> Result<Option<Event>, DecodeError> {
    let Some(topic0) = log.topic0().copied() else {
        return Ok(None);
    };
    let address = log.address();
    let data = log.data();
    let err = |e: alloy::sol_types::Error| DecodeError {
        block: log.block_number.unwrap_or_default(),
        log_index: log.log_index.unwrap_or_default(),
        address,
        message: e.to_string(),
    };
    let ev = if address == contracts.data_registry {
        match topic0 {
            FileAdded::SIGNATURE_HASH => {
                let e = FileAdded::decode_log_data(data).map_err(err)?;
                Event::FileAdded {
                    file_id: e.fileId,
                    owner: e.ownerAddress,
                    url: e.url,
                }
            }
            FileAddedV2::SIGNATURE_HASH => {
                let e = FileAddedV2::decode_log_data(data).map_err(err)?;
                Event::FileAddedV2 {
                    file_id: e.fileId,
                    owner: e.ownerAddress,
                    url: e.url,
                    schema_id: e.schemaId,
                }
            }
            ProofAdded::SIGNATURE_HASH => {
                let e = ProofAdded::decode_log_data(data).map_err(err)?;
                Event::ProofAdded {
                    file_id: e.fileId,
                    owner: e.ownerAddress,
                    proof_index: e.proofIndex,
                    dlp_id: e.dlpId,
                }
            }
            _ => return Ok(None),
        }
    } else if address == contracts.permissions {
        match topic0 {
            PermissionAdded::SIGNATURE_HASH => {
                let e = PermissionAdded::decode_log_data(data).map_err(err)?;
                Event::PermissionAdded {
                    permission_id: e.permissionId,
                    user: e.user,
                    grantee_id: e.granteeId,
                    grant: e.grant,
                    file_ids: e.fileIds,
                    state: None,
                }
            }
            PermissionRevoked::SIGNATURE_HASH => {
                let e = PermissionRevoked::decode_log_data(data).map_err(err)?;
                Event::PermissionRevoked {
                    permission_id: e.permissionId,
                }
            }
            _ => return Ok(None),
        }
    } else if address == contracts.grantees {
        match topic0 {
            GranteeRegistered::SIGNATURE_HASH => {
                let e = GranteeRegistered::decode_log_data(data).map_err(err)?;
                Event::GranteeRegistered {
                    grantee_id: e.granteeId,
                    owner: e.owner,
                    grantee_address: e.granteeAddress,
                    public_key: e.publicKey,
                }
            }
            _ => return Ok(None),
        }
    } else if address == contracts.servers {
        match topic0 {
            ServerRegistered::SIGNATURE_HASH => {
                let e = ServerRegistered::decode_log_data(data).map_err(err)?;
                Event::ServerRegistered {
                    server_id: e.serverId,
                    owner: e.owner,
                    server_address: e.serverAddress,
                    public_key: e.publicKey,
                    url: e.url,
                }
            }
            ServerUpdated::SIGNATURE_HASH => {
                let e = ServerUpdated::decode_log_data(data).map_err(err)?;
                Event::ServerUpdated {
                    server_id: e.serverId,
                    url: e.url,
                }
            }
            ServerTrusted::SIGNATURE_HASH => {
                let e = ServerTrusted::decode_log_data(data).map_err(err)?;
                Event::ServerTrusted {
                    user: e.user,
                    server_id: e.serverId,
                }
            }
            ServerUntrusted::SIGNATURE_HASH => {
                let e = ServerUntrusted::decode_log_data(data).map_err(err)?;
                Event::ServerUntrusted {
                    user: e.user,
                    server_id: e.serverId,
                }
            }
            _ => return Ok(None),
        }
    } else {
        return Ok(None);
    };
    Ok(Some(ev))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The topic0 values of flow-signatures.md.
    #[test]
    fn topics_match_the_deployed_abis() {
        let hex = |b: B256| format!("{b:#x}");
        assert_eq!(
            hex(FileAdded::SIGNATURE_HASH),
            "0x2980b13036c0d9df6b71ea9e9c09536efd24d7dd1868e29aa730f0c3fbd1a0dc"
        );
        assert_eq!(
            hex(FileAddedV2::SIGNATURE_HASH),
            "0x4700587a90f43e584ef58af08d40dd9622ca3ee15baa07dc9d58ecf43b598324"
        );
        assert_eq!(
            hex(ProofAdded::SIGNATURE_HASH),
            "0xef448dca1e95226d5af380d5817c753c86946ef53cffb238e5fbe889230565c7"
        );
        assert_eq!(
            hex(PermissionAdded::SIGNATURE_HASH),
            "0x2cff87230608e71ec991ee7212c0cc861c08b275ecc30716cdc7681cc0fdc288"
        );
        assert_eq!(
            hex(GranteeRegistered::SIGNATURE_HASH),
            "0x71e52c6f4049fe22c5428eeaa0409df0cd7c897f716a9a0fa8b95851f8d608a2"
        );
    }
}

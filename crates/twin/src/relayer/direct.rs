//! Direct operations, as the SDK's `handleRelayerOperation` performs them:
//!
//! - `submitFileAddition` → `DataRegistry.addFileWithPermissions(url, user, [])`;
//! - `submitFileAdditionWithPermissions` → `addFileWithPermissions(url, user, permissions)`;
//! - `submitFileAdditionComplete` → `addFileWithPermissionsAndSchema(url,
//!   owner ?? user, permissions, schemaId)`;
//!
//! each answered `{type:"direct", result:{fileId, transactionHash}}` once
//! mined, with the id of the receipt's `FileAdded` event; and
//! - `storeGrantFile`: the grant JSON is uploaded to the twin's storage
//!   service through its Pinata API (as the handler's `sdk.data.upload` does)
//!   and answered `{type:"direct", result:{url:"ipfs://<cid>"}}`.

use std::sync::Arc;

use alloy::primitives::{Address, U256};
use alloy::sol_types::SolCall;
use protocol::api::relayer::{DirectResult, FileAdditionParams, RelayResponse};
use protocol::api::storage::{PIN_FILE_PATH, PinFileResponse, ipfs_url};
use protocol::contracts::{DataRegistry, Permission};
use reqwest::StatusCode;

use super::Relayer;
use super::http::Failure;
use super::ops::OpStatus;

/// The storage service the relayer stores grant files in.
#[derive(Clone)]
pub struct GrantStorage {
    /// Base URL of the Pinata API (`…/pinning/pinFileToIPFS` below it).
    pub api_url: String,
    /// The bearer JWT, if the service checks one.
    pub jwt: Option<String>,
}

impl std::fmt::Debug for GrantStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantStorage")
            .field("api_url", &self.api_url)
            .field("jwt", &self.jwt.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Which file addition a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAddition {
    /// `submitFileAddition`: no permissions.
    Plain,
    /// `submitFileAdditionWithPermissions`.
    WithPermissions,
    /// `submitFileAdditionComplete`: permissions, schema and owner.
    Complete,
}

fn bad_request(message: impl Into<String>) -> Failure {
    Failure::new(StatusCode::BAD_REQUEST, message)
}

impl Relayer {
    /// Adds a file from a relayer key and answers with its id once mined.
    pub(super) async fn add_file(
        self: &Arc<Self>,
        kind: FileAddition,
        p: FileAdditionParams,
    ) -> Result<RelayResponse, Failure> {
        if p.url.trim().is_empty() {
            self.metrics.error("bad_request");
            return Err(bad_request("params.url is empty"));
        }
        let permissions = |p: FileAdditionParams| -> Vec<Permission> {
            p.permissions
                .into_iter()
                .map(|x| Permission {
                    account: x.account,
                    key: x.key,
                })
                .collect()
        };
        let (function, input) = match kind {
            FileAddition::Plain | FileAddition::WithPermissions => {
                let user = p.user_address;
                let url = p.url.clone();
                let perms = if kind == FileAddition::Plain {
                    Vec::new()
                } else {
                    permissions(p)
                };
                let call = DataRegistry::addFileWithPermissionsCall {
                    url,
                    ownerAddress: user,
                    permissions: perms,
                };
                ("addFileWithPermissions", call.abi_encode())
            }
            FileAddition::Complete => {
                let owner = p.owner_address.unwrap_or(p.user_address);
                let (url, schema) = (p.url.clone(), p.schema_id);
                let call = DataRegistry::addFileWithPermissionsAndSchemaCall {
                    url,
                    ownerAddress: owner,
                    permissions: permissions(p),
                    schemaId: U256::from(schema),
                };
                ("addFileWithPermissionsAndSchema", call.abi_encode())
            }
        };
        let (op, _) = self
            .begin(self.data_registry, input.into(), function, false)
            .await?;
        match self.wait_terminal(&op).await {
            OpStatus::Confirmed(receipt) => match receipt.file_ids.first() {
                Some(id) => Ok(RelayResponse::Direct {
                    result: DirectResult::FileAdded {
                        file_id: *id,
                        transaction_hash: receipt.transaction_hash,
                    },
                }),
                None => Err(Failure::new(
                    StatusCode::BAD_GATEWAY,
                    format!(
                        "Failed to get fileId from transaction events: {} was mined without a FileAdded event",
                        receipt.transaction_hash
                    ),
                )),
            },
            OpStatus::Failed(e) => Err(Failure::of_operation(e)),
            _ => Ok(RelayResponse::Pending {
                operation_id: op.id.clone(),
            }),
        }
    }

    /// Stores a grant file through the storage service.
    pub(super) async fn store_grant(
        &self,
        grant: serde_json::Value,
    ) -> Result<RelayResponse, Failure> {
        if let Err(e) = check_grant(&grant) {
            self.metrics.error("bad_request");
            return Err(bad_request(e));
        }
        let Some(storage) = &self.storage else {
            self.metrics.error("unsupported");
            return Err(Failure::new(
                StatusCode::NOT_IMPLEMENTED,
                "storeGrantFile needs the twin's storage service: enable [storage]",
            ));
        };
        let bytes = serde_json::to_vec(&grant).unwrap_or_default();
        let filename = format!("grant-{}.json", chrono::Utc::now().timestamp_millis());
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(filename)
            .mime_str("application/json")
            .map_err(|e| Failure::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let url = format!("{}{PIN_FILE_PATH}", storage.api_url.trim_end_matches('/'));
        let mut req = self
            .http
            .post(&url)
            .multipart(reqwest::multipart::Form::new().part("file", part));
        if let Some(jwt) = &storage.jwt {
            req = req.bearer_auth(jwt);
        }
        let storage_error = |message: String| {
            self.metrics.error("storage");
            Failure::new(StatusCode::BAD_GATEWAY, message)
        };
        let resp = req
            .send()
            .await
            .map_err(|e| storage_error(format!("grant upload to {url} failed: {e}")))?;
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        if !status.is_success() {
            return Err(storage_error(format!(
                "grant upload to {url} answered {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        let pinned: PinFileResponse = serde_json::from_slice(&body).map_err(|e| {
            storage_error(format!("grant upload to {url} answered unreadably: {e}"))
        })?;
        Ok(RelayResponse::Direct {
            result: DirectResult::Stored {
                url: ipfs_url(&pinned.ipfs_hash),
            },
        })
    }
}

/// The fields a grant file must have (`grantee`, `operation`, `parameters`).
fn check_grant(grant: &serde_json::Value) -> Result<(), String> {
    let obj = grant
        .as_object()
        .ok_or("params must be a grant file object")?;
    let grantee = obj
        .get("grantee")
        .and_then(|g| g.as_str())
        .ok_or("params.grantee is missing")?;
    grantee
        .parse::<Address>()
        .map_err(|e| format!("params.grantee {grantee:?} is not an address: {e}"))?;
    obj.get("operation")
        .and_then(|o| o.as_str())
        .ok_or("params.operation is missing")?;
    if !obj.get("parameters").is_some_and(|p| p.is_object()) {
        return Err("params.parameters must be an object".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn grant_files_need_grantee_operation_and_parameters() {
        let ok = json!({"grantee": "0x00000000000000000000000000000000000000aa",
                        "operation": "llm_inference", "parameters": {}});
        check_grant(&ok).unwrap();
        let e = check_grant(&json!({"operation": "x", "parameters": {}})).unwrap_err();
        assert!(e.contains("grantee"), "{e}");
        let e = check_grant(&json!({"grantee": "nope", "operation": "x", "parameters": {}}))
            .unwrap_err();
        assert!(e.contains("not an address"), "{e}");
        let e = check_grant(
            &json!({"grantee": "0x00000000000000000000000000000000000000aa",
                                    "operation": "x", "parameters": 1}),
        )
        .unwrap_err();
        assert!(e.contains("parameters"), "{e}");
    }
}

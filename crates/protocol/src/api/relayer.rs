//! The SDK's "UnifiedRelayer" protocol (`vana-wire.md` §1.8): the JSON body of
//! `POST {relayer}/api/relay` and its response, as the published SDK
//! (`@opendatalabs/vana-sdk`) defines both ends: its controllers send the
//! requests and its `handleRelayerOperation` (`dist/server/relayerHandler.js`),
//! which an app's relay route runs, answers them.
//!
//! A request is one of these shapes, told apart by `type`:
//!
//! ```json
//! {"type":"signed","operation":"submitAddPermission","typedData":{…},"signature":"0x…","expectedUserAddress":"0x…"}
//! {"type":"direct","operation":"submitFileAddition","params":{"url":…,"userAddress":…}}
//! {"type":"direct","operation":"submitFileAdditionWithPermissions","params":{"url":…,"userAddress":…,"permissions":[…]}}
//! {"type":"direct","operation":"submitFileAdditionComplete","params":{"url":…,"userAddress":…,"permissions":[{"account":…,"key":…}],"schemaId":0}}
//! {"type":"direct","operation":"storeGrantFile","params":{"grantee":…,"operation":…,"parameters":{…}}}
//! {"type":"status_check","operationId":"…"}
//! ```
//!
//! The handler routes a signed request on `typedData.primaryType`
//! ([`PrimaryType`]), not on `operation`. The SDK's answers are `signed{hash}`
//! (once broadcast), `direct{result}` and `error{error}`; `status_check`,
//! `pending{operationId}`, `submitted{hash}` and `confirmed{hash, receipt?}`
//! are vana-load's extension, given only when asked for. Big integers in the
//! SDK's JSON travel as decimal strings; the receipt's numbers are written that
//! way and read from a decimal string, a `0x` hex string or a JSON number.

use alloy::primitives::{Address, B256, Bytes};
use serde::{Deserialize, Serialize};

/// Path of the relay endpoint on the relayer service.
pub const RELAY_PATH: &str = "/api/relay";

/// A request to `POST /api/relay`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RelayRequest {
    /// An EIP-712 signed user operation the relayer submits and pays for.
    #[serde(rename_all = "camelCase")]
    Signed {
        operation: SignedOperation,
        /// The EIP-712 typed data exactly as the user signed it
        /// (`{domain, types, primaryType, message}`; big integers as strings).
        typed_data: serde_json::Value,
        /// 65-byte signature, `0x` + 130 hex characters.
        signature: String,
        /// The address the signature must recover to (compared case-insensitively).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected_user_address: Option<String>,
    },
    /// A server-side operation that needs no user signature.
    Direct(DirectOperation),
    /// Polls an operation returned as `pending`.
    #[serde(rename_all = "camelCase")]
    StatusCheck { operation_id: String },
}

/// The `operation` of a signed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SignedOperation {
    SubmitAddPermission,
    SubmitPermissionRevoke,
    SubmitTrustServer,
    SubmitAddAndTrustServer,
    SubmitUntrustServer,
    SubmitAddServerFilesAndPermissions,
    SubmitRegisterGrantee,
}

impl SignedOperation {
    /// The wire name, e.g. `"submitAddPermission"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignedOperation::SubmitAddPermission => "submitAddPermission",
            SignedOperation::SubmitPermissionRevoke => "submitPermissionRevoke",
            SignedOperation::SubmitTrustServer => "submitTrustServer",
            SignedOperation::SubmitAddAndTrustServer => "submitAddAndTrustServer",
            SignedOperation::SubmitUntrustServer => "submitUntrustServer",
            SignedOperation::SubmitAddServerFilesAndPermissions => {
                "submitAddServerFilesAndPermissions"
            }
            SignedOperation::SubmitRegisterGrantee => "submitRegisterGrantee",
        }
    }
}

/// The EIP-712 `primaryType` of a signed request's typed data: what the
/// SDK's handler routes on, one per contract function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrimaryType {
    /// `DataPortabilityPermissions.addPermission`.
    Permission,
    /// `DataPortabilityPermissions.revokePermissionWithSignature`.
    RevokePermission,
    /// `DataPortabilityServers.trustServerWithSignature`.
    TrustServer,
    /// `DataPortabilityServers.addAndTrustServerWithSignature`.
    AddServer,
    /// `DataPortabilityServers.untrustServerWithSignature`.
    UntrustServer,
    /// `DataPortabilityPermissions.addServerFilesAndPermissions`.
    ServerFilesAndPermission,
}

/// A `primaryType` the SDK's handler does not route; the message is the
/// handler's own (`Unsupported operation type: X`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unsupported operation type: {0}")]
pub struct UnsupportedPrimaryType(pub String);

impl PrimaryType {
    /// Every routed type.
    pub const ALL: [PrimaryType; 6] = [
        PrimaryType::Permission,
        PrimaryType::RevokePermission,
        PrimaryType::TrustServer,
        PrimaryType::AddServer,
        PrimaryType::UntrustServer,
        PrimaryType::ServerFilesAndPermission,
    ];

    /// The EIP-712 type name.
    pub fn as_str(self) -> &'static str {
        match self {
            PrimaryType::Permission => "Permission",
            PrimaryType::RevokePermission => "RevokePermission",
            PrimaryType::TrustServer => "TrustServer",
            PrimaryType::AddServer => "AddServer",
            PrimaryType::UntrustServer => "UntrustServer",
            PrimaryType::ServerFilesAndPermission => "ServerFilesAndPermission",
        }
    }

    /// The `primaryType` of JSON typed data, or the refusal naming it.
    pub fn of_typed_data(typed_data: &serde_json::Value) -> Result<Self, UnsupportedPrimaryType> {
        let name = typed_data
            .get("primaryType")
            .and_then(|p| p.as_str())
            .unwrap_or("undefined");
        name.parse()
    }
}

impl std::str::FromStr for PrimaryType {
    type Err = UnsupportedPrimaryType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PrimaryType::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnsupportedPrimaryType(s.to_owned()))
    }
}

/// The `operation` + `params` of a direct request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "operation", content = "params", rename_all = "camelCase")]
pub enum DirectOperation {
    /// `DataRegistry.addFileWithPermissions` with no permissions; answered
    /// with [`DirectResult::FileAdded`].
    SubmitFileAddition(FileAdditionParams),
    /// `DataRegistry.addFileWithPermissions`; answered with
    /// [`DirectResult::FileAdded`].
    SubmitFileAdditionWithPermissions(FileAdditionParams),
    /// `DataRegistry.addFileWithPermissionsAndSchema` from a relayer key;
    /// answered with [`DirectResult::FileAdded`].
    SubmitFileAdditionComplete(FileAdditionParams),
    /// Stores a grant file; answered with [`DirectResult::Stored`].
    StoreGrantFile(serde_json::Value),
}

impl DirectOperation {
    /// The wire name, e.g. `"storeGrantFile"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            DirectOperation::SubmitFileAddition(_) => "submitFileAddition",
            DirectOperation::SubmitFileAdditionWithPermissions(_) => {
                "submitFileAdditionWithPermissions"
            }
            DirectOperation::SubmitFileAdditionComplete(_) => "submitFileAdditionComplete",
            DirectOperation::StoreGrantFile(_) => "storeGrantFile",
        }
    }
}

/// `params` of `submitFileAdditionComplete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileAdditionParams {
    pub url: String,
    pub user_address: Address,
    #[serde(default)]
    pub permissions: Vec<FilePermissionParam>,
    #[serde(default)]
    pub schema_id: u64,
    /// When present, the file's owner (defaults to `userAddress`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_address: Option<Address>,
}

/// One `{account, key}` of [`FileAdditionParams::permissions`]: `key` is K,
/// ECIES-encrypted to `account`'s public key, as hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePermissionParam {
    pub account: Address,
    pub key: String,
}

/// A response of `POST /api/relay`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RelayResponse {
    /// The SDK's answer to a signed request (`{type:"signed", hash}`): the
    /// transaction is broadcast; the client waits for its receipt itself.
    Signed { hash: B256 },
    /// The result of a direct operation.
    Direct { result: DirectResult },
    /// A failure, e.g. `"revert(InvalidNonce(1, 0))"` or `"relayer busy"`.
    Error { error: String },
    /// Extension: accepted, not yet confirmed: poll with `status_check`.
    #[serde(rename_all = "camelCase")]
    Pending { operation_id: String },
    /// Extension: broadcast, not yet mined.
    Submitted { hash: B256 },
    /// Extension: mined successfully.
    Confirmed {
        hash: B256,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receipt: Option<Box<RelayReceipt>>,
    },
}

/// `result` of a direct response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DirectResult {
    /// The file additions: the id from the receipt's `FileAdded` event.
    #[serde(rename_all = "camelCase")]
    FileAdded {
        file_id: u64,
        transaction_hash: B256,
    },
    /// `storeGrantFile`: where the grant JSON can be fetched (`ipfs://<cid>`).
    Stored { url: String },
    /// Anything else a relayer may return.
    Other(serde_json::Value),
}

/// The relevant fields of a mined transaction's receipt, plus the ids decoded
/// from its logs. Field names follow viem's `TransactionReceipt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayReceipt {
    pub transaction_hash: B256,
    pub block_hash: B256,
    #[serde(with = "num_string")]
    pub block_number: u128,
    #[serde(with = "num_string")]
    pub gas_used: u128,
    #[serde(with = "num_string")]
    pub effective_gas_price: u128,
    /// `"success"` or `"reverted"`.
    pub status: String,
    pub from: Address,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Address>,
    /// Ids of `DataRegistry.FileAdded` events, in log order.
    #[serde(default)]
    pub file_ids: Vec<u64>,
    /// Id of the `PermissionAdded` event, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_id: Option<u64>,
    #[serde(default)]
    pub logs: Vec<ReceiptLog>,
}

/// One log of a [`RelayReceipt`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptLog {
    pub address: Address,
    pub topics: Vec<B256>,
    pub data: Bytes,
}

/// Big integers as decimal strings on output; decimal, `0x` hex or a JSON
/// number on input.
mod num_string {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Num {
            N(u64),
            S(String),
        }
        match Num::deserialize(d)? {
            Num::N(n) => Ok(n.into()),
            Num::S(s) => {
                let parsed = match s.strip_prefix("0x") {
                    Some(hex) => u128::from_str_radix(hex, 16),
                    None => s.parse(),
                };
                parsed.map_err(|e| D::Error::custom(format!("not an integer: {s:?} ({e})")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn signed_request_parses_the_sdk_shape() {
        let body = json!({
            "type": "signed",
            "operation": "submitAddPermission",
            "typedData": {"primaryType": "Permission", "message": {"nonce": "0"}},
            "signature": "0xabcd",
            "expectedUserAddress": "0x00000000000000000000000000000000000000aa"
        });
        let req: RelayRequest = serde_json::from_value(body.clone()).unwrap();
        match &req {
            RelayRequest::Signed {
                operation,
                expected_user_address,
                ..
            } => {
                assert_eq!(*operation, SignedOperation::SubmitAddPermission);
                assert_eq!(
                    expected_user_address.as_deref(),
                    Some("0x00000000000000000000000000000000000000aa")
                );
            }
            other => panic!("parsed as {other:?}"),
        }
        assert_eq!(serde_json::to_value(&req).unwrap(), body);
    }

    #[test]
    fn direct_requests_round_trip() {
        let body = json!({
            "type": "direct",
            "operation": "submitFileAdditionComplete",
            "params": {
                "url": "ipfs://x",
                "userAddress": "0x00000000000000000000000000000000000000Aa",
                "permissions": [{"account": "0x00000000000000000000000000000000000000bB", "key": "00ff"}],
                "schemaId": 0
            }
        });
        let req: RelayRequest = serde_json::from_value(body).unwrap();
        let RelayRequest::Direct(DirectOperation::SubmitFileAdditionComplete(p)) = &req else {
            panic!("parsed as {req:?}")
        };
        assert_eq!(p.permissions.len(), 1);
        assert_eq!(p.owner_address, None);
        let again: RelayRequest =
            serde_json::from_value(serde_json::to_value(&req).unwrap()).unwrap();
        assert_eq!(again, req);

        let grant = json!({"type":"direct","operation":"storeGrantFile","params":{"grantee":"0x1","operation":"llm_inference","parameters":{}}});
        let req: RelayRequest = serde_json::from_value(grant.clone()).unwrap();
        assert!(matches!(
            req,
            RelayRequest::Direct(DirectOperation::StoreGrantFile(_))
        ));
        assert_eq!(serde_json::to_value(&req).unwrap(), grant);
    }

    #[test]
    fn primary_types_parse_and_unknown_ones_are_named() {
        for p in PrimaryType::ALL {
            assert_eq!(p.as_str().parse::<PrimaryType>().unwrap(), p);
        }
        let td = json!({"primaryType": "RegisterGrantee", "message": {}});
        let err = PrimaryType::of_typed_data(&td).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Unsupported operation type: RegisterGrantee"
        );
        assert_eq!(
            PrimaryType::of_typed_data(&json!({"primaryType": "AddServer"})).unwrap(),
            PrimaryType::AddServer
        );
    }

    #[test]
    fn every_direct_operation_of_the_sdk_parses() {
        for op in [
            "submitFileAddition",
            "submitFileAdditionWithPermissions",
            "submitFileAdditionComplete",
        ] {
            let body = json!({"type":"direct","operation": op,
                "params": {"url":"ipfs://x","userAddress":"0x00000000000000000000000000000000000000aa"}});
            let req: RelayRequest = serde_json::from_value(body).unwrap();
            let RelayRequest::Direct(d) = req else {
                panic!("{op}")
            };
            assert_eq!(d.as_str(), op);
        }
        let err = serde_json::from_value::<RelayRequest>(
            json!({"type":"direct","operation":"submitNothing","params":{}}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("submitNothing"), "{err}");
    }

    #[test]
    fn status_check_and_unknown_operation() {
        let req: RelayRequest =
            serde_json::from_value(json!({"type":"status_check","operationId":"op-1"})).unwrap();
        assert_eq!(
            req,
            RelayRequest::StatusCheck {
                operation_id: "op-1".into()
            }
        );
        let err = serde_json::from_value::<RelayRequest>(
            json!({"type":"signed","operation":"submitNothing","typedData":{},"signature":"0x"}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("submitNothing"), "{err}");
    }

    #[test]
    fn responses_have_the_sdk_shapes() {
        let hash = B256::repeat_byte(0x11);
        assert_eq!(
            serde_json::to_value(RelayResponse::Pending {
                operation_id: "op".into()
            })
            .unwrap(),
            json!({"type":"pending","operationId":"op"})
        );
        assert_eq!(
            serde_json::to_value(RelayResponse::Submitted { hash }).unwrap(),
            json!({"type":"submitted","hash":hash})
        );
        assert_eq!(
            serde_json::to_value(RelayResponse::Confirmed {
                hash,
                receipt: None
            })
            .unwrap(),
            json!({"type":"confirmed","hash":hash})
        );
        assert_eq!(
            serde_json::to_value(RelayResponse::Error {
                error: "relayer busy".into()
            })
            .unwrap(),
            json!({"type":"error","error":"relayer busy"})
        );
        let direct = RelayResponse::Direct {
            result: DirectResult::FileAdded {
                file_id: 7,
                transaction_hash: hash,
            },
        };
        let v = serde_json::to_value(&direct).unwrap();
        assert_eq!(
            v,
            json!({"type":"direct","result":{"fileId":7,"transactionHash":hash}})
        );
        assert_eq!(serde_json::from_value::<RelayResponse>(v).unwrap(), direct);
        let stored: RelayResponse =
            serde_json::from_value(json!({"type":"direct","result":{"url":"http://x/grants/1"}}))
                .unwrap();
        assert_eq!(
            stored,
            RelayResponse::Direct {
                result: DirectResult::Stored {
                    url: "http://x/grants/1".into()
                }
            }
        );
    }

    #[test]
    fn receipt_numbers_are_strings_out_and_flexible_in() {
        let receipt = RelayReceipt {
            transaction_hash: B256::repeat_byte(1),
            block_hash: B256::repeat_byte(2),
            block_number: 12,
            gas_used: 21_000,
            effective_gas_price: 1_000_000_007,
            status: "success".into(),
            from: Address::repeat_byte(3),
            to: None,
            file_ids: vec![4],
            permission_id: Some(5),
            logs: vec![],
        };
        let v = serde_json::to_value(&receipt).unwrap();
        assert_eq!(v["blockNumber"], json!("12"));
        assert_eq!(v["effectiveGasPrice"], json!("1000000007"));
        assert_eq!(v["fileIds"], json!([4]));
        let mut w = v.clone();
        w["blockNumber"] = json!("0xc");
        w["gasUsed"] = json!(21000);
        assert_eq!(serde_json::from_value::<RelayReceipt>(w).unwrap(), receipt);
    }
}

//! Signed operations: check the EIP-712 typed data and signature of a
//! `{type:"signed"}` request and turn it into the contract call the relayer
//! sends, routed on `typedData.primaryType` as the SDK's
//! `handleRelayerOperation` does (its `operation` field is not consulted):
//!
//! | primaryType | contract call |
//! |---|---|
//! | `Permission` | `DataPortabilityPermissions.addPermission` |
//! | `RevokePermission` | `DataPortabilityPermissions.revokePermissionWithSignature` |
//! | `ServerFilesAndPermission` | `DataPortabilityPermissions.addServerFilesAndPermissions` |
//! | `AddServer` | `DataPortabilityServers.addAndTrustServerWithSignature` |
//! | `TrustServer` | `DataPortabilityServers.trustServerWithSignature` |
//! | `UntrustServer` | `DataPortabilityServers.untrustServerWithSignature` |
//!
//! The signer is recovered from the typed data (`recoverTypedDataAddress`)
//! and, when the request names one, must equal `expectedUserAddress`; the
//! refusals use the handler's messages ("Signature verification failed: …",
//! "Security verification failed: …", "Unsupported operation type: …").
//! The domain must name this chain and the contract the type belongs to, so
//! that a signature the contract would attribute to someone else is refused
//! here rather than reverting on chain.

use alloy::primitives::{Address, Bytes};
use alloy::sol_types::SolCall;
use protocol::api::relayer::{PrimaryType, UnsupportedPrimaryType};
use protocol::contracts::{
    AddServerWithSignatureInput, DataPortabilityPermissions as P, DataPortabilityServers as S,
    PermissionInput, RevokePermissionInput, ServerFilesAndPermissionInput, TrustServerInput,
    UntrustServerInput, permissions,
};
use protocol::eip712;
use serde_json::Value;

/// A checked signed operation, ready to send.
#[derive(Debug, Clone)]
pub struct SignedCall {
    pub to: Address,
    pub input: Bytes,
    pub function: &'static str,
    pub signer: Address,
    pub primary_type: PrimaryType,
}

/// Where signed operations go, and the chain they must be signed for.
#[derive(Debug, Clone, Copy)]
pub struct SignedTarget {
    pub chain_id: u64,
    pub permissions: Address,
    pub servers: Address,
}

/// Why a signed request was refused before anything was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedError {
    /// The typed data or signature cannot be recovered.
    #[error("Signature verification failed: {0}")]
    Signature(String),
    /// The signer is not `expectedUserAddress`.
    #[error(
        "Security verification failed: Recovered signer address ({signer}) does not match expected user address ({expected})"
    )]
    WrongSigner { signer: Address, expected: Address },
    /// A `primaryType` the handler does not route.
    #[error(transparent)]
    Unsupported(#[from] UnsupportedPrimaryType),
    /// A field is malformed or names another chain or contract.
    #[error("{0}")]
    Invalid(String),
}

impl SignedError {
    /// The metrics label.
    pub fn kind(&self) -> &'static str {
        match self {
            SignedError::Signature(_) | SignedError::WrongSigner { .. } => "signature",
            SignedError::Unsupported(_) => "unsupported",
            SignedError::Invalid(_) => "bad_request",
        }
    }
}

/// The contract a primary type is signed for and sent to.
fn contract_of(target: &SignedTarget, p: PrimaryType) -> (Address, &'static str) {
    match p {
        PrimaryType::Permission
        | PrimaryType::RevokePermission
        | PrimaryType::ServerFilesAndPermission => {
            (target.permissions, "DataPortabilityPermissions proxy")
        }
        PrimaryType::AddServer | PrimaryType::TrustServer | PrimaryType::UntrustServer => {
            (target.servers, "DataPortabilityServers proxy")
        }
    }
}

/// Checks a signed request and builds its call.
pub fn prepare(
    target: &SignedTarget,
    typed_data: &Value,
    signature: &str,
    expected_user: Option<&str>,
) -> Result<SignedCall, SignedError> {
    let primary_type = PrimaryType::of_typed_data(typed_data)?;
    let typed = eip712::parse_typed_data(typed_data)
        .map_err(|e| SignedError::Signature(format!("typedData is not EIP-712 typed data: {e}")))?;
    let sig_bytes = alloy::hex::decode(signature.trim())
        .map_err(|e| SignedError::Signature(format!("signature is not hex: {e}")))?;
    // Normalised to v = 27/28 (the SDK's formatSignatureForContract).
    let sig = eip712::parse_signature(&sig_bytes)
        .map_err(|e| SignedError::Signature(format!("signature: {e}")))?;
    let signer = eip712::recover_typed_data(&typed, &sig_bytes)
        .map_err(|e| SignedError::Signature(e.to_string()))?;
    if let Some(expected) = expected_user {
        let expected: Address = expected.trim().parse().map_err(|e| {
            SignedError::Invalid(format!(
                "expectedUserAddress {expected:?} is not an address: {e}"
            ))
        })?;
        if expected != signer {
            return Err(SignedError::WrongSigner { signer, expected });
        }
    }
    let (chain_id, contract) = eip712::typed_data_domain(&typed)
        .map_err(|e| SignedError::Invalid(format!("typedData.domain: {e}")))?;
    if chain_id != target.chain_id {
        return Err(SignedError::Invalid(format!(
            "typedData.domain.chainId is {chain_id}, this chain is {}",
            target.chain_id
        )));
    }
    let (to, to_name) = contract_of(target, primary_type);
    if contract != to {
        return Err(SignedError::Invalid(format!(
            "typedData.domain.verifyingContract is {contract}, not the {to_name} {to} that {} is signed for",
            primary_type.as_str()
        )));
    }
    let signature = eip712::signature_bytes(&sig);
    let (function, input) = encode(primary_type, &typed, signature)
        .map_err(|e| SignedError::Invalid(format!("typedData.message: {e}")))?;
    Ok(SignedCall {
        to,
        input: input.into(),
        function,
        signer,
        primary_type,
    })
}

/// The contract call of a checked message.
fn encode(
    primary_type: PrimaryType,
    typed: &alloy::dyn_abi::TypedData,
    signature: Bytes,
) -> Result<(&'static str, Vec<u8>), eip712::Eip712Error> {
    use eip712::{permission, server, server_files};
    Ok(match primary_type {
        PrimaryType::Permission => {
            let m: permission::Permission = eip712::message_from_typed_data(typed)?;
            let input = PermissionInput {
                nonce: m.nonce,
                granteeId: m.granteeId,
                grant: m.grant,
                fileIds: m.fileIds,
            };
            let call = P::addPermissionCall {
                permissionInput: input,
                signature,
            };
            ("addPermission", call.abi_encode())
        }
        PrimaryType::ServerFilesAndPermission => {
            let m: server_files::ServerFilesAndPermission = eip712::message_from_typed_data(typed)?;
            let input = ServerFilesAndPermissionInput {
                nonce: m.nonce,
                granteeId: m.granteeId,
                grant: m.grant,
                fileUrls: m.fileUrls,
                schemaIds: m.schemaIds,
                serverAddress: m.serverAddress,
                serverUrl: m.serverUrl,
                serverPublicKey: m.serverPublicKey,
                filePermissions: m
                    .filePermissions
                    .into_iter()
                    .map(|file| {
                        file.into_iter()
                            .map(|p| permissions::IDataRegistry::Permission {
                                account: p.account,
                                key: p.key,
                            })
                            .collect()
                    })
                    .collect(),
            };
            let call = P::addServerFilesAndPermissionsCall {
                serverFilesAndPermissionInput: input,
                signature,
            };
            ("addServerFilesAndPermissions", call.abi_encode())
        }
        PrimaryType::RevokePermission => {
            let m: permission::RevokePermission = eip712::message_from_typed_data(typed)?;
            let call = P::revokePermissionWithSignatureCall {
                revokePermissionInput: RevokePermissionInput {
                    nonce: m.nonce,
                    permissionId: m.permissionId,
                },
                signature,
            };
            ("revokePermissionWithSignature", call.abi_encode())
        }
        PrimaryType::AddServer => {
            let m: server::AddServer = eip712::message_from_typed_data(typed)?;
            let call = S::addAndTrustServerWithSignatureCall {
                addServerInput: AddServerWithSignatureInput {
                    nonce: m.nonce,
                    serverAddress: m.serverAddress,
                    publicKey: m.publicKey,
                    serverUrl: m.serverUrl,
                },
                signature,
            };
            ("addAndTrustServerWithSignature", call.abi_encode())
        }
        PrimaryType::TrustServer => {
            let m: server::TrustServer = eip712::message_from_typed_data(typed)?;
            let call = S::trustServerWithSignatureCall {
                trustServerInput: TrustServerInput {
                    nonce: m.nonce,
                    serverId: m.serverId,
                },
                signature,
            };
            ("trustServerWithSignature", call.abi_encode())
        }
        PrimaryType::UntrustServer => {
            let m: server::UntrustServer = eip712::message_from_typed_data(typed)?;
            let call = S::untrustServerWithSignatureCall {
                untrustServerInput: UntrustServerInput {
                    nonce: m.nonce,
                    serverId: m.serverId,
                },
                signature,
            };
            ("untrustServerWithSignature", call.abi_encode())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::dyn_abi::TypedData;
    use alloy::primitives::U256;
    use alloy::signers::SignerSync;
    use alloy::signers::local::PrivateKeySigner;
    use serde_json::json;

    fn target() -> SignedTarget {
        SignedTarget {
            chain_id: 14800,
            permissions: Address::repeat_byte(0x42),
            servers: Address::repeat_byte(0x43),
        }
    }

    fn permission_typed_data(t: &SignedTarget, nonce: &str) -> Value {
        json!({
            "domain": {"name": "VanaDataPortabilityPermissions", "version": "1",
                       "chainId": t.chain_id, "verifyingContract": t.permissions},
            "types": {"Permission": [
                {"name": "nonce", "type": "uint256"},
                {"name": "granteeId", "type": "uint256"},
                {"name": "grant", "type": "string"},
                {"name": "fileIds", "type": "uint256[]"}]},
            "primaryType": "Permission",
            "message": {"nonce": nonce, "granteeId": "1", "grant": "http://g", "fileIds": ["7", "8"]}
        })
    }

    fn server_typed_data(t: &SignedTarget, primary: &str, server_id: &str) -> Value {
        json!({
            "domain": {"name": "VanaDataPortabilityServers", "version": "1",
                       "chainId": t.chain_id, "verifyingContract": t.servers},
            "types": {primary: [
                {"name": "nonce", "type": "uint256"},
                {"name": "serverId", "type": "uint256"}]},
            "primaryType": primary,
            "message": {"nonce": "2", "serverId": server_id}
        })
    }

    fn sign(td: &Value, key: &PrivateKeySigner) -> String {
        let typed: TypedData = serde_json::from_value(td.clone()).unwrap();
        let sig = key
            .sign_hash_sync(&typed.eip712_signing_hash().unwrap())
            .unwrap();
        format!("0x{}", alloy::hex::encode(sig.as_bytes()))
    }

    #[test]
    fn recovers_the_signer_and_encodes_add_permission() {
        let t = target();
        let key = PrivateKeySigner::random();
        let td = permission_typed_data(&t, "3");
        let sig = sign(&td, &key);
        let lower = key.address().to_string().to_lowercase();
        let call = prepare(&t, &td, &sig, Some(&lower)).unwrap();
        assert_eq!(call.signer, key.address());
        assert_eq!(call.to, t.permissions);
        assert_eq!(call.primary_type, PrimaryType::Permission);
        let decoded = P::addPermissionCall::abi_decode(&call.input).unwrap();
        assert_eq!(decoded.permissionInput.nonce, U256::from(3));
        assert_eq!(
            decoded.permissionInput.fileIds,
            vec![U256::from(7), U256::from(8)]
        );
        assert_eq!(decoded.signature.len(), 65);
        assert!(decoded.signature[64] == 27 || decoded.signature[64] == 28);
    }

    #[test]
    fn server_types_go_to_the_servers_contract() {
        let t = target();
        let key = PrivateKeySigner::random();
        let td = server_typed_data(&t, "TrustServer", "5");
        let call = prepare(&t, &td, &sign(&td, &key), None).unwrap();
        assert_eq!(
            (call.to, call.function),
            (t.servers, "trustServerWithSignature")
        );
        let d = S::trustServerWithSignatureCall::abi_decode(&call.input).unwrap();
        assert_eq!(d.trustServerInput.serverId, U256::from(5));
        let td = server_typed_data(&t, "UntrustServer", "6");
        let call = prepare(&t, &td, &sign(&td, &key), None).unwrap();
        let d = S::untrustServerWithSignatureCall::abi_decode(&call.input).unwrap();
        assert_eq!(
            (d.untrustServerInput.nonce, d.untrustServerInput.serverId),
            (U256::from(2), U256::from(6))
        );
        let td = json!({
            "domain": {"name": "VanaDataPortabilityServers", "version": "1",
                       "chainId": t.chain_id, "verifyingContract": t.servers},
            "types": {"AddServer": [
                {"name": "nonce", "type": "uint256"},
                {"name": "serverAddress", "type": "address"},
                {"name": "publicKey", "type": "string"},
                {"name": "serverUrl", "type": "string"}]},
            "primaryType": "AddServer",
            "message": {"nonce": "0", "serverAddress": Address::repeat_byte(9),
                        "publicKey": "0x04ab", "serverUrl": "http://s"}
        });
        let call = prepare(&t, &td, &sign(&td, &key), None).unwrap();
        let d = S::addAndTrustServerWithSignatureCall::abi_decode(&call.input).unwrap();
        assert_eq!(d.addServerInput.serverUrl, "http://s");
        // A server type signed for the Permissions contract is refused by name.
        let mut td = server_typed_data(&t, "TrustServer", "5");
        td["domain"]["verifyingContract"] = json!(t.permissions);
        let err = prepare(&t, &td, &sign(&td, &key), None).unwrap_err();
        assert!(err.to_string().contains("DataPortabilityServers"), "{err}");
    }

    #[test]
    fn refuses_a_signature_by_someone_else_with_the_handlers_message() {
        let t = target();
        let td = permission_typed_data(&t, "0");
        let sig = sign(&td, &PrivateKeySigner::random());
        let other = PrivateKeySigner::random().address().to_string();
        let err = prepare(&t, &td, &sig, Some(&other)).unwrap_err();
        assert!(matches!(err, SignedError::WrongSigner { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with("Security verification failed: Recovered signer address"),
            "{err}"
        );
        assert_eq!(err.kind(), "signature");
    }

    #[test]
    fn refuses_another_domain_bad_fields_and_unknown_types() {
        let t = target();
        let key = PrivateKeySigner::random();
        let mut td = permission_typed_data(&t, "0");
        td["domain"]["verifyingContract"] = json!(Address::repeat_byte(1));
        let sig = sign(&td, &key);
        let err = prepare(&t, &td, &sig, None).unwrap_err();
        assert!(err.to_string().contains("verifyingContract"), "{err}");

        let td = permission_typed_data(&t, "0");
        let err = prepare(&t, &td, "0x1234", None).unwrap_err();
        assert!(err.to_string().contains("expected 65"), "{err}");
        assert!(
            err.to_string().starts_with("Signature verification failed"),
            "{err}"
        );
        let mut td = permission_typed_data(&t, "0");
        td["primaryType"] = json!("RegisterGrantee");
        let err = prepare(&t, &td, &sig, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Unsupported operation type: RegisterGrantee"
        );
    }
}

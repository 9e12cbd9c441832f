//! Signed operations: check the EIP-712 typed data and signature of a
//! `{type:"signed"}` request and turn it into the contract call the relayer
//! sends. The signer is recovered from the typed data exactly as the SDK's
//! reference handler does (`recoverTypedDataAddress`) and must equal
//! `expectedUserAddress`; the domain must name this chain and the
//! DataPortabilityPermissions proxy, so that a signature the contract would
//! attribute to someone else is refused here rather than reverting on chain.

use alloy::primitives::{Address, Bytes};
use alloy::sol_types::SolCall;
use protocol::api::relayer::SignedOperation;
use protocol::contracts::{
    DataPortabilityPermissions as P, PermissionInput, RevokePermissionInput,
    ServerFilesAndPermissionInput, permissions,
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
}

/// Where signed operations go, and the chain they must be signed for.
#[derive(Debug, Clone, Copy)]
pub struct SignedTarget {
    pub chain_id: u64,
    pub permissions: Address,
}

/// Checks a signed request and builds its call. Errors name the field.
pub fn prepare(
    target: &SignedTarget,
    operation: SignedOperation,
    typed_data: &Value,
    signature: &str,
    expected_user: Option<&str>,
) -> Result<SignedCall, String> {
    let typed = eip712::parse_typed_data(typed_data)
        .map_err(|e| format!("typedData is not EIP-712 typed data: {e}"))?;
    let sig_bytes =
        alloy::hex::decode(signature.trim()).map_err(|e| format!("signature is not hex: {e}"))?;
    // Normalised to v = 27/28 (the SDK's formatSignatureForContract).
    let sig = eip712::parse_signature(&sig_bytes).map_err(|e| format!("signature: {e}"))?;
    let signer = eip712::recover_typed_data(&typed, &sig_bytes)
        .map_err(|e| format!("signature does not recover: {e}"))?;
    if let Some(expected) = expected_user {
        let expected: Address = expected
            .trim()
            .parse()
            .map_err(|e| format!("expectedUserAddress {expected:?} is not an address: {e}"))?;
        if expected != signer {
            return Err(format!(
                "invalid signature: the typed data was signed by {signer}, not by expectedUserAddress {expected}"
            ));
        }
    }
    let (chain_id, contract) =
        eip712::typed_data_domain(&typed).map_err(|e| format!("typedData.domain: {e}"))?;
    if chain_id != target.chain_id {
        return Err(format!(
            "typedData.domain.chainId is {chain_id}, this chain is {}",
            target.chain_id
        ));
    }
    if contract != target.permissions {
        return Err(format!(
            "typedData.domain.verifyingContract is {contract}, not the DataPortabilityPermissions proxy {}",
            target.permissions
        ));
    }
    let sig_arg = eip712::signature_bytes(&sig);
    let msg_err = |e: eip712::Eip712Error| format!("typedData.message: {e}");
    let (function, input): (&'static str, Vec<u8>) = match operation {
        SignedOperation::SubmitAddPermission => {
            let m: eip712::permission::Permission =
                eip712::message_from_typed_data(&typed).map_err(msg_err)?;
            let input = PermissionInput {
                nonce: m.nonce,
                granteeId: m.granteeId,
                grant: m.grant,
                fileIds: m.fileIds,
            };
            (
                "addPermission",
                P::addPermissionCall {
                    permissionInput: input,
                    signature: sig_arg,
                }
                .abi_encode(),
            )
        }
        SignedOperation::SubmitAddServerFilesAndPermissions => {
            let m: eip712::server_files::ServerFilesAndPermission =
                eip712::message_from_typed_data(&typed).map_err(msg_err)?;
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
            (
                "addServerFilesAndPermissions",
                P::addServerFilesAndPermissionsCall {
                    serverFilesAndPermissionInput: input,
                    signature: sig_arg,
                }
                .abi_encode(),
            )
        }
        SignedOperation::SubmitPermissionRevoke => {
            let m: eip712::permission::RevokePermission =
                eip712::message_from_typed_data(&typed).map_err(msg_err)?;
            let input = RevokePermissionInput {
                nonce: m.nonce,
                permissionId: m.permissionId,
            };
            (
                "revokePermissionWithSignature",
                P::revokePermissionWithSignatureCall {
                    revokePermissionInput: input,
                    signature: sig_arg,
                }
                .abi_encode(),
            )
        }
        other => {
            return Err(format!(
                "operation {} is not supported by the twin relayer (supported: submitAddPermission, submitAddServerFilesAndPermissions, submitPermissionRevoke)",
                other.as_str()
            ));
        }
    };
    Ok(SignedCall {
        to: target.permissions,
        input: input.into(),
        function,
        signer,
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
        let call = prepare(
            &t,
            SignedOperation::SubmitAddPermission,
            &td,
            &sig,
            Some(&lower),
        )
        .unwrap();
        assert_eq!(call.signer, key.address());
        assert_eq!(call.to, t.permissions);
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
    fn refuses_a_signature_by_someone_else() {
        let t = target();
        let td = permission_typed_data(&t, "0");
        let sig = sign(&td, &PrivateKeySigner::random());
        let other = PrivateKeySigner::random().address().to_string();
        let err = prepare(
            &t,
            SignedOperation::SubmitAddPermission,
            &td,
            &sig,
            Some(&other),
        )
        .unwrap_err();
        assert!(err.starts_with("invalid signature"), "{err}");
    }

    #[test]
    fn refuses_another_domain_and_bad_fields() {
        let t = target();
        let key = PrivateKeySigner::random();
        let mut td = permission_typed_data(&t, "0");
        td["domain"]["verifyingContract"] = json!(Address::repeat_byte(1));
        let sig = sign(&td, &key);
        let err = prepare(&t, SignedOperation::SubmitAddPermission, &td, &sig, None).unwrap_err();
        assert!(err.contains("verifyingContract"), "{err}");

        let td = permission_typed_data(&t, "0");
        let err = prepare(
            &t,
            SignedOperation::SubmitAddPermission,
            &td,
            "0x1234",
            None,
        )
        .unwrap_err();
        assert!(err.contains("expected 65"), "{err}");
        let sig = sign(&td, &key);
        let err = prepare(
            &t,
            SignedOperation::SubmitAddServerFilesAndPermissions,
            &td,
            &sig,
            None,
        )
        .unwrap_err();
        assert!(err.contains("primaryType"), "{err}");
        let err = prepare(&t, SignedOperation::SubmitTrustServer, &td, &sig, None).unwrap_err();
        assert!(err.contains("not supported"), "{err}");
    }
}

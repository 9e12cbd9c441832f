//! Signed operations: check the EIP-712 typed data and signature of a
//! `{type:"signed"}` request and turn it into the contract call the relayer
//! sends. The signer is recovered from the typed data exactly as the SDK's
//! reference handler does (`recoverTypedDataAddress`) and must equal
//! `expectedUserAddress`; the domain must name this chain and the
//! DataPortabilityPermissions proxy, so that a signature the contract would
//! attribute to someone else is refused here rather than reverting on chain.

use alloy::dyn_abi::TypedData;
use alloy::primitives::{Address, B256, Bytes, Signature, U256};
use alloy::sol_types::SolCall;
use protocol::api::relayer::SignedOperation;
use protocol::contracts::{
    DataPortabilityPermissions as P, PermissionInput, RevokePermissionInput,
    ServerFilesAndPermissionInput, permissions,
};
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
    let typed: TypedData = serde_json::from_value(typed_data.clone())
        .map_err(|e| format!("typedData is not EIP-712 typed data: {e}"))?;
    let sig_bytes =
        alloy::hex::decode(signature.trim()).map_err(|e| format!("signature is not hex: {e}"))?;
    if sig_bytes.len() != 65 {
        return Err(format!(
            "signature must be 65 bytes (r, s, v), got {}",
            sig_bytes.len()
        ));
    }
    let sig = Signature::from_raw(&sig_bytes).map_err(|e| format!("signature is invalid: {e}"))?;
    let hash: B256 = typed
        .eip712_signing_hash()
        .map_err(|e| format!("typedData cannot be hashed: {e}"))?;
    let signer = sig
        .recover_address_from_prehash(&hash)
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
    let domain = &typed.domain;
    match domain.chain_id {
        Some(id) if id == U256::from(target.chain_id) => {}
        other => {
            return Err(format!(
                "typedData.domain.chainId is {other:?}, this chain is {}",
                target.chain_id
            ));
        }
    }
    if domain.verifying_contract != Some(target.permissions) {
        return Err(format!(
            "typedData.domain.verifyingContract is {:?}, not the DataPortabilityPermissions proxy {}",
            domain.verifying_contract, target.permissions
        ));
    }
    let msg = &typed.message;
    // The SDK adds 27 to v when it is 0/1; encode the normalised signature.
    let sig_arg = Bytes::from(sig.as_bytes().to_vec());
    let (function, input): (&'static str, Vec<u8>) = match operation {
        SignedOperation::SubmitAddPermission => {
            expect_primary(&typed, "Permission")?;
            let input = PermissionInput {
                nonce: uint(msg, "nonce")?,
                granteeId: uint(msg, "granteeId")?,
                grant: string(msg, "grant")?,
                fileIds: uints(msg, "fileIds")?,
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
            expect_primary(&typed, "ServerFilesAndPermission")?;
            let perms = field(msg, "filePermissions")?
                .as_array()
                .ok_or("typedData.message.filePermissions must be an array of arrays")?
                .iter()
                .enumerate()
                .map(|(i, inner)| {
                    inner
                        .as_array()
                        .ok_or(format!(
                            "typedData.message.filePermissions[{i}] must be an array"
                        ))?
                        .iter()
                        .map(|p| {
                            Ok(permissions::IDataRegistry::Permission {
                                account: address(p, "account")?,
                                key: string(p, "key")?,
                            })
                        })
                        .collect::<Result<Vec<_>, String>>()
                })
                .collect::<Result<Vec<_>, String>>()?;
            let input = ServerFilesAndPermissionInput {
                nonce: uint(msg, "nonce")?,
                granteeId: uint(msg, "granteeId")?,
                grant: string(msg, "grant")?,
                fileUrls: strings(msg, "fileUrls")?,
                schemaIds: uints(msg, "schemaIds")?,
                serverAddress: address(msg, "serverAddress")?,
                serverUrl: string(msg, "serverUrl")?,
                serverPublicKey: string(msg, "serverPublicKey")?,
                filePermissions: perms,
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
            expect_primary(&typed, "RevokePermission")?;
            let input = RevokePermissionInput {
                nonce: uint(msg, "nonce")?,
                permissionId: uint(msg, "permissionId")?,
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

fn expect_primary(typed: &TypedData, name: &str) -> Result<(), String> {
    if typed.primary_type == name {
        Ok(())
    } else {
        Err(format!(
            "typedData.primaryType is {:?}; this operation needs {name:?}",
            typed.primary_type
        ))
    }
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, String> {
    v.get(name)
        .ok_or_else(|| format!("typedData.message.{name} is missing"))
}

fn parse_uint(v: &Value, what: &str) -> Result<U256, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(U256::from)
            .ok_or_else(|| format!("{what} must be a non-negative integer, got {n}")),
        Value::String(s) => {
            let s = s.trim();
            let r = match s.strip_prefix("0x") {
                Some(h) => U256::from_str_radix(h, 16),
                None => U256::from_str_radix(s, 10),
            };
            r.map_err(|e| format!("{what} {s:?} is not an integer: {e}"))
        }
        other => Err(format!("{what} must be an integer, got {other}")),
    }
}

fn uint(v: &Value, name: &str) -> Result<U256, String> {
    parse_uint(field(v, name)?, &format!("typedData.message.{name}"))
}

fn uints(v: &Value, name: &str) -> Result<Vec<U256>, String> {
    field(v, name)?
        .as_array()
        .ok_or_else(|| format!("typedData.message.{name} must be an array"))?
        .iter()
        .enumerate()
        .map(|(i, x)| parse_uint(x, &format!("typedData.message.{name}[{i}]")))
        .collect()
}

fn string(v: &Value, name: &str) -> Result<String, String> {
    field(v, name)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("typedData.message.{name} must be a string"))
}

fn strings(v: &Value, name: &str) -> Result<Vec<String>, String> {
    field(v, name)?
        .as_array()
        .ok_or_else(|| format!("typedData.message.{name} must be an array"))?
        .iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("typedData.message.{name}[{i}] must be a string"))
        })
        .collect()
}

fn address(v: &Value, name: &str) -> Result<Address, String> {
    let s = field(v, name)?
        .as_str()
        .ok_or_else(|| format!("typedData.message.{name} must be an address string"))?;
    s.trim()
        .parse()
        .map_err(|e| format!("typedData.message.{name} {s:?} is not an address: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert!(err.contains("65 bytes"), "{err}");
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

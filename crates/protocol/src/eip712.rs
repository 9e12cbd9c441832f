//! EIP-712 typed data of the Vana permission and server flows: the structs the user signs,
//! their domains, signing (65-byte signatures with `v` = 27/28, as the SDK's
//! `formatSignatureForContract` produces), and the SDK's JSON typed-data form that the relayer
//! protocol carries (`{domain, types, primaryType, message}`, integers as decimal strings),
//! with signer recovery from that JSON.
//!
//! Signing hashes with alloy-sol-types (`SolStruct::eip712_signing_hash`) and signs that hash
//! (`sign_hash_sync`), which is exactly what alloy's `sign_typed_data` does; it needs no
//! `eip712` feature of alloy's signers, which would list the cloud signers' SDKs in
//! `Cargo.lock` (see the workspace `Cargo.toml`). The JSON form comes from alloy-dyn-abi's
//! `eip712` module.
//!
//! There are two different `Permission` types: the grant the user signs
//! ([`permission::Permission`], primary type of `addPermission`) and a file's encrypted key
//! inside `ServerFilesAndPermission` ([`server_files::Permission`]). They live in separate
//! modules.

use alloy::primitives::{Address, B256, Bytes, Signature, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct, SolValue};
use alloy_dyn_abi::{DynSolType, DynSolValue, Resolver, TypedData};
use serde_json::{Map, Value, json};

/// Domain name of DataPortabilityPermissions.
pub const PERMISSIONS_DOMAIN_NAME: &str = "VanaDataPortabilityPermissions";
/// Domain name of DataPortabilityServers.
pub const SERVERS_DOMAIN_NAME: &str = "VanaDataPortabilityServers";
/// Domain version of both.
pub const DOMAIN_VERSION: &str = "1";

/// Typed data of DataPortabilityPermissions: the grant and its revocation.
pub mod permission {
    alloy::sol! {
        /// The grant a user signs for `addPermission`.
        #[derive(Debug, PartialEq, Eq)]
        struct Permission {
            uint256 nonce;
            uint256 granteeId;
            string grant;
            uint256[] fileIds;
        }

        /// The revocation a user signs for `revokePermissionWithSignature`.
        #[derive(Debug, PartialEq, Eq)]
        struct RevokePermission {
            uint256 nonce;
            uint256 permissionId;
        }
    }
}

/// Typed data of `addServerFilesAndPermissions` (with its own, file-key `Permission`).
pub mod server_files {
    alloy::sol! {
        /// A file's key encrypted for one account (the DataRegistry's `Permission`).
        #[derive(Debug, PartialEq, Eq)]
        struct Permission {
            address account;
            string key;
        }

        /// Server registration, files and grant in one signature.
        #[derive(Debug, PartialEq, Eq)]
        struct ServerFilesAndPermission {
            uint256 nonce;
            uint256 granteeId;
            string grant;
            string[] fileUrls;
            uint256[] schemaIds;
            address serverAddress;
            string serverUrl;
            string serverPublicKey;
            Permission[][] filePermissions;
        }
    }
}

/// Typed data of DataPortabilityServers (its nonce is separate from the Permissions nonce).
pub mod server {
    alloy::sol! {
        /// `addServerWithSignature` / `addAndTrustServerWithSignature`.
        #[derive(Debug, PartialEq, Eq)]
        struct AddServer {
            uint256 nonce;
            address serverAddress;
            string publicKey;
            string serverUrl;
        }

        /// `trustServerWithSignature`.
        #[derive(Debug, PartialEq, Eq)]
        struct TrustServer {
            uint256 nonce;
            uint256 serverId;
        }

        /// `untrustServerWithSignature`.
        #[derive(Debug, PartialEq, Eq)]
        struct UntrustServer {
            uint256 nonce;
            uint256 serverId;
        }
    }
}

/// What can go wrong building, signing or checking typed data.
#[derive(Debug, thiserror::Error)]
pub enum Eip712Error {
    #[error("EIP-712 signing failed: {0}")]
    Sign(#[from] alloy::signers::Error),
    #[error("signature is {0} bytes, expected 65")]
    SignatureLength(usize),
    #[error("malformed signature: {0}")]
    Signature(String),
    #[error("typed data JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("typed data: {0}")]
    TypedData(String),
    #[error("typed data primaryType is {found:?}, expected {expected:?}")]
    PrimaryType { expected: String, found: String },
    #[error("typed data domain: missing or invalid {0}")]
    Domain(&'static str),
}

/// A domain `{name, version: "1", chainId, verifyingContract}`.
pub fn domain(name: &'static str, chain_id: u64, verifying_contract: Address) -> Eip712Domain {
    Eip712Domain::new(
        Some(name.into()),
        Some(DOMAIN_VERSION.into()),
        Some(U256::from(chain_id)),
        Some(verifying_contract),
        None,
    )
}

/// The DataPortabilityPermissions domain (`verifying_contract` is the proxy address).
pub fn permissions_domain(chain_id: u64, verifying_contract: Address) -> Eip712Domain {
    domain(PERMISSIONS_DOMAIN_NAME, chain_id, verifying_contract)
}

/// The DataPortabilityServers domain (`verifying_contract` is the proxy address).
pub fn servers_domain(chain_id: u64, verifying_contract: Address) -> Eip712Domain {
    domain(SERVERS_DOMAIN_NAME, chain_id, verifying_contract)
}

/// Signs `message` under `domain`: 65 bytes `r ‖ s ‖ v` with `v` = 27 or 28.
pub fn sign<T: SolStruct>(
    signer: &PrivateKeySigner,
    message: &T,
    domain: &Eip712Domain,
) -> Result<Bytes, Eip712Error> {
    let signature = signer.sign_hash_sync(&message.eip712_signing_hash(domain))?;
    Ok(signature_bytes(&signature))
}

/// `r ‖ s ‖ v` with `v` = 27 + y-parity.
pub fn signature_bytes(signature: &Signature) -> Bytes {
    let mut out = [0u8; 65];
    out[..32].copy_from_slice(&signature.r().to_be_bytes::<32>());
    out[32..64].copy_from_slice(&signature.s().to_be_bytes::<32>());
    out[64] = 27 + u8::from(signature.v());
    Bytes::copy_from_slice(&out)
}

/// Parses a 65-byte signature whose `v` is 27/28 or 0/1.
pub fn parse_signature(signature: &[u8]) -> Result<Signature, Eip712Error> {
    if signature.len() != 65 {
        return Err(Eip712Error::SignatureLength(signature.len()));
    }
    let parity = match signature[64] {
        0 | 27 => false,
        1 | 28 => true,
        v => return Err(Eip712Error::Signature(format!("invalid v {v}"))),
    };
    Ok(Signature::new(
        U256::from_be_slice(&signature[..32]),
        U256::from_be_slice(&signature[32..64]),
        parity,
    ))
}

/// The address that signed `message` under `domain`.
pub fn recover<T: SolStruct>(
    message: &T,
    domain: &Eip712Domain,
    signature: &[u8],
) -> Result<Address, Eip712Error> {
    recover_hash(message.eip712_signing_hash(domain), signature)
}

fn recover_hash(hash: B256, signature: &[u8]) -> Result<Address, Eip712Error> {
    parse_signature(signature)?
        .recover_address_from_prehash(&hash)
        .map_err(|e| Eip712Error::Signature(e.to_string()))
}

// ------------------------------------------------------------------ SDK JSON form

/// The SDK's JSON typed data for `message` under `domain`: `types` holds the primary type and
/// its dependencies (no `EIP712Domain`, like the SDK), integers are decimal strings, addresses
/// checksummed, and `domain.chainId` is a JSON number.
pub fn typed_data_json<T: SolStruct + SolValue>(
    message: &T,
    domain: &Eip712Domain,
) -> Result<Value, Eip712Error> {
    let resolver = Resolver::from_struct::<T>();
    let mut types = Map::new();
    for def in resolver.linearize(T::NAME).map_err(td_err)? {
        let props: Vec<Value> = def
            .props()
            .iter()
            .map(|p| json!({"name": p.name(), "type": p.type_name()}))
            .collect();
        types.insert(def.type_name().to_owned(), Value::Array(props));
    }
    let ty = resolver.resolve(T::NAME).map_err(td_err)?;
    let value = ty.abi_decode(&message.abi_encode()).map_err(td_err)?;
    Ok(json!({
        "domain": domain_json(domain)?,
        "types": types,
        "primaryType": T::NAME,
        "message": value_json(&value),
    }))
}

fn domain_json(domain: &Eip712Domain) -> Result<Value, Eip712Error> {
    let mut out = Map::new();
    if let Some(name) = &domain.name {
        out.insert("name".into(), Value::String(name.to_string()));
    }
    if let Some(version) = &domain.version {
        out.insert("version".into(), Value::String(version.to_string()));
    }
    if let Some(chain_id) = domain.chain_id {
        let id: u64 = chain_id
            .try_into()
            .map_err(|_| Eip712Error::Domain("chainId"))?;
        out.insert("chainId".into(), Value::from(id));
    }
    if let Some(contract) = domain.verifying_contract {
        out.insert(
            "verifyingContract".into(),
            Value::String(contract.to_checksum(None)),
        );
    }
    Ok(Value::Object(out))
}

fn value_json(value: &DynSolValue) -> Value {
    match value {
        DynSolValue::Uint(v, _) => Value::String(v.to_string()),
        DynSolValue::Int(v, _) => Value::String(v.to_string()),
        DynSolValue::Bool(b) => Value::Bool(*b),
        DynSolValue::Address(a) => Value::String(a.to_checksum(None)),
        DynSolValue::String(s) => Value::String(s.clone()),
        DynSolValue::Bytes(b) => Value::String(format!("0x{}", alloy::primitives::hex::encode(b))),
        DynSolValue::FixedBytes(w, n) => {
            Value::String(format!("0x{}", alloy::primitives::hex::encode(&w[..*n])))
        }
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) | DynSolValue::Tuple(items) => {
            Value::Array(items.iter().map(value_json).collect())
        }
        DynSolValue::CustomStruct {
            prop_names, tuple, ..
        } => Value::Object(
            prop_names
                .iter()
                .zip(tuple)
                .map(|(name, v)| (name.clone(), value_json(v)))
                .collect(),
        ),
        DynSolValue::Function(f) => Value::String(f.to_string()),
    }
}

/// Parses SDK JSON typed data (an object, or a string holding one).
pub fn parse_typed_data(json: &Value) -> Result<TypedData, Eip712Error> {
    Ok(serde_json::from_value(json.clone())?)
}

/// The EIP-712 signing hash of JSON typed data.
pub fn typed_data_signing_hash(typed: &TypedData) -> Result<B256, Eip712Error> {
    typed.eip712_signing_hash().map_err(td_err)
}

/// The address that signed JSON typed data (what the relayer checks against
/// `expectedUserAddress`).
pub fn recover_typed_data(typed: &TypedData, signature: &[u8]) -> Result<Address, Eip712Error> {
    recover_hash(typed_data_signing_hash(typed)?, signature)
}

/// The message of JSON typed data as the sol struct `T`, checking `primaryType`.
pub fn message_from_typed_data<
    T: SolStruct + SolValue + From<<T::SolType as alloy::sol_types::SolType>::RustType>,
>(
    typed: &TypedData,
) -> Result<T, Eip712Error> {
    if typed.primary_type != T::NAME {
        return Err(Eip712Error::PrimaryType {
            expected: T::NAME.to_owned(),
            found: typed.primary_type.clone(),
        });
    }
    let value = typed.coerce().map_err(td_err)?;
    let ty: DynSolType = typed.resolver.resolve(T::NAME).map_err(td_err)?;
    debug_assert!(ty.matches(&value));
    <T as SolValue>::abi_decode(&value.abi_encode()).map_err(td_err)
}

/// The domain of JSON typed data, with its chain id and verifying contract required.
pub fn typed_data_domain(typed: &TypedData) -> Result<(u64, Address), Eip712Error> {
    let chain_id = typed
        .domain
        .chain_id
        .ok_or(Eip712Error::Domain("chainId"))?;
    let chain_id = chain_id
        .try_into()
        .map_err(|_| Eip712Error::Domain("chainId"))?;
    let contract = typed
        .domain
        .verifying_contract
        .ok_or(Eip712Error::Domain("verifyingContract"))?;
    Ok((chain_id, contract))
}

fn td_err(e: impl std::fmt::Display) -> Eip712Error {
    Eip712Error::TypedData(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{address, keccak256};

    const MNEMONIC: &str = "test test test test test test test test test test test junk";

    fn signer() -> PrivateKeySigner {
        alloy::signers::local::MnemonicBuilder::from_phrase_nth(MNEMONIC, 1000)
    }

    fn contract() -> Address {
        address!("0xD54523048AdD05b4d734aFaE7C68324Ebb7373eF")
    }

    fn grant() -> permission::Permission {
        permission::Permission {
            nonce: U256::from(3),
            granteeId: U256::from(1),
            grant: "ipfs://QmGrant".into(),
            fileIds: vec![U256::from(7), U256::from(12)],
        }
    }

    fn server_files() -> server_files::ServerFilesAndPermission {
        server_files::ServerFilesAndPermission {
            nonce: U256::ZERO,
            granteeId: U256::from(1),
            grant: "ipfs://QmGrant2".into(),
            fileUrls: vec!["ipfs://a".into(), "ipfs://b".into()],
            schemaIds: vec![U256::ZERO, U256::from(1)],
            serverAddress: address!("0x00000000000000000000000000000000000000aa"),
            serverUrl: "http://127.0.0.1:1".into(),
            serverPublicKey: "0x04ab".into(),
            filePermissions: vec![
                vec![server_files::Permission {
                    account: address!("0x00000000000000000000000000000000000000aa"),
                    key: "deadbeef".into(),
                }],
                vec![],
            ],
        }
    }

    #[test]
    fn type_hashes_match_the_deployed_contracts() {
        // Prefixes/suffixes from vana-wire.md §1.6/§1.7 (from the deployed contracts).
        let th = hex_of(keccak256(
            permission::Permission::eip712_encode_type().as_bytes(),
        ));
        assert!(th.starts_with("dfa7827c") && th.ends_with("1020"), "{th}");
        let add = server::AddServer::eip712_encode_type();
        assert!(hex_of(keccak256(add.as_bytes())).starts_with("473ddd98"));
        assert_eq!(
            server_files::ServerFilesAndPermission::eip712_encode_type(),
            "ServerFilesAndPermission(uint256 nonce,uint256 granteeId,string grant,string[] fileUrls,uint256[] schemaIds,address serverAddress,string serverUrl,string serverPublicKey,Permission[][] filePermissions)Permission(address account,string key)"
        );
    }

    fn hex_of(h: B256) -> String {
        alloy::primitives::hex::encode(h)
    }

    #[test]
    fn sign_and_recover_round_trip() {
        let s = signer();
        let d = permissions_domain(14800, contract());
        let sig = sign(&s, &grant(), &d).unwrap();
        assert_eq!(sig.len(), 65);
        assert!(sig[64] == 27 || sig[64] == 28);
        assert_eq!(recover(&grant(), &d, &sig).unwrap(), s.address());
        // Another domain (chain, contract or name) recovers someone else.
        let other = permissions_domain(1480, contract());
        assert_ne!(recover(&grant(), &other, &sig).unwrap(), s.address());
        let servers = servers_domain(14800, contract());
        assert_ne!(recover(&grant(), &servers, &sig).unwrap(), s.address());
        // v as 0/1 is accepted too; a wrong length is named.
        let mut raw = sig.to_vec();
        raw[64] -= 27;
        assert_eq!(recover(&grant(), &d, &raw).unwrap(), s.address());
        assert!(matches!(
            recover(&grant(), &d, &raw[..64]),
            Err(Eip712Error::SignatureLength(64))
        ));
    }

    #[test]
    fn signature_matches_an_independent_implementation() {
        // Digest and signature computed outside alloy, with js-sha3's keccak256 and
        // elliptic's RFC 6979 secp256k1 signing (low s), from the EIP-712 text: any
        // change in hashing or signing shows here byte for byte.
        let key = alloy::primitives::b256!(
            "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
        );
        let s = PrivateKeySigner::from_bytes(&key).unwrap();
        let d = permissions_domain(14800, contract());
        assert_eq!(
            hex_of(grant().eip712_signing_hash(&d)),
            "6a58dfdb523c4cee887cc9cc8fa07d3b99157dc779942c20aa6ba58f46a19ff1"
        );
        assert_eq!(
            alloy::primitives::hex::encode(sign(&s, &grant(), &d).unwrap()),
            "c9699f986ab8a869f416d2e6f9c2edf5817ffa9cbc8abe6064e35cfb8eecdffc\
             46eafa8f597936a8ea6f50a065ba4fdadfcb42fbc9a6bc59c0d874d4941a7c60\
             1b"
        );
    }

    #[test]
    fn sdk_json_form_round_trips() {
        let s = signer();
        let d = permissions_domain(14800, contract());
        let json = typed_data_json(&grant(), &d).unwrap();
        assert_eq!(json["primaryType"], "Permission");
        assert_eq!(json["domain"]["chainId"], 14800);
        assert_eq!(json["domain"]["name"], PERMISSIONS_DOMAIN_NAME);
        assert_eq!(
            json["domain"]["verifyingContract"],
            contract().to_checksum(None)
        );
        assert_eq!(json["message"]["nonce"], "3");
        assert_eq!(json["message"]["fileIds"], json!(["7", "12"]));
        assert_eq!(
            json["types"]["Permission"],
            json!([
                {"name": "nonce", "type": "uint256"},
                {"name": "granteeId", "type": "uint256"},
                {"name": "grant", "type": "string"},
                {"name": "fileIds", "type": "uint256[]"}
            ])
        );
        assert!(json["types"].get("EIP712Domain").is_none());

        // Through a string, as it travels in the relayer request.
        let text = serde_json::to_string(&json).unwrap();
        let typed = parse_typed_data(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(
            typed_data_signing_hash(&typed).unwrap(),
            grant().eip712_signing_hash(&d)
        );
        let sig = sign(&s, &grant(), &d).unwrap();
        assert_eq!(recover_typed_data(&typed, &sig).unwrap(), s.address());
        let back: permission::Permission = message_from_typed_data(&typed).unwrap();
        assert_eq!(back, grant());
        assert_eq!(typed_data_domain(&typed).unwrap(), (14800, contract()));
        let wrong = message_from_typed_data::<permission::RevokePermission>(&typed);
        assert!(matches!(wrong, Err(Eip712Error::PrimaryType { .. })));
    }

    #[test]
    fn nested_server_files_json_round_trips() {
        let s = signer();
        let d = permissions_domain(14800, contract());
        let msg = server_files();
        let json = typed_data_json(&msg, &d).unwrap();
        assert_eq!(json["types"]["Permission"].as_array().unwrap().len(), 2);
        assert_eq!(json["message"]["filePermissions"][0][0]["key"], "deadbeef");
        assert_eq!(json["message"]["filePermissions"][1], json!([]));
        let typed = parse_typed_data(&json).unwrap();
        assert_eq!(
            typed_data_signing_hash(&typed).unwrap(),
            msg.eip712_signing_hash(&d)
        );
        let sig = sign(&s, &msg, &d).unwrap();
        assert_eq!(recover_typed_data(&typed, &sig).unwrap(), s.address());
        let back: server_files::ServerFilesAndPermission = message_from_typed_data(&typed).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn json_with_eip712domain_type_and_hex_numbers_is_accepted() {
        let d = servers_domain(14800, contract());
        let msg = server::TrustServer {
            nonce: U256::from(2),
            serverId: U256::from(9),
        };
        let mut json = typed_data_json(&msg, &d).unwrap();
        json["types"]["EIP712Domain"] = json!([
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"}
        ]);
        json["message"]["serverId"] = json!("0x9");
        let typed = parse_typed_data(&json).unwrap();
        assert_eq!(
            typed_data_signing_hash(&typed).unwrap(),
            msg.eip712_signing_hash(&d)
        );
    }
}

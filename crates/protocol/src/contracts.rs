//! Alloy bindings for the Vana contracts, generated from the committed artifacts in
//! `contracts/out/` (so the Rust side can never drift from what the twin deploys), and
//! revert decoding to the named Solidity error.
//!
//! Each contract is one `sol!` invocation in its own module (`data_registry::DataRegistry`,
//! …), re-exported here (`contracts::DataRegistry`). Struct types live in the library module
//! named after the Solidity interface that declares them (`IDataRegistry::Proof`, …); since
//! each invocation generates its own copy, the same Solidity struct used by two contracts is
//! two Rust types. The canonical ones are re-exported at this level (`Permission`, `Proof`,
//! `ProofData`, …) and convert into the other copies with `From`.
//!
//! Every binding has `#[sol(rpc)]`, so `DataRegistry::new(address, provider)` gives a typed
//! instance, and `DataRegistry::deploy_builder(provider)` the deployment (the artifacts carry
//! bytecode).

use std::collections::HashMap;
use std::sync::LazyLock;

use alloy::dyn_abi::{DynSolValue, JsonAbiExt};
use alloy::json_abi::JsonAbi;
use alloy::primitives::{Bytes, Selector, hex};
use alloy::sol_types::{Panic, Revert, SolError, SolValue};

macro_rules! binding {
    ($module:ident, $name:ident, $file:literal) => {
        #[doc = concat!("Bindings generated from `contracts/out/", $file, "`.")]
        #[allow(missing_docs, clippy::too_many_arguments)]
        pub mod $module {
            alloy::sol!(
                #[sol(rpc, all_derives)]
                $name,
                concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts/out/", $file)
            );
        }
        pub use $module::$name;
    };
}

binding!(data_registry, DataRegistry, "DataRegistry.json");
binding!(
    data_refiner_registry,
    DataRefinerRegistry,
    "DataRefinerRegistry.json"
);
binding!(
    permissions,
    DataPortabilityPermissions,
    "DataPortabilityPermissions.json"
);
binding!(
    grantees,
    DataPortabilityGrantees,
    "DataPortabilityGrantees.json"
);
binding!(
    servers,
    DataPortabilityServers,
    "DataPortabilityServers.json"
);
binding!(tee_pool, TeePoolPhala, "TeePoolPhala.json");
binding!(dlp, DataLiquidityPool, "DataLiquidityPool.json");
binding!(reward_token, RewardToken, "RewardToken.json");
binding!(batch_funder, BatchFunder, "BatchFunder.json");
binding!(proxy, ERC1967Proxy, "ERC1967Proxy.json");

/// DataRegistry types: `Permission{account, key}` (a file's encrypted key for one account),
/// `Proof{signature, data}`, `ProofData`, `FileResponse`.
pub use data_registry::IDataRegistry::{FileResponse, Permission, Proof, ProofData};
/// DataLiquidityPool structs.
pub use dlp::DataLiquidityPool::InitParams as DlpInitParams;
pub use dlp::IDataLiquidityPool::{ContributorInfoResponse, FileResponse as DlpFileResponse};
/// DataPortabilityGrantees' `GranteeInfo`.
pub use grantees::IDataPortabilityGrantees::GranteeInfo;
/// DataPortabilityPermissions input/output structs.
pub use permissions::IDataPortabilityPermissions::{
    PermissionInfo, PermissionInput, RevokePermissionInput, ServerFilesAndPermissionInput,
};
/// DataPortabilityServers structs.
pub use servers::IDataPortabilityServers::{
    AddServerInput, AddServerWithSignatureInput, ServerInfo, TrustServerInput, TrustedServerInfo,
    UntrustServerInput,
};
/// TeePool structs and enums.
pub use tee_pool::ITeePool::{Job, JobStatus, TeeInfo, TeeStatus};

/// Converts between two generated copies of the same Solidity type (identical ABI encoding).
fn recast<A: SolValue, B: SolValue + From<<B::SolType as alloy::sol_types::SolType>::RustType>>(
    a: &A,
) -> B {
    B::abi_decode(&a.abi_encode()).expect("both types have the same ABI encoding")
}

macro_rules! same_type {
    ($a:ty, $b:ty) => {
        impl From<$a> for $b {
            fn from(value: $a) -> Self {
                recast(&value)
            }
        }
        impl From<$b> for $a {
            fn from(value: $b) -> Self {
                recast(&value)
            }
        }
    };
}

same_type!(Proof, tee_pool::IDataRegistry::Proof);
same_type!(ProofData, tee_pool::IDataRegistry::ProofData);
same_type!(Permission, permissions::IDataRegistry::Permission);

/// The message a TEE signs for a proof (vana-wire §1.4): `keccak256(abi.encodePacked(url,
/// score, dlpId, metadata, proofUrl, instruction))`, signed as an EIP-191 `personal_sign`
/// message (the DLP applies `toEthSignedMessageHash` and recovers).
pub fn proof_message_hash(file_url: &str, data: &ProofData) -> alloy::primitives::B256 {
    let packed = (
        file_url.to_owned(),
        data.score,
        data.dlpId,
        data.metadata.clone(),
        data.proofUrl.clone(),
        data.instruction.clone(),
    )
        .abi_encode_packed();
    alloy::primitives::keccak256(packed)
}

// ------------------------------------------------------------------ revert decoding

/// The ABI of every deployable contract, as committed.
pub const ARTIFACTS: &[(&str, &str)] = &[
    (
        "DataRegistry",
        include_str!("../../../contracts/out/DataRegistry.json"),
    ),
    (
        "DataRefinerRegistry",
        include_str!("../../../contracts/out/DataRefinerRegistry.json"),
    ),
    (
        "DataPortabilityPermissions",
        include_str!("../../../contracts/out/DataPortabilityPermissions.json"),
    ),
    (
        "DataPortabilityGrantees",
        include_str!("../../../contracts/out/DataPortabilityGrantees.json"),
    ),
    (
        "DataPortabilityServers",
        include_str!("../../../contracts/out/DataPortabilityServers.json"),
    ),
    (
        "TeePoolPhala",
        include_str!("../../../contracts/out/TeePoolPhala.json"),
    ),
    (
        "DataLiquidityPool",
        include_str!("../../../contracts/out/DataLiquidityPool.json"),
    ),
    (
        "RewardToken",
        include_str!("../../../contracts/out/RewardToken.json"),
    ),
    (
        "BatchFunder",
        include_str!("../../../contracts/out/BatchFunder.json"),
    ),
    (
        "ERC1967Proxy",
        include_str!("../../../contracts/out/ERC1967Proxy.json"),
    ),
];

/// The JSON ABI of the named contract's artifact (`None` for an unknown name).
pub fn artifact_abi(contract: &str) -> Option<JsonAbi> {
    let (_, json) = ARTIFACTS.iter().find(|(name, _)| *name == contract)?;
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    serde_json::from_value(value.get("abi")?.clone()).ok()
}

/// Every custom error of every contract (OpenZeppelin's included), by selector.
static ERRORS: LazyLock<HashMap<Selector, alloy::json_abi::Error>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    for (name, _) in ARTIFACTS {
        let abi = artifact_abi(name).expect("committed artifacts are valid JSON ABIs");
        for error in abi.errors() {
            map.entry(error.selector()).or_insert_with(|| error.clone());
        }
    }
    map
});

/// The name of the error in revert data: a custom error of any of our contracts
/// (e.g. `"InvalidNonce"`, `"AccessControlUnauthorizedAccount"`), `"Error"` for
/// `Error(string)`, `"Panic"` for `Panic(uint256)`; `None` for empty or unknown data.
pub fn decode_revert(data: &[u8]) -> Option<String> {
    let selector: [u8; 4] = data.get(..4)?.try_into().ok()?;
    if selector == Revert::SELECTOR {
        return Some("Error".to_owned());
    }
    if selector == Panic::SELECTOR {
        return Some("Panic".to_owned());
    }
    ERRORS
        .get(&Selector::from(selector))
        .map(|e| e.name.clone())
}

/// The error in revert data with its arguments, e.g.
/// `InvalidNonce(expectedNonce: 0, providedNonce: 5)`, `Error("reason")`,
/// `Panic(0x11: arithmetic underflow or overflow)`. Unknown data is shown as hex.
pub fn describe_revert(data: &[u8]) -> String {
    if data.is_empty() {
        return "empty revert data".to_owned();
    }
    if let Ok(revert) = Revert::abi_decode(data) {
        return format!("Error({:?})", revert.reason);
    }
    if let Ok(panic) = Panic::abi_decode(data) {
        return format!("Panic({:#x}: {})", panic.code, panic.as_geth_str());
    }
    if data.len() >= 4 {
        let selector = Selector::from_slice(&data[..4]);
        if let Some(error) = ERRORS.get(&selector) {
            let args = match error.abi_decode_input(&data[4..]) {
                Ok(values) => error
                    .inputs
                    .iter()
                    .zip(values.iter())
                    .map(|(param, value)| format!("{}: {}", param.name, show(value)))
                    .collect::<Vec<_>>()
                    .join(", "),
                Err(_) => format!("<undecodable 0x{}>", hex::encode(&data[4..])),
            };
            return format!("{}({args})", error.name);
        }
    }
    format!("unknown revert 0x{}", hex::encode(data))
}

fn show(value: &DynSolValue) -> String {
    match value {
        DynSolValue::Uint(v, _) => v.to_string(),
        DynSolValue::Int(v, _) => v.to_string(),
        DynSolValue::Address(a) => a.to_checksum(None),
        DynSolValue::Bool(b) => b.to_string(),
        DynSolValue::String(s) => format!("{s:?}"),
        DynSolValue::Bytes(b) => format!("0x{}", hex::encode(b)),
        DynSolValue::FixedBytes(w, n) => format!("0x{}", hex::encode(&w[..*n])),
        other => format!("{other:?}"),
    }
}

/// The revert data carried by a failed contract call or transaction, if any.
pub fn revert_data(err: &alloy::contract::Error) -> Option<Bytes> {
    err.as_revert_data()
}

/// The named error of a failed contract call (see [`decode_revert`]).
pub fn revert_name(err: &alloy::contract::Error) -> Option<String> {
    revert_data(err).and_then(|data| decode_revert(&data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, U256};

    #[test]
    fn decodes_custom_errors_by_name_and_args() {
        let data = permissions::DataPortabilityPermissions::InvalidNonce {
            expectedNonce: U256::from(3),
            providedNonce: U256::from(7),
        }
        .abi_encode();
        assert_eq!(decode_revert(&data).as_deref(), Some("InvalidNonce"));
        assert_eq!(
            describe_revert(&data),
            "InvalidNonce(expectedNonce: 3, providedNonce: 7)"
        );

        let data = data_registry::DataRegistry::FileUrlAlreadyUsed {}.abi_encode();
        assert_eq!(decode_revert(&data).as_deref(), Some("FileUrlAlreadyUsed"));
        let data = tee_pool::TeePoolPhala::InsufficientFee {}.abi_encode();
        assert_eq!(decode_revert(&data).as_deref(), Some("InsufficientFee"));
        let data = dlp::DataLiquidityPool::InvalidAttestator {}.abi_encode();
        assert_eq!(decode_revert(&data).as_deref(), Some("InvalidAttestator"));
    }

    #[test]
    fn decodes_openzeppelin_errors() {
        let who = Address::repeat_byte(0x11);
        let data = data_registry::DataRegistry::AccessControlUnauthorizedAccount {
            account: who,
            neededRole: Default::default(),
        }
        .abi_encode();
        assert_eq!(
            decode_revert(&data).as_deref(),
            Some("AccessControlUnauthorizedAccount")
        );
        assert!(describe_revert(&data).contains(&who.to_checksum(None)));
        let data = reward_token::RewardToken::ERC20InsufficientBalance {
            sender: who,
            balance: U256::from(1),
            needed: U256::from(2),
        }
        .abi_encode();
        assert_eq!(
            decode_revert(&data).as_deref(),
            Some("ERC20InsufficientBalance")
        );
    }

    #[test]
    fn decodes_error_string_and_panic() {
        let data = Revert::from("boom").abi_encode();
        assert_eq!(decode_revert(&data).as_deref(), Some("Error"));
        assert_eq!(describe_revert(&data), "Error(\"boom\")");
        let data = Panic::from(0x11).abi_encode();
        assert_eq!(decode_revert(&data).as_deref(), Some("Panic"));
        assert!(describe_revert(&data).starts_with("Panic(0x11"));
    }

    #[test]
    fn unknown_or_short_data_is_not_named() {
        assert_eq!(decode_revert(&[]), None);
        assert_eq!(decode_revert(&[1, 2, 3]), None);
        assert_eq!(decode_revert(&[0xde, 0xad, 0xbe, 0xef]), None);
        assert_eq!(
            describe_revert(&[0xde, 0xad, 0xbe, 0xef]),
            "unknown revert 0xdeadbeef"
        );
    }

    #[test]
    fn struct_copies_convert_losslessly() {
        let proof = Proof {
            signature: Bytes::from(vec![1, 2, 3]),
            data: ProofData {
                score: U256::from(5),
                dlpId: U256::from(1),
                metadata: "m".into(),
                proofUrl: "u".into(),
                instruction: "i".into(),
            },
        };
        let tee: tee_pool::IDataRegistry::Proof = proof.clone().into();
        let back: Proof = tee.into();
        assert_eq!(back, proof);
    }
}

//! The TEE's `POST /RunProof` request, as the DLP UI template sends it, and the
//! score/proof signing rule that `DataLiquidityPool.requestReward` verifies.

use std::collections::BTreeMap;

use alloy::primitives::{Address, B256, U256, keccak256};
use serde::{Deserialize, Serialize};

/// `POST {teeUrl}/RunProof` body.
///
/// The client sends either the user key K in clear (`encryption_key`) or K
/// ECIES-encrypted to the TEE's public key (`encrypted_encryption_key`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunProofRequest {
    pub job_id: u64,
    pub file_id: u64,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_encryption_key: Option<String>,
    /// The proof-of-contribution image (`….tar.gz`) the TEE runs.
    pub proof_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_seed: Option<String>,
    #[serde(default)]
    pub env_vars: BTreeMap<String, String>,
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate_permissions: Option<serde_json::Value>,
}

/// `POST /RunProof` → 202: the job is queued; the proof lands on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunProofAccepted {
    pub job_id: u64,
    pub status: String,
}

/// Error body of the TEE service: `{"error": "...", "code": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeeError {
    pub error: String,
    pub code: String,
}

/// The digest the TEE signs (EIP-191) and `requestReward` recovers:
/// `keccak256(abi.encodePacked(url, score, dlpId, metadata, proofUrl, instruction))`.
pub fn proof_digest(
    file_url: &str,
    score: U256,
    dlp_id: U256,
    metadata: &str,
    proof_url: &str,
    instruction: &str,
) -> B256 {
    let mut packed = Vec::with_capacity(
        file_url.len() + 64 + metadata.len() + proof_url.len() + instruction.len(),
    );
    packed.extend_from_slice(file_url.as_bytes());
    packed.extend_from_slice(&score.to_be_bytes::<32>());
    packed.extend_from_slice(&dlp_id.to_be_bytes::<32>());
    packed.extend_from_slice(metadata.as_bytes());
    packed.extend_from_slice(proof_url.as_bytes());
    packed.extend_from_slice(instruction.as_bytes());
    keccak256(packed)
}

/// Who may have signed a proof: recovers the EIP-191 signer of [`proof_digest`].
pub fn recover_proof_signer(digest: B256, signature: &[u8]) -> Option<Address> {
    let sig = alloy::primitives::Signature::try_from(signature).ok()?;
    sig.recover_address_from_msg(digest.as_slice()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::SignerSync;
    use alloy::signers::local::PrivateKeySigner;

    #[test]
    fn proof_signature_round_trips() {
        let tee = PrivateKeySigner::random();
        let d = proof_digest(
            "ipfs://x",
            U256::from(5u64),
            U256::from(1u64),
            "{}",
            "p",
            "i",
        );
        let sig = tee.sign_message_sync(d.as_slice()).unwrap();
        assert_eq!(
            recover_proof_signer(d, &sig.as_bytes()),
            Some(tee.address())
        );
        let other = proof_digest(
            "ipfs://y",
            U256::from(5u64),
            U256::from(1u64),
            "{}",
            "p",
            "i",
        );
        assert_ne!(
            recover_proof_signer(other, &sig.as_bytes()),
            Some(tee.address())
        );
    }

    #[test]
    fn request_accepts_either_key_form() {
        let r: RunProofRequest = serde_json::from_str(
            r#"{"job_id":1,"file_id":2,"nonce":null,"encrypted_encryption_key":"ab","proof_url":"u","env_vars":{},"secrets":{}}"#,
        )
        .unwrap();
        assert_eq!(r.encrypted_encryption_key.as_deref(), Some("ab"));
        assert!(r.encryption_key.is_none());
    }
}

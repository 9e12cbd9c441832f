//! The storage APIs the SDK uploads to, as the real services speak them:
//! Pinata's `POST /pinning/pinFileToIPFS`, an IPFS (Kubo) node's
//! `POST /api/v0/add`, the `GET /ipfs/<cid>` gateway, their error bodies, and
//! the content identifiers and URLs (`ipfs://<cid>`) the client stores on chain.
//!
//! CIDs are CIDv1, raw codec (0x55), sha2-256 multihash, printed in base32
//! (`bafkrei…`): the same CID `ipfs add --cid-version=1 --raw-leaves` gives a
//! file that fits in one block.

use cid::Cid;
use multihash::Multihash;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Pinata's upload route.
pub const PIN_FILE_PATH: &str = "/pinning/pinFileToIPFS";
/// A Kubo node's add route.
pub const IPFS_ADD_PATH: &str = "/api/v0/add";
/// The gateway prefix; the bytes of `<cid>` are at `{base}/ipfs/<cid>`.
pub const GATEWAY_PREFIX: &str = "/ipfs/";
/// Multicodec of raw bytes.
pub const RAW_CODEC: u64 = 0x55;
/// Multihash code of sha2-256.
pub const SHA2_256_CODE: u64 = 0x12;

/// `POST /pinning/pinFileToIPFS` → 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinFileResponse {
    /// The CID of the uploaded bytes.
    #[serde(rename = "IpfsHash")]
    pub ipfs_hash: String,
    /// Bytes pinned.
    #[serde(rename = "PinSize")]
    pub pin_size: u64,
    /// When the content was first pinned (RFC 3339, UTC).
    #[serde(rename = "Timestamp")]
    pub timestamp: String,
    /// `true` when the same content was already pinned (Pinata sends it only then).
    #[serde(
        rename = "isDuplicate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub is_duplicate: Option<bool>,
}

/// The multipart `pinataMetadata` field (a JSON text).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PinataMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub keyvalues: serde_json::Map<String, serde_json::Value>,
}

impl PinataMetadata {
    /// What the Vana SDK sends: `{"name":…,"keyvalues":{"uploadedBy":"vana-sdk","timestamp":…}}`.
    pub fn sdk(name: &str, timestamp_iso: &str) -> Self {
        let mut keyvalues = serde_json::Map::new();
        keyvalues.insert("uploadedBy".into(), "vana-sdk".into());
        keyvalues.insert("timestamp".into(), timestamp_iso.into());
        PinataMetadata {
            name: Some(name.to_string()),
            keyvalues,
        }
    }
}

/// `POST /api/v0/add` → 200 (one JSON object per added file; Kubo sends `Size` as a string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpfsAddResponse {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Hash")]
    pub hash: String,
    #[serde(rename = "Size")]
    pub size: String,
}

/// Pinata's error body: `{"error":{"reason":"…","details":"…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinataError {
    pub error: PinataErrorBody,
}

/// The inside of a [`PinataError`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinataErrorBody {
    /// A stable upper-case code, e.g. `INVALID_CREDENTIALS`, `FILE_TOO_LARGE`.
    pub reason: String,
    /// A human-readable explanation naming the problem.
    pub details: String,
}

impl PinataError {
    pub fn new(reason: &str, details: impl Into<String>) -> Self {
        PinataError {
            error: PinataErrorBody {
                reason: reason.to_string(),
                details: details.into(),
            },
        }
    }
}

/// Kubo's RPC error body: `{"Message":"…","Code":0,"Type":"error"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KuboError {
    #[serde(rename = "Message")]
    pub message: String,
    #[serde(rename = "Code")]
    pub code: i64,
    #[serde(rename = "Type")]
    pub kind: String,
}

impl KuboError {
    pub fn new(message: impl Into<String>) -> Self {
        KuboError {
            message: message.into(),
            code: 0,
            kind: "error".into(),
        }
    }
}

/// A string that is not a CID, or not an IPFS URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidError {
    #[error("`{input}` is not a valid CID: {reason}")]
    Malformed { input: String, reason: String },
    #[error("`{0}` is not an IPFS URL (expected ipfs://<cid> or <gateway>/ipfs/<cid>)")]
    NotIpfsUrl(String),
}

/// The CID of `bytes`: CIDv1, raw codec, sha2-256.
pub fn raw_cid(bytes: &[u8]) -> Cid {
    cid_from_sha256(Sha256::digest(bytes).into())
}

/// The CIDv1 (raw, sha2-256) of content whose sha2-256 digest is `digest`.
pub fn cid_from_sha256(digest: [u8; 32]) -> Cid {
    let mh = Multihash::<64>::wrap(SHA2_256_CODE, &digest)
        .expect("a 32-byte digest fits a 64-byte multihash");
    Cid::new_v1(RAW_CODEC, mh)
}

/// Parses a CID string (v0 `Qm…` or v1 multibase).
pub fn parse_cid(s: &str) -> Result<Cid, CidError> {
    Cid::try_from(s).map_err(|e| CidError::Malformed {
        input: s.to_string(),
        reason: e.to_string(),
    })
}

/// `ipfs://<cid>`: the URL the SDK registers on chain for an upload.
pub fn ipfs_url(cid: &str) -> String {
    format!("ipfs://{cid}")
}

/// `{base}/ipfs/<cid>`, with any trailing `/` of `base` dropped.
pub fn gateway_url(base: &str, cid: &str) -> String {
    format!("{}{GATEWAY_PREFIX}{cid}", base.trim_end_matches('/'))
}

/// The CID named by `ipfs://<cid>`, `…/ipfs/<cid>` or a bare CID string.
pub fn cid_of_url(url: &str) -> Result<Cid, CidError> {
    let rest = if let Some(rest) = url.strip_prefix("ipfs://") {
        rest
    } else if let Some(pos) = url.find(GATEWAY_PREFIX) {
        &url[pos + GATEWAY_PREFIX.len()..]
    } else if !url.contains('/') && !url.contains(':') {
        url
    } else {
        return Err(CidError::NotIpfsUrl(url.to_string()));
    };
    let cid = rest.split(['/', '?', '#']).next().unwrap_or_default();
    parse_cid(cid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_cid_matches_ipfs_for_hello_world() {
        // `echo -n "hello world" | ipfs add --cid-version=1 --raw-leaves`
        let cid = raw_cid(b"hello world");
        assert_eq!(
            cid.to_string(),
            "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
        );
        assert_eq!(cid.codec(), RAW_CODEC);
        assert_eq!(cid.hash().code(), SHA2_256_CODE);
    }

    #[test]
    fn urls_round_trip() {
        let cid = raw_cid(b"x").to_string();
        assert_eq!(cid_of_url(&ipfs_url(&cid)).unwrap().to_string(), cid);
        let g = gateway_url("http://127.0.0.1:5/", &cid);
        assert_eq!(g, format!("http://127.0.0.1:5/ipfs/{cid}"));
        assert_eq!(cid_of_url(&g).unwrap().to_string(), cid);
        assert_eq!(cid_of_url(&cid).unwrap().to_string(), cid);
        assert!(matches!(
            cid_of_url("https://example.com/x"),
            Err(CidError::NotIpfsUrl(_))
        ));
        let err = cid_of_url("ipfs://not-a-cid").unwrap_err().to_string();
        assert!(err.contains("not-a-cid"), "{err}");
    }

    #[test]
    fn response_field_names_are_the_wire_names() {
        let r = PinFileResponse {
            ipfs_hash: "bafk".into(),
            pin_size: 3,
            timestamp: "2026-01-01T00:00:00Z".into(),
            is_duplicate: None,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"IpfsHash":"bafk","PinSize":3,"Timestamp":"2026-01-01T00:00:00Z"})
        );
        let add: IpfsAddResponse =
            serde_json::from_str(r#"{"Name":"f","Hash":"bafk","Size":"12"}"#).unwrap();
        assert_eq!(add.size, "12");
        let e = serde_json::to_value(PinataError::new("INVALID_CREDENTIALS", "no")).unwrap();
        assert_eq!(e["error"]["reason"], "INVALID_CREDENTIALS");
        let k = serde_json::to_value(KuboError::new("m")).unwrap();
        assert_eq!(
            k,
            serde_json::json!({"Message":"m","Code":0,"Type":"error"})
        );
    }
}

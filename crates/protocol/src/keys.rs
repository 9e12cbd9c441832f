//! HD keys of every role, from one mnemonic at `m/44'/60'/0'/0/{index}`, and the index
//! ranges reserved for each role (see docs/architecture.md).
//!
//! [`HdAccount`] computes the BIP-39 seed (2048 PBKDF2 rounds) and the account node
//! `m/44'/60'/0'/0` once; each key is then one non-hardened child step, so
//! [`derive_many`] of 15,000 wallets costs 15,000 child derivations, spread over all cores.

use std::ops::Range;

use alloy::signers::local::{MnemonicBuilder, MnemonicKey, PrivateKeySigner, coins_bip39::English};

/// Index of the deployer / admin / funder key.
pub const DEPLOYER_INDEX: u32 = 0;
/// Index of the app (grantee) key.
pub const APP_INDEX: u32 = 1;
/// TEE keys; the first one is the twin's active TEE.
pub const TEE_INDICES: Range<u32> = 2..10;
/// Index of the first (active) TEE key.
pub const FIRST_TEE_INDEX: u32 = 2;
/// The relayer key pool.
pub const RELAYER_INDICES: Range<u32> = 10..100;
/// User wallets start here.
pub const USER_INDEX_OFFSET: u32 = 1000;
// The role ranges do not overlap (checked at compile time).
const _: () = assert!(
    DEPLOYER_INDEX < APP_INDEX
        && APP_INDEX < TEE_INDICES.start
        && FIRST_TEE_INDEX == TEE_INDICES.start
        && TEE_INDICES.end <= RELAYER_INDICES.start
        && RELAYER_INDICES.end <= USER_INDEX_OFFSET
);

/// Anvil's default test mnemonic (the default of every test network here).
pub const DEFAULT_TEST_MNEMONIC: &str =
    "test test test test test test test test test test test junk";

/// A key derivation failure. Never contains the mnemonic.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("malformed mnemonic (word count, English word list or checksum)")]
    Mnemonic,
    #[error("HD index {0} is out of range (must be below 2^31)")]
    Index(u64),
    #[error("key derivation failed at index {index}: {reason}")]
    Derive { index: u32, reason: String },
}

/// The account node `m/44'/60'/0'/0` of a mnemonic; children are cheap.
#[derive(Clone)]
pub struct HdAccount {
    node: MnemonicKey,
}

impl std::fmt::Debug for HdAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HdAccount(<redacted>)")
    }
}

impl HdAccount {
    /// Validates the mnemonic (whitespace-normalised) and derives the account node once.
    pub fn new(mnemonic: &str) -> Result<Self, KeyError> {
        let phrase = normalize(mnemonic);
        let node = MnemonicBuilder::<English>::default()
            .phrase(phrase)
            .build_parent_key()
            .map_err(|_| KeyError::Mnemonic)?;
        Ok(Self { node })
    }

    /// The key at `m/44'/60'/0'/0/{index}`.
    pub fn signer(&self, index: u32) -> Result<PrivateKeySigner, KeyError> {
        if index >= 0x8000_0000 {
            return Err(KeyError::Index(index.into()));
        }
        self.node
            .child(index)
            .map(|k| k.signer())
            .map_err(|e| KeyError::Derive {
                index,
                reason: e.to_string(),
            })
    }

    /// The keys of `range`, in order, derived on all cores.
    pub fn signers(&self, range: Range<u32>) -> Result<Vec<PrivateKeySigner>, KeyError> {
        if range.end > 0x8000_0000 {
            return Err(KeyError::Index(range.end.into()));
        }
        let indices: Vec<u32> = range.collect();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if indices.len() < 64 || threads == 1 {
            return indices.iter().map(|&i| self.signer(i)).collect();
        }
        let chunk = indices.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = indices
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || part.iter().map(|&i| self.signer(i)).collect::<Vec<_>>())
                })
                .collect();
            let mut out = Vec::with_capacity(indices.len());
            for handle in handles {
                for signer in handle.join().expect("derivation thread panicked") {
                    out.push(signer?);
                }
            }
            Ok(out)
        })
    }
}

fn normalize(mnemonic: &str) -> String {
    mnemonic.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Checks that `mnemonic` is a valid English BIP-39 phrase (without deriving anything).
pub fn validate_mnemonic(mnemonic: &str) -> Result<(), KeyError> {
    alloy::signers::local::coins_bip39::Mnemonic::<English>::new_from_phrase(&normalize(mnemonic))
        .map(|_| ())
        .map_err(|_| KeyError::Mnemonic)
}

/// The key at `m/44'/60'/0'/0/{index}` of `mnemonic`.
pub fn derive_signer(mnemonic: &str, index: u32) -> Result<PrivateKeySigner, KeyError> {
    HdAccount::new(mnemonic)?.signer(index)
}

/// The keys of `range` of `mnemonic`: one seed computation, then one child step per key.
pub fn derive_many(mnemonic: &str, range: Range<u32>) -> Result<Vec<PrivateKeySigner>, KeyError> {
    HdAccount::new(mnemonic)?.signers(range)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::address;

    #[test]
    fn matches_anvil_default_accounts() {
        // Anvil prints these for its default mnemonic (accounts 0, 1 and 9).
        let keys = derive_many(DEFAULT_TEST_MNEMONIC, 0..10).unwrap();
        assert_eq!(
            keys[0].address(),
            address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
        );
        assert_eq!(
            keys[1].address(),
            address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
        );
        assert_eq!(
            keys[9].address(),
            address!("0xa0Ee7A142d267C1f36714E4a8F75612F20a79720")
        );
    }

    #[test]
    fn many_equals_one_by_one_in_order() {
        let many = derive_many(DEFAULT_TEST_MNEMONIC, 1000..1200).unwrap();
        assert_eq!(many.len(), 200);
        for (i, s) in many.iter().enumerate().step_by(37) {
            let one = derive_signer(DEFAULT_TEST_MNEMONIC, 1000 + i as u32).unwrap();
            assert_eq!(s.address(), one.address());
        }
        let reference = MnemonicBuilder::<English>::default()
            .phrase(DEFAULT_TEST_MNEMONIC)
            .index(1199)
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(many[199].address(), reference.address());
    }

    #[test]
    fn bad_input_is_named_without_the_phrase() {
        let err = derive_signer("test test test", 0).unwrap_err();
        assert!(matches!(err, KeyError::Mnemonic));
        assert!(!err.to_string().contains("test"));
        assert!(
            validate_mnemonic("  test test test test test test test test test test test junk ")
                .is_ok()
        );
        assert!(
            validate_mnemonic("test test test test test test test test test test test test")
                .is_err()
        );
        let acct = HdAccount::new(DEFAULT_TEST_MNEMONIC).unwrap();
        assert!(matches!(acct.signer(0x8000_0000), Err(KeyError::Index(_))));
        assert_eq!(format!("{acct:?}"), "HdAccount(<redacted>)");
    }
}

//! The hosted personal server's per-user keys (vana-wire.md §2, "Server key
//! derivation").
//!
//! `index = u32_be(sha256(lowercase "0x…" address)[..4]) mod 2^31`; the key is
//! the server mnemonic's account at `m/44'/60'/0'/0/{index}`, and the public
//! key is published as `"0x04" + X‖Y`.
//!
//! Cost: [`server_signer`] runs the full BIP-39 seed derivation (PBKDF2,
//! 2048 rounds of HMAC-SHA512) and five BIP-32 steps on every call (see the
//! `server_key` benches). A server deriving keys for many users should build
//! one [`ServerKeyring`], which does the seed and the four hardened/account
//! steps once and then one BIP-32 step per user.

use std::fmt;

use alloy::{
    primitives::Address,
    signers::local::{
        LocalSignerError, MnemonicBuilder, PrivateKeySigner,
        coins_bip39::{English, Mnemonic, MnemonicError},
    },
};
use coins_bip32::{
    Bip32Error,
    xkeys::{Parent, XPriv},
};
use sha2::{Digest, Sha256};

/// The BIP-44 account node under which the per-user keys sit.
pub const ACCOUNT_PATH: &str = "m/44'/60'/0'/0";

/// Failure to derive a server key.
#[derive(Debug, thiserror::Error)]
pub enum ServerKeyError {
    /// The server mnemonic is not a valid BIP-39 English phrase (or derivation failed).
    #[error("invalid server mnemonic: {0}")]
    Mnemonic(#[from] LocalSignerError),
    /// The server mnemonic is not a valid BIP-39 English phrase.
    #[error("invalid server mnemonic: {0}")]
    Phrase(#[from] MnemonicError),
    /// BIP-32 derivation failed (astronomically unlikely for a valid seed).
    #[error("BIP-32 derivation of a server key failed: {0}")]
    Derivation(#[from] Bip32Error),
}

/// The server mnemonic's account node `m/44'/60'/0'/0`, kept so that each
/// user's key costs one BIP-32 step. Secret: `Debug` is redacted.
#[derive(Clone)]
pub struct ServerKeyring {
    account: XPriv,
}

impl ServerKeyring {
    /// Runs the BIP-39 seed derivation once for `server_mnemonic`.
    pub fn new(server_mnemonic: &str) -> Result<Self, ServerKeyError> {
        let mnemonic = Mnemonic::<English>::new_from_phrase(server_mnemonic)?;
        Ok(Self {
            account: mnemonic.derive_key(ACCOUNT_PATH, None)?,
        })
    }

    /// The server's signer for `user` (same key as [`server_signer`]).
    pub fn signer_for(&self, user: Address) -> Result<PrivateKeySigner, ServerKeyError> {
        let child = self.account.derive_child(server_key_index(user))?;
        let key: &k256::ecdsa::SigningKey = child.as_ref();
        Ok(PrivateKeySigner::from_signing_key(key.clone()))
    }
}

impl fmt::Debug for ServerKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKeyring(<redacted>)")
    }
}

/// BIP-44 address index of `user`'s server key (always below 2^31).
pub fn server_key_index(user: Address) -> u32 {
    // Python's `user_address.lower()`: "0x" + 40 lowercase hex characters.
    let lower = format!("0x{}", hex::encode(user));
    let digest = Sha256::digest(lower.as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) & 0x7fff_ffff
}

/// The server's signer for `user`: `server_mnemonic` at `m/44'/60'/0'/0/{index}`.
pub fn server_signer(
    server_mnemonic: &str,
    user: Address,
) -> Result<PrivateKeySigner, ServerKeyError> {
    Ok(MnemonicBuilder::<English>::default()
        .phrase(server_mnemonic)
        .index(server_key_index(user))?
        .build()?)
}

/// The public key as the personal server publishes it: `"0x04"` + X‖Y
/// (130 hex characters after `0x`).
pub fn public_key_hex(signer: &PrivateKeySigner) -> String {
    format!("0x04{}", hex::encode(signer.public_key()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::address;

    const MNEMONIC: &str = "test test test test test test test test test test test junk";

    #[test]
    fn index_is_sha256_of_the_lowercase_address() {
        let user = address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
        let expected = Sha256::digest(b"0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266");
        let expected = u32::from_be_bytes(expected[..4].try_into().unwrap()) % (1 << 31);
        assert_eq!(server_key_index(user), expected);
        assert!(server_key_index(user) < 1 << 31);
    }

    #[test]
    fn signer_is_at_the_indexed_path_and_key_is_published_uncompressed() {
        let user = address!("70997970C51812dc3A010C7d01b50e0d17dc79C8");
        let signer = server_signer(MNEMONIC, user).unwrap();
        let direct = MnemonicBuilder::<English>::default()
            .phrase(MNEMONIC)
            .derivation_path(format!("m/44'/60'/0'/0/{}", server_key_index(user)))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(signer.address(), direct.address());
        let pk = public_key_hex(&signer);
        assert_eq!(pk.len(), 132);
        assert!(pk.starts_with("0x04"));
        // The published key hashes to the signer's address.
        let raw = hex::decode(&pk[4..]).unwrap();
        assert_eq!(Address::from_raw_public_key(&raw), signer.address());
        // Different users, different keys.
        let other = server_signer(
            MNEMONIC,
            address!("3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
        );
        assert_ne!(other.unwrap().address(), signer.address());
    }

    #[test]
    fn keyring_derives_the_same_keys() {
        let ring = ServerKeyring::new(MNEMONIC).unwrap();
        for user in [
            address!("70997970C51812dc3A010C7d01b50e0d17dc79C8"),
            address!("3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
            Address::ZERO,
        ] {
            assert_eq!(
                ring.signer_for(user).unwrap().address(),
                server_signer(MNEMONIC, user).unwrap().address()
            );
        }
        assert_eq!(format!("{ring:?}"), "ServerKeyring(<redacted>)");
    }

    #[test]
    fn bad_mnemonic_is_an_error() {
        let err = server_signer("not a mnemonic", Address::ZERO).unwrap_err();
        assert!(err.to_string().contains("invalid server mnemonic"), "{err}");
        let err = ServerKeyring::new("not a mnemonic").unwrap_err();
        assert!(err.to_string().contains("invalid server mnemonic"), "{err}");
    }
}

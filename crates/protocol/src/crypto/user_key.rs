//! The user key K: the EIP-191 `personal_sign` signature string of the
//! encryption seed message.
//!
//! K is `"0x"` + r‖s‖v in lowercase hex (132 characters, v = `1b`/`1c`). It is
//! deterministic (RFC 6979), shared by all of a user's files, and used *as a
//! string*: it is both the OpenPGP password and the ECIES plaintext.

use std::fmt;

use alloy::signers::{SignerSync, local::PrivateKeySigner};

/// The message the user signs to obtain K (vana-sdk `DEFAULT_ENCRYPTION_SEED`).
pub const ENCRYPTION_SEED: &str = "Please sign to retrieve your encryption key";

/// Length of K in characters: `"0x"` + 65 bytes in hex.
pub const USER_KEY_LEN: usize = 132;

/// The user key K. Secret: `Debug` is redacted and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct UserKey(String);

/// Failure to obtain or accept a user key.
#[derive(Debug, thiserror::Error)]
pub enum UserKeyError {
    /// The signer refused to sign the seed message.
    #[error("signing the encryption seed message failed: {0}")]
    Sign(#[from] alloy::signers::Error),
    /// A string offered as K is not a 0x-prefixed 65-byte lowercase hex signature.
    #[error("user key must be \"0x\" + 130 lowercase hex characters ending in 1b or 1c ({0})")]
    Format(&'static str),
}

impl UserKey {
    /// The key as the exact string the SDK uses (password and ECIES plaintext).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Accepts a K obtained elsewhere (e.g. decrypted from ECIES), checking its form.
    pub fn parse(s: &str) -> Result<Self, UserKeyError> {
        if s.len() != USER_KEY_LEN {
            return Err(UserKeyError::Format("wrong length"));
        }
        let Some(hex) = s.strip_prefix("0x") else {
            return Err(UserKeyError::Format("missing 0x prefix"));
        };
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(UserKeyError::Format("not lowercase hex"));
        }
        if !(hex.ends_with("1b") || hex.ends_with("1c")) {
            return Err(UserKeyError::Format("v is not 1b or 1c"));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserKey(<redacted>)")
    }
}

/// Derives K for `signer`: `personal_sign(ENCRYPTION_SEED)` as a signature string.
pub fn user_key(signer: &PrivateKeySigner) -> Result<UserKey, UserKeyError> {
    let sig = signer.sign_message_sync(ENCRYPTION_SEED.as_bytes())?;
    // `as_bytes` is r ‖ s ‖ v with v = 27/28, the encoding viem's signMessage returns.
    Ok(UserKey(format!("0x{}", hex::encode(sig.as_bytes()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::local::{MnemonicBuilder, coins_bip39::English};

    fn anvil_signer(i: u32) -> PrivateKeySigner {
        MnemonicBuilder::<English>::default()
            .phrase("test test test test test test test test test test test junk")
            .index(i)
            .unwrap()
            .build()
            .unwrap()
    }

    #[test]
    fn k_is_a_recoverable_personal_sign_string() {
        let signer = anvil_signer(0);
        let k = user_key(&signer).unwrap();
        assert_eq!(k.as_str().len(), USER_KEY_LEN);
        assert_eq!(UserKey::parse(k.as_str()).unwrap(), k);
        // Deterministic (RFC 6979).
        assert_eq!(user_key(&signer).unwrap(), k);
        // Recovers to the signer's address via EIP-191.
        let sig: alloy::primitives::Signature = k.as_str().parse().unwrap();
        let addr = sig.recover_address_from_msg(ENCRYPTION_SEED).unwrap();
        assert_eq!(addr, signer.address());
        // Different users get different keys.
        assert_ne!(user_key(&anvil_signer(1)).unwrap(), k);
    }

    #[test]
    fn debug_is_redacted() {
        let k = user_key(&anvil_signer(0)).unwrap();
        let dbg = format!("{k:?}");
        assert!(!dbg.contains(&k.as_str()[2..20]), "{dbg}");
        assert!(dbg.contains("redacted"));
    }

    #[test]
    fn parse_rejects_bad_forms() {
        let k = user_key(&anvil_signer(0)).unwrap();
        let s = k.as_str();
        assert!(UserKey::parse(&s[2..]).is_err());
        assert!(UserKey::parse(&s.to_uppercase().replace("0X", "0x")).is_err());
        assert!(UserKey::parse(&format!("{}00", &s[..130])).is_err());
        assert!(UserKey::parse(&s[..131]).is_err());
    }
}

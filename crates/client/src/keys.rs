//! Keys: the redacted [`Secret`] and HD derivation of a mnemonic
//! ([`HdKeys`], [`derive_one`]). A leaf module: the target (which resolves a
//! key source) and the wallets (which derive thousands of users) both use it,
//! so neither has to import the other.

use std::fmt;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;

/// A secret string (private key, mnemonic, JWT) whose `Debug`/`Display` are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The account node `m/44'/60'/0'/0` of a mnemonic (via
/// [`protocol::keys::HdAccount`], which derives the seed once); children are cheap.
#[derive(Clone)]
pub struct HdKeys {
    account: protocol::keys::HdAccount,
}

impl std::fmt::Debug for HdKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HdKeys(<redacted>)")
    }
}

/// A derivation failure (never showing the mnemonic).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DeriveError(String);

impl HdKeys {
    /// Validates the mnemonic and derives its seed and account node once.
    pub fn new(mnemonic: &Secret) -> Result<Self, DeriveError> {
        let account = protocol::keys::HdAccount::new(mnemonic.expose()).map_err(|_| {
            DeriveError("malformed mnemonic (word count, word list or checksum)".into())
        })?;
        Ok(HdKeys { account })
    }

    /// The key at `m/44'/60'/0'/0/{index}`.
    pub fn signer(&self, index: u32) -> Result<PrivateKeySigner, DeriveError> {
        self.account
            .signer(index)
            .map_err(|e| DeriveError(format!("HD index {index}: {e}")))
    }

    /// The addresses of `count` consecutive indices from `first`, derived on
    /// all cores.
    pub fn addresses(&self, first: u32, count: u32) -> Result<Vec<Address>, DeriveError> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(16) as u32;
        let chunk = count.div_ceil(threads.max(1)).max(1);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..count)
                .step_by(chunk as usize)
                .map(|start| {
                    let end = (start + chunk).min(count);
                    s.spawn(move || {
                        (start..end)
                            .map(|i| self.signer(first + i).map(|k| k.address()))
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .collect();
            let mut out = Vec::with_capacity(count as usize);
            for h in handles {
                out.extend(
                    h.join()
                        .map_err(|_| DeriveError("derivation thread panicked".into()))??,
                );
            }
            Ok(out)
        })
    }
}

/// One key of a mnemonic (derives the seed; use [`HdKeys`] for many keys).
pub fn derive_one(mnemonic: &Secret, index: u32) -> Result<PrivateKeySigner, DeriveError> {
    HdKeys::new(mnemonic)?.signer(index)
}

//! The personal server's per-user keys, derived once per user and cached
//! (each derivation runs the BIP-39 seed function).

use std::collections::HashMap;
use std::sync::Mutex;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use protocol::crypto::{ServerKeyError, server_signer};

/// Per-user server keys from one server mnemonic.
pub struct ServerKeys {
    mnemonic: String,
    cache: Mutex<HashMap<Address, PrivateKeySigner>>,
}

impl ServerKeys {
    /// Checks the mnemonic once, up front.
    pub fn new(mnemonic: &str) -> Result<Self, ServerKeyError> {
        server_signer(mnemonic, Address::ZERO)?;
        Ok(Self {
            mnemonic: mnemonic.to_owned(),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The server key for `user` (`m/44'/60'/0'/0/{server_key_index(user)}`).
    pub fn for_user(&self, user: Address) -> PrivateKeySigner {
        if let Some(k) = self
            .cache
            .lock()
            .expect("server key cache poisoned")
            .get(&user)
        {
            return k.clone();
        }
        let key =
            server_signer(&self.mnemonic, user).expect("mnemonic validated in ServerKeys::new");
        let mut cache = self.cache.lock().expect("server key cache poisoned");
        if cache.len() >= 100_000 {
            cache.clear();
        }
        cache.insert(user, key.clone());
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_key_equals_fresh_derivation() {
        let m = "test test test test test test test test test test test junk";
        let keys = ServerKeys::new(m).unwrap();
        let user = Address::repeat_byte(7);
        let a = keys.for_user(user);
        let b = keys.for_user(user);
        assert_eq!(a.address(), b.address());
        assert_eq!(a.address(), server_signer(m, user).unwrap().address());
        assert_ne!(
            a.address(),
            keys.for_user(Address::repeat_byte(8)).address()
        );
        assert!(ServerKeys::new("not a mnemonic").is_err());
    }
}

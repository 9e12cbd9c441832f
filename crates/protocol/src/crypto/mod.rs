//! The Vana encryption scheme (vana-wire.md §2), byte-compatible with vana-sdk.
//!
//! - [`user_key`]: the user key K, the `personal_sign` signature *string* of
//!   [`user_key::ENCRYPTION_SEED`].
//! - [`openpgp`]: OpenPGP password encryption of files with K (SKESK v4 +
//!   SEIPD v1, AES-256, iterated+salted SHA-256 S2K, count byte 224), as
//!   openpgp.js v6 produces by default; decryption also accepts gpg output.
//! - [`ecies`]: eccrypto-compatible ECIES over secp256k1 (hex wire format),
//!   used to wrap K for the personal server, the DLP and the TEE.
//! - [`server_key`]: the hosted personal server's per-user key derivation.
//!
//! The most used items are re-exported here.

pub mod ecies;
pub mod openpgp;
pub mod s2k;
pub mod server_key;
pub mod user_key;

pub use openpgp::{OpenPgpError, decrypt_with_password, encrypt_with_password};
pub use server_key::{
    ServerKeyError, ServerKeyring, public_key_hex, server_key_index, server_signer,
};
pub use user_key::{UserKey, UserKeyError, user_key};

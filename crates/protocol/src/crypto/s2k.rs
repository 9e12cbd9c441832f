//! The iterated and salted S2K of OpenPGP (RFC 9580 §3.7.1.3) for SHA-256
//! and a 256-bit key: the KDF every Vana file key goes through, three times
//! per journey (the client's encrypt, the personal server's and the TEE's
//! decrypt).
//!
//! Written here because of cost, not format: rPGP derives the same key, but
//! feeds the hasher one `(salt, password)` pair at a time through a boxed
//! `DynDigest` — two calls of 8 and ~130 bytes per repetition, each going
//! through the block buffer — and so costs about 1.25× a plain SHA-256 of
//! the 16 MiB it hashes. Here the repeated `salt ‖ password` is laid out 64
//! times in one buffer (a whole number of 64-byte SHA-256 blocks) and fed
//! to a statically dispatched [`Sha256`] in large updates, so almost every
//! byte goes straight to the compression function. The bytes hashed are the
//! standard's; the tests compare every case against rPGP's `derive_key`.

use sha2::{Digest, Sha256};

/// The hash algorithm this fast path implements (OpenPGP id 8).
pub const HASH: pgp::crypto::hash::HashAlgorithm = pgp::crypto::hash::HashAlgorithm::Sha256;

/// Number of octets hashed for a coded count (RFC 9580 §3.7.1.3):
/// `(16 + (c & 15)) << ((c >> 4) + 6)`. Count byte 224 (openpgp.js's
/// default) is 16 MiB.
pub fn decoded_count(coded: u8) -> usize {
    (16usize + usize::from(coded & 15)) << (usize::from(coded >> 4) + 6)
}

/// The 32-byte key the iterated and salted SHA-256 S2K derives from
/// `password` with `salt` and coded count `coded_count`: SHA-256 over the
/// first `max(count, |salt ‖ password|)` octets of `salt ‖ password`
/// repeated.
pub fn iterated_salted_sha256(salt: &[u8; 8], password: &[u8], coded_count: u8) -> [u8; 32] {
    let unit_len = salt.len() + password.len();
    let total = decoded_count(coded_count).max(unit_len);
    // 64 repetitions: a multiple of the 64-byte block whatever the unit's
    // length, so each full update leaves the hasher's buffer as it found it.
    let mut chunk = Vec::with_capacity(unit_len * 64);
    for _ in 0..64 {
        chunk.extend_from_slice(salt);
        chunk.extend_from_slice(password);
    }
    let mut hasher = Sha256::new();
    let mut left = total;
    while left >= chunk.len() {
        hasher.update(&chunk);
        left -= chunk.len();
    }
    hasher.update(&chunk[..left]);
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgp::types::StringToKey;

    fn rpgp(salt: [u8; 8], password: &[u8], count: u8) -> Vec<u8> {
        let s2k = StringToKey::IteratedAndSalted {
            hash_alg: HASH,
            salt,
            count,
        };
        s2k.derive_key(password, 32)
            .expect("rPGP derives")
            .as_ref()
            .to_vec()
    }

    #[test]
    fn the_decoded_counts_are_the_rfc_examples() {
        assert_eq!(decoded_count(0), 1024);
        assert_eq!(decoded_count(96), 65_536);
        assert_eq!(decoded_count(224), 16 * 1024 * 1024);
        assert_eq!(decoded_count(255), 65_011_712);
    }

    #[test]
    fn it_derives_rpgps_key_for_every_shape_of_input() {
        let salts = [[0u8; 8], [1, 2, 3, 4, 5, 6, 7, 8], [0xff; 8]];
        // Lengths that make the unit a multiple of the block, one off, and
        // one so long that the count (1,024 for byte 0) is below it.
        let passwords: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"k".to_vec(),
            vec![b'a'; 56],
            vec![b'b'; 57],
            format!("0x{}", "ab".repeat(65)).into_bytes(),
            vec![b'c'; 1500],
        ];
        for salt in salts {
            for password in &passwords {
                for count in [0u8, 1, 96, 97, 150] {
                    assert_eq!(
                        iterated_salted_sha256(&salt, password, count).to_vec(),
                        rpgp(salt, password, count),
                        "salt {salt:?}, password of {} bytes, count byte {count}",
                        password.len()
                    );
                }
            }
        }
    }

    #[test]
    fn it_derives_rpgps_key_at_the_count_vana_uses() {
        let password = format!("0x{}", "5c".repeat(65));
        let salt = [9, 8, 7, 6, 5, 4, 3, 2];
        assert_eq!(
            iterated_salted_sha256(&salt, password.as_bytes(), 224).to_vec(),
            rpgp(salt, password.as_bytes(), 224)
        );
    }
}

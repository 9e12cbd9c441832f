//! eccrypto-compatible ECIES over secp256k1 (vana-wire.md §2, "Key wrapping").
//!
//! Wire format, as lowercase hex without `0x`:
//! `iv(16) ‖ ephemPub(65, uncompressed) ‖ AES-256-CBC/PKCS#7 ciphertext ‖
//! HMAC-SHA256(macKey, iv ‖ ephemPub ‖ ciphertext)(32)`, where the shared
//! secret is the raw 32-byte X coordinate of `ephemPriv·RecipientPub` and
//! `SHA-512(X)` splits into `encKey` (first 32 bytes) and `macKey` (last 32).
//!
//! K (132 bytes) encrypts to 257 bytes, i.e. the 514-character on-chain key.

use aes::Aes256;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use hmac::{Hmac, Mac};
use k256::{PublicKey, SecretKey, ecdh::diffie_hellman, elliptic_curve::sec1::ToEncodedPoint};
use rand::RngCore;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// Length of the AES-CBC IV at the start of the wire format.
pub const IV_LEN: usize = 16;
const EPHEM_LEN: usize = 65;
const MAC_LEN: usize = 32;
/// Bytes around the ciphertext: iv + ephemeral public key + MAC.
pub const OVERHEAD: usize = IV_LEN + EPHEM_LEN + MAC_LEN;

/// Why ECIES encryption or decryption failed.
#[derive(Debug, thiserror::Error)]
pub enum EciesError {
    /// The recipient public key is not a valid secp256k1 point in 33, 64 or 65 bytes.
    #[error("invalid recipient public key ({0})")]
    PublicKey(String),
    /// The secret key is not a valid secp256k1 scalar (32 bytes, nonzero, < n).
    #[error("invalid secret key (must be 32 bytes, nonzero and below the curve order)")]
    SecretKey,
    /// The ciphertext string is not hex.
    #[error("ECIES ciphertext is not hex: {0}")]
    Hex(#[from] hex::FromHexError),
    /// The ciphertext is too short or its ciphertext part is not whole AES blocks.
    #[error("ECIES ciphertext has a bad length ({0} bytes; need 16+65+16k+32 with k ≥ 1)")]
    Length(usize),
    /// The ephemeral public key embedded in the ciphertext is not a valid point.
    #[error("ECIES ephemeral public key is not a valid uncompressed secp256k1 point")]
    EphemeralKey,
    /// The MAC does not verify: wrong secret key or a modified ciphertext.
    #[error("ECIES MAC mismatch (wrong secret key or modified ciphertext)")]
    BadMac,
    /// The MAC verified but the PKCS#7 padding did not.
    #[error("ECIES padding invalid after a valid MAC")]
    BadPadding,
}

/// Parses a recipient key given as 33 bytes (compressed), 65 bytes
/// (uncompressed, `04…`) or 64 raw bytes (X‖Y, `04` is prepended).
pub fn parse_public_key(bytes: &[u8]) -> Result<PublicKey, EciesError> {
    let parsed = match bytes.len() {
        33 | 65 => PublicKey::from_sec1_bytes(bytes),
        64 => {
            let mut full = [0u8; 65];
            full[0] = 0x04;
            full[1..].copy_from_slice(bytes);
            PublicKey::from_sec1_bytes(&full)
        }
        n => {
            return Err(EciesError::PublicKey(format!(
                "{n} bytes; expected 33, 64 or 65"
            )));
        }
    };
    parsed.map_err(|_| EciesError::PublicKey("not a point on secp256k1".into()))
}

/// Encrypts `plaintext` to `recipient_pubkey` (33/64/65 bytes) and returns the
/// lowercase hex wire string without `0x`.
pub fn encrypt(recipient_pubkey: &[u8], plaintext: &[u8]) -> Result<String, EciesError> {
    let recipient = parse_public_key(recipient_pubkey)?;
    let mut rng = rand::thread_rng();
    let ephemeral = SecretKey::random(&mut rng);
    let mut iv = [0u8; IV_LEN];
    rng.fill_bytes(&mut iv);
    Ok(hex::encode(encrypt_with(
        &recipient, &ephemeral, &iv, plaintext,
    )))
}

/// [`encrypt`] with a caller-chosen ephemeral secret key and IV, for
/// known-answer tests against other implementations. Never reuse an ephemeral
/// key or IV in real use: call [`encrypt`].
pub fn encrypt_with_ephemeral(
    recipient_pubkey: &[u8],
    ephemeral_secret: &[u8; 32],
    iv: &[u8; IV_LEN],
    plaintext: &[u8],
) -> Result<String, EciesError> {
    let recipient = parse_public_key(recipient_pubkey)?;
    let ephemeral = SecretKey::from_slice(ephemeral_secret).map_err(|_| EciesError::SecretKey)?;
    Ok(hex::encode(encrypt_with(
        &recipient, &ephemeral, iv, plaintext,
    )))
}

/// The deterministic core of [`encrypt`], given the ephemeral key and IV.
fn encrypt_with(
    recipient: &PublicKey,
    ephemeral: &SecretKey,
    iv: &[u8; IV_LEN],
    plaintext: &[u8],
) -> Vec<u8> {
    let shared = diffie_hellman(ephemeral.to_nonzero_scalar(), recipient.as_affine());
    let (enc_key, mac_key) = kdf(shared.raw_secret_bytes());
    let ephem_pub = ephemeral.public_key().to_encoded_point(false); // uncompressed, 65 bytes
    let ephem_pub = ephem_pub.as_bytes();
    debug_assert_eq!(ephem_pub.len(), EPHEM_LEN);
    let ct = cbc::Encryptor::<Aes256>::new(&enc_key.into(), iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    let mut out = Vec::with_capacity(OVERHEAD + ct.len());
    out.extend_from_slice(iv);
    out.extend_from_slice(ephem_pub);
    out.extend_from_slice(&ct);
    let tag = mac(&mac_key, &out);
    out.extend_from_slice(&tag);
    out
}

/// Decrypts a hex wire string (`0x` optional) with the recipient's 32-byte
/// secret key. The MAC is checked first, in constant time.
///
/// Compatibility: eccrypto's browser build strips leading zero bytes from X
/// before hashing (about 1 in 256 messages). If the MAC fails and X starts
/// with zero, the stripped form is tried too; the MAC still decides.
pub fn decrypt(secret_key: &[u8], hex_ciphertext: &str) -> Result<Vec<u8>, EciesError> {
    let secret = SecretKey::from_slice(secret_key).map_err(|_| EciesError::SecretKey)?;
    let s = hex_ciphertext.trim();
    let s = s.strip_prefix("0x").unwrap_or(s);
    let bytes = hex::decode(s)?;
    let n = bytes.len();
    if n < OVERHEAD + 16 || !(n - OVERHEAD).is_multiple_of(16) {
        return Err(EciesError::Length(n));
    }
    let (iv, rest) = bytes.split_at(IV_LEN);
    let (ephem, rest) = rest.split_at(EPHEM_LEN);
    let (ct, tag) = rest.split_at(rest.len() - MAC_LEN);
    if ephem[0] != 0x04 {
        return Err(EciesError::EphemeralKey);
    }
    let ephem = PublicKey::from_sec1_bytes(ephem).map_err(|_| EciesError::EphemeralKey)?;
    let shared = diffie_hellman(secret.to_nonzero_scalar(), ephem.as_affine());
    let x = shared.raw_secret_bytes().as_slice();
    let authed = &bytes[..n - MAC_LEN];

    let mut candidates = vec![x];
    let stripped = &x[x.iter().take_while(|b| **b == 0).count()..];
    if stripped.len() != x.len() {
        candidates.push(stripped);
    }
    for x in candidates {
        let (enc_key, mac_key) = kdf(x);
        if bool::from(mac(&mac_key, authed).ct_eq(tag)) {
            return cbc::Decryptor::<Aes256>::new(&enc_key.into(), iv.into())
                .decrypt_padded_vec_mut::<Pkcs7>(ct)
                .map_err(|_| EciesError::BadPadding);
        }
    }
    Err(EciesError::BadMac)
}

/// `SHA-512(x)` split into (encKey, macKey).
fn kdf(x: &[u8]) -> ([u8; 32], [u8; 32]) {
    let h = Sha512::digest(x);
    let mut enc = [0u8; 32];
    let mut mac = [0u8; 32];
    enc.copy_from_slice(&h[..32]);
    mac.copy_from_slice(&h[32..]);
    (enc, mac)
}

fn mac(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SecretKey {
        let mut b = [0u8; 32];
        b[31] = seed;
        b[0] = 0x11;
        SecretKey::from_slice(&b).unwrap()
    }

    #[test]
    fn k_sized_plaintext_gives_514_hex_chars_and_round_trips() {
        let sk = key(1);
        let pk = sk.public_key();
        let k = format!("0x{}1b", "ab".repeat(64));
        assert_eq!(k.len(), 132);
        let uncompressed = pk.to_encoded_point(false).as_bytes().to_vec();
        for form in [
            uncompressed.clone(),
            pk.to_encoded_point(true).as_bytes().to_vec(),
            uncompressed[1..].to_vec(),
        ] {
            let wire = encrypt(&form, k.as_bytes()).unwrap();
            assert_eq!(wire.len(), 514);
            assert!(
                wire.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
            assert_eq!(&wire[32..34], "04", "ephemeral key is uncompressed");
            assert_eq!(decrypt(&sk.to_bytes(), &wire).unwrap(), k.as_bytes());
            assert_eq!(
                decrypt(&sk.to_bytes(), &format!("0x{wire}")).unwrap(),
                k.as_bytes()
            );
        }
    }

    #[test]
    fn layout_matches_the_scheme() {
        // Recompute every part independently from the wire bytes.
        let sk = key(2);
        let eph = key(3);
        let iv = [7u8; 16];
        let out = encrypt_with(&sk.public_key(), &eph, &iv, b"hello");
        assert_eq!(&out[..16], &iv);
        assert_eq!(
            &out[16..81],
            eph.public_key().to_encoded_point(false).as_bytes()
        );
        assert_eq!(out.len(), 16 + 65 + 16 + 32);
        let x = diffie_hellman(eph.to_nonzero_scalar(), sk.public_key().as_affine());
        let h = Sha512::digest(x.raw_secret_bytes());
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&h[32..]).unwrap();
        m.update(&out[..out.len() - 32]);
        assert_eq!(&out[out.len() - 32..], &m.finalize().into_bytes()[..]);
    }

    #[test]
    fn accepts_the_leading_zero_stripped_x_of_eccrypto_browser() {
        let sk = key(8);
        let pk = sk.public_key();
        // An ephemeral key whose shared X starts with a zero byte.
        let eph = (1u8..=255)
            .flat_map(|a| (1u8..=255).map(move |b| (a, b)))
            .map(|(a, b)| {
                let mut e = [0x21u8; 32];
                e[30] = a;
                e[31] = b;
                SecretKey::from_slice(&e).unwrap()
            })
            .find(|e| {
                diffie_hellman(e.to_nonzero_scalar(), pk.as_affine()).raw_secret_bytes()[0] == 0
            })
            .unwrap();
        let x = diffie_hellman(eph.to_nonzero_scalar(), pk.as_affine());
        let x = x.raw_secret_bytes();
        let (enc_key, mac_key) = kdf(&x[1..]); // what eccrypto's browser build hashes
        let iv = [3u8; 16];
        let mut wire = iv.to_vec();
        wire.extend_from_slice(eph.public_key().to_encoded_point(false).as_bytes());
        wire.extend(
            cbc::Encryptor::<Aes256>::new(&enc_key.into(), &iv.into())
                .encrypt_padded_vec_mut::<Pkcs7>(b"K"),
        );
        let tag = mac(&mac_key, &wire);
        wire.extend_from_slice(&tag);
        assert_eq!(decrypt(&sk.to_bytes(), &hex::encode(&wire)).unwrap(), b"K");
        // Our own encryption keeps the full 32-byte X for the same ephemeral key.
        let ours = encrypt_with(&pk, &eph, &iv, b"K");
        assert_ne!(ours, wire);
        assert_eq!(decrypt(&sk.to_bytes(), &hex::encode(&ours)).unwrap(), b"K");
    }

    #[test]
    fn wrong_key_and_tampering_fail_the_mac() {
        let sk = key(4);
        let wire = encrypt(&sk.public_key().to_sec1_bytes(), b"secret").unwrap(); // compressed form
        assert!(matches!(
            decrypt(&key(5).to_bytes(), &wire),
            Err(EciesError::BadMac)
        ));
        let mut bytes = hex::decode(&wire).unwrap();
        bytes[100] ^= 1;
        assert!(matches!(
            decrypt(&sk.to_bytes(), &hex::encode(&bytes)),
            Err(EciesError::BadMac)
        ));
    }

    #[test]
    fn bad_inputs_are_named() {
        let sk = key(6);
        assert!(matches!(
            encrypt(&[4u8; 10], b"x"),
            Err(EciesError::PublicKey(_))
        ));
        assert!(matches!(
            encrypt(&[9u8; 33], b"x"),
            Err(EciesError::PublicKey(_))
        ));
        assert!(matches!(
            decrypt(&[0u8; 32], "00"),
            Err(EciesError::SecretKey)
        ));
        assert!(matches!(
            decrypt(&sk.to_bytes(), "zz"),
            Err(EciesError::Hex(_))
        ));
        assert!(matches!(
            decrypt(&sk.to_bytes(), &"00".repeat(120)),
            Err(EciesError::Length(120))
        ));
    }
}

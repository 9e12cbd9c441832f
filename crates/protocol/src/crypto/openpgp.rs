//! OpenPGP password encryption of user files with K (vana-wire.md §2).
//!
//! [`encrypt_with_password`] produces what openpgp.js v6 produces with its
//! default configuration for `encrypt({message: createMessage({binary}),
//! passwords: [K], format: "binary"})`: binary (not armored) packets
//!
//! 1. SKESK v4 (tag 3): AES-256 (algorithm 9), iterated+salted S2K (type 3)
//!    with SHA-256 (hash 8), an 8-byte random salt and count byte 224
//!    (16 MiB hashed), carrying the random session key encrypted under the
//!    S2K key;
//! 2. SEIPD v1 (tag 18, MDC) containing, without compression, a Literal Data
//!    packet (tag 11) of format `b`.
//!
//! [`decrypt_with_password`] accepts any password-encrypted message with a
//! SEIPD v1 or v2 body (so also gpg's default output, which is compressed and
//! may omit the encrypted session key). All packet work is done by rPGP; the
//! S2K of a v4 SKESK with SHA-256 and AES-256 (ours, openpgp.js's) is derived
//! by [`super::s2k`] instead of rPGP's slower loop (same key), any other
//! SKESK by rPGP.

use std::io::Read;

use pgp::{
    composed::{Esk, Message, MessageBuilder, PlainSessionKey, RawSessionKey},
    crypto::{hash::HashAlgorithm, sym::SymmetricKeyAlgorithm},
    errors::Error as PgpError,
    packet::{PacketHeader, PacketTrait, SymKeyEncryptedSessionKey},
    ser::Serialize,
    types::{Password, StringToKey, Tag},
};
use rand::RngCore;

use super::s2k;

/// Symmetric algorithm of both packets: AES-256 (OpenPGP id 9).
pub const SYM_ALGORITHM: SymmetricKeyAlgorithm = SymmetricKeyAlgorithm::AES256;
/// Hash of the iterated+salted S2K: SHA-256 (OpenPGP id 8).
pub const S2K_HASH: HashAlgorithm = HashAlgorithm::Sha256;
/// Coded S2K iteration count: 224 means 16 MiB are hashed (openpgp.js default).
pub const S2K_COUNT: u8 = 224;

/// Why OpenPGP encryption or decryption failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenPgpError {
    /// The input is not a well-formed OpenPGP message.
    #[error("malformed OpenPGP message: {0}")]
    Malformed(String),
    /// The message is well formed but has no password (SKESK) packet.
    #[error("OpenPGP message is not password-encrypted (no SKESK packet; found {0})")]
    NotPasswordEncrypted(&'static str),
    /// The password does not open the message: the decrypted session key is
    /// implausible or the integrity check (MDC) fails under it. SEIPD v1 cannot
    /// tell a wrong password from a modified ciphertext, so tampering lands here too.
    #[error("wrong password for this OpenPGP message (or the ciphertext was modified): {0}")]
    WrongPassword(String),
    /// The message uses something this implementation does not support.
    #[error("unsupported OpenPGP message: {0}")]
    Unsupported(String),
    /// Encryption failed inside the OpenPGP library.
    #[error("OpenPGP encryption failed: {0}")]
    Encrypt(String),
}

/// Encrypts `plaintext` with `password` exactly as openpgp.js v6 does by default
/// (see the module docs). Not deterministic: salt, session key and IV are random.
///
/// Cost: one S2K (16 MiB of SHA-256) plus AES-256-CFB and SHA-1 over the data.
pub fn encrypt_with_password(plaintext: &[u8], password: &str) -> Result<Vec<u8>, OpenPgpError> {
    let mut rng = rand::thread_rng();
    let builder =
        MessageBuilder::from_bytes("", plaintext.to_vec()).seipd_v1(&mut rng, SYM_ALGORITHM);
    let mut salt = [0u8; 8];
    rng.fill_bytes(&mut salt);
    let key = s2k::iterated_salted_sha256(&salt, password.as_bytes(), S2K_COUNT);
    let skesk = skesk_v4(&key, salt, builder.session_key()).map_err(encrypt_error)?;
    let mut out = Vec::with_capacity(plaintext.len() + 128);
    skesk
        .to_writer_with_header(&mut out)
        .map_err(encrypt_error)?;
    builder
        .to_writer(&mut rng, &mut out)
        .map_err(encrypt_error)?;
    Ok(out)
}

/// The SKESK v4 packet carrying `session_key` under the S2K key `key`, as
/// rPGP's `SymKeyEncryptedSessionKey::encrypt_v4` builds it from a password
/// (algorithm octet and session key, AES-256-CFB with a zero IV), but with
/// the key already derived by [`s2k`].
fn skesk_v4(
    key: &[u8; 32],
    salt: [u8; 8],
    session_key: &RawSessionKey,
) -> Result<SymKeyEncryptedSessionKey, PgpError> {
    let s2k = StringToKey::IteratedAndSalted {
        hash_alg: S2K_HASH,
        salt,
        count: S2K_COUNT,
    };
    let mut encrypted_key = Vec::with_capacity(1 + session_key.len());
    encrypted_key.push(u8::from(SYM_ALGORITHM));
    encrypted_key.extend_from_slice(session_key.as_ref());
    let iv = vec![0u8; SYM_ALGORITHM.block_size()];
    SYM_ALGORITHM.encrypt_with_iv_regular(key, &iv, &mut encrypted_key)?;
    // Version, algorithm, S2K specifier, encrypted key.
    let len = 2 + s2k.write_len() + encrypted_key.len();
    Ok(SymKeyEncryptedSessionKey::V4 {
        packet_header: PacketHeader::new_fixed(Tag::SymKeyEncryptedSessionKey, len as u32),
        sym_algorithm: SYM_ALGORITHM,
        s2k,
        encrypted_key: encrypted_key.into(),
    })
}

fn encrypt_error(e: PgpError) -> OpenPgpError {
    OpenPgpError::Encrypt(e.to_string())
}

/// The session key of a message with exactly one SKESK that [`s2k`] can
/// derive (v4, iterated and salted SHA-256, AES-256); `None` for any other
/// message, which rPGP then opens from the password.
fn fast_session_key(esks: &[Esk], password: &str) -> Option<Result<PlainSessionKey, PgpError>> {
    let [Esk::SymKeyEncryptedSessionKey(packet)] = esks else {
        return None;
    };
    let SymKeyEncryptedSessionKey::V4 {
        sym_algorithm,
        s2k:
            StringToKey::IteratedAndSalted {
                hash_alg: s2k::HASH,
                salt,
                count,
            },
        encrypted_key,
        ..
    } = packet
    else {
        return None;
    };
    if *sym_algorithm != SYM_ALGORITHM {
        return None;
    }
    let key = s2k::iterated_salted_sha256(salt, password.as_bytes(), *count);
    Some(if encrypted_key.is_empty() {
        // No encrypted session key: the S2K key is the session key.
        Ok(PlainSessionKey::V3_4 {
            sym_alg: *sym_algorithm,
            key: RawSessionKey::from(&key[..]),
        })
    } else {
        packet.decrypt(key)
    })
}

/// Decrypts a binary password-encrypted OpenPGP message and returns the
/// literal data. Accepts our output, openpgp.js output and gpg output
/// (compressed or not).
pub fn decrypt_with_password(ciphertext: &[u8], password: &str) -> Result<Vec<u8>, OpenPgpError> {
    let msg = Message::from_bytes(ciphertext).map_err(malformed)?;
    match &msg {
        Message::Encrypted { esk, .. } => {
            if !esk
                .iter()
                .any(|e| matches!(e, Esk::SymKeyEncryptedSessionKey(_)))
            {
                return Err(OpenPgpError::NotPasswordEncrypted(
                    "only public-key encrypted session keys",
                ));
            }
        }
        Message::Literal { .. } => return Err(OpenPgpError::NotPasswordEncrypted("plaintext")),
        Message::Compressed { .. } => {
            return Err(OpenPgpError::NotPasswordEncrypted("compressed plaintext"));
        }
        Message::Signed { .. } => {
            return Err(OpenPgpError::NotPasswordEncrypted("a signed message"));
        }
    }
    let fast = match &msg {
        Message::Encrypted { esk, .. } => fast_session_key(esk, password),
        _ => None,
    };
    let mut msg = match fast {
        Some(session_key) => session_key.and_then(|k| msg.decrypt_with_session_key(k)),
        None => msg.decrypt_with_password(&Password::from(password)),
    }
    .map_err(after_decrypt)?;
    while msg.is_compressed() {
        msg = msg.decompress().map_err(after_decrypt)?;
    }
    if !msg.is_literal() {
        return Err(OpenPgpError::Unsupported(
            "encrypted payload is not a literal data packet (signed messages are not used by Vana)"
                .into(),
        ));
    }
    let mut out = Vec::new();
    msg.read_to_end(&mut out).map_err(|e| {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<PgpError>())
        {
            Some(inner) => classify(inner),
            None => OpenPgpError::WrongPassword(e.to_string()),
        }
    })?;
    Ok(out)
}

fn malformed(e: PgpError) -> OpenPgpError {
    OpenPgpError::Malformed(e.to_string())
}

/// Errors after the packet structure was accepted: session-key recovery,
/// integrity check and decompression.
fn after_decrypt(e: PgpError) -> OpenPgpError {
    classify(&e)
}

fn classify(e: &PgpError) -> OpenPgpError {
    match e {
        PgpError::MdcError | PgpError::MissingKey => OpenPgpError::WrongPassword(e.to_string()),
        PgpError::Unsupported { .. } | PgpError::Unimplemented { .. } => {
            OpenPgpError::Unsupported(e.to_string())
        }
        PgpError::PacketParsing { .. }
        | PgpError::PacketIncomplete { .. }
        | PgpError::InvalidPacketContent { .. }
        | PgpError::PacketError { .. } => OpenPgpError::Malformed(e.to_string()),
        // rPGP reports an implausible decrypted session key (v4 SKESK) as a
        // plain message; that only happens under a wrong password.
        PgpError::Message { .. } => OpenPgpError::WrongPassword(e.to_string()),
        PgpError::IO { source, .. } => match source
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<PgpError>())
        {
            Some(inner) => classify(inner),
            None => OpenPgpError::Malformed(e.to_string()),
        },
        _ => OpenPgpError::Malformed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "0x4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d\
                     3c4b2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b";

    #[test]
    fn round_trips_at_several_sizes() {
        for size in [0usize, 1, 1000, 100 * 1024] {
            let data: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
            let ct = encrypt_with_password(&data, K).unwrap();
            assert!(ct.len() > data.len());
            assert_eq!(decrypt_with_password(&ct, K).unwrap(), data, "size {size}");
        }
    }

    #[test]
    fn rpgps_own_password_path_opens_our_output() {
        let ct = encrypt_with_password(b"file body", K).unwrap();
        let msg = Message::from_bytes(&ct[..]).unwrap();
        let Message::Encrypted { esk, .. } = &msg else {
            panic!("not an encrypted message")
        };
        let [Esk::SymKeyEncryptedSessionKey(SymKeyEncryptedSessionKey::V4 { s2k, .. })] = &esk[..]
        else {
            panic!("expected one SKESK v4, got {esk:?}")
        };
        assert!(
            matches!(s2k, StringToKey::IteratedAndSalted { hash_alg, count, .. }
                if *hash_alg == S2K_HASH && *count == S2K_COUNT),
            "{s2k:?}"
        );
        let mut plain = msg
            .decrypt_with_password(&Password::from(K))
            .expect("rPGP derives the same key");
        let mut out = Vec::new();
        plain.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"file body");
    }

    #[test]
    fn the_fast_path_opens_rpgps_own_output_with_and_without_an_encrypted_session_key() {
        let mut rng = rand::thread_rng();
        let s2k = StringToKey::new_iterated(&mut rng, S2K_HASH, S2K_COUNT);
        let mut builder =
            MessageBuilder::from_bytes("", b"from rPGP".to_vec()).seipd_v1(&mut rng, SYM_ALGORITHM);
        builder
            .encrypt_with_password(s2k.clone(), &Password::from(K))
            .unwrap();
        let ct = builder.to_vec(&mut rng).unwrap();
        let msg = Message::from_bytes(&ct[..]).unwrap();
        let Message::Encrypted { esk, .. } = &msg else {
            panic!("not an encrypted message")
        };
        assert!(fast_session_key(esk, K).is_some_and(|k| k.is_ok()));
        assert_eq!(decrypt_with_password(&ct, K).unwrap(), b"from rPGP");

        // The S2K key itself as the session key (gpg may write no ESK).
        let StringToKey::IteratedAndSalted { salt, .. } = s2k else {
            unreachable!()
        };
        let key = s2k::iterated_salted_sha256(&salt, K.as_bytes(), S2K_COUNT);
        let mut builder =
            MessageBuilder::from_bytes("", b"no esk".to_vec()).seipd_v1(&mut rng, SYM_ALGORITHM);
        builder
            .set_session_key(RawSessionKey::from(&key[..]))
            .unwrap();
        let skesk = SymKeyEncryptedSessionKey::V4 {
            packet_header: PacketHeader::new_fixed(Tag::SymKeyEncryptedSessionKey, 13),
            sym_algorithm: SYM_ALGORITHM,
            s2k: s2k.clone(),
            encrypted_key: Vec::new().into(),
        };
        let mut ct = Vec::new();
        skesk.to_writer_with_header(&mut ct).unwrap();
        builder.to_writer(&mut rng, &mut ct).unwrap();
        assert_eq!(decrypt_with_password(&ct, K).unwrap(), b"no esk");
        let err = decrypt_with_password(&ct, &K.replace("0x4f", "0x4e")).unwrap_err();
        assert!(matches!(err, OpenPgpError::WrongPassword(_)), "{err:?}");
    }

    #[test]
    fn output_is_randomised() {
        let a = encrypt_with_password(b"same", K).unwrap();
        let b = encrypt_with_password(b"same", K).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn wrong_password_is_named() {
        let ct = encrypt_with_password(b"file body", K).unwrap();
        let err = decrypt_with_password(&ct, &K.replace("0x4f", "0x4e")).unwrap_err();
        assert!(matches!(err, OpenPgpError::WrongPassword(_)), "{err:?}");
        assert!(err.to_string().contains("wrong password"), "{err}");
    }

    #[test]
    fn modified_ciphertext_fails_the_integrity_check() {
        let mut ct = encrypt_with_password(b"file body that is long enough", K).unwrap();
        let last = ct.len() - 5; // inside the encrypted MDC / literal data
        ct[last] ^= 0x01;
        let err = decrypt_with_password(&ct, K).unwrap_err();
        assert!(matches!(err, OpenPgpError::WrongPassword(_)), "{err:?}");
    }

    #[test]
    fn garbage_and_truncation_are_malformed() {
        for input in [&b""[..], b"not an openpgp message at all", &[0xffu8; 64]] {
            let err = decrypt_with_password(input, K).unwrap_err();
            assert!(matches!(err, OpenPgpError::Malformed(_)), "{err:?}");
        }
        let ct = encrypt_with_password(b"file body", K).unwrap();
        let err = decrypt_with_password(&ct[..30], K).unwrap_err();
        assert!(matches!(err, OpenPgpError::Malformed(_)), "{err:?}");
    }

    #[test]
    fn plaintext_message_is_not_password_encrypted() {
        let plain = MessageBuilder::from_bytes("", b"hello".to_vec())
            .to_vec(rand::thread_rng())
            .unwrap();
        let err = decrypt_with_password(&plain, K).unwrap_err();
        assert!(
            matches!(err, OpenPgpError::NotPasswordEncrypted(_)),
            "{err:?}"
        );
    }
}

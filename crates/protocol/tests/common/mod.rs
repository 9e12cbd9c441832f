//! Shared helpers of the crypto interop tests: locating the peer tools
//! (failing loudly with the install command when one is missing), test keys,
//! and a minimal OpenPGP packet-header reader used to assert the exact layout.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use alloy::signers::local::{MnemonicBuilder, PrivateKeySigner, coins_bip39::English};
use vana_load_protocol::crypto::{UserKey, user_key};

/// anvil's default test mnemonic; never a real secret.
pub const TEST_MNEMONIC: &str = "test test test test test test test test test test test junk";

pub fn test_signer(index: u32) -> PrivateKeySigner {
    MnemonicBuilder::<English>::default()
        .phrase(TEST_MNEMONIC)
        .index(index)
        .unwrap()
        .build()
        .unwrap()
}

/// K of the test user at HD index `1000 + i`.
pub fn test_user_key(i: u32) -> UserKey {
    user_key(&test_signer(1000 + i)).unwrap()
}

/// Finds `tool` on PATH or panics naming it and the command that installs it.
pub fn require_tool(tool: &str, install: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("interop test needs `{tool}`, which is not on PATH; install it with `{install}`")
        })
}

/// `tools/node_modules/<package>`, or a panic naming `npm ci --prefix tools`.
pub fn require_npm_package(package: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tools/node_modules")
        .join(package);
    assert!(
        dir.join("package.json").is_file(),
        "interop test needs the npm package `{package}` at {}; install it with \
         `npm ci --prefix tools` (from the repository root)",
        dir.display()
    );
    dir.canonicalize().unwrap()
}

/// Runs a command, panicking with its stderr if it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{:?} failed ({}): {}",
        cmd.get_program(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One OpenPGP packet: its tag and its body (partial-length chunks joined).
#[derive(Debug)]
pub struct RawPacket {
    pub tag: u8,
    pub new_format: bool,
    pub partial: bool,
    pub body: Vec<u8>,
}

/// Splits a binary OpenPGP message into packets (RFC 9580 §4.2), reading only
/// headers and lengths. Panics on anything it cannot frame.
pub fn raw_packets(mut data: &[u8]) -> Vec<RawPacket> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let ctb = data[0];
        assert!(ctb & 0x80 != 0, "not a packet header: {ctb:#04x}");
        data = &data[1..];
        if ctb & 0x40 != 0 {
            let tag = ctb & 0x3f;
            let mut body = Vec::new();
            let mut partial = false;
            loop {
                let (len, is_partial, used) = match data[0] {
                    l @ 0..=191 => (l as usize, false, 1),
                    192..=223 => (
                        (((data[0] as usize) - 192) << 8) + data[1] as usize + 192,
                        false,
                        2,
                    ),
                    224..=254 => (1usize << (data[0] & 0x1f), true, 1),
                    255 => (
                        u32::from_be_bytes(data[1..5].try_into().unwrap()) as usize,
                        false,
                        5,
                    ),
                };
                data = &data[used..];
                body.extend_from_slice(&data[..len]);
                data = &data[len..];
                partial |= is_partial;
                if !is_partial {
                    break;
                }
            }
            out.push(RawPacket {
                tag,
                new_format: true,
                partial,
                body,
            });
        } else {
            let tag = (ctb >> 2) & 0x0f;
            let (len, used) = match ctb & 3 {
                0 => (data[0] as usize, 1),
                1 => (u16::from_be_bytes([data[0], data[1]]) as usize, 2),
                2 => (
                    u32::from_be_bytes(data[..4].try_into().unwrap()) as usize,
                    4,
                ),
                _ => (data.len(), 0), // indeterminate: to the end
            };
            data = &data[used..];
            let len = if ctb & 3 == 3 { data.len() } else { len };
            out.push(RawPacket {
                tag,
                new_format: false,
                partial: false,
                body: data[..len].to_vec(),
            });
            data = &data[len..];
        }
    }
    out
}

/// The fields of a v4 SKESK with an iterated+salted S2K.
#[derive(Debug, PartialEq, Eq)]
pub struct SkeskV4 {
    pub version: u8,
    pub sym_algo: u8,
    pub s2k_type: u8,
    pub s2k_hash: u8,
    pub salt_len: usize,
    pub count: u8,
    /// Length of the encrypted session key (0 if the S2K key is the session key).
    pub esk_len: usize,
}

pub fn parse_skesk_v4(body: &[u8]) -> SkeskV4 {
    assert_eq!(
        body[2], 3,
        "S2K type must be 3 (iterated+salted): {body:02x?}"
    );
    SkeskV4 {
        version: body[0],
        sym_algo: body[1],
        s2k_type: body[2],
        s2k_hash: body[3],
        salt_len: 8,
        count: body[12],
        esk_len: body.len() - 13,
    }
}

/// Asserts the openpgp.js v6 default layout: SKESK v4 (AES-256, S2K type 3,
/// SHA-256, count 224, encrypted 32-byte session key) then SEIPD v1.
pub fn assert_vana_layout(msg: &[u8], who: &str) {
    let packets = raw_packets(msg);
    let tags: Vec<u8> = packets.iter().map(|p| p.tag).collect();
    assert_eq!(tags, [3, 18], "{who}: packet tags (SKESK, SEIPD)");
    assert!(
        packets.iter().all(|p| p.new_format),
        "{who}: new-format headers"
    );
    let skesk = parse_skesk_v4(&packets[0].body);
    assert_eq!(
        skesk,
        SkeskV4 {
            version: 4,
            sym_algo: 9,
            s2k_type: 3,
            s2k_hash: 8,
            salt_len: 8,
            count: 224,
            esk_len: 1 + 32,
        },
        "{who}: SKESK fields"
    );
    assert_eq!(packets[1].body[0], 1, "{who}: SEIPD version 1");
    // 1 version + 16 IV + 2 quick check + literal packet + 22 MDC, at least.
    assert!(
        packets[1].body.len() > 1 + 18 + 22,
        "{who}: SEIPD too short"
    );
}

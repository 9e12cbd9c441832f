//! Interop with GnuPG (the personal server decrypts with python-gnupg):
//! gpg opens what we encrypt, and we open what gpg encrypts.
//!
//! Needs `gpg` on PATH (`apt-get install gnupg`); fails, not skips, without it.

mod common;

use std::{fs, path::Path, process::Command};

use common::*;
use vana_load_protocol::crypto::{OpenPgpError, decrypt_with_password, encrypt_with_password};

/// A gpg command with its own temporary home and loopback passphrase entry.
fn gpg(home: &Path, passphrase: &str) -> Command {
    let mut cmd = Command::new(require_tool("gpg", "apt-get install gnupg"));
    cmd.env("GNUPGHOME", home).args([
        "--batch",
        "--quiet",
        "--no-symkey-cache",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        passphrase,
    ]);
    cmd
}

struct GpgHome(tempfile::TempDir);

impl GpgHome {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        }
        Self(dir)
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for GpgHome {
    fn drop(&mut self) {
        // Stop the gpg-agent this home started (it is bound to this GNUPGHOME only).
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.path())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

fn sample(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 % 256) as u8).collect()
}

#[test]
fn gpg_decrypts_our_output_and_sees_the_openpgpjs_layout() {
    let home = GpgHome::new();
    let k = test_user_key(0);
    for size in [0usize, 17, 10 * 1024, 300 * 1024] {
        let data = sample(size);
        let ct = encrypt_with_password(&data, k.as_str()).unwrap();
        assert_vana_layout(&ct, "our output");
        let file = home.path().join(format!("ours-{size}.enc"));
        fs::write(&file, &ct).unwrap();

        let out = run_ok(gpg(home.path(), k.as_str()).arg("--decrypt").arg(&file));
        assert_eq!(out.stdout, data, "gpg plaintext, size {size}");

        // gpg's own view of the packets.
        let out = run_ok(
            gpg(home.path(), k.as_str())
                .args(["--list-packets", "--verbose"])
                .arg(&file),
        );
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(
            listing.contains(":symkey enc packet: version 4, cipher 9,")
                && listing.contains("s2k 3, hash 8"),
            "SKESK v4, AES-256, iterated+salted SHA-256: {listing}"
        );
        assert!(
            listing.contains("salt ") && listing.contains("count 16777216"),
            "S2K count byte 224 is 16 MiB: {listing}"
        );
        assert!(
            listing.contains("mdc_method: 2"),
            "SEIPD v1 with MDC: {listing}"
        );
        assert!(listing.contains(":literal data packet:"), "{listing}");
        assert!(listing.contains("mode b "), "literal format 'b': {listing}");
        assert!(
            !listing.contains("compressed packet"),
            "no compression: {listing}"
        );
    }
}

#[test]
fn gpg_rejects_our_output_under_a_wrong_passphrase() {
    let home = GpgHome::new();
    let ct = encrypt_with_password(b"secret", test_user_key(0).as_str()).unwrap();
    let file = home.path().join("ours.enc");
    fs::write(&file, &ct).unwrap();
    let out = gpg(home.path(), test_user_key(1).as_str())
        .arg("--decrypt")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success(), "gpg must fail with another user's K");
    assert!(out.stdout.is_empty());
}

#[test]
fn we_decrypt_gpg_output_default_and_vana_settings() {
    let home = GpgHome::new();
    let k = test_user_key(2);
    let data = sample(50 * 1024);
    let input = home.path().join("plain.bin");
    fs::write(&input, &data).unwrap();
    let variants: [&[&str]; 3] = [
        // gpg defaults (compressed, gpg's default cipher).
        &[],
        // The Vana settings, uncompressed.
        &[
            "--cipher-algo",
            "AES256",
            "--s2k-digest-algo",
            "SHA256",
            "--s2k-count",
            "16777216",
            "--compress-algo",
            "none",
        ],
        // Explicit zlib compression.
        &["--cipher-algo", "AES256", "--compress-algo", "zlib"],
    ];
    for (i, extra) in variants.iter().enumerate() {
        let output = home.path().join(format!("gpg-{i}.gpg"));
        run_ok(
            gpg(home.path(), k.as_str())
                .args(*extra)
                .arg("--output")
                .arg(&output)
                .arg("--symmetric")
                .arg(&input),
        );
        let ct = fs::read(&output).unwrap();
        assert_eq!(
            decrypt_with_password(&ct, k.as_str()).unwrap(),
            data,
            "variant {i}"
        );
        let err = decrypt_with_password(&ct, test_user_key(3).as_str()).unwrap_err();
        assert!(
            matches!(err, OpenPgpError::WrongPassword(_)),
            "variant {i}: {err:?}"
        );
    }
}

//! Interop with openpgp.js v6.1.1 (what vana-sdk encrypts files with): files
//! it encrypts decrypt with our code, ours decrypt with it, and both have the
//! same packet layout.
//!
//! Needs `node` on PATH and `npm ci --prefix tools`; fails, not skips, without them.

mod common;

use std::{fs, path::Path, process::Command};

use common::*;
use vana_load_protocol::crypto::{decrypt_with_password, encrypt_with_password};

const SCRIPT: &str = r#"
const openpgp = require(process.env.OPENPGP_DIR);
const fs = require("fs");
const [mode, input, output] = process.argv.slice(2);
const password = process.env.VANA_TEST_PASSWORD;
(async () => {
  const bytes = new Uint8Array(fs.readFileSync(input));
  if (mode === "encrypt") {
    // Exactly vana-sdk's encryptWithPassword: default config, binary output.
    const message = await openpgp.createMessage({ binary: bytes });
    const enc = await openpgp.encrypt({ message, passwords: [password], format: "binary" });
    fs.writeFileSync(output, enc);
  } else {
    const message = await openpgp.readMessage({ binaryMessage: bytes });
    const { data } = await openpgp.decrypt({ message, passwords: [password], format: "binary" });
    fs.writeFileSync(output, data);
  }
})().catch((e) => { console.error(String(e && e.message || e)); process.exit(1); });
"#;

struct Peer {
    node: std::path::PathBuf,
    dir: tempfile::TempDir,
}

impl Peer {
    fn new() -> Self {
        let node = require_tool("node", "apt-get install nodejs");
        require_npm_package("openpgp");
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("peer.cjs"), SCRIPT).unwrap();
        Self { node, dir }
    }

    fn run(&self, mode: &str, password: &str, input: &[u8]) -> Result<Vec<u8>, String> {
        let inp = self.dir.path().join("in.bin");
        let out = self.dir.path().join("out.bin");
        fs::write(&inp, input).unwrap();
        let _ = fs::remove_file(&out);
        let res = Command::new(&self.node)
            .arg(self.dir.path().join("peer.cjs"))
            .args([Path::new(mode), &inp, &out])
            .env("OPENPGP_DIR", require_npm_package("openpgp"))
            .env("VANA_TEST_PASSWORD", password)
            .output()
            .unwrap();
        if res.status.success() {
            Ok(fs::read(&out).unwrap())
        } else {
            Err(String::from_utf8_lossy(&res.stderr).into_owned())
        }
    }
}

fn sample(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 13 % 256) as u8).collect()
}

#[test]
fn openpgpjs_files_decrypt_with_our_code_and_share_our_layout() {
    let peer = Peer::new();
    let k = test_user_key(4);
    for size in [0usize, 1, 1024, 100 * 1024, 600 * 1024] {
        let data = sample(size);
        let ct = peer.run("encrypt", k.as_str(), &data).unwrap();
        assert_vana_layout(&ct, "openpgp.js output");
        assert_eq!(
            decrypt_with_password(&ct, k.as_str()).unwrap(),
            data,
            "size {size}"
        );
        assert!(decrypt_with_password(&ct, test_user_key(5).as_str()).is_err());
    }
}

#[test]
fn our_files_decrypt_in_openpgpjs() {
    let peer = Peer::new();
    let k = test_user_key(6);
    for size in [0usize, 5, 10 * 1024, 700 * 1024] {
        let data = sample(size);
        let ct = encrypt_with_password(&data, k.as_str()).unwrap();
        assert_eq!(
            peer.run("decrypt", k.as_str(), &ct).unwrap(),
            data,
            "size {size}"
        );
    }
    // And openpgp.js refuses them under another user's key.
    let ct = encrypt_with_password(b"secret", k.as_str()).unwrap();
    let err = peer
        .run("decrypt", test_user_key(7).as_str(), &ct)
        .unwrap_err();
    assert!(!err.is_empty());
}

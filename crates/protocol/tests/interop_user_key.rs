//! K against an independent implementation: npm `elliptic` (RFC 6979 ECDSA)
//! and `js-sha3` (keccak-256) compute viem's `signMessage` of the seed message
//! for the same private keys, and the strings must be identical.
//!
//! Needs `node` on PATH and `npm ci --prefix tools` (elliptic and js-sha3 come
//! with eccrypto); fails, not skips, without them.

mod common;

use std::{fs, process::Command};

use common::*;
use vana_load_protocol::crypto::{user_key, user_key::ENCRYPTION_SEED};

const SCRIPT: &str = r#"
const EC = require(process.env.ELLIPTIC_DIR).ec;
const { keccak256 } = require(process.env.JS_SHA3_DIR);
const ec = new EC("secp256k1");
const msg = Buffer.from(process.env.SEED_MESSAGE, "utf8");
const prefixed = Buffer.concat([
  Buffer.from("\x19Ethereum Signed Message:\n" + msg.length, "utf8"), msg,
]);
const hash = keccak256(prefixed);
const out = [];
for (const sk of JSON.parse(require("fs").readFileSync(0, "utf8"))) {
  const sig = ec.keyFromPrivate(sk, "hex").sign(hash, { canonical: true });
  const v = (27 + sig.recoveryParam).toString(16);
  out.push("0x" + sig.r.toString(16, 64) + sig.s.toString(16, 64) + v);
}
require("fs").writeFileSync(process.env.RESULTS_FILE, JSON.stringify(out));
"#;

#[test]
fn k_matches_an_independent_secp256k1_implementation() {
    let node = require_tool("node", "apt-get install nodejs");
    let elliptic = require_npm_package("elliptic");
    let sha3 = require_npm_package("js-sha3");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("k.cjs");
    fs::write(&script, SCRIPT).unwrap();
    let signers: Vec<_> = (0..12).map(|i| test_signer(1000 + i)).collect();
    let keys: Vec<String> = signers.iter().map(|s| hex::encode(s.to_bytes())).collect();
    let input = dir.path().join("keys.json");
    fs::write(&input, serde_json::to_vec(&keys).unwrap()).unwrap();
    let results = dir.path().join("k.json");
    run_ok(
        Command::new(node)
            .arg(&script)
            .env("ELLIPTIC_DIR", elliptic)
            .env("JS_SHA3_DIR", sha3)
            .env("SEED_MESSAGE", ENCRYPTION_SEED)
            .env("RESULTS_FILE", &results)
            .stdin(fs::File::open(&input).unwrap()),
    );
    let theirs: Vec<String> = serde_json::from_slice(&fs::read(&results).unwrap()).unwrap();
    assert_eq!(theirs.len(), signers.len());
    let mut vs = std::collections::BTreeSet::new();
    for (signer, expected) in signers.iter().zip(&theirs) {
        let k = user_key(signer).unwrap();
        assert_eq!(k.as_str(), expected, "K of {}", signer.address());
        vs.insert(k.as_str()[130..].to_owned());
    }
    // Both recovery ids occur among 12 keys, so v = 1b and 1c are both exercised.
    assert_eq!(vs.into_iter().collect::<Vec<_>>(), ["1b", "1c"]);
}

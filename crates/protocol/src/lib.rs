//! The one definition of every Vana wire format used by vana-load.
//!
//! Both the client (the virtual user) and the twin (the local network) depend
//! on this crate, so what one sends is, by construction, what the other reads.
//!
//! - [`contracts`]: alloy bindings generated from the committed artifacts in
//!   `contracts/out/`, with revert decoding to named errors.
//! - [`eip712`]: typed data, domains and signing for the permission and server flows.
//! - [`crypto`]: the user key K, OpenPGP password encryption, eccrypto ECIES.
//! - [`api`]: JSON types of every HTTP API (storage, relayer, personal server,
//!   Replicate-style inference, TEE, subgraph).
//! - [`manifest`]: what a running twin publishes about itself.
//! - [`moksha`]: the SDK's Moksha contract addresses, which the twin uses too.
//! - [`keys`]: HD derivation and the index ranges reserved for each role.
//! - [`rpc`]: the node client every part uses (alloy's, plus one retry rule).

pub mod api;
pub mod contracts;
pub mod crypto;
pub mod eip712;
pub mod keys;
pub mod manifest;
pub mod moksha;
pub mod rpc;

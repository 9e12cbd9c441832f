//! A local twin of the Vana network, on loopback.
//!
//! A real EVM node (anvil) with the Vana contracts deployed, and one small axum
//! app per off-chain service, each speaking the real network's wire protocol:
//! storage (Pinata/IPFS), relayer, indexer (subgraph), personal server,
//! inference backend (Replicate-style) and TEE. [`Twin::start`] starts them all.

pub mod chain;
pub mod indexer;
pub mod inference;
pub mod personal_server;
pub mod relayer;
pub mod service;
pub mod storage;
pub mod tee;
pub mod tools;

//! The virtual Vana user.
//!
//! - [`target`]: where the user goes (a TOML file or a twin manifest): RPC
//!   endpoints, contracts, service URLs and key sources.
//! - [`data`]: deterministic synthetic user data in the plan's three sizes.
//! - [`errors`]: the error taxonomy and the bounded retry policy.
//!
//! The client knows nothing of the twin: everything it needs is in a [`target::Target`].

pub mod chain;
pub mod context;
pub mod data;
pub mod errors;
pub mod journey;
pub mod services;
pub mod steps;
pub mod target;
pub mod wallets;

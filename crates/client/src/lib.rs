//! The virtual Vana user.
//!
//! - [`target`]: where the user goes (a TOML file or a twin manifest): RPC
//!   endpoints, contracts, service URLs, key sources, funding, timeouts.
//! - [`data`]: deterministic synthetic user data in the plan's three sizes.
//! - [`keys`]: the redacted `Secret` and HD derivation (a leaf: target and wallets use it).
//! - [`wallets`]: HD-derived user wallets and their batch funding.
//! - [`errors`]: the error taxonomy and the bounded retry policy.
//! - [`steps`]: the eleven step names and their deadlines.
//! - [`cpu`]: the users' heavy CPU work on a low-priority pool (so that, on
//!   one host with the twin, the network's work runs first).
//! - [`chain`]: providers, locally signed transactions, the shared receipt follower.
//! - [`services`]: storage, relayer, personal server, subgraph and TEE clients.
//! - [`context`]: a run's shared clients, keys and static facts.
//! - [`journey`]: the journey itself and its report.
//! - [`component`]: component mode — some steps timed alone, the earlier
//!   ones prepared before the clock (the dependency rule lives there) — and
//!   the pure-HTTP flow.
//!
//! The client knows nothing of the twin: everything it needs is in a [`target::Target`].
//! Typical use: `let ctx = Context::new(target, RunOptions::default()).await?;`
//! then `journey::run(&ctx, user_index, Mode::Relayer).await` per user.

pub mod chain;
pub mod component;
pub mod context;
pub mod cpu;
pub mod data;
pub mod errors;
pub mod journey;
pub mod keys;
pub mod services;
pub mod steps;
pub mod target;
pub mod wallets;

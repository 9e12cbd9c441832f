//! The flags with a fixed set of values, as clap `ValueEnum`s, so a bad value
//! is refused by clap itself (exit 2) with the accepted values listed, and
//! nothing downstream re-parses a string or falls back to a default.
//!
//! They mirror enums of the library crates (the engine's `Spacing`, `TxMode`
//! and `LiveMode`, the client's `Mode` and `DataSize`), which do not depend on
//! clap; `From` maps each onto its library enum, so a new library variant
//! fails to compile here until the flag learns it.

use clap::ValueEnum;

/// `--arrival`: spacing of arrivals within the rate curve.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The k-th arrival where the cumulative rate reaches k.
    Uniform,
    /// A seeded Poisson process conditioned on the planned total.
    Poisson,
}

impl From<Arrival> for engine::Spacing {
    fn from(a: Arrival) -> Self {
        match a {
            Arrival::Uniform => engine::Spacing::Uniform,
            Arrival::Poisson => engine::Spacing::Poisson,
        }
    }
}

/// `--tx-mode` (`run`, `plan`) and `--mode` (`journey`): who sends the transactions.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TxMode {
    /// The user signs (EIP-712), the relayer submits and pays.
    #[default]
    Relayer,
    /// The user's wallet sends and pays.
    Direct,
}

impl From<TxMode> for engine::TxMode {
    fn from(m: TxMode) -> Self {
        match m {
            TxMode::Relayer => engine::TxMode::Relayer,
            TxMode::Direct => engine::TxMode::Direct,
        }
    }
}

impl From<TxMode> for client::journey::Mode {
    fn from(m: TxMode) -> Self {
        match m {
            TxMode::Relayer => client::journey::Mode::Relayer,
            TxMode::Direct => client::journey::Mode::Direct,
        }
    }
}

/// `--live`: how a run shows its progress.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Live {
    /// The dashboard on a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// The dashboard.
    Tui,
    /// One line per interval.
    Plain,
    /// Nothing until the end.
    Off,
}

impl From<Live> for engine::LiveMode {
    fn from(l: Live) -> Self {
        match l {
            Live::Auto => engine::LiveMode::Auto,
            Live::Tui => engine::LiveMode::Tui,
            Live::Plain => engine::LiveMode::Plain,
            Live::Off => engine::LiveMode::Off,
        }
    }
}

/// `--size` (`journey`): the synthetic document's size.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Size {
    /// About 1 KB.
    #[default]
    Small,
    /// About 10 KB.
    Medium,
    /// About 100 KB.
    Large,
}

impl From<Size> for client::data::DataSize {
    fn from(s: Size) -> Self {
        match s {
            Size::Small => client::data::DataSize::Small,
            Size::Medium => client::data::DataSize::Medium,
            Size::Large => client::data::DataSize::Large,
        }
    }
}

//! One module per subcommand. Each has `Args` (clap) and `async fn run(..) -> anyhow::Result<ExitCode>`.

pub mod capacity;
pub mod flows;
pub mod http_flow;
pub mod journey;
pub mod k8s;
pub mod merge;
pub mod plan;
pub mod report;
pub mod run;
pub mod shard_arg;
pub mod target_arg;
pub mod twin;
pub mod values;
pub mod wallets;

/// Logs go to stderr; `RUST_LOG` overrides the default `info` level.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Whether stdout gets colour: a terminal, and no `NO_COLOR` (no-color.org).
pub fn color_stdout() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

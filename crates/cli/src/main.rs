//! `vana-load`: load tests of the Vana data-portability network.
//!
//! This binary is deliberately thin: each subcommand parses its flags and calls
//! into the library crates (`twin`, `client`, `engine`). Exit codes follow the
//! engine's convention: 0 pass, 1 thresholds failed, 2 usage or setup error.
//! With no subcommand it prints its help and exits 0 (a load test starts only
//! when asked: `vana-load run`).
//!
//! The process allocates with mimalloc: a load run is the client and every
//! twin service in one process, allocating small buffers on every request
//! from many threads, and glibc's malloc/free took about 4 % of its CPU
//! (BENCHMARKS.md, "Twice as fast per core").

mod cmd;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "vana-load", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a load test (default: the `smoke` profile against the local twin).
    Run(cmd::run::Args),
    /// Find the knee: raise a constant arrival rate in steps until a step fails, then bisect.
    Capacity(cmd::capacity::Args),
    /// Print a profile's arrival curve, peak rate and expected concurrency.
    Plan(cmd::plan::Args),
    /// Run one user journey with a fresh wallet and print each step.
    Journey(cmd::journey::Args),
    /// Manage test wallets.
    #[command(subcommand)]
    Wallets(cmd::wallets::Command),
    /// The local twin of the Vana network.
    #[command(subcommand)]
    Twin(cmd::twin::Command),
    /// Render or compare run reports.
    Report(cmd::report::Args),
    /// Merge the shards of a run (`run --shard i/n`) into one results directory and verdict.
    Merge(cmd::merge::Args),
    /// Kubernetes manifests of a sharded run.
    #[command(subcommand)]
    K8s(cmd::k8s::Command),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version on stdout with success, usage errors on stderr.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let Some(command) = cli.command else {
        let _ = Cli::command().print_help();
        return ExitCode::SUCCESS;
    };
    cmd::init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Run(args) => cmd::run::run(args).await,
            Command::Capacity(args) => cmd::capacity::run(args).await,
            Command::Plan(args) => cmd::plan::run(args).await,
            Command::Journey(args) => cmd::journey::run(args).await,
            Command::Wallets(c) => cmd::wallets::run(c).await,
            Command::Twin(c) => cmd::twin::run(c).await,
            Command::Report(args) => cmd::report::run(args).await,
            Command::Merge(args) => cmd::merge::run(args).await,
            Command::K8s(c) => cmd::k8s::run(c).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

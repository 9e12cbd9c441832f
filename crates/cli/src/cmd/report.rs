//! `vana-load report`: re-renders a run's results directory — `report.html`,
//! `junit.xml`, `steps.csv` and `timeseries.csv` — and prints the end-of-run
//! summary (or, with `--format markdown`, prints the Markdown summary for a CI
//! job summary and writes nothing); `report compare A B` shows two runs side
//! by side and exits 1 when B regresses beyond a tolerance.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use engine::report::{self, ChainParams, ReportOptions};

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Sub>,
    /// Results directory of a run (as written by `vana-load run --out DIR`).
    #[arg(required = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// `html` rewrites DIR/report.html, junit.xml and the CSVs and prints the summary;
    /// `markdown` prints a summary for a CI job summary.
    #[arg(long, value_enum, default_value_t = Format::Html)]
    pub format: Format,
    /// Also write the output to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub chain: ChainArgs,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Markdown,
}

/// Chain parameters for the capacity projection's chain ceiling.
#[derive(clap::Args, Debug, Clone)]
pub struct ChainArgs {
    /// Real network's block gas limit (default: a common 30M; Vana's is not published).
    #[arg(long, default_value_t = report::capacity::DEFAULT_BLOCK_GAS_LIMIT)]
    pub block_gas_limit: u64,
    /// Real network's block time in seconds (vana-wire §6: about 6 s).
    #[arg(long, default_value_t = report::capacity::DEFAULT_BLOCK_TIME_S)]
    pub block_time: f64,
    /// The twin's block gas limit (with --twin-block-time; default: run.json's `chain`, if recorded).
    #[arg(long, requires = "twin_block_time")]
    pub twin_block_gas_limit: Option<u64>,
    /// The twin's block time in seconds.
    #[arg(long, requires = "twin_block_gas_limit")]
    pub twin_block_time: Option<f64>,
}

impl ChainArgs {
    fn options(&self) -> anyhow::Result<ReportOptions> {
        if self.block_gas_limit == 0 {
            bail!("--block-gas-limit must be positive");
        }
        if !(self.block_time > 0.0 && self.block_time.is_finite()) {
            bail!("--block-time must be a positive number of seconds");
        }
        let twin = match (self.twin_block_gas_limit, self.twin_block_time) {
            (Some(g), Some(t)) => {
                if g == 0 || !(t > 0.0 && t.is_finite()) {
                    bail!("--twin-block-gas-limit and --twin-block-time must be positive");
                }
                Some(ChainParams {
                    block_gas_limit: g,
                    block_time_s: t,
                })
            }
            _ => None,
        };
        Ok(ReportOptions {
            real_chain: ChainParams {
                block_gas_limit: self.block_gas_limit,
                block_time_s: self.block_time,
            },
            twin_chain: twin,
        })
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    /// Compare run B with run A: criteria and per-step p50/p95 deltas; exit 1 when B regresses.
    Compare(CompareArgs),
}

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// The baseline run's results directory.
    pub a: PathBuf,
    /// The candidate run's results directory.
    pub b: PathBuf,
    /// Relative worsening allowed before B counts as a regression (0.1 = 10 %).
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    pub tolerance: f64,
    /// Where to write the HTML diff (default: B/compare.html).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(Sub::Compare(c)) => compare(c),
        None => {
            let dir = args.dir.context("a results directory is required")?;
            let opts = args.chain.options()?;
            match args.format {
                Format::Html => {
                    let mut data = report::RunData::load(&dir)
                        .with_context(|| format!("cannot report on {}", dir.display()))?;
                    let a = report::analyse(&data, &opts);
                    data.summary.bottleneck = Some(a.bottleneck.clone());
                    let page = report::write_html(&data, &a)
                        .with_context(|| format!("cannot report on {}", dir.display()))?;
                    report::write_ci_outputs(&data)
                        .with_context(|| format!("cannot report on {}", dir.display()))?;
                    let mut shown = page.clone();
                    if let Some(out) = &args.out {
                        std::fs::copy(&page, out)
                            .with_context(|| format!("cannot write {}", out.display()))?;
                        shown = out.clone();
                    }
                    print!("{}", report::text::render(&data, super::color_stdout()));
                    println!("report: {}", shown.display());
                }
                Format::Markdown => {
                    let md = report::markdown_report(&dir, &opts)
                        .with_context(|| format!("cannot report on {}", dir.display()))?;
                    match &args.out {
                        Some(out) => std::fs::write(out, &md)
                            .with_context(|| format!("cannot write {}", out.display()))?,
                        None => print!("{md}"),
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn compare(c: CompareArgs) -> anyhow::Result<ExitCode> {
    if !(c.tolerance >= 0.0 && c.tolerance.is_finite()) {
        bail!(
            "--tolerance must be a non-negative ratio (0.1 = 10 %), got {}",
            c.tolerance
        );
    }
    let cmp = report::compare(&c.a, &c.b, c.tolerance).context("cannot compare the runs")?;
    print!("{}", cmp.to_text());
    let out = c.out.unwrap_or_else(|| c.b.join("compare.html"));
    report::write_atomic(&out, cmp.to_html().as_bytes())?;
    println!("diff: {}", out.display());
    Ok(if cmp.regressed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

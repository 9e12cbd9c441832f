use std::process::ExitCode;

#[derive(clap::Args, Debug, Default)]
pub struct Args {}

pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}

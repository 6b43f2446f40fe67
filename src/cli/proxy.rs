//! `switchyard proxy`: the proxy without the console.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Proxy configuration file (TOML).
    #[arg(long, short)]
    pub config: PathBuf,
}

pub fn run(_args: ProxyArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}

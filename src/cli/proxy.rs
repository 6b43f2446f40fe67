//! `switchyard proxy`: the proxy without the console, until SIGINT or SIGTERM.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use switchyard_proxy::config::Config;

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Seconds running sessions get to finish on shutdown.
    #[arg(long, default_value_t = 10)]
    pub grace: u64,

    /// Folder for what survives a restart (the DISK layer `switchyard.db`, the event history);
    /// over `[admin] state_dir`. Default ~/.local/state/switchyard/proxy.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Rebuild the DISK layer from the config file (ProxySQL's --initial): without it, once the
    /// DISK file exists its rows win over the config file's.
    #[arg(long)]
    pub initial: bool,
}

/// `config` is the global `--config` (TOML, or a proxysql.cnf: see the README).
pub fn run(args: ProxyArgs, config: &Path) -> anyhow::Result<()> {
    let mut config = Config::load(config).context("refusing to start with this configuration")?;
    if let Some(dir) = args.state_dir {
        config.admin.state_dir = Some(dir);
    }
    config.admin.initial = args.initial;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if config.proxy.threads > 0 {
        builder.worker_threads(config.proxy.threads);
    }
    let rt = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let handle = switchyard_proxy::start(config)
            .await
            .context("cannot start the proxy")?;
        eprintln!(
            "switchyard proxy: MySQL clients on {}, admin on {}, HTTP (/metrics /healthz /readyz) on {}",
            handle.mysql_addr, handle.admin_addr, handle.http_addr
        );
        match &handle.data_file {
            Some(f) => eprintln!(
                "switchyard proxy: DISK layer {}{}",
                f.display(),
                if args.initial { " (rebuilt from the config file: --initial)" } else { "" }
            ),
            None => eprintln!(
                "switchyard proxy: no DISK layer ([admin] disk = false): nothing survives a restart"
            ),
        }
        wait_for_stop_signal(&handle.shared).await?;
        eprintln!("switchyard proxy: shutting down");
        handle.shutdown(Duration::from_secs(args.grace)).await;
        Ok(())
    })
}

/// Waits for SIGINT or SIGTERM; SIGHUP on the way reads the frontend certificate files again.
async fn wait_for_stop_signal(shared: &switchyard_proxy::server::Shared) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    loop {
        tokio::select! {
            r = tokio::signal::ctrl_c() => {
                r.context("cannot listen for Ctrl-C")?;
                return Ok(());
            }
            _ = term.recv() => return Ok(()),
            _ = hup.recv() => match shared.reload_frontend_tls() {
                Ok(true) => eprintln!("switchyard proxy: SIGHUP: frontend TLS certificate reloaded"),
                Ok(false) => eprintln!("switchyard proxy: SIGHUP: no [proxy.tls] files to reload"),
                Err(e) => eprintln!("switchyard proxy: SIGHUP: frontend TLS not reloaded: {e}"),
            },
        }
    }
}

//! `switchyard proxy`: the proxy without the console, until SIGINT or SIGTERM, then a drain.
//!
//! ProxySQL's own command line (`proxysql -f -D DIR -c FILE`, what container images run) works
//! too, as `switchyard proxysql …` or `switchyard proxy …`: `-c` is the global `--config`, `-D`
//! is `--state-dir` (ProxySQL's datadir holds its DISK database, as the state folder does here),
//! `-f` is accepted with a note (switchyard never daemonizes).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use switchyard_proxy::config::Config;

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Seconds the drain may take after SIGTERM or SIGINT: the listeners close at once and
    /// /readyz says 503, sessions inside a transaction may finish it (idle ones are closed with
    /// error 1053), then the process exits 0. A second signal ends the drain at once. Give a
    /// Kubernetes pod a terminationGracePeriodSeconds a few seconds above it.
    #[arg(
        long,
        env = "SWITCHYARD_GRACE",
        default_value_t = 10,
        value_name = "SECS"
    )]
    pub grace: u64,

    /// Folder for what survives a restart (the DISK layer `switchyard.db`, the event history);
    /// over `[admin] state_dir`. Default ~/.local/state/switchyard/proxy. `-D` is ProxySQL's
    /// `--datadir` spelling.
    #[arg(long, short = 'D', visible_alias = "datadir", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Rebuild the DISK layer from the config file (ProxySQL's --initial): without it, once the
    /// DISK file exists its rows win over the config file's.
    #[arg(long)]
    pub initial: bool,

    /// ProxySQL's "stay in the foreground": switchyard always does; accepted so ProxySQL's
    /// command lines run unchanged.
    #[arg(short = 'f', long)]
    pub foreground: bool,

    /// Where MySQL clients connect, over `[proxy] listen` (`mysql_variables.interfaces` in a
    /// cnf), e.g. 0.0.0.0:6033 in a container.
    #[arg(long, env = "SWITCHYARD_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Where /metrics, /healthz and /readyz are served, over `[admin] http_listen`
    /// (`admin_variables.restapi_port` in a cnf): a Kubernetes probe needs the pod's address,
    /// e.g. 0.0.0.0:6070.
    #[arg(long, env = "SWITCHYARD_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
}

/// `config` is the global `--config` (TOML, or a proxysql.cnf: see the README).
pub fn run(args: ProxyArgs, config: &Path) -> anyhow::Result<()> {
    if std::env::args_os().any(|a| a == "proxysql") {
        eprintln!("switchyard proxy: note: `proxysql` runs `switchyard proxy` (-c is --config, -D is --state-dir)");
    }
    if args.foreground {
        eprintln!("switchyard proxy: note: -f is accepted for ProxySQL's command line; switchyard always runs in the foreground");
    }
    let mut config = Config::load(config).context("refusing to start with this configuration")?;
    if let Some(dir) = args.state_dir {
        config.admin.state_dir = Some(dir);
    }
    if let Some(addr) = args.listen {
        config.proxy.listen = addr;
    }
    if let Some(addr) = args.http_listen {
        config.admin.http_listen = addr;
    }
    config.admin.initial = args.initial;
    let grace = Duration::from_secs(args.grace);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if config.proxy.threads > 0 {
        builder.worker_threads(config.proxy.threads);
    }
    let rt = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = rt.block_on(async {
        let mut signals = Signals::new()?;
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
        signals.wait_for_stop(&handle.shared).await?;
        eprintln!(
            "switchyard proxy: draining (up to {}s): new connections refused, /readyz 503, transactions finish",
            grace.as_secs()
        );
        let drain = handle.shutdown(grace);
        tokio::pin!(drain);
        tokio::select! {
            drained = &mut drain => {
                if drained.sessions_left == 0 {
                    eprintln!("switchyard proxy: drained in {} ms; stopped", drained.elapsed.as_millis());
                } else {
                    eprintln!(
                        "switchyard proxy: grace of {}s over, {} session(s) cut; stopped",
                        grace.as_secs(),
                        drained.sessions_left
                    );
                }
            }
            _ = signals.next_stop() => {
                eprintln!("switchyard proxy: second signal: stopping without waiting for sessions");
            }
        }
        anyhow::Ok(())
    });
    // Sessions cut by the grace must not hold the exit: their tasks are dropped, not awaited.
    rt.shutdown_timeout(Duration::from_millis(500));
    result
}

/// SIGINT, SIGTERM (stop) and SIGHUP (reload the frontend certificate), registered before the
/// proxy starts so that a signal during start-up is not lost.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            hup: signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?,
        })
    }

    /// Waits for SIGINT or SIGTERM; SIGHUP on the way reads the frontend certificate files again.
    async fn wait_for_stop(
        &mut self,
        shared: &switchyard_proxy::server::Shared,
    ) -> anyhow::Result<()> {
        loop {
            tokio::select! {
                _ = self.int.recv() => return Ok(()),
                _ = self.term.recv() => return Ok(()),
                _ = self.hup.recv() => match shared.reload_frontend_tls() {
                    Ok(true) => eprintln!("switchyard proxy: SIGHUP: frontend TLS certificate reloaded"),
                    Ok(false) => eprintln!("switchyard proxy: SIGHUP: no [proxy.tls] files to reload"),
                    Err(e) => eprintln!("switchyard proxy: SIGHUP: frontend TLS not reloaded: {e}"),
                },
            }
        }
    }

    async fn next_stop(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

//! `wasmgym serve`: environments over OpenEnv's protocol (WebSocket `/ws`, HTTP) and code runs
//! over SandboxFusion's (`/run_code`), until SIGINT or SIGTERM.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use wasmgym_server::{ServeConfig, Server};

use crate::error::{Error, Outcome};

#[derive(clap::Args)]
pub struct Args {
    /// An environment to serve (a built-in name or a .wasm / .wat path); repeat for several. With
    /// one, /ws is that environment; each is also at /envs/NAME/ws.
    #[arg(long = "env", value_name = "NAME|PATH")]
    pub envs: Vec<String>,
    /// The address to listen on. Anything but loopback exposes guests to the network: use --token.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// The port (0 picks a free one, printed at start).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// A token every request must carry (`Authorization: Bearer <token>`, or `/<token>/` first
    /// in the path); default: $WASMGYM_TOKEN, else none.
    #[arg(long)]
    pub token: Option<String>,
    /// WebSocket sessions (with their forks) held at once.
    #[arg(long, default_value_t = 256, value_parser = crate::at_least_1::<usize>())]
    pub max_sessions: usize,
    /// Code runs at once (/run_code, /grade workers) [default: one per core].
    #[arg(long, value_parser = crate::at_least_1::<usize>())]
    pub jobs: Option<usize>,
    /// Runs that may wait for a job before requests get 429.
    #[arg(long, default_value_t = 256)]
    pub queue: usize,
    /// Seconds a WebSocket session may stay silent before it is closed.
    #[arg(long, default_value_t = 600, value_parser = crate::at_least_1::<u64>())]
    pub idle_timeout_s: u64,
    /// Largest request body, in MiB.
    #[arg(long, default_value_t = 32, value_parser = crate::at_least_1::<usize>())]
    pub max_body_mib: usize,
    /// Largest WebSocket message, in KiB.
    #[arg(long, default_value_t = 1024, value_parser = crate::at_least_1::<usize>())]
    pub max_message_kib: usize,
    /// Print the address as one JSON line ({"listening": "http://..."}) instead of text; the log
    /// goes to stderr either way.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<Outcome, Error> {
    let token = args.token.clone().or_else(|| std::env::var("WASMGYM_TOKEN").ok().filter(|t| !t.is_empty()));
    let defaults = ServeConfig::default();
    let config = ServeConfig {
        envs: args.envs.clone(),
        token: token.clone(),
        max_sessions: args.max_sessions,
        jobs: args.jobs.unwrap_or(defaults.jobs),
        queue: args.queue,
        idle_timeout: Duration::from_secs(args.idle_timeout_s.max(1)),
        max_body_bytes: args.max_body_mib.max(1) << 20,
        max_message_bytes: args.max_message_kib.max(1) << 10,
        compile_cache: !crate::load::NO_CACHE.load(std::sync::atomic::Ordering::Relaxed),
        ..defaults
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("WASMGYM_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    let server = Server::new(config).map_err(Error::Usage)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("wasmgym-serve")
        .build()
        .map_err(Error::Io)?;
    runtime.block_on(async {
        let address = SocketAddr::new(args.host, args.port);
        let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
            Error::Usage(format!("cannot listen on {address}: {e} (pick another --port, or 0 for a free one)"))
        })?;
        let local = listener.local_addr()?;
        let url = format!("http://{local}");
        let envs = server.env_names();
        let mut out = std::io::stdout().lock();
        if args.json {
            let line = serde_json::json!({"listening": url, "envs": envs, "token": token.is_some()});
            writeln!(out, "{line}")?;
        } else {
            writeln!(out, "wasmgym serve: listening on {url}")?;
            match envs.as_slice() {
                [] => writeln!(out, "  no environments (--env NAME to serve one); /run_code and /grade run code")?,
                [one] => writeln!(out, "  OpenEnv: {url}/ws ({one}); SandboxFusion: {url}/run_code")?,
                many => writeln!(out, "  OpenEnv: {url}/envs/<{}>/ws; SandboxFusion: {url}/run_code", many.join("|"))?,
            }
            if token.is_some() {
                writeln!(out, "  every request needs the token (Authorization: Bearer, or {url}/<token>/...)")?;
            }
            if !args.host.is_loopback() && token.is_none() {
                writeln!(
                    out,
                    "  warning: listening beyond loopback without --token: anyone who reaches it can run code"
                )?;
            }
        }
        out.flush()?;
        drop(out);
        server.run(listener, wasmgym_server::shutdown_signal()).await?;
        Ok::<_, Error>(())
    })?;
    Ok(Outcome::Passed)
}

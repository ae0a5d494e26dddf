//! `wasmgym serve`: wasmgym environments over OpenEnv's protocol, and sandboxed code execution
//! over SandboxFusion's, so that trainers switch to wasmgym by changing a URL.
//!
//! ```no_run
//! use wasmgym_server::{ServeConfig, Server};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ServeConfig { envs: vec!["connect_four".into()], ..ServeConfig::default() };
//! let server = Server::new(config)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! server.run(listener, wasmgym_server::shutdown_signal()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! What it serves (docs/server.md):
//! - **OpenEnv**: WebSocket `/ws` (one session per connection: `reset`, `step`, `state`, `close`,
//!   and beyond OpenEnv `snapshot`, `restore`, `fork`, `release`), `GET /health`, `/metadata`,
//!   `/schema`, stateless `POST /reset`, `POST /step`, `GET /state`; each environment also under
//!   `/envs/<name>/`.
//! - **SandboxFusion**: `POST /run_code`; and `POST /grade`, one program on many tests.
//!
//! Every guest call runs on a blocking thread, never on the async workers. Sessions are capped
//! ([`ServeConfig::max_sessions`]), runs are capped and queued ([`ServeConfig::jobs`],
//! [`ServeConfig::queue`]), bodies and messages are bounded, and an optional token guards it all.

#![deny(missing_docs)]
// Handlers fail with the `Response` to send, axum's idiom; it is 128 bytes and on a cold path.
#![allow(clippy::result_large_err)]

mod openenv;
mod run_code;
mod served;
mod session;
mod spaces;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use wasmgym::{Runtime, RuntimeConfig};

pub use session::{Code, MAX_SNAPSHOTS};

/// What a server serves and its bounds. Plain data.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Environments: built-in names or paths to `.wasm` / `.wat` files. With exactly one, `/ws`
    /// (and `/reset`, `/step`, ...) is that environment; each is also at `/envs/<name>/`.
    pub envs: Vec<String>,
    /// A bearer token every request must carry (`Authorization: Bearer <token>`), or put first in
    /// its path (`/<token>/ws`, for clients that send no headers). `None`: no authentication.
    pub token: Option<String>,
    /// WebSocket sessions (and their forks) held at once; past it a connection gets
    /// `CAPACITY_REACHED`.
    pub max_sessions: usize,
    /// Code runs (`/run_code`, `/grade` workers) at once.
    pub jobs: usize,
    /// Runs that may wait for a job; past it a request gets 429.
    pub queue: usize,
    /// A WebSocket session with no message for this long is closed.
    pub idle_timeout: Duration,
    /// Largest HTTP request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest WebSocket message, in bytes.
    pub max_message_bytes: usize,
    /// Longest `run_timeout` a request may ask for.
    pub max_run_timeout: Duration,
    /// Most memory a request may ask for (`memory_limit_MB`), in MiB.
    pub max_memory_mib: u64,
    /// Keep compiled modules and solutions in wasmgym's cache folder ([`wasmgym::cache_dir`]).
    pub compile_cache: bool,
}

impl Default for ServeConfig {
    fn default() -> Self {
        let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
        ServeConfig {
            envs: Vec::new(),
            token: None,
            max_sessions: 256,
            jobs,
            queue: 256,
            idle_timeout: Duration::from_secs(600),
            max_body_bytes: 32 << 20,
            max_message_bytes: 1 << 20,
            max_run_timeout: Duration::from_secs(60),
            max_memory_mib: 1024,
            compile_cache: true,
        }
    }
}

/// A server, ready to run: environments loaded, runtimes started.
pub struct Server {
    app: Arc<App>,
}

/// What every handler shares.
pub(crate) struct App {
    config: ServeConfig,
    envs: std::collections::BTreeMap<String, Arc<served::Served>>,
    capacity: Arc<session::Capacity>,
    runs: Runs,
    grading: run_code::Grading,
    token: Option<blake3::Hash>,
    shutdown: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
}

impl Server {
    /// Loads the environments and starts the runtimes. Errors name the cause and the fix.
    pub fn new(config: ServeConfig) -> Result<Server, String> {
        if config.jobs == 0 || config.max_sessions == 0 {
            return Err("--jobs and --max-sessions must be at least 1".into());
        }
        if config.token.as_deref().is_some_and(|t| t.is_empty() || t.contains('/')) {
            return Err("the token must be non-empty and have no `/` (it may stand as a path segment)".into());
        }
        let runtime =
            Runtime::with_config(RuntimeConfig { compile_cache: cache(&config, "modules"), ..Default::default() })
                .map_err(|e| format!("starting the WebAssembly runtime: {e}"))?;
        let envs = served::load(&runtime, &config.envs)?;
        let (stop, shutdown) = watch::channel(false);
        let app = App {
            capacity: session::Capacity::new(config.max_sessions),
            runs: Runs::new(config.jobs, config.queue),
            grading: run_code::Grading::new(config.compile_cache)?,
            token: config.token.as_deref().map(|t| blake3::hash(t.as_bytes())),
            envs,
            config,
            shutdown,
            stop,
        };
        Ok(Server { app: Arc::new(app) })
    }

    /// The names of the environments served.
    pub fn env_names(&self) -> Vec<String> {
        self.app.envs.keys().cloned().collect()
    }

    /// Every route, behind the token check and the request log.
    pub fn router(&self) -> Router {
        let routes = openenv::routes().merge(run_code::routes()).with_state(self.app.clone());
        let guarded = axum::middleware::from_fn_with_state(self.app.clone(), guard);
        Router::new().fallback_service(tower_layer(guarded, routes))
    }

    /// Serves on `listener` until `shutdown` completes; then stops accepting, tells every
    /// WebSocket session to close, and waits for requests in flight.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = self.router();
        let stop = self.app.stop.clone();
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                tracing::info!("shutting down: closing sessions, finishing requests in flight");
                let _ = stop.send(true);
            })
            .await
    }
}

fn tower_layer<L: tower::Layer<Router>>(layer: L, router: Router) -> L::Service {
    layer.layer(router)
}

/// `what` in wasmgym's cache folder, unless the config turns the cache off.
pub(crate) fn cache(config: &ServeConfig, what: &str) -> Option<std::path::PathBuf> {
    config.compile_cache.then(|| wasmgym::cache_dir(what)).flatten()
}

/// Completes on SIGINT or SIGTERM (Ctrl-C elsewhere).
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// The token check and the request log, before routing: a request passes with the right bearer
/// token, or with the token as its first path segment (removed before routing). Both compare in
/// constant time (hashes of equal length). The log line never holds the token.
async fn guard(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    if let Some(token) = app.token {
        let same = |candidate: &str| blake3::hash(candidate.as_bytes()) == token;
        let path = request.uri().path();
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        if same(first) {
            let rest = &path[1 + first.len()..];
            let rest = if rest.is_empty() { "/" } else { rest };
            let query = request.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
            if let Ok(uri) = format!("{rest}{query}").parse::<Uri>() {
                *request.uri_mut() = uri;
            }
        } else {
            let bearer = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
            let given = bearer.and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
            if !same(given.trim()) {
                tracing::info!(%method, status = 401, "request refused: no valid token");
                let message = "this server needs a token: send `Authorization: Bearer <token>`, or put the token first in \
                               the path (http://host:port/<token>/ws)";
                let mut response = error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return response;
            }
        }
    }
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    tracing::info!(%method, path = %path.chars().take(200).collect::<String>(), status = response.status().as_u16(), ms, "request");
    response
}

/// A JSON error response: `{"detail": message, "code": code}` (FastAPI's `detail`, which
/// OpenEnv's and SandboxFusion's clients show).
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"detail": message.into(), "code": code}))).into_response()
}

/// Reads a JSON request body of at most `limit` bytes; an empty body is `null`.
pub(crate) async fn read_json(body: axum::body::Body, limit: usize) -> Result<Value, Response> {
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        let message = format!("the request body is over {limit} bytes, this server's limit (--max-body-mib)");
        error(StatusCode::PAYLOAD_TOO_LARGE, "BODY_TOO_LARGE", message)
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, "INVALID_JSON", format!("the request body is not JSON: {e}")))
}

/// Runs `f` on a blocking thread (guest calls never block the async workers).
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Response> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!("a request's blocking task failed: {e}");
        error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", format!("the request's task failed: {e}"))
    })
}

/// The cap on code runs at once, and the queue in front of it.
struct Runs {
    permits: Arc<Semaphore>,
    jobs: usize,
    waiting: AtomicUsize,
    queue: usize,
}

/// A place in the queue, given back when the wait ends or its request is dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Runs {
    fn new(jobs: usize, queue: usize) -> Runs {
        Runs { permits: Arc::new(Semaphore::new(jobs)), jobs, waiting: AtomicUsize::new(0), queue }
    }

    /// `n` jobs (at most all of them), waiting in the queue if it has room; 429 when it has none.
    async fn acquire(&self, n: usize) -> Result<OwnedSemaphorePermit, Response> {
        let n = n.clamp(1, self.jobs) as u32;
        if let Ok(permit) = self.permits.clone().try_acquire_many_owned(n) {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            let message = format!(
                "the server is busy: {} jobs running and {} requests queued, its limits (--jobs, --queue); retry later",
                self.jobs, self.queue
            );
            return Err(error(StatusCode::TOO_MANY_REQUESTS, "BUSY", message));
        }
        let _waiting = Waiting(&self.waiting);
        self.permits
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| error(StatusCode::SERVICE_UNAVAILABLE, "SHUTTING_DOWN", "the server is shutting down"))
    }
}

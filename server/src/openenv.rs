//! OpenEnv's protocol: the WebSocket session at `/ws` and the HTTP endpoints, for the one
//! environment served at the root or for each at `/envs/<name>/`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::served::Served;
use crate::session::{self, Code, Failure, ResetRequest, Session};
use crate::{App, blocking, error, read_json};

/// The routes of this protocol.
pub(crate) fn routes() -> Router<Arc<App>> {
    let per_env = |router: Router<Arc<App>>, prefix: &str| {
        router
            .route(&format!("{prefix}/ws"), get(ws))
            .route(&format!("{prefix}/metadata"), get(metadata))
            .route(&format!("{prefix}/schema"), get(schema))
            .route(&format!("{prefix}/reset"), post(reset))
            .route(&format!("{prefix}/step"), post(step))
            .route(&format!("{prefix}/state"), get(state))
            .route(&format!("{prefix}/health"), get(health))
    };
    let router = Router::new()
        .route("/", get(index))
        .route("/envs", get(envs))
        .route("/openapi.json", get(openapi))
        .route("/mcp", post(mcp));
    per_env(per_env(router, ""), "/envs/{name}")
}

/// The environment a request is for: the one named in its path, or the only one served.
fn pick(app: &App, name: Option<Path<String>>) -> Result<Arc<Served>, Response> {
    match name {
        Some(Path(name)) => app.envs.get(&name).cloned().ok_or_else(|| {
            let served: Vec<&str> = app.envs.keys().map(String::as_str).collect();
            let e = format!("no environment `{name}` here: this server serves {}", list(&served));
            error(StatusCode::NOT_FOUND, "UNKNOWN_ENV", e)
        }),
        None if app.envs.len() == 1 => Ok(app.envs.values().next().cloned().expect("one env")),
        None => {
            let served: Vec<&str> = app.envs.keys().map(String::as_str).collect();
            let e = match served.is_empty() {
                true => "this server serves no environment (start it with --env NAME)".to_owned(),
                false => format!(
                    "this server serves several environments ({}): use /envs/<name>/ws, /envs/<name>/reset, ...",
                    list(&served)
                ),
            };
            Err(error(StatusCode::NOT_FOUND, "UNKNOWN_ENV", e))
        }
    }
}

fn list(names: &[&str]) -> String {
    if names.is_empty() { "none".into() } else { names.join(", ") }
}

async fn index(State(app): State<Arc<App>>) -> Response {
    axum::Json(json!({
        "name": "wasmgym",
        "version": env!("CARGO_PKG_VERSION"),
        "envs": app.envs.keys().collect::<Vec<_>>(),
        "endpoints": ["/ws", "/reset", "/step", "/state", "/schema", "/metadata", "/health", "/envs/<name>/ws", "/run_code", "/grade"],
        "docs": "docs/server.md",
    }))
    .into_response()
}

async fn envs(State(app): State<Arc<App>>) -> Response {
    let envs: Vec<Value> = app.envs.values().map(|s| s.metadata()).collect();
    axum::Json(json!({"envs": envs})).into_response()
}

async fn health(State(app): State<Arc<App>>, name: Option<Path<String>>) -> Response {
    if name.is_some()
        && let Err(response) = pick(&app, name)
    {
        return response;
    }
    axum::Json(json!({"status": "healthy"})).into_response()
}

async fn metadata(State(app): State<Arc<App>>, name: Option<Path<String>>) -> Response {
    match pick(&app, name) {
        Ok(served) => axum::Json(served.metadata()).into_response(),
        Err(response) => response,
    }
}

async fn schema(State(app): State<Arc<App>>, name: Option<Path<String>>) -> Response {
    match pick(&app, name) {
        Ok(served) => axum::Json(served.schemas().clone()).into_response(),
        Err(response) => response,
    }
}

/// A stateless request: the environment it names, its JSON body, and `handle` run on a blocking
/// thread; the observation reply's data or the failure as an HTTP error.
async fn stateless(
    app: Arc<App>,
    name: Option<Path<String>>,
    body: Body,
    handle: impl FnOnce(&Served, Value) -> Result<Value, Failure> + Send + 'static,
) -> Response {
    let served = match pick(&app, name) {
        Ok(served) => served,
        Err(response) => return response,
    };
    let body = match read_json(body, app.config.max_body_bytes).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    reply(blocking(move || handle(&served, body)).await)
}

/// `POST /reset`: a fresh instance, reset with the body's `seed`, `episode_id` and `options`;
/// the observation reply's data. Stateless: nothing is kept.
async fn reset(State(app): State<Arc<App>>, name: Option<Path<String>>, body: Body) -> Response {
    stateless(app, name, body, |served, body| {
        let request = ResetRequest::parse(&body)?;
        let mut env = served.instantiate().map_err(|e| Failure::new(Code::FactoryError, e.to_string()))?;
        let transition = env.reset(request.seed, request.options.as_deref()).map_err(|e| execution(&e))?;
        session::observation_reply(served, &mut env, &transition, None)
    })
    .await
}

/// `POST /step`: stateless, so the body says which state to step from: `seed` (and `options`)
/// for the reset, the `history` of actions played since, and the `action`. The observation
/// reply's data.
async fn step(State(app): State<Arc<App>>, name: Option<Path<String>>, body: Body) -> Response {
    stateless(app, name, body, |served, body| {
        let Value::Object(mut fields) = body else {
            return Err(Failure::new(
                Code::ValidationError,
                r#"step takes {"action": ...} (and optionally seed, options and history)"#,
            ));
        };
        let space = &served.spec().action_space;
        let action = fields
            .remove("action")
            .ok_or_else(|| Failure::new(Code::ValidationError, r#"the body has no `action`: send {"action": 3}"#))?;
        let action = crate::spaces::parse_action(space, &action).map_err(|e| Failure::new(Code::ValidationError, e))?;
        let history = match fields.remove("history") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(actions)) => actions,
            Some(other) => {
                let e = format!(
                    "history is an array of the actions played since reset, not {}",
                    crate::spaces::kind(&other)
                );
                return Err(Failure::new(Code::ValidationError, e));
            }
        };
        let history = (history.iter().map(|a| crate::spaces::parse_action(space, a)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Failure::new(Code::ValidationError, format!("in history: {e}")))?;
        for ignored in ["metadata", "timeout_s", "request_id"] {
            fields.remove(ignored);
        }
        let request = ResetRequest::parse(&Value::Object(fields))?;
        let mut env = served.instantiate().map_err(|e| Failure::new(Code::FactoryError, e.to_string()))?;
        let mut transition = env.reset(request.seed, request.options.as_deref()).map_err(|e| execution(&e))?;
        for (i, a) in history.into_iter().enumerate() {
            if transition.done() {
                return Err(Failure::new(
                    Code::ValidationError,
                    format!("the episode ended after {i} actions of the history"),
                ));
            }
            transition =
                env.step(a).map_err(|e| Failure::new(Code::ValidationError, format!("history action {i}: {e}")))?;
        }
        if transition.done() {
            return Err(Failure::new(Code::ValidationError, "the episode is over after the history: nothing to step"));
        }
        let player = env.current_player().unwrap_or(0);
        let transition = env.step(action).map_err(|e| execution(&e))?;
        session::observation_reply(served, &mut env, &transition, Some(transition.reward(player)))
    })
    .await
}

/// `GET /state`: the state of a fresh instance (stateless HTTP keeps no episode).
async fn state(State(app): State<Arc<App>>, name: Option<Path<String>>) -> Response {
    match pick(&app, name) {
        Ok(served) => axum::Json(json!({
            "episode_id": null, "step_count": 0, "current_player": null, "done": false, "state_hash": null,
            "env": served.name,
        }))
        .into_response(),
        Err(response) => response,
    }
}

fn execution(e: &wasmgym::Error) -> Failure {
    let code = match e {
        wasmgym::Error::IllegalAction { .. } | wasmgym::Error::InvalidCall { .. } => Code::ValidationError,
        _ => Code::ExecutionError,
    };
    Failure::new(code, format!("{e} ({})", e.kind()))
}

fn reply(result: Result<Result<Value, Failure>, Response>) -> Response {
    match result {
        Ok(Ok(data)) => axum::Json(data).into_response(),
        Ok(Err(failure)) => {
            let status = match failure.code {
                Code::ValidationError | Code::InvalidJson => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            error(status, failure.code.name(), failure.message)
        }
        Err(response) => response,
    }
}

/// `GET /ws`: one session per connection.
async fn ws(State(app): State<Arc<App>>, name: Option<Path<String>>, upgrade: WebSocketUpgrade) -> Response {
    let served = match pick(&app, name) {
        Ok(served) => served,
        Err(response) => return response,
    };
    let limit = app.config.max_message_bytes;
    upgrade.max_message_size(limit).max_frame_size(limit).on_upgrade(move |socket| run_session(app, served, socket))
}

/// Sends `json`; false if the socket is gone.
async fn send(socket: &mut WebSocket, json: &Value) -> bool {
    socket.send(Message::Text(json.to_string().into())).await.is_ok()
}

/// Closes the socket as OpenEnv's server does: code 1000, no reason.
async fn close(socket: &mut WebSocket) {
    let frame = CloseFrame { code: 1000, reason: "".into() };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// Sends a failure that ends the session and closes the socket.
async fn end(socket: &mut WebSocket, failure: Failure) {
    send(socket, &failure.to_json()).await;
    close(socket).await;
}

/// What the socket gave: a text message, or why the session ends.
enum Incoming {
    Text(String),
    End(&'static str, Option<Failure>),
}

/// Reads the next message, skipping pings and pongs (answered by the WebSocket layer). A binary
/// frame ends the session with SESSION_ERROR, as OpenEnv's server does.
fn incoming(next: Option<Result<Message, axum::Error>>) -> Option<Incoming> {
    match next {
        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => Some(Incoming::End("client closed", None)),
        Some(Ok(Message::Text(text))) => Some(Incoming::Text(text.to_string())),
        Some(Ok(Message::Binary(_))) => {
            let failure = Failure::new(Code::SessionError, "a binary frame: send JSON text messages");
            Some(Incoming::End("binary frame", Some(failure)))
        }
        Some(Ok(_)) => None,
    }
}

async fn run_session(app: Arc<App>, served: Arc<Served>, mut socket: WebSocket) {
    let Some(ticket) = app.capacity.take() else {
        let (used, max) = (app.capacity.used(), app.capacity.max());
        let message = format!(
            "Server at capacity: {used}/{max} sessions active. Cannot accept new connections (--max-sessions); retry later"
        );
        tracing::info!(env = %served.name, "session refused: capacity reached");
        let reply = json!({"type": "error", "data": {
            "message": message, "code": Code::CapacityReached.name(), "active_sessions": used, "max_sessions": max,
        }});
        send(&mut socket, &reply).await;
        return close(&mut socket).await;
    };
    let capacity = app.capacity.clone();
    let name = served.name.clone();
    let mut session = match blocking(move || Session::new(served, capacity, ticket)).await {
        Ok(Ok(session)) => session,
        Ok(Err(failure)) => return end(&mut socket, failure).await,
        Err(_) => return end(&mut socket, Failure::new(Code::FactoryError, "the session could not start")).await,
    };
    tracing::info!(env = %name, sessions = app.capacity.used(), "session opened");
    let mut shutdown = app.shutdown.clone();
    let mut pending = std::collections::VecDeque::new();
    let mut messages = 0u64;
    let why = 'session: loop {
        let text = match pending.pop_front() {
            Some(text) => text,
            None => {
                let next = tokio::select! {
                    biased;
                    _ = async { let _ = shutdown.wait_for(|stop| *stop).await; } => {
                        end(&mut socket, Failure::new(Code::SessionError, "the server is shutting down")).await;
                        break "shutdown";
                    }
                    next = tokio::time::timeout(app.config.idle_timeout, socket.recv()) => next,
                };
                let Ok(next) = next else {
                    let idle = app.config.idle_timeout.as_secs();
                    let e = format!("no message for {idle} s: the session is closed; connect again");
                    end(&mut socket, Failure::new(Code::SessionError, e)).await;
                    break "idle";
                };
                match incoming(next) {
                    None => continue,
                    Some(Incoming::Text(text)) => text,
                    Some(Incoming::End(why, failure)) => {
                        if let Some(failure) = failure {
                            end(&mut socket, failure).await;
                        }
                        break why;
                    }
                }
            }
        };
        messages += 1;
        // The guest runs on a blocking thread while this task keeps reading the socket, so pings
        // are answered during a long step; messages sent meanwhile wait their turn.
        let task = blocking(move || {
            let reply = session.handle(&text);
            (session, reply)
        });
        tokio::pin!(task);
        let done = loop {
            tokio::select! {
                done = &mut task => break done,
                next = socket.recv() => match incoming(next) {
                    None => {}
                    Some(Incoming::Text(text)) => pending.push_back(text),
                    // The instance is dropped when the call in flight returns.
                    Some(Incoming::End(why, _)) => break 'session why,
                },
            }
        };
        let Ok((back, reply)) = done else {
            end(&mut socket, Failure::new(Code::SessionError, "the session failed inside the server")).await;
            break "failed";
        };
        session = back;
        if reply.close {
            if let Some(json) = &reply.json {
                send(&mut socket, json).await;
            }
            close(&mut socket).await;
            break "closed";
        }
        if let Some(json) = &reply.json
            && !send(&mut socket, json).await
        {
            break "client gone";
        }
    };
    tracing::info!(env = %name, messages, why, "session closed");
}

/// `GET /openapi.json`: the routes, for `openenv validate` and other tools.
async fn openapi(State(app): State<Arc<App>>) -> Response {
    let op = |summary: &str| json!({"summary": summary, "responses": {"200": {"description": "OK"}}});
    let mut paths = serde_json::Map::new();
    let mut add = |prefix: &str| {
        paths.insert(format!("{prefix}/health"), json!({"get": op("Health check")}));
        paths.insert(format!("{prefix}/metadata"), json!({"get": op("Environment metadata")}));
        paths.insert(format!("{prefix}/schema"), json!({"get": op("JSON schemas of action, observation and state")}));
        paths.insert(format!("{prefix}/reset"), json!({"post": op("Reset a fresh environment (stateless)")}));
        paths.insert(format!("{prefix}/step"), json!({"post": op("Step from a seed and history (stateless)")}));
        paths.insert(format!("{prefix}/state"), json!({"get": op("State of a fresh environment")}));
        paths.insert(format!("{prefix}/ws"), json!({"get": op("WebSocket session")}));
    };
    add("");
    add("/envs/{name}");
    paths.insert("/mcp".into(), json!({"post": op("MCP (JSON-RPC): this server has no MCP tools")}));
    paths.insert("/run_code".into(), json!({"post": op("Run code in the sandbox (SandboxFusion)")}));
    paths.insert("/grade".into(), json!({"post": op("Grade a program on many tests")}));
    let title = match app.envs.len() {
        1 => app.envs.keys().next().cloned().unwrap_or_default(),
        _ => "wasmgym".into(),
    };
    // `info.version` is the OpenEnv HTTP profile this speaks (`openenv validate` reads it).
    axum::Json(json!({
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0", "x-wasmgym-version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
    }))
    .into_response()
}

/// `POST /mcp`: JSON-RPC 2.0, as OpenEnv's server answers for an environment without MCP tools:
/// HTTP 200 and a JSON-RPC error.
async fn mcp(State(app): State<Arc<App>>, body: Body) -> Response {
    let (id, code, message) = match read_json(body, app.config.max_body_bytes).await {
        Err(_) => (Value::Null, -32700, "Parse error".to_owned()),
        Ok(request) => match request.get("method").and_then(Value::as_str) {
            None => {
                (request.get("id").cloned().unwrap_or(Value::Null), -32600, "Invalid request: no method".to_owned())
            }
            Some(method) => {
                let id = request.get("id").cloned().unwrap_or(Value::Null);
                (
                    id,
                    -32603,
                    format!(
                        "Environment does not support MCP (method `{}`)",
                        method.chars().take(60).collect::<String>()
                    ),
                )
            }
        },
    };
    axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message, "data": null}}))
        .into_response()
}

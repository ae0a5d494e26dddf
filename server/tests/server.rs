//! The server end to end: real sockets, real instances, real guests; the OpenEnv session protocol,
//! its errors, capacity, idle sessions, tokens, shutdown, and SandboxFusion's `/run_code`.
//! (The real Python clients, OpenEnv's and SandboxFusion's, are driven from python/tests.)

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use tower::ServiceExt;
use wasmgym::{Observation, Runtime};
use wasmgym_server::{ServeConfig, Server};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn config(envs: &[&str]) -> ServeConfig {
    ServeConfig { envs: envs.iter().map(|e| e.to_string()).collect(), ..ServeConfig::default() }
}

/// A server on a free loopback port: its address and the sender that shuts it down.
struct Running {
    addr: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(config: ServeConfig) -> Running {
    let server = Server::new(config).expect("the server starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(listener, async move {
        let _ = stopped.await;
    }));
    Running { addr, stop: Some(stop), handle }
}

async fn connect(addr: &str, path: &str) -> Socket {
    connect_async(format!("ws://{addr}{path}")).await.expect("the WebSocket connects").0
}

/// The next text message as JSON, or `None` once the server closed.
async fn next(ws: &mut Socket) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await.expect("a reply within 30 s") {
            Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).expect("replies are JSON")),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

async fn ask(ws: &mut Socket, message: Value) -> Value {
    ws.send(Message::Text(message.to_string().into())).await.unwrap();
    next(ws).await.expect("a reply")
}

/// The error code of an error reply.
fn code(reply: &Value) -> &str {
    assert_eq!(reply["type"], "error", "{reply}");
    reply["data"]["code"].as_str().unwrap()
}

/// Nested JSON arrays of numbers, flattened.
fn flat(value: &Value, out: &mut Vec<f64>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| flat(v, out)),
        other => out.push(other.as_f64().expect("a number")),
    }
}

fn same_observation(json: &Value, observation: &Observation) {
    let mut got = Vec::new();
    flat(json, &mut got);
    let want: Vec<f64> = match observation {
        Observation::F32(v) => v.iter().map(|&x| x as f64).collect(),
        Observation::F64(v) => v.clone(),
        other => panic!("unexpected observation {other:?}"),
    };
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.to_bits(), w.to_bits(), "observations differ");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_session_plays_the_same_trajectory_as_the_runtime_in_process() {
    let server = start(config(&["connect_four", "cart_pole"])).await;
    let runtime = Runtime::new().unwrap();
    for (name, seed) in [("connect_four", 7u64), ("cart_pole", 11)] {
        let module = runtime.load(wasmgym_builtin::find(name).unwrap().bytes).unwrap();
        let mut local = module.instantiate().unwrap();
        let mut ws = connect(&server.addr, &format!("/envs/{name}/ws")).await;
        let reply = ask(&mut ws, json!({"type": "reset", "data": {"seed": seed, "episode_id": "e1"}})).await;
        let mut transition = local.reset(Some(seed), None).unwrap();
        assert_eq!(reply["type"], "observation");
        assert_eq!(reply["data"]["reward"], Value::Null);
        same_observation(&reply["data"]["observation"]["observation"], &transition.observation);
        let mut steps = 0;
        while !transition.done() && steps < 60 {
            let legal = local.legal_actions().unwrap();
            let player = local.current_player().unwrap();
            let action = legal[(steps * 5 + 3) % legal.len()];
            let reply = ask(&mut ws, json!({"type": "step", "data": {"action": action}})).await;
            transition = local.step(action).unwrap();
            let data = &reply["data"];
            same_observation(&data["observation"]["observation"], &transition.observation);
            assert_eq!(data["reward"].as_f64().unwrap().to_bits(), transition.reward(player).to_bits());
            assert_eq!(data["done"], transition.done());
            assert_eq!(data["observation"]["current_player"], json!(transition.current_player));
            let want: Vec<Value> = if transition.done() {
                vec![]
            } else {
                local.legal_actions().unwrap().into_iter().map(|a| json!(a)).collect()
            };
            assert_eq!(data["observation"]["legal_actions"], Value::Array(want));
            steps += 1;
        }
        let state = ask(&mut ws, json!({"type": "state"})).await;
        assert_eq!(state["type"], "state");
        assert_eq!(state["data"]["episode_id"], "e1");
        assert_eq!(state["data"]["step_count"], steps);
        // `close` gets no reply: the server closes the socket.
        ws.send(Message::Text(json!({"type": "close"}).to_string().into())).await.unwrap();
        assert_eq!(next(&mut ws).await, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_get_openenvs_error_codes_and_only_the_closing_ones_end_the_session() {
    let server = start(config(&["tic_tac_toe"])).await;
    let mut ws = connect(&server.addr, "/ws").await;
    let step = |a: Value| json!({"type": "step", "data": {"action": a}});
    assert_eq!(code(&ask(&mut ws, step(json!(4))).await), "VALIDATION_ERROR"); // before reset
    ws.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(code(&next(&mut ws).await.unwrap()), "INVALID_JSON");
    assert_eq!(code(&ask(&mut ws, json!({"type": "dance"})).await), "UNKNOWN_TYPE");
    assert_eq!(code(&ask(&mut ws, json!({"data": {}})).await), "UNKNOWN_TYPE");
    assert_eq!(ask(&mut ws, json!({"type": "reset", "data": {"seed": 1}})).await["type"], "observation");
    let reply = ask(&mut ws, step(json!(99))).await;
    assert_eq!(code(&reply), "VALIDATION_ERROR");
    assert!(reply["data"]["message"].as_str().unwrap().contains("illegal"), "{reply}");
    assert_eq!(code(&ask(&mut ws, step(json!("four"))).await), "VALIDATION_ERROR");
    assert_eq!(code(&ask(&mut ws, json!({"type": "reset", "data": {"seed": -3}})).await), "VALIDATION_ERROR");
    assert_eq!(
        code(&ask(&mut ws, json!({"type": "restore", "data": {"snapshot_id": "nope"}})).await),
        "VALIDATION_ERROR"
    );
    // The session survived all of that: a legal move plays.
    let reply = ask(&mut ws, step(json!(4))).await;
    assert_eq!(reply["type"], "observation", "{reply}");
    assert_eq!(reply["data"]["observation"]["current_player"], 1);
    // JSON that is not an object ends the session, as in OpenEnv's server.
    assert_eq!(code(&ask(&mut ws, json!([1, 2])).await), "SESSION_ERROR");
    assert_eq!(next(&mut ws).await, None);
    // So does a binary frame.
    let mut ws = connect(&server.addr, "/ws").await;
    ws.send(Message::Binary(b"{\"type\":\"state\"}".to_vec().into())).await.unwrap();
    assert_eq!(code(&next(&mut ws).await.unwrap()), "SESSION_ERROR");
    assert_eq!(next(&mut ws).await, None);
    // An oversized message closes the socket without harming the server.
    let mut ws = connect(&server.addr, "/ws").await;
    let huge = json!({"type": "step", "data": {"action": "x".repeat(2 << 20)}});
    let _ = ws.send(Message::Text(huge.to_string().into())).await;
    assert_eq!(next(&mut ws).await, None);
    let mut ws = connect(&server.addr, "/ws").await;
    assert_eq!(ask(&mut ws, json!({"type": "reset"})).await["type"], "observation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_restore_and_forks_branch_exactly_over_the_wire() {
    let server = start(config(&["connect_four"])).await;
    let mut ws = connect(&server.addr, "/ws").await;
    ask(&mut ws, json!({"type": "reset", "data": {"seed": 3}})).await;
    for a in [3, 3, 2] {
        ask(&mut ws, json!({"type": "step", "data": {"action": a}})).await;
    }
    let snap = ask(&mut ws, json!({"type": "snapshot"})).await;
    assert_eq!(snap["type"], "snapshot");
    let id = snap["data"]["snapshot_id"].clone();
    let fork = ask(&mut ws, json!({"type": "fork"})).await;
    let fork_id = fork["data"]["session_id"].clone();
    assert_eq!(fork["type"], "fork");
    let after: Vec<Value> = [4, 4, 1].iter().map(|&a| json!({"type": "step", "data": {"action": a}})).collect();
    let mut main_replies = Vec::new();
    for m in &after {
        main_replies.push(ask(&mut ws, m.clone()).await);
    }
    let main_state = ask(&mut ws, json!({"type": "state"})).await;
    // The fork is where the main line was, and the same moves give the same replies and state.
    for (m, want) in after.iter().zip(&main_replies) {
        let mut m = m.clone();
        m["session_id"] = fork_id.clone();
        assert_eq!(&ask(&mut ws, m).await, want);
    }
    let fork_state = ask(&mut ws, json!({"type": "state", "session_id": fork_id})).await;
    assert_eq!(fork_state["data"]["state_hash"], main_state["data"]["state_hash"]);
    assert_eq!(fork_state["data"]["step_count"], 6);
    // Restoring brings the main line back to the snapshot; replaying gives the same replies.
    let restored = ask(&mut ws, json!({"type": "restore", "data": {"snapshot_id": id}})).await;
    assert_eq!(restored["type"], "observation");
    assert_eq!(ask(&mut ws, json!({"type": "state"})).await["data"]["step_count"], 3);
    for (m, want) in after.iter().zip(&main_replies) {
        assert_eq!(&ask(&mut ws, m.clone()).await, want);
    }
    // A released fork and snapshot are gone.
    assert_eq!(ask(&mut ws, json!({"type": "close", "session_id": fork_id})).await["type"], "closed");
    assert_eq!(code(&ask(&mut ws, json!({"type": "state", "session_id": fork_id})).await), "VALIDATION_ERROR");
    assert_eq!(ask(&mut ws, json!({"type": "release", "data": {"snapshot_id": id}})).await["type"], "released");
    assert_eq!(code(&ask(&mut ws, json!({"type": "restore", "data": {"snapshot_id": id}})).await), "VALIDATION_ERROR");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_past_the_cap_get_capacity_reached_and_a_closed_session_frees_its_place() {
    let server = start(ServeConfig { max_sessions: 2, ..config(&["tic_tac_toe"]) }).await;
    let mut first = connect(&server.addr, "/ws").await;
    ask(&mut first, json!({"type": "reset"})).await;
    // A fork takes a place too.
    let fork = ask(&mut first, json!({"type": "fork"})).await;
    assert_eq!(fork["type"], "fork");
    assert_eq!(code(&ask(&mut first, json!({"type": "fork"})).await), "VALIDATION_ERROR");
    let mut refused = connect(&server.addr, "/ws").await;
    let reply = next(&mut refused).await.unwrap();
    assert_eq!(code(&reply), "CAPACITY_REACHED");
    assert_eq!(reply["data"]["max_sessions"], 2);
    assert_eq!(next(&mut refused).await, None);
    // A client that vanishes without a close frame frees its places.
    drop(first);
    let mut again = None;
    for _ in 0..100 {
        let mut ws = connect(&server.addr, "/ws").await;
        let reply = ask(&mut ws, json!({"type": "reset"})).await;
        if reply["type"] == "observation" {
            again = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(again.is_some(), "the places of a dropped connection were never freed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_is_closed_and_shutdown_closes_the_rest() {
    let mut server = start(ServeConfig { idle_timeout: Duration::from_millis(300), ..config(&["cart_pole"]) }).await;
    let mut idle = connect(&server.addr, "/ws").await;
    let reply = next(&mut idle).await.unwrap();
    assert_eq!(code(&reply), "SESSION_ERROR");
    assert!(reply["data"]["message"].as_str().unwrap().contains("no message"), "{reply}");
    assert_eq!(next(&mut idle).await, None);
    let mut busy = connect(&server.addr, "/ws").await;
    ask(&mut busy, json!({"type": "reset"})).await;
    server.stop.take().unwrap().send(()).unwrap();
    let reply = next(&mut busy).await.unwrap();
    assert_eq!(code(&reply), "SESSION_ERROR");
    assert!(reply["data"]["message"].as_str().unwrap().contains("shutting down"), "{reply}");
    let finished = tokio::time::timeout(Duration::from_secs(30), server.handle).await;
    assert!(matches!(finished, Ok(Ok(Ok(())))), "the server did not shut down cleanly: {finished:?}");
}

async fn call(
    server: &Server,
    method: &str,
    path: &str,
    body: Option<Value>,
    auth: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = auth {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = body.map_or(Body::empty(), |b| Body::from(b.to_string()));
    let response = server.router().oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_needed_as_a_bearer_header_or_as_the_first_path_segment() {
    let server = Server::new(ServeConfig { token: Some("s3cret".into()), ..config(&["tic_tac_toe"]) }).unwrap();
    let (status, body) = call(&server, "GET", "/health", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["detail"].as_str().unwrap().contains("Bearer"), "{body}");
    assert_eq!(call(&server, "GET", "/health", None, Some("wrong")).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&server, "GET", "/s3cre/health", None, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&server, "GET", "/health", None, Some("s3cret")).await.0, StatusCode::OK);
    assert_eq!(
        call(&server, "GET", "/s3cret/health", None, None).await,
        (StatusCode::OK, json!({"status": "healthy"}))
    );
    let (status, body) = call(&server, "POST", "/s3cret/reset", Some(json!({"seed": 1})), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Over a real socket: the unchanged OpenEnv client's base URL is http://host/<token>.
    let running = start(ServeConfig { token: Some("s3cret".into()), ..config(&["tic_tac_toe"]) }).await;
    let mut ws = connect(&running.addr, "/s3cret/ws").await;
    assert_eq!(ask(&mut ws, json!({"type": "reset"})).await["type"], "observation");
    assert!(connect_async(format!("ws://{}/ws", running.addr)).await.is_err(), "a socket without the token opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_endpoints_answer_as_openenvs_and_bad_requests_get_a_cause_and_a_fix() {
    let one = Server::new(config(&["tic_tac_toe"])).unwrap();
    assert_eq!(call(&one, "GET", "/health", None, None).await.1, json!({"status": "healthy"}));
    let (_, metadata) = call(&one, "GET", "/metadata", None, None).await;
    assert_eq!(metadata["name"], "tic_tac_toe");
    assert!(metadata["description"].is_string());
    let (_, schema) = call(&one, "GET", "/schema", None, None).await;
    for key in ["action", "observation", "state"] {
        assert!(schema[key].is_object(), "{schema}");
    }
    assert_eq!(schema["action"]["properties"]["action"]["maximum"], 8);
    let (_, openapi) = call(&one, "GET", "/openapi.json", None, None).await;
    assert!(openapi["info"]["version"].is_string() && openapi["paths"]["/step"].is_object());
    assert_eq!(call(&one, "POST", "/mcp", Some(json!({})), None).await.1["jsonrpc"], "2.0");
    let (status, reset) = call(&one, "POST", "/reset", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reset["observation"]["legal_actions"].as_array().unwrap().len(), 9);
    // Stateless step: from the seed and the history.
    let (status, step) =
        call(&one, "POST", "/step", Some(json!({"action": {"action": 2}, "history": [4, 0]})), None).await;
    assert_eq!(status, StatusCode::OK, "{step}");
    assert_eq!(step["observation"]["legal_actions"], json!([1, 3, 5, 6, 7, 8]));
    let (status, body) = call(&one, "POST", "/step", Some(json!({"action": 4, "history": [4]})), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["detail"].as_str().unwrap().contains("illegal"), "{body}");
    let (status, body) = call(&one, "POST", "/step", Some(json!({"history": []})), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["detail"].as_str().unwrap().contains("no `action`"), "{body}");
    let (status, body) = call(&one, "POST", "/reset", Some(json!("seed")), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let request = Request::post("/reset").body(Body::from("{oops")).unwrap();
    assert_eq!(one.router().oneshot(request).await.unwrap().status(), StatusCode::BAD_REQUEST);
    let big = Body::from(vec![b' '; 40 << 20]);
    assert_eq!(
        one.router().oneshot(Request::post("/reset").body(big).unwrap()).await.unwrap().status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let (status, body) = call(&one, "GET", "/envs/chess/schema", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["detail"].as_str().unwrap().contains("tic_tac_toe"), "{body}");
    // With several environments, the root routes name the per-environment ones.
    let two = Server::new(config(&["tic_tac_toe", "cart_pole"])).unwrap();
    let (status, body) = call(&two, "GET", "/schema", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["detail"].as_str().unwrap().contains("/envs/<name>/"), "{body}");
    assert_eq!(call(&two, "GET", "/envs/cart_pole/metadata", None, None).await.1["name"], "cart_pole");
    // Loading refuses what cannot be served, naming the fix.
    let e = Server::new(config(&["chess"])).err().unwrap();
    assert!(e.contains("unknown environment `chess`") && e.contains("tic_tac_toe"), "{e}");
    let e = Server::new(config(&["cart_pole", "cart_pole"])).err().unwrap();
    assert!(e.contains("serve each once"), "{e}");
}

async fn run_code(server: &Server, request: Value) -> (StatusCode, Value) {
    call(server, "POST", "/run_code", Some(request), None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_code_answers_in_sandboxfusions_shape_for_python_and_cpp() {
    let server = Server::new(config(&[])).unwrap();
    let python =
        |code: &str, stdin: &str| json!({"code": code, "language": "python", "stdin": stdin, "run_timeout": 10});
    let (status, ok) = run_code(&server, python("a, b = map(int, input().split())\nprint(a + b)", "2 40")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ok["status"], "Success", "{ok}");
    assert_eq!(ok["message"], "");
    assert_eq!(ok["compile_result"], Value::Null);
    assert_eq!(ok["run_result"]["stdout"], "42\n");
    assert_eq!(ok["run_result"]["return_code"], 0);
    let (_, exit) = run_code(&server, python("import sys\nprint('x')\nsys.exit(3)", "")).await;
    assert_eq!(
        (&exit["status"], &exit["run_result"]["status"], &exit["run_result"]["return_code"]),
        (&json!("Failed"), &json!("Finished"), &json!(3))
    );
    let (_, raised) = run_code(&server, python("print(1 // 0)", "")).await;
    assert_eq!(raised["run_result"]["return_code"], 1);
    assert!(raised["run_result"]["stderr"].as_str().unwrap().contains("ZeroDivisionError"), "{raised}");
    let (_, syntax) = run_code(&server, python("def f(:\n", "")).await;
    assert_eq!((&syntax["status"], &syntax["run_result"]["return_code"]), (&json!("Failed"), &json!(1)));
    let (_, slow) =
        run_code(&server, json!({"code": "while True: pass", "language": "python", "run_timeout": 0.5})).await;
    assert_eq!(slow["status"], "Failed");
    assert_eq!(slow["run_result"]["status"], "TimeLimitExceeded");
    assert_eq!(slow["run_result"]["return_code"], Value::Null);
    // Files arrive base64-encoded and are readable (read-only) in the working directory.
    let files = json!({"code": "print(open('data/in.txt').read().upper())", "language": "python", "files": {"data/in.txt": "aGVsbG8="}});
    assert_eq!(run_code(&server, files).await.1["run_result"]["stdout"], "HELLO\n");
    let escape = json!({"code": "print(1)", "language": "python", "files": {"../x": "aGVsbG8="}});
    let (status, body) = run_code(&server, escape).await;
    assert_eq!((status, &body["status"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("SandboxError")));
    // C++: a compile stage, and a compile error with no run.
    let cpp = json!({"code": "#include <bits/stdc++.h>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a*b<<\"\\n\";}", "language": "cpp", "stdin": "6 7"});
    let (_, built) = run_code(&server, cpp).await;
    assert_eq!(built["status"], "Success", "{built}");
    assert_eq!(built["compile_result"]["status"], "Finished");
    assert_eq!(built["run_result"]["stdout"], "42\n");
    let (_, broken) = run_code(&server, json!({"code": "int main( {", "language": "cpp"})).await;
    assert_eq!(broken["status"], "Failed");
    assert_eq!(broken["compile_result"]["return_code"], 1);
    assert_eq!(broken["run_result"], Value::Null);
    let (_, crash) =
        run_code(&server, json!({"code": "int main(){ int *p = 0; __builtin_trap(); }", "language": "c"})).await;
    assert_eq!((&crash["status"], &crash["run_result"]["status"]), (&json!("Failed"), &json!("Finished")));
    assert!(crash["run_result"]["return_code"].as_i64().unwrap() < 0, "{crash}");
    // Requests that cannot run.
    let (status, body) = run_code(&server, json!({"code": "puts 1", "language": "ruby"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["message"].as_str().unwrap().contains("python, cpp and c"), "{body}");
    let (status, body) = run_code(&server, json!({"language": "python"})).await;
    assert_eq!((status, &body["status"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("SandboxError")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grade_runs_one_program_on_many_tests_and_refuses_server_paths() {
    let server = Server::new(config(&[])).unwrap();
    let tests = json!([
        {"name": "a", "stdin": "1 2", "expected_stdout": "3"},
        {"name": "b", "stdin": "5 5", "expected_stdout": "10"},
        {"name": "c", "stdin": "2 2", "expected_stdout": "5"},
    ]);
    let body = json!({"code": "a, b = map(int, input().split())\nprint(a + b)", "language": "python", "tests": tests});
    let (status, report) = call(&server, "POST", "/grade", Some(body), None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["summary"]["passed"], 2);
    assert_eq!(report["summary"]["total"], 3);
    assert_eq!(report["tests"][2]["verdict"], "wrong_answer");
    let calls = json!({"code": "def add(a, b):\n    return a + b", "language": "python",
        "tests_jsonl": "{\"fn_name\": \"add\", \"inputs\": [[1, 2], [3, 4]], \"outputs\": [3, 7]}"});
    assert_eq!(call(&server, "POST", "/grade", Some(calls), None).await.1["summary"]["passed"], 1);
    let sneaky = json!({"code": "print(1)", "language": "python", "tests": [{"stdin": "", "expected_stdout": "1", "dir": "/etc"}]});
    let (status, body) = call(&server, "POST", "/grade", Some(sneaky), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["detail"].as_str().unwrap().contains("dir"), "{body}");
    let broken = json!({"code": "def f(:", "language": "python", "tests": [{"stdin": "", "expected_stdout": ""}]});
    assert_eq!(call(&server, "POST", "/grade", Some(broken), None).await.1["error"]["kind"], "compile_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_past_the_jobs_and_the_queue_get_429() {
    let server = Server::new(ServeConfig { jobs: 1, queue: 0, ..config(&[]) }).unwrap();
    // Warm the interpreter so the first run starts at once.
    run_code(&server, json!({"code": "print(1)", "language": "python"})).await;
    let slow = json!({"code": "while True: pass", "language": "python", "run_timeout": 3});
    let router = server.router();
    let first = tokio::spawn(async move {
        let request = Request::post("/run_code").body(Body::from(slow.to_string())).unwrap();
        router.oneshot(request).await.unwrap().status()
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = run_code(&server, json!({"code": "print(1)", "language": "python"})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("busy"), "{body}");
    assert_eq!(first.await.unwrap(), StatusCode::OK);
    assert_eq!(run_code(&server, json!({"code": "print(1)", "language": "python"})).await.1["status"], "Success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_traps_or_runs_away_gets_execution_error_and_other_sessions_play_on() {
    // The chaos test guest: each action misbehaves one way (tests/guests/chaos).
    let dir = std::env::temp_dir().join(format!("wasmgym-server-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("chaos.wasm");
    std::fs::write(&path, wasmgym_builtin::find_test_guest("chaos").unwrap().bytes).unwrap();
    let server = start(config(&[path.to_str().unwrap(), "tic_tac_toe"])).await;
    let mut bystander = connect(&server.addr, "/envs/tic_tac_toe/ws").await;
    ask(&mut bystander, json!({"type": "reset", "data": {"seed": 0}})).await;
    let mut ws = connect(&server.addr, "/envs/chaos/ws").await;
    let step = |a: i64| json!({"type": "step", "data": {"action": a}});
    for (action, cause) in [(1, "fuel"), (2, "memory"), (3, "stack"), (4, "output"), (5, "trap"), (9, "trap")] {
        assert_eq!(ask(&mut ws, json!({"type": "reset", "data": {"seed": 1}})).await["type"], "observation");
        let reply = ask(&mut ws, step(action)).await;
        assert_eq!(code(&reply), "EXECUTION_ERROR", "action {action}: {reply}");
        let message = reply["data"]["message"].as_str().unwrap();
        assert!(message.contains(cause) && message.contains("send reset"), "action {action}: {message}");
        // The instance is discarded: it refuses steps until a reset starts a fresh one.
        assert_eq!(code(&ask(&mut ws, step(0)).await), "EXECUTION_ERROR");
        assert_eq!(ask(&mut bystander, json!({"type": "state"})).await["type"], "state");
    }
    ask(&mut ws, json!({"type": "reset", "data": {"seed": 1}})).await;
    assert_eq!(ask(&mut ws, step(0)).await["data"]["reward"], 1.0);
    assert_eq!(ask(&mut bystander, step(4)).await["type"], "observation");
    std::fs::remove_dir_all(&dir).unwrap();
}

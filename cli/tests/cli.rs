//! Runs the built `wasmgym` binary and checks its output, exit status and JSON.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn wasmgym(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmgym")).args(args).output().expect("running wasmgym")
}

/// Runs with `input` piped to stdin.
fn wasmgym_with_input(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmgym"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running wasmgym");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Stdout parsed as exactly one JSON document.
fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", stdout(o)))
}

fn assert_exit(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "stdout:\n{}\nstderr:\n{}", stdout(o), stderr(o));
}

/// A file of pseudo-random bytes (not `\0asm`, not WAT) in the temp folder.
fn garbage_file(name: &str) -> std::path::PathBuf {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes = vec![0xff];
    bytes.extend((0..4096).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    }));
    let path = std::env::temp_dir().join(format!("wasmgym-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn envs_json_lists_the_four_builtins() {
    let o = wasmgym(&["envs", "--json"]);
    assert_exit(&o, 0);
    let doc = json(&o);
    let names: Vec<&str> = doc["envs"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    for name in ["bandit", "cart_pole", "connect_four", "tic_tac_toe"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let composites: Vec<&str> =
        doc["composites"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(composites, ["support_desk", "workshop"]);
    let c4 = doc["envs"].as_array().unwrap().iter().find(|e| e["name"] == "connect_four").unwrap();
    assert_eq!(c4["players"], 2);
    assert_eq!(c4["action_space"]["type"], "discrete");
    assert!(c4["size_bytes"].as_u64().unwrap() > 0);
    assert!(c4["path"].as_str().unwrap().ends_with(".wasm"));
}

#[test]
fn envs_text_is_a_table() {
    let o = wasmgym(&["envs"]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("tic_tac_toe") && stdout(&o).contains("Discrete(9)"), "{}", stdout(&o));
}

#[test]
fn inspect_reports_spec_and_abi_version() {
    let o = wasmgym(&["inspect", "tic_tac_toe", "--json"]);
    assert_exit(&o, 0);
    let doc = json(&o);
    assert_eq!(doc["spec"]["name"], "tic_tac_toe");
    assert_eq!(doc["abi_version"], 1);
    assert_eq!(doc["hash"].as_str().unwrap().len(), 64);
    assert!(doc["exports"].as_array().unwrap().iter().any(|e| e == "wasmgym_step"));

    let text = wasmgym(&["inspect", "connect_four"]);
    assert_exit(&text, 0);
    assert!(stdout(&text).contains("ABI version") && stdout(&text).contains("Discrete(7)"), "{}", stdout(&text));
}

#[test]
fn run_connect_four_is_zero_sum_per_episode() {
    let o = wasmgym(&["run", "connect_four", "--episodes", "20", "--seed", "3", "--json"]);
    assert_exit(&o, 0);
    let doc = json(&o);
    let episodes = doc["episodes"].as_array().unwrap();
    assert_eq!(episodes.len(), 20);
    for e in episodes {
        let returns: Vec<f64> = e["returns"].as_array().unwrap().iter().map(|r| r.as_f64().unwrap()).collect();
        assert_eq!(returns.len(), 2);
        assert_eq!(returns.iter().sum::<f64>(), 0.0, "episode {e}");
        assert!(e["length"].as_u64().unwrap() >= 7);
    }
    let outcomes: u64 = doc["outcomes"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(outcomes, 20);
    assert!(doc["steps_per_second"].as_f64().unwrap() > 0.0);
}

#[test]
fn run_is_reproducible_from_its_seed() {
    let a = json(&wasmgym(&["run", "tic_tac_toe", "--episodes", "5", "--seed", "9", "--json"]));
    let b = json(&wasmgym(&["run", "tic_tac_toe", "--episodes", "5", "--seed", "9", "--json"]));
    assert_eq!(a["episodes"], b["episodes"]);
}

#[test]
fn run_text_reports_speed_and_outcomes() {
    let o = wasmgym(&["run", "cart_pole", "--episodes", "3"]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("steps/s") && out.contains("outcomes"), "{out}");
}

#[test]
fn check_bandit_passes() {
    let o = wasmgym(&["check", "bandit", "--json"]);
    assert_exit(&o, 0);
    let doc = json(&o);
    assert_eq!(doc["passed"], true);
    assert_eq!(doc["checks"].as_array().unwrap().len(), wasmgym::check::CHECKS.len());

    let text = wasmgym(&["check", "tic_tac_toe", "--episodes", "3"]);
    assert_exit(&text, 0);
    assert!(stdout(&text).contains("✓ fork_matches_replay"), "{}", stdout(&text));
}

#[test]
fn play_tic_tac_toe_from_a_pipe_survives_bad_input_and_finishes() {
    // 4 is taken by our first move, so the second 4 is illegal; then a garbage line and an empty
    // one; then every cell in order, so each turn finds a free one.
    let moves = "4\n4\nfoo bar\n\n99\n0\n1\n2\n3\n5\n6\n7\n8\n";
    let o = wasmgym_with_input(&["play", "tic_tac_toe", "--seed", "1"], moves);
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("illegal action 4"), "{out}");
    assert!(out.contains("`foo bar` is not an action"), "{out}");
    assert!(out.contains("outside the action space"), "{out}");
    assert!(out.contains("Game over"), "{out}");
    assert!(out.contains("You win") || out.contains("You lose") || out.contains("Draw"), "{out}");
}

#[test]
fn play_as_second_player_and_stop_at_end_of_input() {
    let o = wasmgym_with_input(&["play", "connect_four", "--human-player", "1", "--seed", "2"], "3\n");
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("player 0 (random) plays"), "{out}");
    assert!(out.contains("Input ended"), "{out}");
}

#[test]
fn play_single_player_env_every_step_is_yours() {
    let o = wasmgym_with_input(&["play", "bandit"], &"1\n".repeat(100));
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("Game over"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("(random) plays"), "{}", stdout(&o));
}

#[test]
fn play_refuses_a_player_that_does_not_exist() {
    let o = wasmgym(&["play", "tic_tac_toe", "--human-player", "2"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("2 player(s)"), "{}", stderr(&o));
}

#[test]
fn unknown_env_is_a_usage_error_listing_the_names() {
    let o = wasmgym(&["run", "no_such_env"]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    for name in ["bandit", "cart_pole", "connect_four", "tic_tac_toe", ".wasm"] {
        assert!(err.contains(name), "{err}");
    }
    let doc = json(&wasmgym(&["inspect", "no_such_env", "--json"]));
    assert_eq!(doc["error"]["kind"], "usage");
}

#[test]
fn garbage_file_is_an_invalid_module() {
    let path = garbage_file("garbage.wasm");
    let o = wasmgym(&["inspect", path.to_str().unwrap(), "--json"]);
    std::fs::remove_file(&path).ok();
    assert_exit(&o, 1);
    let doc = json(&o);
    assert_eq!(doc["error"]["kind"], "invalid_module");
    assert!(doc["error"]["message"].as_str().unwrap().contains("not WebAssembly"), "{doc}");
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn truncated_module_is_an_error_not_a_panic() {
    let bytes = std::fs::read(wasmgym_builtin::find("tic_tac_toe").unwrap().path).unwrap();
    let path = std::env::temp_dir().join(format!("wasmgym-cli-{}-truncated.wasm", std::process::id()));
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let o = wasmgym(&["run", path.to_str().unwrap(), "--json"]);
    std::fs::remove_file(&path).ok();
    assert_exit(&o, 1);
    assert_eq!(json(&o)["error"]["kind"], "invalid_module");
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

#[test]
fn a_missing_file_is_a_usage_error_and_a_wrong_abi_a_runtime_error() {
    let o = wasmgym(&["check", "/no/such/file.wasm", "--json"]);
    assert_exit(&o, 2);
    assert_eq!(json(&o)["error"]["kind"], "io");

    let path = std::env::temp_dir().join(format!("wasmgym-cli-{}-noabi.wat", std::process::id()));
    std::fs::write(&path, "(module (memory (export \"memory\") 1))").unwrap();
    let o = wasmgym(&["inspect", path.to_str().unwrap(), "--json"]);
    std::fs::remove_file(&path).ok();
    assert_exit(&o, 1);
    assert_eq!(json(&o)["error"]["kind"], "abi_mismatch");
}

#[test]
fn bad_arguments_exit_2_with_json_error() {
    let o = wasmgym(&["run", "bandit", "--episodes", "many", "--json"]);
    assert_exit(&o, 2);
    assert_eq!(json(&o)["error"]["kind"], "usage");
    assert_exit(&wasmgym(&["frobnicate"]), 2);
    assert_exit(&wasmgym(&["--help"]), 0);
}

#[test]
fn demo_forks_and_every_branch_matches_replay() {
    let o = wasmgym(&["demo", "--json"]);
    assert_exit(&o, 0);
    let doc = json(&o);
    assert_eq!(doc["passed"], true);
    assert_eq!(doc["fork"]["all_branches_match"], true);
    assert_eq!(doc["fork"]["original_unchanged"], true);
    let branches = doc["fork"]["branches"].as_array().unwrap();
    assert_eq!(branches.len(), 8);
    assert!(branches.iter().all(|b| b["matches_replay"] == true));
    assert_eq!(doc["snapshot_round_trip"]["matches"], true);
    for op in ["step", "snapshot", "restore", "fork", "replay_to_fork_point"] {
        assert!(doc["timings_us"][op].as_f64().unwrap() > 0.0, "{op}");
    }

    let text = wasmgym(&["demo"]);
    assert_exit(&text, 0);
    assert!(stdout(&text).trim_end().ends_with("all 8 branches match replay from reset"), "{}", stdout(&text));
}

fn repo(path: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join(path).display().to_string()
}

#[test]
fn grade_json_on_the_examples_in_both_formats() {
    for tests in ["programs/sum/cases", "programs/sum/tests.jsonl"] {
        let o = wasmgym(&["grade", "sum", "--tests", &repo(tests), "--json"]);
        assert_exit(&o, 0);
        let doc = json(&o);
        let results = doc["tests"].as_array().unwrap();
        assert_eq!(results.len(), 4, "{tests}");
        for t in results {
            assert_eq!(t["verdict"], "accepted", "{t}");
            assert_eq!(t["exit_code"], 0);
            for key in ["name", "fuel_used", "wall_time_ms", "peak_memory_bytes", "stdout", "stderr"] {
                assert!(t.get(key).is_some(), "{key} missing in {t}");
            }
        }
        assert_eq!(doc["summary"]["passed"], 4);
        assert_eq!(doc["summary"]["total"], 4);
        assert_eq!(doc["summary"]["score"], 1.0);
    }
    // With the example checker, and as text.
    let o = wasmgym(&["grade", "sum", "--tests", &repo("programs/sum/tests.jsonl"), "--checker", "sum_checker"]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("passed 4/4"), "{}", stdout(&o));
}

#[test]
fn grade_json_is_one_compact_line_and_jsonl_a_line_per_test_in_order() {
    let tests = repo("programs/sum/tests.jsonl");
    let o = wasmgym(&["grade", "sum", "--tests", &tests, "--json"]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o).lines().count(), 1, "not compact: {}", stdout(&o));

    // Many tests on two workers finish out of order; the lines come in test order all the same.
    let path = std::env::temp_dir().join(format!("wasmgym-cli-{}-jsonl.jsonl", std::process::id()));
    let lines: String = (0..300)
        .map(|i| {
            format!(
                "{{\"name\": \"t{i}\", \"stdin\": \"{i} {i}\", \"expected_stdout\": \"{}\"}}\n",
                2 * i + (i == 7) as i32
            )
        })
        .collect();
    std::fs::write(&path, lines).unwrap();
    let o = wasmgym(&["grade", "sum", "--tests", path.to_str().unwrap(), "--jsonl", "--jobs", "2"]);
    std::fs::remove_file(&path).ok();
    assert_exit(&o, 1);
    let docs: Vec<Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(docs.len(), 301);
    for (i, t) in docs[..300].iter().enumerate() {
        assert_eq!(t["name"], format!("t{i}"));
        assert_eq!(t["verdict"], if i == 7 { "wrong_answer" } else { "accepted" }, "{t}");
    }
    let summary = &docs[300]["summary"];
    assert_eq!((summary["passed"].as_u64(), summary["total"].as_u64()), (Some(299), Some(300)));
    assert_eq!(summary["verdicts"]["wrong_answer"], 1);

    let o = wasmgym(&["grade", "sum", "--tests", &tests, "--json", "--jsonl"]);
    assert_exit(&o, 2);
}

#[test]
fn grade_c_source_by_extension_and_a_compile_error_once() {
    let dir = std::env::temp_dir().join(format!("wasmgym-cli-{}-c", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (good, bad, unknown) = (dir.join("sum.c"), dir.join("bad.cpp"), dir.join("sum.rb"));
    std::fs::write(
        &good,
        "#include <stdio.h>\nint main(void){long long a,s=0;while(scanf(\"%lld\",&a)==1)s+=a;printf(\"%lld\\n\",s);}\n",
    )
    .unwrap();
    std::fs::write(&bad, "int main() { return x; }\n").unwrap();
    std::fs::write(&unknown, "puts 1\n").unwrap();
    let tests = repo("programs/sum/tests.jsonl");
    let cache = dir.join("cache");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wasmgym")).args(args).env("WASMGYM_CACHE_DIR", &cache).output().unwrap()
    };

    let o = run(&["grade", good.to_str().unwrap(), "--tests", &tests, "--json"]);
    assert_exit(&o, 0);
    assert_eq!(json(&o)["summary"]["passed"], 4);
    assert!(cache.join("solutions").read_dir().unwrap().count() == 1, "the compiled solution is cached");

    let o = run(&["grade", bad.to_str().unwrap(), "--tests", &tests, "--json"]);
    assert_exit(&o, 1);
    let doc = json(&o);
    assert_eq!(doc["error"]["kind"], "compile_error");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("main.cpp:1:"), "{message}");
    assert!(doc.get("tests").is_none());

    let o = run(&["grade", unknown.to_str().unwrap(), "--tests", &tests, "--json"]);
    assert_exit(&o, 2);
    assert!(json(&o)["error"]["message"].as_str().unwrap().contains("--lang"));
    let o = run(&["grade", unknown.to_str().unwrap(), "--tests", &tests, "--lang", "c", "--json"]);
    assert_eq!(json(&o)["error"]["kind"], "compile_error");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn grade_python_source_by_extension_and_say_how_to_get_the_interpreter() {
    let dir = std::env::temp_dir().join(format!("wasmgym-cli-{}-py", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (good, bad) = (dir.join("sum.py"), dir.join("bad.py"));
    std::fs::write(&good, "import sys\nprint(sum(int(t) for t in sys.stdin.read().split()))\n").unwrap();
    std::fs::write(&bad, "print(1\n").unwrap();
    let tests = repo("programs/sum/tests.jsonl");
    // The interpreter and its compiled code from the user's cache (the test command fetches it).
    let o = wasmgym(&["grade", good.to_str().unwrap(), "--tests", &tests, "--json"]);
    assert_exit(&o, 0);
    assert_eq!(json(&o)["summary"]["passed"], 4);
    let o = wasmgym(&["grade", bad.to_str().unwrap(), "--tests", &tests, "--json"]);
    assert_exit(&o, 1);
    let doc = json(&o);
    assert_eq!(doc["error"]["kind"], "compile_error");
    assert!(doc["error"]["message"].as_str().unwrap().contains("SyntaxError"), "{doc}");

    let o = Command::new(env!("CARGO_BIN_EXE_wasmgym"))
        .args(["grade", good.to_str().unwrap(), "--tests", &tests, "--json"])
        .env("WASMGYM_PYTHON_DIR", dir.join("nowhere"))
        .output()
        .unwrap();
    assert_exit(&o, 1);
    let doc = json(&o);
    assert_eq!(doc["error"]["kind"], "toolchain");
    assert!(doc["error"]["message"].as_str().unwrap().contains("scripts/get-python.sh"), "{doc}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn grade_failing_tests_exit_1_with_verdicts() {
    let path = std::env::temp_dir().join(format!("wasmgym-cli-{}-grade.jsonl", std::process::id()));
    std::fs::write(
        &path,
        concat!(
            r#"{"name": "ok", "stdin": "sum 1 2", "expected_stdout": "3"}"#,
            "\n",
            r#"{"name": "loop", "stdin": "loop", "expected_stdout": ""}"#,
            "\n",
            r#"{"name": "exit", "stdin": "exit 4", "expected_stdout": ""}"#,
            "\n"
        ),
    )
    .unwrap();
    let o = wasmgym(&["grade", "misbehave", "--tests", path.to_str().unwrap(), "--fuel", "10000000", "--json"]);
    std::fs::remove_file(&path).ok();
    assert_exit(&o, 1);
    let doc = json(&o);
    let verdicts: Vec<&str> = doc["tests"].as_array().unwrap().iter().map(|t| t["verdict"].as_str().unwrap()).collect();
    assert_eq!(verdicts, ["accepted", "time_limit_exceeded", "runtime_error"]);
    assert_eq!(doc["tests"][1]["time_limit"], "fuel");
    assert_eq!(doc["tests"][2]["exit_code"], 4);
    assert_eq!(doc["summary"]["passed"], 1);
}

#[test]
fn grade_invalid_program_is_one_json_error() {
    let path = garbage_file("program.wasm");
    let o = wasmgym(&["grade", path.to_str().unwrap(), "--tests", &repo("programs/sum/tests.jsonl"), "--json"]);
    std::fs::remove_file(&path).ok();
    assert_exit(&o, 1);
    let doc = json(&o);
    assert_eq!(doc["error"]["kind"], "invalid_program");
    assert!(doc["error"]["message"].as_str().unwrap().contains("not_wasm"), "{doc}");
    assert!(doc.get("tests").is_none());

    let o = wasmgym(&["grade", "sum", "--tests", "/no/such/tests.jsonl", "--json"]);
    assert_exit(&o, 2);
    assert_eq!(json(&o)["error"]["kind"], "test_file");
}

#[test]
fn bench_grade_json_reports_both_throughputs_and_the_ratio() {
    let o = wasmgym(&["bench", "grade", "--tests", "50", "--rounds", "2", "--json"]);
    assert_exit(&o, 0);
    let doc = json(&o);
    assert_eq!(doc["tests"], 50);
    assert_eq!(doc["grader"]["runs"], 100);
    assert_eq!(doc["grader"]["accepted"], 100);
    assert_eq!(doc["process"]["runs"], 50);
    assert_eq!(doc["process"]["accepted"], 50);
    let (g, p) =
        (doc["grader"]["tests_per_second"].as_f64().unwrap(), doc["process"]["tests_per_second"].as_f64().unwrap());
    assert!(g > 0.0 && p > 0.0);
    assert!((doc["ratio"].as_f64().unwrap() - g / p).abs() < 1e-6 * (g / p));
    let json = &doc["json"];
    assert!(json["bytes"].as_u64().unwrap() > 50 * 100, "{json}");
    for key in ["compact_ns_per_test", "lines_ns_per_test", "pretty_value_ns_per_test", "grading_ns_per_test"] {
        assert!(json[key].as_f64().unwrap() > 0.0, "{key} in {json}");
    }
}

#[test]
fn bench_fork_json_has_a_row_per_memory_size_and_dirty_count_and_one_per_environment() {
    let o = wasmgym(&["bench", "fork", "--json"]);
    assert_exit(&o, 0);
    let doc = json(&o);
    let rows = doc["points"].as_array().expect("an array of points");
    // 64 KiB with 1 and 16 dirty pages, 1 MiB with 1..256, 16 and 64 MiB with 1..1024.
    assert_eq!(rows.len(), 13, "{rows:?}");
    for row in rows {
        for key in ["memory_bytes", "dirty_pages", "restore_ns", "fork_ns", "full_copy_ns", "fork_new_ns"] {
            assert!(row[key].as_u64().is_some_and(|v| v > 0), "{key} missing or zero in {row}");
        }
    }
    assert_eq!(rows.last().unwrap()["memory_bytes"], 64 << 20);
    // Then forks into new instances of every built-in environment, each in a pooled slot.
    let envs = doc["environments"].as_array().expect("an array of environments");
    let names: Vec<&str> = envs.iter().map(|e| e["env"].as_str().unwrap()).collect();
    assert_eq!(names, wasmgym_builtin::names(), "{envs:?}");
    for env in envs {
        for key in ["linear_memory_bytes", "fork_new_ns", "fork_new_on_demand_ns"] {
            assert!(env[key].as_u64().is_some_and(|v| v > 0), "{key} missing or zero in {env}");
        }
        assert_eq!(env["in_slot"], true, "{env}");
    }
}

#[test]
fn search_finds_the_block_in_tic_tac_toe_and_refuses_a_finished_game() {
    let o = wasmgym(&["search", "tic_tac_toe", "--moves", "0,4,1", "--simulations", "3000", "--json"]);
    assert_exit(&o, 0);
    let doc = json(&o);
    assert_eq!(doc["action"], 2, "{doc}");
    assert_eq!(doc["simulations"], 3000);
    let visits: u64 = doc["children"].as_array().unwrap().iter().map(|c| c["visits"].as_u64().unwrap()).sum();
    assert_eq!(visits, 3000);
    assert!(doc["simulations_per_second"].as_f64().unwrap() > 0.0);
    // The same seed, the same search.
    let again = json(&wasmgym(&["search", "tic_tac_toe", "--moves", "0,4,1", "--simulations", "3000", "--json"]));
    assert_eq!(again["children"], doc["children"]);

    let o = wasmgym(&["search", "tic_tac_toe", "--moves", "0,3,1,4,2", "--json"]);
    assert_exit(&o, 2);
    assert!(json(&o)["error"]["message"].as_str().unwrap().contains("nothing to search"), "{}", json(&o));
    let o = wasmgym(&["search", "tic_tac_toe", "--moves", "0,0", "--json"]);
    assert_exit(&o, 1);
    assert!(json(&o)["error"]["message"].as_str().unwrap().contains("move 2"), "{}", json(&o));
}

#[test]
fn search_runs_every_algorithm_and_draws_the_tree() {
    let dir = std::env::temp_dir().join(format!("wasmgym-search-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Breadth-first search solves a Game of 24 and says which puzzles have no solution.
    let puzzle = r#"{"numbers":[4,6,1,1]}"#;
    let o = wasmgym(&["search", "game_of_24", "--algo", "bfs", "--depth", "3", "--options", puzzle, "--json"]);
    assert_exit(&o, 0);
    let doc = json(&o);
    assert_eq!(doc["trajectories"][0]["return"], 1.0, "{doc}");
    assert_eq!(doc["complete"], true);
    assert!(doc["distinct_states"].as_u64().unwrap() < doc["nodes"].as_u64().unwrap(), "transpositions merged: {doc}");
    let o = wasmgym(&["search", "game_of_24", "--algo", "bfs", "--options", r#"{"numbers":[1,1,1,1]}"#]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("no trajectory with a positive return"), "{}", stdout(&o));
    // Exhaustive search of tic-tac-toe.
    let doc = json(&wasmgym(&["search", "tic_tac_toe", "--algo", "solve", "--json"]));
    assert_eq!((doc["distinct_states"].as_u64(), doc["value"].as_f64()), (Some(5478), Some(0.0)), "{doc}");
    // PUCT and beam on connect-four and the text adventure, with trees drawn.
    let svg = dir.join("tree.svg");
    let o = wasmgym(&[
        "search",
        "connect_four",
        "--algo",
        "puct",
        "--simulations",
        "300",
        "--tree",
        svg.to_str().unwrap(),
        "--json",
    ]);
    assert_exit(&o, 0);
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.starts_with("<svg") || picture.starts_with("<?xml"), "{}", &picture[..100]);
    assert!(json(&o)["nodes"].as_u64().unwrap() > 1);
    let html = dir.join("tree.html");
    let o = wasmgym(&[
        "search",
        "text_adventure",
        "--algo",
        "beam",
        "--width",
        "4",
        "--depth",
        "6",
        "--tree",
        html.to_str().unwrap(),
    ]);
    assert_exit(&o, 0);
    assert!(std::fs::read_to_string(&html).unwrap().contains("<details"));
    // Transpositions: every state held once.
    let doc = json(&wasmgym(&["search", "tic_tac_toe", "--simulations", "2000", "--transpositions", "--json"]));
    let held = doc["children"].as_array().unwrap().len();
    assert!(held == 9 && doc["distinct_states"].as_u64().unwrap() > 9, "{doc}");
    // Threads: the same trees, the same answer.
    let one =
        json(&wasmgym(&["search", "connect_four", "--simulations", "400", "--trees", "2", "--threads", "1", "--json"]));
    let two =
        json(&wasmgym(&["search", "connect_four", "--simulations", "400", "--trees", "2", "--threads", "2", "--json"]));
    assert_eq!(one["children"], two["children"]);
    // A search that would hold more than the memory cap stops with an error naming the flags.
    let o = wasmgym(&["search", "connect_four", "--algo", "bfs", "--memory-cap-mib", "64", "--json"]);
    assert_exit(&o, 1);
    let doc = json(&o);
    assert_eq!(doc["error"]["kind"], "memory_cap", "{doc}");
    assert!(doc["error"]["message"].as_str().unwrap().contains("--memory-cap-mib"), "{doc}");
    // A game too large to solve is refused with the budget named.
    let o = wasmgym(&["search", "connect_four", "--algo", "solve", "--max-nodes", "10000", "--json"]);
    assert_exit(&o, 2);
    assert!(json(&o)["error"]["message"].as_str().unwrap().contains("--max-nodes"), "{}", json(&o));
    // A picture format we cannot draw is a usage error before any work.
    let o = wasmgym(&["search", "tic_tac_toe", "--tree", "tree.png", "--json"]);
    assert_exit(&o, 2);
    assert!(json(&o)["error"]["message"].as_str().unwrap().contains(".svg or .html"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn selfplay_writes_reproducible_records() {
    let dir = std::env::temp_dir().join(format!("wasmgym-selfplay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a.jsonl"), dir.join("b.jsonl"));
    for out in [&a, &b] {
        let o = wasmgym(&[
            "selfplay",
            "tic_tac_toe",
            "--games",
            "3",
            "--simulations",
            "50",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ]);
        assert_exit(&o, 0);
        assert_eq!(json(&o)["games"], 3);
    }
    let text = std::fs::read_to_string(&a).unwrap();
    assert_eq!(text, std::fs::read_to_string(&b).unwrap(), "the same seed writes the same records");
    for line in text.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        let policy: f64 = record["policy"].as_array().unwrap().iter().map(|p| p.as_f64().unwrap()).sum();
        assert!((policy - 1.0).abs() < 1e-9, "{record}");
        assert_eq!(record["legal_mask"].as_array().unwrap().len(), 9);
        assert!(record["observation"].as_array().unwrap().len() == 27);
    }
    // Text environments have no discrete policy to record.
    let o =
        wasmgym(&["selfplay", "game_of_24", "--games", "1", "--out", dir.join("c.jsonl").to_str().unwrap(), "--json"]);
    assert_exit(&o, 2);
    assert!(json(&o)["error"]["message"].as_str().unwrap().contains("Discrete"), "{}", json(&o));
    std::fs::remove_dir_all(&dir).ok();
}

/// `cargo` for a crate outside this workspace: none of this build's settings leak into it.
fn cargo_in(dir: &std::path::Path, target: &std::path::Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(dir).args(args).env("CARGO_TARGET_DIR", target);
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_BUILD_TARGET", "RUSTC_WRAPPER"]
    {
        cmd.env_remove(var);
    }
    cmd.output().expect("running cargo")
}

#[test]
fn new_makes_crates_that_pass_their_test_build_small_and_pass_check_and_run() {
    let root = std::env::temp_dir().join(format!("wasmgym-cli-new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let target = root.join("target"); // shared by the three crates: their dependencies build once
    for (name, flags, players) in
        [("guess_it", &[][..], 1), ("nim_for_three", &["--players", "3"][..], 3), ("locked_room", &["--text"][..], 1)]
    {
        let mut args = vec!["new", name, "--path", root.to_str().unwrap(), "--json"];
        args.extend_from_slice(flags);
        let o = wasmgym(&args);
        assert_exit(&o, 0);
        assert_eq!(json(&o)["players"], players);
        let dir = root.join(name);
        let o = cargo_in(&dir, &target, &["test", "--quiet"]);
        assert!(o.status.success(), "cargo test in {name}:\n{}\n{}", stdout(&o), stderr(&o));
        let o = cargo_in(&dir, &target, &["build", "--quiet", "--release", "--target", "wasm32-wasip1"]);
        assert!(o.status.success(), "building {name}:\n{}", stderr(&o));
        let wasm = target.join(format!("wasm32-wasip1/release/{name}.wasm"));
        let wasm = wasm.to_str().unwrap();
        let o = wasmgym(&["check", wasm, "--json"]);
        assert_exit(&o, 0);
        assert_eq!(json(&o)["passed"], true);
        let o = wasmgym(&["run", wasm, "--episodes", "20", "--json"]);
        assert_exit(&o, 0);
        // Linked with the built-ins' small stack: 192 KiB of memory, not Rust's default 1 MiB more.
        let o = wasmgym(&["inspect", wasm, "--json"]);
        let memory = json(&o)["initial_memory_bytes"][0].as_u64().unwrap();
        assert!(memory <= 256 << 10, "{name} starts with {memory} bytes of memory");
        assert_eq!(json(&o)["spec"]["players"], players);
    }
    // A name that is not one, or a crate that exists, is a usage error naming the fix.
    let o = wasmgym(&["new", "My-Env", "--path", root.to_str().unwrap()]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("lowercase"), "{}", stderr(&o));
    let o = wasmgym(&["new", "guess_it", "--path", root.to_str().unwrap()]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("exists already"), "{}", stderr(&o));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn check_refuses_to_check_nothing_and_tells_a_panic_in_the_guests_words() {
    for flag in ["--episodes", "--max-steps"] {
        let o = wasmgym(&["check", "tic_tac_toe", flag, "0"]);
        assert_exit(&o, 2);
        assert!(stderr(&o).contains(flag), "{}", stderr(&o));
    }
    let dir = std::env::temp_dir().join(format!("wasmgym-cli-panicky-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("panicky.wasm");
    std::fs::write(&path, wasmgym_builtin::find_test_guest("panicky").unwrap().bytes).unwrap();
    let o = wasmgym(&["check", path.to_str().unwrap(), "--episodes", "2"]);
    assert_exit(&o, 1);
    let out = stdout(&o);
    assert!(out.contains("✗ random_rollouts_end") && out.contains("boom at step 4"), "{out}");
    assert!(!out.contains("0x"), "a wasm backtrace was printed without --backtrace:\n{out}");
    let o = wasmgym(&["check", path.to_str().unwrap(), "--episodes", "1", "--backtrace"]);
    assert!(stdout(&o).contains("wasm backtrace"), "{}", stdout(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One contract for every command: 0 where meaningless is a usage error naming the flag (exit 2),
/// a file named on the command line that cannot be read is a usage error, and a name that is
/// almost a known one gets a "did you mean".
#[test]
fn the_cli_contract_holds_in_every_command() {
    let cases: &[(&[&str], i32, &str)] = &[
        (&["run", "tic_tac_toe", "--episodes", "0"], 2, "--episodes"),
        (&["run", "tic_tac_toe", "--max-steps", "0"], 2, "--max-steps"),
        (&["check", "tic_tac_toe", "--episodes", "0"], 2, "--episodes"),
        (&["grade", "sum", "--tests", "programs/sum/tests.jsonl", "--jobs", "0"], 2, "--jobs"),
        (&["grade", "sum", "--tests", "programs/sum/tests.jsonl", "--time-limit-ms", "0"], 2, "--time-limit-ms"),
        (&["grade", "sum", "--tests", "programs/sum/tests.jsonl", "--fuel", "0"], 2, "--fuel"),
        (&["grade", "sum", "--tests", "programs/sum/tests.jsonl", "--memory-mib", "0"], 2, "--memory-mib"),
        (&["bench", "grade", "--jobs", "0"], 2, "--jobs"),
        (&["search", "tic_tac_toe", "--simulations", "0"], 2, "--simulations"),
        (&["search", "tic_tac_toe", "--threads", "0"], 2, "--threads"),
        (&["selfplay", "tic_tac_toe", "--games", "0"], 2, "--games"),
        (&["serve", "--max-sessions", "0"], 2, "--max-sessions"),
        (&["new", "x", "--players", "0"], 2, "--players"),
        (&["inspect", "/nonexistent/env.wasm"], 2, "cannot read"),
        (&["grade", "sum", "--tests", "/nonexistent/tests.jsonl"], 2, "cannot read"),
        (&["run", "tic_tac_to"], 2, "Did you mean `tic_tac_toe`?"),
        (&["check", "cartpole"], 2, "Did you mean `cart_pole`?"),
        (&["grade", "summ", "--tests", "programs/sum/tests.jsonl"], 2, "Did you mean the example `sum`?"),
        (&["run", "chess"], 2, "The built-ins are"),
        (&["eval", "support_desk", "--k", "0"], 2, "--k"),
        (&["eval", "support_desk", "--tasks", "0"], 2, "--tasks"),
        (&["eval", "support_desk", "--jobs", "0"], 2, "--jobs"),
        (&["eval", "supportdesk"], 2, "Did you mean `support_desk`?"),
        (&["eval", "text_adventure"], 2, "no built-in scripted agent"),
        (&["eval", "/nonexistent/wiring.json"], 2, "cannot read"),
        (&["search", "support_desk"], 2, "--algo beam"),
    ];
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    for (args, code, says) in cases {
        let o = Command::new(env!("CARGO_BIN_EXE_wasmgym")).args(*args).current_dir(root).output().unwrap();
        assert_eq!(o.status.code(), Some(*code), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?} should say {says:?}: {}", stderr(&o));
    }
}

#[test]
fn the_compile_cache_fills_once_and_no_cache_keeps_nothing() {
    let dir = std::env::temp_dir().join(format!("wasmgym-cli-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wasmgym")).args(args).env("WASMGYM_CACHE_DIR", &dir).output().unwrap()
    };
    assert_exit(&run(&["--no-cache", "inspect", "tic_tac_toe"]), 0);
    assert!(!dir.join("modules").exists(), "--no-cache wrote the cache");
    assert_exit(&run(&["inspect", "tic_tac_toe"]), 0);
    let entries = std::fs::read_dir(dir.join("modules")).unwrap().count();
    assert_eq!(entries, 2, "one module: its code and its entry");
    assert_exit(&run(&["inspect", "tic_tac_toe", "--no-cache"]), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_reports_pass_k_and_sequential_suites() {
    let o = wasmgym(&["eval", "support_desk", "--tasks", "3", "--k", "2", "--json"]);
    assert_exit(&o, 0);
    let report = json(&o);
    assert_eq!(report["tasks"].as_array().unwrap().len(), 3);
    let hats = report["pass_hat"].as_array().unwrap();
    assert_eq!(hats.len(), 2);
    assert!(report["pass_k"].as_f64().unwrap() <= hats[0].as_f64().unwrap());
    let trials: Vec<&Value> = report["tasks"].as_array().unwrap().iter().flat_map(|t| t.as_array().unwrap()).collect();
    let wins = trials.iter().filter(|t| t["success"] == true).count() as f64;
    assert_eq!(hats[0].as_f64().unwrap(), wins / 6.0, "pass^1 is the success rate over every trial");

    let o = wasmgym(&["eval", "workshop", "--sequential", "--tasks", "8", "--k", "1", "--json"]);
    assert_exit(&o, 0);
    let suite = json(&o);
    let sum = |key: &str| suite[key].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).sum::<f64>();
    assert!(sum("sequential") > sum("iid"), "{suite}");
    let text = stdout(&wasmgym(&["eval", "workshop", "--sequential", "--tasks", "8", "--k", "1"]));
    assert!(text.contains("position") && text.contains("i.i.d."), "{text}");
}

#[test]
fn eval_takes_a_wiring_file_and_an_agent_module() {
    let dir = std::env::temp_dir().join(format!("wasmgym-cli-wiring-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wiring = dir.join("answer.json");
    let text = r#"{"name": "answer", "parts": [{"name": "env", "module": "answer_env", "hears": ["messages"]}],
                   "checker": {"module": "answer_checker"}, "max_turns": 4}"#;
    std::fs::write(&wiring, text).unwrap();
    let agent = wasmgym_builtin::find_test_guest("adder_agent").unwrap().path;
    let o = wasmgym(&["eval", wiring.to_str().unwrap(), "--agent", agent, "--tasks", "2", "--k", "2", "--json"]);
    assert_exit(&o, 0);
    assert_eq!(json(&o)["pass_k"], 1.0, "{}", stdout(&o));
    std::fs::write(&wiring, r#"{"name": "answer", "parts": []}"#).unwrap();
    let o = wasmgym(&["eval", wiring.to_str().unwrap(), "--agent", agent]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("parts"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn play_a_composite_as_the_agent_from_a_pipe() {
    let input = "Hello, what is your email?\n/get_order {\"order_id\": 5}\n/launch\n";
    let o = wasmgym_with_input(&["play", "support_desk", "--options", r#"{"task": 3}"#], input);
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("get_order(order_id)"), "the tools are listed: {out}");
    assert!(out.contains("[user]"), "{out}");
    assert!(out.contains("must be a string"), "a bad call is answered: {out}");
    assert!(out.contains("unknown tool \"launch\""), "{out}");
    assert!(out.contains("Input ended before the episode did"), "{out}");

    // Search runs on the composite too: the conversation is the state.
    let o =
        wasmgym(&["search", "support_desk", "--algo", "bfs", "--depth", "1", "--options", r#"{"task": 1}"#, "--json"]);
    assert_exit(&o, 0);
    let report = json(&o);
    assert_eq!(report["env"], "support_desk");
    assert!(report["nodes"].as_u64().unwrap() >= 2, "{report}");
}

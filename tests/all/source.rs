//! Grading C and C++ source: compiled by clang for wasm32-wasi inside a sandbox (bubblewrap), once
//! per source, then graded as a program. Needs `scripts/install-toolchains.sh`.

use std::time::{Duration, Instant};

use wasmgym_grade::{CompileOptions, GradeError, GradeOptions, Grader, Lang, Verdict, compile};
use wasmgym_tests::{runtime, test_case as test};

const SUM_C: &str = r#"#include <stdio.h>
int main(void) { long long a, s = 0; while (scanf("%lld", &a) == 1) s += a; printf("%lld\n", s); return 0; }
"#;

const SORT_CPP: &str = r#"#include <bits/stdc++.h>
using namespace std;
int main() {
    int n; cin >> n; vector<long long> v(n); for (auto &x : v) cin >> x;
    sort(v.begin(), v.end()); map<long long, int> count; for (auto x : v) count[x]++;
    for (auto x : v) cout << x << ' ';
    cout << '\n' << count.size() << '\n';
}
"#;

fn compile_error(source: &str, lang: Lang, options: &CompileOptions) -> String {
    match compile(source.as_bytes(), lang, options) {
        Err(GradeError::CompileError { message }) => message,
        other => panic!("expected a compile error, got {:?}", other.map(|w| w.len())),
    }
}

fn verdicts(wasm: &[u8], tests: &[wasmgym_grade::TestCase]) -> Vec<Verdict> {
    let grader = Grader::new(runtime(), wasm, None, GradeOptions { jobs: 1, ..Default::default() }).unwrap();
    grader.grade(tests).tests.into_iter().map(|t| t.verdict).collect()
}

#[test]
fn c_and_cpp_solutions_compile_and_get_verdicts() {
    let sum = compile(SUM_C.as_bytes(), Lang::C, &CompileOptions::default()).unwrap();
    assert!(sum.starts_with(b"\0asm"));
    let got = verdicts(&sum, &[test("a", "1 2", "3"), test("b", "-5 2 10", "7"), test("c", "1 1", "3")]);
    assert_eq!(got[..2], [Verdict::Accepted, Verdict::Accepted]);
    assert!(matches!(got[2], Verdict::WrongAnswer { .. }), "{got:?}");

    let sort = compile(SORT_CPP.as_bytes(), Lang::Cpp, &CompileOptions::default()).unwrap();
    assert_eq!(verdicts(&sort, &[test("s", "4\n3 1 3 2", "1 2 3 3\n3")]), [Verdict::Accepted]);
}

#[test]
fn a_compile_error_is_reported_once_with_the_compilers_message() {
    let message = compile_error("int main( { return 0 }\n", Lang::C, &CompileOptions::default());
    assert!(message.contains("main.c:1:"), "{message}");
    assert!(message.contains("error"), "{message}");
    assert!(!message.contains("wasmgym-cc"), "the message shows a host path: {message}");
    // C++ has no exceptions on WASI: a throw is a compile error, not a link error later.
    let message = compile_error("int main() { throw 1; }\n", Lang::Cpp, &CompileOptions::default());
    assert!(message.contains("main.cpp:1:"), "{message}");
}

#[test]
fn hostile_sources_cannot_read_host_files_or_hang_the_compiler() {
    let options = CompileOptions::default();
    let secret = "root:x:0:0";
    assert!(std::fs::read_to_string("/etc/passwd").unwrap().contains(secret), "the test needs /etc/passwd");
    for source in [
        "#include \"/etc/passwd\"\nint main(){}\n",
        "#include \"../../../../../../etc/passwd\"\nint main(){}\n",
        "#define P \"/etc/passwd\"\n#include P\nint main(){}\n",
        "static const char d[] = {\n#embed \"/etc/passwd\"\n, 0};\nint main(){ return d[0]; }\n",
        "extern const char blob[];\n__asm__(\".section .rodata.b,\\\"\\\",@\\n.globl blob\\nblob:\\n.incbin \\\"/etc/passwd\\\"\\n\");\nint main(){ return blob[0]; }\n",
    ] {
        let message = compile_error(source, Lang::C, &options);
        assert!(!message.contains(secret), "{message}");
    }
    // Files that never end (or block) do not exist inside the sandbox.
    for device in ["/dev/stdin", "/dev/zero", "/dev/urandom", "/proc/self/environ"] {
        let started = Instant::now();
        let message = compile_error(&format!("#include \"{device}\"\nint main(){{}}\n"), Lang::C, &options);
        assert!(message.contains("not found"), "{device}: {message}");
        assert!(started.elapsed() < Duration::from_secs(15), "{device} took {:?}", started.elapsed());
    }
}

#[test]
fn an_exponential_template_stops_at_the_compilers_deadline() {
    let bomb = "template<int N, unsigned M> struct T { static const unsigned v = T<N-1, 2*M>::v + T<N-1, 2*M+1>::v; };\n\
                template<unsigned M> struct T<0, M> { static const unsigned v = M; };\n\
                int main() { return (int)T<28, 0>::v; }\n";
    let options = CompileOptions { deadline: Duration::from_secs(2), ..CompileOptions::default() };
    let started = Instant::now();
    let message = compile_error(bomb, Lang::Cpp, &options);
    assert!(
        message.contains("deadline") || message.contains("CPU time") || message.contains("memory limit"),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

#[test]
fn a_solution_is_compiled_once_then_comes_from_the_cache() {
    let dir = std::env::temp_dir().join(format!("wasmgym-solutions-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = CompileOptions { cache: Some(dir.clone()), ..CompileOptions::default() };
    let first = compile(SUM_C.as_bytes(), Lang::C, &options).unwrap();
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    // The cached module is what the second compile returns: mark it and see the mark come back.
    let mut marked = first.clone();
    marked.extend_from_slice(&[0, 5, 4, b'm', b'a', b'r', b'k']); // a custom section named "mark"
    std::fs::write(&files[0], &marked).unwrap();
    assert!(compile(SUM_C.as_bytes(), Lang::C, &options).unwrap() == marked, "not from the cache");
    // Another stack size is another entry, compiled afresh.
    let options = CompileOptions { stack_bytes: 256 << 10, ..options };
    let other = compile(SUM_C.as_bytes(), Lang::C, &options).unwrap();
    assert!(other.starts_with(b"\0asm") && other != marked && other != first);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn languages_by_name_and_extension() {
    use std::path::Path;
    assert_eq!(Lang::of_path(Path::new("a/sol.cpp")), Some(Lang::Cpp));
    assert_eq!(Lang::of_path(Path::new("sol.cc")), Some(Lang::Cpp));
    assert_eq!(Lang::of_path(Path::new("sol.c")), Some(Lang::C));
    assert_eq!(Lang::of_path(Path::new("sol.wat")), Some(Lang::Wasm));
    assert_eq!(Lang::of_path(Path::new("sol.rs")), None);
    assert_eq!(Lang::from_name("C++"), Some(Lang::Cpp));
    assert_eq!(Lang::from_name("cobol"), None);
}

#[test]
fn cpp_uses_a_precompiled_header_from_the_cache_and_survives_a_broken_one() {
    let dir = std::env::temp_dir().join(format!("wasmgym-pch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = CompileOptions { cache: Some(dir.clone()), ..CompileOptions::default() };
    let pch = || {
        std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|e| e == "pch"))
    };
    let variant = |n: u32| SORT_CPP.replace("int main", &format!("int unused{n}; int main"));
    let sorted = [test("s", "4\n3 1 3 2", "1 2 3 3\n3")];
    // Without the header's #include the solution compiles all the same, with or without a cache:
    // every C++ solution sees <bits/stdc++.h>.
    let bare = SORT_CPP.replace("#include <bits/stdc++.h>", "");
    for options in [&options, &CompileOptions::default()] {
        let wasm = compile(bare.as_bytes(), Lang::Cpp, options).unwrap();
        assert_eq!(verdicts(&wasm, &sorted), [Verdict::Accepted]);
    }
    for n in 0..2 {
        let wasm = compile(variant(n).as_bytes(), Lang::Cpp, &options).unwrap();
        assert_eq!(verdicts(&wasm, &sorted), [Verdict::Accepted]);
    }
    let header = pch().expect("the precompiled header is in the cache");
    // A header clang cannot use is not the solution's fault: it compiles without, and the header
    // is built again on the next compile.
    std::fs::write(&header, b"not a precompiled header").unwrap();
    let wasm = compile(variant(2).as_bytes(), Lang::Cpp, &options).unwrap();
    assert_eq!(verdicts(&wasm, &sorted), [Verdict::Accepted]);
    assert!(pch().is_none(), "the broken header was kept");
    compile(variant(3).as_bytes(), Lang::Cpp, &options).unwrap();
    assert!(std::fs::metadata(pch().unwrap()).unwrap().len() > 1 << 20);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn deep_recursion_passes_with_a_judges_stack_and_is_a_stack_overflow_without() {
    let dfs = r#"#include <bits/stdc++.h>
using namespace std;
vector<vector<int>> g; vector<int> seen;
int dfs(int u) { seen[u] = 1; int c = 1; for (int v : g[u]) if (!seen[v]) c += dfs(v); return c; }
int main() { int n; cin >> n; g.assign(n, {}); seen.assign(n, 0);
  for (int i = 0; i + 1 < n; i++) { g[i].push_back(i + 1); g[i + 1].push_back(i); }
  cout << dfs(0) << "\n"; }
"#;
    let wasm = compile(dfs.as_bytes(), Lang::Cpp, &CompileOptions::default()).unwrap();
    let path = [test("path", "100000", "100000")];
    // The grader's threads are sized for the runtime's wasm stack (here 256 MiB, as `wasmgym
    // grade` sets it): a depth-first search 10⁵ deep passes.
    let deep =
        wasmgym::Runtime::with_config(wasmgym::RuntimeConfig { max_wasm_stack: 256 << 20, ..Default::default() })
            .unwrap();
    let grader = Grader::new(&deep, &wasm, None, GradeOptions { jobs: 2, ..Default::default() }).unwrap();
    assert_eq!(grader.grade(&path).tests[0].verdict, Verdict::Accepted);
    // With the default 512 KiB it is a runtime error naming the stack, not a crash of the host.
    let verdict = verdicts(&wasm, &path).remove(0);
    assert!(matches!(&verdict, Verdict::RuntimeError { .. }) && verdict.message().contains("stack"), "{verdict:?}");
}

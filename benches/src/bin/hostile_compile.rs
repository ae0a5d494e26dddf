//! Compile time and peak memory of hostile modules at and past the default `LoadLimits`: the worst
//! shapes the issue found (deeply nested blocks, many functions, huge bodies, many locals), built
//! as large as the limits allow. Each case runs in a process of its own so its peak RSS is its own.
//!
//! Run with `cargo run --release -p wasmgym-benches --bin hostile-compile [-- --json]`.

use std::process::Command;
use std::time::Instant;

use wasm_encoder::{
    BlockType, CodeSection, Function, FunctionSection, Instruction, MemorySection, MemoryType, Module, TypeSection,
    ValType,
};
use wasmgym::{LoadLimits, Runtime};

/// A module of `functions` functions `() -> ()` with one i32 local, each body `body`.
fn module(functions: u32, locals: u32, body: &dyn Fn(&mut Function)) -> Vec<u8> {
    let mut types = TypeSection::new();
    types.ty().function([], []);
    let mut funcs = FunctionSection::new();
    let mut code = CodeSection::new();
    let mut f = Function::new([(locals, ValType::I32)]);
    body(&mut f);
    f.instruction(&Instruction::End);
    for _ in 0..functions {
        funcs.function(0);
        code.function(&f);
    }
    let mut memories = MemorySection::new();
    memories.memory(MemoryType { minimum: 1, maximum: None, memory64: false, shared: false, page_size_log2: None });
    let mut m = Module::new();
    m.section(&types).section(&funcs).section(&memories).section(&code);
    m.finish()
}

/// `repeat` runs of `depth` nested blocks of `kind` (`if` tests local 0).
fn nests(f: &mut Function, kind: &str, depth: u32, repeat: u32) {
    for _ in 0..repeat {
        for _ in 0..depth {
            match kind {
                "if" => {
                    f.instruction(&Instruction::LocalGet(0));
                    f.instruction(&Instruction::If(BlockType::Empty));
                }
                _ => {
                    f.instruction(&Instruction::Loop(BlockType::Empty));
                }
            }
        }
        for _ in 0..depth {
            f.instruction(&Instruction::End);
        }
    }
}

/// The cases: name and module, at the default limits (or past them, `over_*`).
fn case(name: &str) -> Vec<u8> {
    let l = LoadLimits::default();
    // As many functions of `function_blocks` blocks as the module's `blocks` allows.
    let full = l.blocks / l.function_blocks;
    let depth = l.nesting_depth;
    let nests_per_function = l.function_blocks / depth;
    match name {
        "blocks_one_function" => module(1, 1, &|f| nests(f, "block", 1, l.function_blocks)),
        "blocks_all" => module(full, 1, &|f| nests(f, "block", 1, l.function_blocks)),
        "nested_if_all" => module(full, 1, &|f| nests(f, "if", depth, nests_per_function)),
        "nested_loop_all" => module(full, 1, &|f| nests(f, "loop", depth, nests_per_function)),
        "max_functions" => module(l.functions, 1, &|_| {}),
        "max_locals_all_code" => {
            let per = 200_000usize; // bytes of body per function
            module((l.code_bytes / per) as u32, l.locals, &|f| {
                for i in 0..(per / 7) as u32 {
                    f.instruction(&Instruction::LocalGet(i % l.locals));
                    f.instruction(&Instruction::LocalSet((i * 7) % l.locals));
                }
            })
        }
        "flat_all_code" => module((l.code_bytes / l.function_body_bytes as usize) as u32, 1, &|f| {
            for _ in 0..(l.function_body_bytes as usize - 16) / 7 {
                f.instruction(&Instruction::LocalGet(0));
                f.instruction(&Instruction::I32Const(1));
                f.instruction(&Instruction::I32Add);
                f.instruction(&Instruction::LocalSet(0));
            }
        }),
        "over_nested_if_200k" => module(1, 1, &|f| nests(f, "if", 200_000, 1)),
        "over_nested_loop_200k" => module(1, 1, &|f| nests(f, "loop", 200_000, 1)),
        "over_1m_functions" => module(1_000_000, 1, &|_| {}),
        // nest:KIND:DEPTH:REPEAT:FUNCTIONS, for measuring the cost model.
        other if other.starts_with("nest:") => {
            let p: Vec<&str> = other.split(':').collect();
            let n = |i: usize| p[i].parse::<u32>().expect("a number");
            module(n(4), 1, &|f| nests(f, p[1], n(2), n(3)))
        }
        other => panic!("unknown case {other}"),
    }
}

const CASES: [&str; 10] = [
    "blocks_one_function",
    "blocks_all",
    "nested_if_all",
    "nested_loop_all",
    "max_functions",
    "max_locals_all_code",
    "flat_all_code",
    "over_nested_if_200k",
    "over_nested_loop_200k",
    "over_1m_functions",
];

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: 0 kB");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Code bytes, functions, blocks (block, loop, if) in all and in the largest function, deepest
/// nesting: the quantities the load limits bound, for real modules.
fn stats(wasm: &[u8]) -> serde_json::Value {
    use wasmparser::{Operator, Parser, Payload};
    let (mut code, mut functions, mut blocks, mut max_blocks, mut max_depth) = (0usize, 0u32, 0u64, 0u64, 0u32);
    for payload in Parser::new(0).parse_all(wasm) {
        if let Ok(Payload::CodeSectionEntry(body)) = payload {
            functions += 1;
            code += (body.range().end - body.range().start) as usize;
            let (mut here, mut depth) = (0u64, 0u32);
            let mut ops = body.get_operators_reader().expect("operators");
            while !ops.eof() {
                match ops.read().expect("an operator") {
                    Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. } => {
                        here += 1;
                        depth += 1;
                        max_depth = max_depth.max(depth);
                    }
                    Operator::End => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            blocks += here;
            max_blocks = max_blocks.max(here);
        }
    }
    serde_json::json!({"code_bytes": code, "functions": functions, "blocks": blocks,
        "max_blocks_in_a_function": max_blocks, "max_depth": max_depth})
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--stats") {
        let runtime =
            Runtime::with_config(wasmgym::RuntimeConfig { load_limits: LoadLimits::trusted(), ..Default::default() })
                .expect("runtime");
        for path in &args[2..] {
            let wasm = std::fs::read(path).expect("reading the module");
            let started = Instant::now();
            let kind = match runtime.load_program(&wasm) {
                Ok(_) => "program".to_string(),
                Err(_) => match runtime.load(&wasm) {
                    Ok(_) => "env".into(),
                    Err(e) => format!("other ({})", e.kind()),
                },
            };
            let mut v = stats(&wasm);
            v["module"] = path.as_str().into();
            v["load_seconds"] = started.elapsed().as_secs_f64().into();
            v["kind"] = kind.into();
            println!("{v}");
        }
        return;
    }
    if let Some(name) = args.iter().position(|a| a == "--case").map(|i| args[i + 1].clone()) {
        let wasm = case(&name);
        let runtime = Runtime::new().expect("runtime");
        let before = peak_rss_kib();
        let started = Instant::now();
        let result = runtime.load_program(&wasm);
        let seconds = started.elapsed().as_secs_f64();
        let outcome = match result {
            Ok(_) => "compiled".to_string(),
            Err(e) => format!("refused: {}", e.kind()),
        };
        println!(
            "{}",
            serde_json::json!({"case": name, "module_bytes": wasm.len(), "seconds": seconds,
                "peak_rss_mib": peak_rss_kib() as f64 / 1024.0, "rss_before_mib": before as f64 / 1024.0,
                "outcome": outcome})
        );
        return;
    }
    let json = args.iter().any(|a| a == "--json");
    let exe = std::env::current_exe().expect("own path");
    if !json {
        println!("{:<24} {:>10} {:>9} {:>10}  outcome", "case", "bytes", "seconds", "peak MiB");
    }
    for name in CASES {
        let out = Command::new(&exe).args(["--case", name]).output().expect("running a case");
        let line = String::from_utf8_lossy(&out.stdout);
        if json {
            print!("{line}");
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap_or_default();
        println!(
            "{:<24} {:>10} {:>9.3} {:>10.0}  {}",
            name,
            v["module_bytes"],
            v["seconds"].as_f64().unwrap_or(f64::NAN),
            v["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
            v["outcome"].as_str().unwrap_or("crashed")
        );
    }
}

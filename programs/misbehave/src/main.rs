//! A program for the grader's bad-input tests: the first word of stdin picks what it does.
//!
//! | word | behaviour |
//! |---|---|
//! | `sum a b ...` | prints the sum (behaves) |
//! | `loop` | loops forever |
//! | `bomb` | allocates 1 MiB after 1 MiB without end |
//! | `recurse` | recurses without end |
//! | `flood` | prints without end |
//! | `exit N` | exits with code N |
//! | `panic` | panics |
//! | `sleep` | sleeps for an hour |
//! | `nap` | sleeps for one second and prints how long the clock says it slept |
//! | `files` | reads `input.txt`, then tries `/etc/passwd`, `../secret.txt`, `data/../../secret.txt` and writing `out.txt`; prints what happened |
//! | `ls` | lists the current directory (the granted one) and reads `sub/inner.txt` |
//! | `world` | prints its arguments, environment variables, a random draw and the clock |

use std::hint::black_box;
use std::io::Read;

#[allow(unconditional_recursion)] // the point: recursion without end
fn recurse(depth: u64) -> u64 {
    let buf = black_box([depth; 16]);
    recurse(depth + 1) + buf[3]
}

fn attempt<T>(result: std::io::Result<T>) -> &'static str {
    if result.is_ok() { "opened" } else { "denied" }
}

fn main() {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).expect("reading stdin");
    let mut words = input.split_whitespace();
    match words.next().unwrap_or("") {
        "sum" => println!("{}", words.map(|w| w.parse::<i64>().expect("an integer")).sum::<i64>()),
        "loop" => {
            let mut x = 0u64;
            loop {
                x = black_box(x.wrapping_add(1));
            }
        }
        "bomb" => {
            let mut hoard = Vec::new();
            loop {
                hoard.push(black_box(vec![1u8; 1 << 20]));
            }
        }
        "recurse" => println!("{}", black_box(recurse(0))),
        "flood" => loop {
            println!("{}", "flood ".repeat(100));
        },
        "exit" => std::process::exit(words.next().and_then(|w| w.parse().ok()).unwrap_or(1)),
        "panic" => panic!("misbehave was asked to panic"),
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_secs(3600));
            println!("woke up");
        }
        "nap" => {
            let before = std::time::Instant::now();
            std::thread::sleep(std::time::Duration::from_secs(1));
            println!("slept {} ms", before.elapsed().as_millis());
        }
        "files" => {
            let granted = std::fs::read_to_string("input.txt").unwrap_or_else(|e| format!("error: {e}"));
            println!("input.txt: {}", granted.trim());
            println!("/etc/passwd: {}", attempt(std::fs::File::open("/etc/passwd")));
            println!("../secret.txt: {}", attempt(std::fs::File::open("../secret.txt")));
            println!("data/../../secret.txt: {}", attempt(std::fs::File::open("data/../../secret.txt")));
            println!("write out.txt: {}", attempt(std::fs::File::create("out.txt")));
        }
        "ls" => {
            let mut names: Vec<String> = match std::fs::read_dir(".") {
                Ok(entries) => entries.flat_map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned())).collect(),
                Err(e) => vec![format!("error: {e}")],
            };
            names.sort();
            println!("{}", names.join(" "));
            let inner = std::fs::read_to_string("sub/inner.txt").unwrap_or_else(|e| format!("error: {e}"));
            println!("{}", inner.trim());
        }
        "world" => {
            let args: Vec<String> = std::env::args().collect();
            let vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
            let random = std::collections::hash_map::RandomState::new();
            use std::hash::BuildHasher;
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            println!("args {args:?}");
            println!("env {vars:?}");
            println!("random {}", random.hash_one(1u8));
            println!("clock_ns {}", now.as_nanos());
        }
        other => {
            eprintln!("unknown command {other:?}");
            std::process::exit(2);
        }
    }
}

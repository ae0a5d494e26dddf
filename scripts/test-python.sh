#!/usr/bin/env bash
# Runs the Python package's tests (python/tests) against the extension that
# `cargo test --release --workspace` built (python/examples/extension_path.rs says why it is built
# there), in a venv with the pinned packages of python/requirements-test.txt, installed from PyPI
# through pip's cache, at
#   ${WASMGYM_PYTHON_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmgym/python-venv}
# The package goes in as a development install: the built library is copied next to the Python
# sources (python/wasmgym/_core.abi3.so, ignored by git) and a .pth file puts python/ on the path.
# `pip install ./python` (maturin) is the install for users; docs/python.md.
#
# Arguments are passed to pytest. Set PYTHON to use another interpreter for the venv (3.10+).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
VENV=${WASMGYM_PYTHON_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmgym/python-venv}
PY=$VENV/bin/python
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
LIB=$TARGET/release/deps/lib_core.so

log() { echo "test-python: $*" >&2; }

if [[ ! -f $LIB ]]; then
    log "error: no $LIB: run \`cargo test --release --workspace\` first (it builds the extension)"
    exit 1
fi

if [[ ! -x $PY ]]; then
    command -v "$PYTHON" >/dev/null || { log "error: no $PYTHON to make the venv with (set PYTHON)"; exit 1; }
    log "making the venv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
# Quiet when everything is installed already (pip checks the pins in a second or two).
"$PY" -m pip install -q --disable-pip-version-check -r python/requirements-test.txt

# openenv 0.10 installs the same `openenv` package as openenv-core 0.3 (pinned above), so its client
# goes in a directory of its own, which python/tests/test_server.py puts first on a child's path.
OPENENV010=$VENV/openenv-0.10.0
if [[ ! -d $OPENENV010/openenv ]]; then
    "$PY" -m pip install -q --disable-pip-version-check --no-deps --target "$OPENENV010" openenv==0.10.0
fi
export WASMGYM_OPENENV010=$OPENENV010

# The development install: an atomic replace, so a running interpreter never sees half a file.
tmp=$(mktemp "$ROOT/python/wasmgym/.core.XXXXXX")
cp "$LIB" "$tmp" && mv -f "$tmp" "$ROOT/python/wasmgym/_core.abi3.so"
SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$ROOT/python" > "$SITE/wasmgym-dev.pth"

cd "$ROOT/python"
exec "$PY" -m pytest -q tests "$@"

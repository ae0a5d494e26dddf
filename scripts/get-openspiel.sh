#!/usr/bin/env bash
# Makes the Python environment of the OpenSpiel peer in `cargo bench -p wasmgym-benches --bench search`
# (benches/peers/openspiel_mcts.py): a venv with open_spiel and numpy pinned as in
# scripts/requirements.txt, installed from PyPI (through pip's cache: no --no-cache-dir), at
#   ${WASMGYM_OPENSPIEL_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmgym/openspiel-venv}
# Prints the venv's python as the last line of stdout (all other messages go to stderr). A second
# run only checks that the pinned versions import and prints the path.
#
# Needs: python3 (3.11 here; open_spiel installs from binary wheels only) with the
# venv module, and access to PyPI. Set PYTHON to use another interpreter.
set -euo pipefail

OPEN_SPIEL=2.0.2
NUMPY=2.2.6
PYTHON=${PYTHON:-python3}
VENV=${WASMGYM_OPENSPIEL_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmgym/openspiel-venv}
PY=$VENV/bin/python

log() { echo "get-openspiel: $*" >&2; }

# True when the venv's python imports the pinned versions.
ready() {
    [[ -x $PY ]] && "$PY" - "$OPEN_SPIEL" "$NUMPY" >/dev/null 2>&1 <<'EOF'
import sys
from importlib.metadata import version
import numpy, pyspiel
assert version("open_spiel") == sys.argv[1] and version("numpy") == sys.argv[2]
EOF
}

if ready; then
    log "open_spiel==$OPEN_SPIEL is ready in $VENV"
    echo "$PY"
    exit 0
fi

if [[ ! -x $PY ]]; then
    if ! command -v "$PYTHON" >/dev/null; then
        log "error: no $PYTHON to make the venv with (set PYTHON to a python3 with the venv module)"
        exit 1
    fi
    log "creating a venv at $VENV with $("$PYTHON" --version 2>&1)"
    mkdir -p "$(dirname "$VENV")"
    "$PYTHON" -m venv "$VENV" >&2
fi
log "installing open_spiel==$OPEN_SPIEL numpy==$NUMPY and their dependencies (scipy among them: about 300 MB installed)"
# Binary wheels only: no source builds (open_spiel's needs a C++ toolchain and CMake).
"$PY" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
    "open_spiel==$OPEN_SPIEL" "numpy==$NUMPY" >&2

if ! ready; then
    log "error: $PY does not import open_spiel==$OPEN_SPIEL and numpy==$NUMPY after installing them"
    exit 1
fi
log "open_spiel==$OPEN_SPIEL is ready in $VENV"
echo "$PY"

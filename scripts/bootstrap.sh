#!/usr/bin/env bash
# Creates .venv from the pinned locks (requirements.txt + requirements-dev.txt), then
# installs this project into it (editable, without dependencies: the lock has them), the
# way a deployment installs the wheel: the package, its provider entry point and its UI
# plugin are found through the installed metadata, never through sys.path edits.
# Idempotent: does nothing when the venv already matches the locks and pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION="0.13.9"
VENV=".venv"
BOOT=".cache/bootstrap"
STAMP="$VENV/.lock-sha256"

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PYTHON="$candidate"; break
    fi
  done
fi
[ -n "$PYTHON" ] || { echo "bootstrap: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2; exit 1; }

want="$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  exit 0
fi

if [ ! -x "$BOOT/bin/uv" ]; then
  echo "bootstrap: installing uv $UV_VERSION into $BOOT"
  "$PYTHON" -m venv "$BOOT"
  "$BOOT/bin/pip" install --quiet "uv==$UV_VERSION"
fi
[ -x "$VENV/bin/python" ] || "$BOOT/bin/uv" venv --quiet --python "$PYTHON" "$VENV"
echo "bootstrap: syncing $VENV with requirements.txt + requirements-dev.txt (compiling bytecode)"
"$BOOT/bin/uv" pip sync --quiet --python "$VENV/bin/python" --compile-bytecode \
  requirements.txt requirements-dev.txt
echo "bootstrap: installing compliance-exports into $VENV (editable)"
"$BOOT/bin/uv" pip install --quiet --python "$VENV/bin/python" --no-deps --editable .
echo "$want" > "$STAMP"
echo "bootstrap: $VENV ready"

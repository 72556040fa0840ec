#!/usr/bin/env bash
# Create (or update) the project's Python environment from the lock file; never resolves.
#
#   scripts/bootstrap.sh            # the Python environment (.venv) and, when missing, the
#                                   # system tools the test tiers use (chromium, prometheus, wrk)
#   scripts/bootstrap.sh --system   # only the system tools (a quick no-op when present)
#   BUKVA_SYSTEM_PACKAGES=0 ...     # never touch system packages
#
# torch comes as the CPU build: from a local wheel folder when this machine has one
# (/opt/wheels, or BUKVA_WHEELS), otherwise from the PyTorch CPU index.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
UV_VERSION=0.13.8
WHEELS=${BUKVA_WHEELS:-/opt/wheels}
TOOLS=${BUKVA_TOOLS:-.tools}

log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*"; }
die() { printf '\033[1m[bootstrap]\033[0m error: %s\n' "$*" >&2; exit 1; }

# The Python the environment is made from: PYTHON, else the first python3.11, python3.12 or
# python3 on PATH (outside the project's own .venv) that is 3.11 or 3.12 (pyproject.toml's
# requires-python; torch 2.13's CPU wheels and the lock are made for them).
supported() { "$1" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 13))' 2>/dev/null; }
if [ -z "${PYTHON:-}" ]; then
  seen=()
  for py in $(type -ap python3.11 python3.12 python3) /usr/bin/python3; do
    case "$py" in "$PWD/$VENV"/* | "$VENV"/*) continue ;; esac
    seen+=("$py ($("$py" -V 2>&1))")
    if supported "$py"; then PYTHON=$py; break; fi
  done
  [ -n "${PYTHON:-}" ] || die "bukva needs Python 3.11 or 3.12; found ${seen[*]:-no python3}. Install one (e.g. \`uv python install 3.11\`) and run again with PYTHON=/path/to/python3.11"
elif ! supported "$PYTHON"; then
  die "bukva needs Python 3.11 or 3.12; PYTHON=$PYTHON is $("$PYTHON" -V 2>&1)"
fi

if [ "${BUKVA_SYSTEM_PACKAGES:-1}" = 1 ]; then
  need=()
  command -v chromium >/dev/null || need+=(chromium)
  command -v prometheus >/dev/null || need+=(prometheus)
  command -v promtool >/dev/null || need+=(prometheus)
  command -v wrk >/dev/null || need+=(wrk)
  command -v git >/dev/null || need+=(git)
  # psycopg (PostgreSQL: MLflow's store, `make services`) loads the system's libpq
  { ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null | grep -q 'libpq\.so\.5 ' || need+=(libpq5)
  if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "installing system packages: ${need[*]}"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    else
      log "missing system packages (install them yourself): ${need[*]}"
    fi
  fi
fi
[ "${1:-}" = --system ] && exit 0

# uv: the one on PATH, else a pinned one in a small venv of its own under .tools/ (works where
# the system Python refuses `pip install`, PEP 668; nothing is installed outside the checkout).
if ! command -v uv >/dev/null 2>&1; then
  if [ ! -x "$TOOLS/uv/bin/uv" ]; then
    log "installing uv $UV_VERSION into $TOOLS/uv"
    rm -rf "$TOOLS/uv"
    "$PYTHON" -m venv "$TOOLS/uv" \
      || die "\`$PYTHON -m venv\` failed (on Debian/Ubuntu: apt install python3-venv); or install uv yourself (https://docs.astral.sh/uv/) and run again"
    "$TOOLS/uv/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" \
      || die "could not install uv $UV_VERSION from PyPI into $TOOLS/uv (see pip's message above)"
  fi
  export PATH="$PWD/$TOOLS/uv/bin:$PATH"
fi

torch_source=()
if ls "$WHEELS"/torch-*.whl >/dev/null 2>&1; then
  torch_source=(--find-links "$WHEELS")
else
  torch_source=(--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  uv venv -q "$VENV" --python "$PYTHON"
fi
log "syncing $VENV with requirements.lock"
# --compile-bytecode: .pyc files for every installed module now, once. Without them each new
# process compiles torch, MLflow and KServe from source again wherever PYTHONDONTWRITEBYTECODE
# is set (a minute per pipeline stage or server start on two busy cores).
uv pip sync -q --compile-bytecode -p "$VENV/bin/python" "${torch_source[@]}" requirements.lock
uv pip install -q -p "$VENV/bin/python" --no-deps -e .
log "environment ready: $VENV"

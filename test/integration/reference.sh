#!/usr/bin/env bash
# docs/reference.md is current: scripts/reference regenerates it from a fresh CREATE EXTENSION on
# this cluster (the checkout's build, installed by scripts/test-all) into a temporary file, which
# must equal the committed one.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
"$ROOT/scripts/reference" -o "$tmp"
if ! diff -u "$ROOT/docs/reference.md" "$tmp" >"$tmp.diff"; then
  head -80 "$tmp.diff"; rm -f "$tmp.diff"
  echo "FAIL: docs/reference.md is stale: run scripts/reference"
  exit 1
fi
rm -f "$tmp.diff"
echo "reference: docs/reference.md is current"

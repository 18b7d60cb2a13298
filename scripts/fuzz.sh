#!/usr/bin/env bash
# Runs every Fuzz target in the module for FUZZTIME (default 30s) each, one at a time
# (go test -fuzz takes one target per run). New failing inputs land in the package's
# testdata/fuzz/<FuzzName>/ directory, where `go test` replays them from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-30s}"

n=0
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "== $pkg $target ($FUZZTIME)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
		n=$((n + 1))
	done
done
echo "fuzz: $n targets fuzzed for $FUZZTIME each"

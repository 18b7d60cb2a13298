#!/usr/bin/env bash
# `make bench`: the packages' Go benchmarks, then a quick `kvresp bench compare` run
# (kvresp against redis-server, same client, same machine; ratios, not absolute times).
# BENCHTIME and BENCH_COMPARE_ARGS override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCHTIME="${BENCHTIME:-1s}"
BENCH_COMPARE_ARGS="${BENCH_COMPARE_ARGS:--rounds 1 -duration 3s -value-size 4mb -conns 4 -maxmemory 1gb -progress 0}"

go test -run '^$' -bench . -benchmem -benchtime "$BENCHTIME" ./...
# shellcheck disable=SC2086 # BENCH_COMPARE_ARGS is a list of flags
./bin/kvresp bench compare $BENCH_COMPARE_ARGS

#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian bookworm machine, and nothing when it is all
# there already (idempotent and quick):
#   - redis-server, redis-cli, redis-benchmark, redis-sentinel, tmux and python3-redis, which the
#     end-to-end tests in cmd/kvresp and the upstream tests in tiers/redisup drive (apt-get, as
#     root; otherwise it says what to install and fails);
#   - staticcheck, pinned, into ./.bin (a directory that ignores itself in git).
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION=0.8.2

if ! command -v go >/dev/null 2>&1; then
	echo "deps: go is not on PATH (go.mod wants $(awk '/^go /{print $2}' go.mod)); install it from go.dev/dl" >&2
	exit 1
fi

missing=()
for tool in redis-server redis-cli redis-benchmark redis-sentinel tmux; do
	command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ! -x /usr/bin/python3 ] || ! /usr/bin/python3 -c 'import redis.asyncio' >/dev/null 2>&1; then
	missing+=("python3-redis")
fi
if [ ${#missing[@]} -gt 0 ]; then
	pkgs=(redis-server redis-tools redis-sentinel python3-redis tmux)
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: missing ${missing[*]}; as root run: apt-get install -y --no-install-recommends ${pkgs[*]}" >&2
		exit 1
	fi
	echo "deps: installing ${pkgs[*]} (missing: ${missing[*]})"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
	# The package starts a redis-server service on 6379 where an init system runs; the tests
	# start their own servers on free ports and do not need it.
fi

mkdir -p .bin
[ -f .bin/.gitignore ] || echo '*' >.bin/.gitignore
if ! { [ -x .bin/staticcheck ] && .bin/staticcheck -version 2>/dev/null | grep -q "(${STATICCHECK_VERSION})"; }; then
	echo "deps: installing staticcheck v${STATICCHECK_VERSION} into .bin"
	GOBIN="$PWD/.bin" go install "honnef.co/go/tools/cmd/staticcheck@v${STATICCHECK_VERSION}"
fi

#!/usr/bin/env bash
# `make bench-tier`: the NVMe tier against fio on the same file, same block size (1 MiB) and
# queue depth (32), in alternating rounds (fio, tier, fio, tier, ...), printing each round's
# ratio and the median. Writes: BenchmarkTierPutFile{4,32}MiB vs fio --rw=write; reads of
# resident values: BenchmarkTierGetFile{4,32}MiB vs fio --rw=randread.
#
#   BENCH_FILE   the file both use (default ./kvresp-data/bench-tier; put it on the disk to measure)
#   ROUNDS       rounds per pair (default 3)
#   RUNTIME      seconds per fio run and per benchmark (default 5)
#   ONLY         a regular expression: run only the pairs whose benchmark name matches (e.g. Put)
#
# fio is a Debian package (apt-get install fio); the script says so when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_FILE="${BENCH_FILE:-$PWD/kvresp-data/bench-tier}"
ROUNDS="${ROUNDS:-3}"
RUNTIME="${RUNTIME:-5}"
ONLY="${ONLY:-.}"

command -v fio >/dev/null || { echo "bench-tier: fio is missing (as root: apt-get install -y fio)" >&2; exit 1; }
mkdir -p "$(dirname "$BENCH_FILE")" bin
go test -c -o bin/rawblock.test ./rawblock

# fio_mbs RW: fio's bandwidth in MB/s (10^6 bytes, as go test reports).
fio_mbs() {
	fio --name=tier --filename="$BENCH_FILE" --size=2g --bs=1m --iodepth=32 --ioengine=io_uring \
		--direct=1 --rw="$1" --time_based --runtime="$RUNTIME" --output-format=json |
		awk -v rw="$1" '
			/"read"[ \t]*:/ {sec="read"} /"write"[ \t]*:/ {sec="write"}
			/"bw_bytes"/ { gsub(/[^0-9]/, "", $0); if ((rw ~ /read/ && sec == "read") || (rw !~ /read/ && sec == "write")) { print $0 / 1e6; exit } }'
}

# tier_mbs NAME: the MB/s go test reports for benchmark NAME.
tier_mbs() {
	KVRESP_BENCH_FILE="$BENCH_FILE" ./bin/rawblock.test -test.run '^$' -test.bench "^$1\$" \
		-test.benchtime "${RUNTIME}s" | awk '/MB\/s/ { for (i = 1; i <= NF; i++) if ($(i+1) == "MB/s") { print $i; exit } }'
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

for pair in "TierPutFile4MiB write" "TierPutFile32MiB write" "TierGetFile4MiB randread" "TierGetFile32MiB randread"; do
	set -- $pair
	[[ $1 =~ $ONLY ]] || continue
	ratios=()
	for r in $(seq "$ROUNDS"); do
		f=$(fio_mbs "$2")
		t=$(tier_mbs "Benchmark$1")
		ratio=$(awk -v t="$t" -v f="$f" 'BEGIN {printf "%.2f", t / f}')
		ratios+=("$ratio")
		printf '%-18s round %d: tier %8.0f MB/s  fio --rw=%-8s %8.0f MB/s  ratio %s\n' "$1" "$r" "$t" "$2" "$f" "$ratio"
	done
	printf '%-18s median ratio %s\n' "$1" "$(printf '%s\n' "${ratios[@]}" | median)"
done
rm -f "$BENCH_FILE"

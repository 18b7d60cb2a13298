// Package bench is kvresp's load generator, `kvresp bench`, its
// side-by-side comparison with redis-server, `kvresp bench compare`, and its
// measure of kvresp as a read-through cache, `kvresp bench upstream`.
//
// It speaks RESP2 through its own small client (one writev per command,
// values sent in place from a shared read-only pattern and read straight
// into one reusable buffer per connection), so that a 2-core machine can
// move 32 MiB values without the client being the bottleneck. Every value
// is derived from its key and size; every GET hit is checked (header, key
// marks, sampled bytes), and a wrong value is an error, never silent.
//
// Workloads (-workload):
//
//   - lmcache-redis (default): LMCache's redis:// backend as redis-py drives
//     it, one command in flight per connection. Conversations are chains of
//     chunk hashes; a new one continues a random prefix of a remembered one
//     (-reuse, -keys conversations remembered) and adds 1..-chunks chunks.
//     Lookup: EXISTS <k>metadata per chunk up to the first miss; retrieve:
//     GET <k>metadata then GET <k>kv_bytes (DEL <k>metadata when the chunk
//     is gone); store the rest: SET <k>kv_bytes <chunk>, SET <k>metadata
//     <28 bytes>. <k> is model@1@0@<hash hex>@bfloat16.
//   - lmcache-resp: LMCache's native resp:// client: the same flow with one
//     key per chunk, model@%08x(kv_rank)@%x(group)@<hash hex>, and the
//     replies it insists on byte for byte (+OK, :0/:1, $<chunk size> or $-1;
//     the parser accepts only canonical RESP, so a parse is an exact match).
//   - setget: memtier-style SET/GET of -value-size bytes on -keys random
//     keys, -ratio SET:GET, -pipeline commands in flight, -prefill to SET
//     every key first.
//
// Usage:
//
//	kvresp bench -addr 127.0.0.1:6379 -workload lmcache-redis -value-size 32mb -conns 8 -duration 10s
//	kvresp bench -workload setget -value-size 4mb -ratio 1:4 -prefill -pipeline 4 -json
//	kvresp bench -requests 10000 -workload lmcache-resp        # stop after 10000 commands
//	kvresp bench compare -workload lmcache-redis -value-size 32mb -conns 8 -duration 5s -rounds 3 -maxmemory 4gb
//	kvresp bench upstream -value-size 4mb -keys 32 -rounds 5
//
// Sizes take redis-server's units: 28, 1048576, 100k (10^3), 4mb (2^20).
// The report gives, per command and in total, ops/s, MB/s (10^6 bytes of
// values per second: sent by SET, received by GET), p50/p99/p99.9/max
// latency (HdrHistogram, µs resolution), hits, misses and errors, plus
// LMCache chunk counts; -json prints the same as one JSON object. A
// progress line goes to stderr every -progress. The exit code is 0 for a
// run without errors, 1 if any command failed, 2 for a bad command line.
//
// Compare mode starts `redis-server --port P --save "" --appendonly no
// --maxmemory M --maxmemory-policy allkeys-lru` and `kvresp --port P --dir
// TMP --maxmemory M --metrics-addr 127.0.0.1:P2` (the binary is -kvresp-bin, by default this
// executable; -redis-args and -kvresp-args add flags) on free loopback
// ports, waits for PING, then runs the workload -rounds times against each,
// alternating which goes first, and prints the median of each metric for
// both and the ratio kvresp/redis, with the servers' CPU use and RSS from
// /proc. Both servers keep their data between rounds. Until kvresp exists,
// -kvresp-bin may be a script that execs redis-server "$@".
//
// Upstream mode starts a redis-server, SETs -keys values of -value-size
// straight into it, and starts kvresp with `--tier-order dram,upstream
// --upstream redis://... --upstream-mode read-through`. Each of -rounds
// rounds FLUSHALLs kvresp (local only: an upstream is never flushed) and
// GETs every key, one at a time from one client: straight from the
// redis-server (direct), through kvresp (cold: each GET is read through),
// and through kvresp again (warm: local hits); direct goes first in odd
// rounds and last in even ones. It prints p50 and p90 latency of each and
// the ratios of the medians to direct.
package bench

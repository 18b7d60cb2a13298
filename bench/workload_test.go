package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kvresp/internal/redistest"
)

// needRedis skips the test when redis-server is missing, unless CI is set.
func needRedis(t *testing.T) { redistest.NeedBinary(t, "redis-server") }

// startRedis starts a redis-server on a free port for the test.
func startRedis(t *testing.T, args ...string) string {
	t.Helper()
	needRedis(t)
	args = append([]string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, args...)
	s, err := startServer(context.Background(), "redis-server", "redis-server", t.TempDir(), args,
		&config{timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s.addr
}

func testConfig(addr, workload string) config {
	return config{
		addr: addr, workload: workload, conns: 2, requests: 300, valueSize: 64 << 10,
		keys: 50, setRatio: 1, getRatio: 3, pipeline: 1, timeout: 10 * time.Second,
		seed: 1, keyPrefix: "k:", model: "test/model", chunks: 4, reuse: 0.75,
	}
}

func runTest(t *testing.T, cfg config) *Result {
	t.Helper()
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	res, err := execute(context.Background(), &cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func row(t *testing.T, res *Result, name string) Row {
	t.Helper()
	for _, r := range res.Commands {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no row %q", name)
	return Row{}
}

// checkCounts asserts what holds for every clean run: no errors, the
// requested number of commands, and reads that are each a hit or a miss.
func checkCounts(t *testing.T, res *Result, requests int64) {
	t.Helper()
	if res.Total.Errors != 0 {
		t.Fatalf("%d errors: %q", res.Total.Errors, res.ErrorSamples)
	}
	if res.Total.Ops != requests {
		t.Errorf("%d commands, want %d", res.Total.Ops, requests)
	}
	var sum int64
	for _, r := range res.Commands {
		sum += r.Ops
		read := strings.HasPrefix(r.Name, "GET") || strings.HasPrefix(r.Name, "EXISTS")
		if read && r.Hits+r.Misses != r.Ops {
			t.Errorf("%s: %d hits + %d misses != %d ops", r.Name, r.Hits, r.Misses, r.Ops)
		}
		if strings.HasPrefix(r.Name, "SET") && r.Bytes != r.Ops*res.ValueSize && r.Name != "SET metadata" {
			t.Errorf("%s: %d bytes for %d ops of %d", r.Name, r.Bytes, r.Ops, res.ValueSize)
		}
	}
	if sum != res.Total.Ops {
		t.Errorf("rows add up to %d ops, total says %d", sum, res.Total.Ops)
	}
}

func TestSetGet(t *testing.T) {
	addr := startRedis(t)
	cfg := testConfig(addr, wlSetGet)
	res := runTest(t, cfg)
	checkCounts(t, res, cfg.requests)
	if g := row(t, res, "GET"); g.Misses == 0 || g.Hits == 0 {
		t.Errorf("without prefill GETs should both hit and miss: %+v", g)
	}

	// Pipelined, prefilled: every GET hits.
	cfg.pipeline, cfg.prefill, cfg.keyPrefix, cfg.valueSize = 8, true, "p:", 1000
	res = runTest(t, cfg)
	checkCounts(t, res, cfg.requests)
	if g := row(t, res, "GET"); g.Misses != 0 || g.Hits == 0 {
		t.Errorf("after prefill every GET should hit: %+v", g)
	}
}

func TestLMCacheResp(t *testing.T) {
	addr := startRedis(t)
	cfg := testConfig(addr, wlLMCacheResp)
	res := runTest(t, cfg)
	checkCounts(t, res, cfg.requests)
	ex, get, set := row(t, res, "EXISTS"), row(t, res, "GET"), row(t, res, "SET")
	if ex.Hits == 0 || ex.Misses == 0 || get.Hits == 0 || set.Ops == 0 {
		t.Errorf("want cached prefixes and new chunks: EXISTS %+v GET %+v SET %+v", ex, get, set)
	}
	if c := res.Chunks; c.Retrieved != get.Hits || c.Stored != set.Ops {
		t.Errorf("chunks %+v do not match GET hits %d and SETs %d", *c, get.Hits, set.Ops)
	}
}

func TestLMCacheRedis(t *testing.T) {
	addr := startRedis(t)
	cfg := testConfig(addr, wlLMCacheRedis)
	cfg.conns = 1 // one conversation at a time, nothing evicted: exact relations
	res := runTest(t, cfg)
	checkCounts(t, res, cfg.requests)
	ex, gm, gk := row(t, res, "EXISTS metadata"), row(t, res, "GET metadata"), row(t, res, "GET kv_bytes")
	sk, sm, del := row(t, res, "SET kv_bytes"), row(t, res, "SET metadata"), row(t, res, "DEL metadata")
	if ex.Hits == 0 || ex.Misses == 0 {
		t.Errorf("want both cached and new chunks: %+v", ex)
	}
	// The run may stop anywhere in its last conversation.
	if gm.Misses != 0 || gk.Misses != 0 || del.Ops != 0 {
		t.Errorf("nothing was evicted, yet GET missed: %+v %+v %+v", gm, gk, del)
	}
	if gm.Ops > ex.Hits || gk.Ops > gm.Hits || sm.Ops > sk.Ops || sk.Ops > sm.Ops+1 {
		t.Errorf("order broken: EXISTS hits %d, GET metadata %d (hits %d), GET kv_bytes %d, SET kv_bytes %d, SET metadata %d",
			ex.Hits, gm.Ops, gm.Hits, gk.Ops, sk.Ops, sm.Ops)
	}
	if c := res.Chunks; c.Retrieved != gk.Hits || c.Stored != sm.Ops {
		t.Errorf("chunks %+v do not match GET kv_bytes hits %d and SET metadata %d", *c, gk.Hits, sm.Ops)
	}
	if sm.Bytes != sm.Ops*metadataLen {
		t.Errorf("SET metadata sent %d bytes in %d ops", sm.Bytes, sm.Ops)
	}
}

// TestErrorsAreCounted: refused SETs and wrong bytes are errors, reported
// with a sample message, and the run goes on.
func TestErrorsAreCounted(t *testing.T) {
	addr := fakeServer(t)
	for _, tc := range []struct{ prefix, row, msg string }{
		{"oom:", "SET", "OOM"},
		{"corrupt:", "GET", "wrong value"},
	} {
		cfg := testConfig(addr, wlSetGet)
		cfg.keyPrefix, cfg.prefill = tc.prefix, tc.prefix != "oom:"
		res := runTest(t, cfg)
		r := row(t, res, tc.row)
		if r.Errors == 0 || r.Errors != r.Ops {
			t.Errorf("%s: %d of %d %s commands counted as errors", tc.prefix, r.Errors, r.Ops, tc.row)
		}
		if res.Total.Ops != cfg.requests || res.DialErrors != 0 {
			t.Errorf("%s: %d commands (want %d), %d dial errors", tc.prefix, res.Total.Ops, cfg.requests, res.DialErrors)
		}
		if len(res.ErrorSamples) == 0 || !strings.Contains(res.ErrorSamples[0], tc.msg) {
			t.Errorf("%s: error samples %q lack %q", tc.prefix, res.ErrorSamples, tc.msg)
		}
	}
}

func TestMainJSON(t *testing.T) {
	addr := startRedis(t)
	var out, errOut bytes.Buffer
	code := Main([]string{"-addr", addr, "-workload", "lmcache-resp", "-value-size", "4kb", "-conns", "2",
		"-requests", "100", "-progress", "0", "-json"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	if res.Total.Ops != 100 || res.ValueSize != 4096 || res.Workload != "lmcache-resp" {
		t.Errorf("JSON result %+v", res)
	}
}

func TestMainUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Main([]string{"-workload", "nope", "-conns", "0", "-ratio", "1"}, &out, &errOut)
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if code := Main([]string{"-workload", "nope", "-conns", "0"}, &out, &errOut); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	for _, want := range []string{"-ratio", "-workload", "-conns"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("usage errors %q do not mention %s", errOut.String(), want)
		}
	}
	if code := Main([]string{"-value-size", "lots"}, &out, &errOut); code != 2 {
		t.Fatalf("bad size: exit %d, want 2", code)
	}
}

// fakeKVResp is redis-server taking kvresp's command line.
const fakeKVResp = `#!/bin/sh
# drop kvresp's own directives
for a; do
	shift
	case "$skip$a" in
	--metrics-addr) skip=1 ;;
	1*) skip= ;;
	*) set -- "$@" "$a" ;;
	esac
done
exec redis-server "$@" --bind 127.0.0.1 --save '' --maxmemory-policy allkeys-lru
`

// TestCompare runs compare mode with redis-server standing in for kvresp
// through a wrapper script, as the kvresp binary will be started.
func TestCompare(t *testing.T) {
	needRedis(t)
	script := filepath.Join(t.TempDir(), "fake-kvresp")
	if err := os.WriteFile(script, []byte(fakeKVResp), 0o755); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := Main([]string{"compare", "-workload", "setget", "-value-size", "4kb", "-conns", "2", "-requests", "200",
		"-rounds", "2", "-maxmemory", "64mb", "-progress", "0", "-kvresp-bin", script, "-json"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var c comparison
	if err := json.Unmarshal(out.Bytes(), &c); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	if len(c.Redis) != 2 || len(c.KVResp) != 2 {
		t.Fatalf("want 2 rounds a side, got %d and %d", len(c.Redis), len(c.KVResp))
	}
	found := false
	for _, m := range c.Metrics {
		if m.Name == "total ops/s" {
			found = m.Redis > 0 && m.KVResp > 0 && m.Ratio > 0
		}
	}
	if !found {
		t.Errorf("no usable total ops/s in %+v", c.Metrics)
	}
	for _, rounds := range [][]*round{c.Redis, c.KVResp} {
		for _, rd := range rounds {
			if rd.Result.Total.Errors != 0 || rd.Result.Total.Ops != 200 {
				t.Errorf("round: %d ops, %d errors", rd.Result.Total.Ops, rd.Result.Total.Errors)
			}
		}
	}
	// The text table has one line per metric.
	out.Reset()
	code = Main([]string{"-compare", "-workload", "lmcache-redis", "-value-size", "4kb", "-conns", "2",
		"-requests", "100", "-rounds", "1", "-maxmemory", "64mb", "-progress", "0", "-kvresp-bin", script}, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "kvresp/redis") || !strings.Contains(out.String(), "GET kv_bytes p99 ms") {
		t.Fatalf("exit %d, table:\n%s\n%s", code, out.String(), errOut.String())
	}
}

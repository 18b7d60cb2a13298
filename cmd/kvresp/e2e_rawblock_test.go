package main_test

// End-to-end tests of the NVMe tier (rawblock) through the real server binary: a graceful
// restart comes back warm and exact, SIGKILL in a write storm never brings back an overwritten
// or deleted value (and loses no acknowledged one with rawblock-write-mode always), damaged
// bytes in the backing file turn into misses and counted errors, a device holding something
// else is refused untouched, and the tier shows up in /metrics. Redis has no such tier: every
// test here skips when the server under test is redis-server.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// stopWithin bounds a graceful shutdown, which writes DRAM down to the tier: a liveness bound
// for a race-instrumented server on a small shared machine, never a timing assertion.
const stopWithin = 2 * time.Minute

// rawblockFile is where kvresp keeps the tier when rawblock-path is not set.
func rawblockFile(dir string) string { return filepath.Join(dir, "kvresp.rawblock") }

// rawblockArgs are the directives of a file-backed tier of size bytes in regions of region.
func rawblockArgs(size, region string, extra ...string) []string {
	return append([]string{"--rawblock-size", size, "--rawblock-region-size", region}, extra...)
}

// rbValue is the value of version ver of key, size bytes: it names its key and version in its
// first bytes (so a check can tell which write it came from) and is pseudo-random after them.
func rbValue(key string, ver uint64, size int) []byte {
	b := make([]byte, size)
	h := fnv.New64a()
	h.Write([]byte(key))
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[0:], h.Sum64())
	binary.LittleEndian.PutUint64(seed[8:], ver)
	rand.NewChaCha8(seed).Read(b)
	copy(b, fmt.Sprintf("%s@%d;", key, ver))
	return b
}

// rbVersion reads the version a value produced by rbValue names for key.
func rbVersion(key string, v []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(v, []byte(key+"@"))
	if !ok {
		return 0, false
	}
	i := bytes.IndexByte(rest, ';')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(rest[:i]), 10, 64)
	return n, err == nil
}

// get sends GET and returns the value, or false for a miss ($-1).
func (rc *respConn) get(key string) ([]byte, bool) {
	rc.t.Helper()
	rc.send("GET", key)
	l := rc.line()
	if l == "$-1\r\n" {
		return nil, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(l, "$"), "\r\n"))
	if !strings.HasPrefix(l, "$") || err != nil || n < 0 {
		rc.t.Fatalf("GET %s: reply %q, want a bulk string or $-1", key, l)
	}
	b := make([]byte, n+2)
	if _, err := io.ReadFull(rc.r, b); err != nil {
		rc.t.Fatalf("GET %s: %v", key, err)
	}
	if string(b[n:]) != "\r\n" {
		rc.t.Fatalf("GET %s: bulk string of %d bytes not followed by CRLF", key, n)
	}
	return b[:n], true
}

// info returns the fields of one INFO section.
func (rc *respConn) info(section string) map[string]string {
	rc.t.Helper()
	rc.send("INFO", section)
	r := rc.readReply()
	if !strings.HasPrefix(r, "$") {
		rc.t.Fatalf("INFO %s: %q", section, r)
	}
	m := map[string]string{}
	for _, l := range strings.Split(r[strings.Index(r, "\r\n")+2:], "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = v
		}
	}
	return m
}

// infoInt reads an integer INFO field, failing when the server does not report it.
func infoInt(t *testing.T, m map[string]string, field string) int64 {
	t.Helper()
	v, ok := m[field]
	if !ok {
		t.Fatalf("INFO has no field %s", field)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("INFO %s=%q: %v", field, v, err)
	}
	return n
}

// dbsize returns DBSIZE.
func (rc *respConn) dbsize() int64 {
	rc.t.Helper()
	rc.send("DBSIZE")
	l := rc.line()
	n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(l, ":"), "\r\n"), 10, 64)
	if !strings.HasPrefix(l, ":") || err != nil {
		rc.t.Fatalf("DBSIZE: %q", l)
	}
	return n
}

// stopGracefully sends SIGTERM and requires exit status 0.
func (s *server) stopGracefully(t *testing.T) {
	t.Helper()
	if err := s.stop(t, syscall.SIGTERM, stopWithin); err != nil {
		t.Fatalf("server exited with %v after SIGTERM, want status 0; log:\n%s", err, s.log())
	}
}

// runCheck runs `kvresp check path` and returns its exit status and output.
func runCheck(t *testing.T, path string) (int, string) {
	t.Helper()
	return runKvresp(t, "check", path)
}

// rbKey is a key the tier tests write, with the size of its values (rbValue).
type rbKey struct {
	key  string
	size int
}

// setKeys sets version 1 of every key and waits until DBSIZE counts them all (evicted values
// reach the tiers below through a queue, and DBSIZE does not count the ones still in it).
func (rc *respConn) setKeys(keys []rbKey) {
	rc.t.Helper()
	for _, k := range keys {
		rc.setChunk(k.key, rbValue(k.key, 1, k.size))
		rc.expect("+OK\r\n")
	}
	waitFor(rc.t, time.Minute, fmt.Sprintf("DBSIZE to reach %d", len(keys)), func() bool { return rc.dbsize() == int64(len(keys)) })
}

// verifyKeys requires version 1 of every key, byte for byte.
func (rc *respConn) verifyKeys(keys []rbKey, when string) {
	rc.t.Helper()
	for _, k := range keys {
		got, ok := rc.get(k.key)
		switch {
		case !ok:
			rc.t.Errorf("GET %s %s: missing", k.key, when)
		case !bytes.Equal(got, rbValue(k.key, 1, k.size)):
			rc.t.Errorf("GET %s %s: %d bytes differ from the %d written", k.key, when, len(got), k.size)
		}
	}
}

// TestE2ERawblockRestart: keys written through the server, most of them only on the NVMe tier
// once DRAM is full, all come back byte for byte after SIGTERM and a restart on the same dir.
func TestE2ERawblockRestart(t *testing.T) {
	skipOnRedis(t, "no NVMe tier")
	dir := t.TempDir()
	o := serverOptions{dir: dir, maxmemory: "16mb", extra: rawblockArgs("1gb", "16mb")}
	s := startServer(t, o)
	rc := s.resp(t)

	// 300 small values and 16 of 1-4 MiB (about 40 MiB, well over maxmemory), interleaved.
	var keys []rbKey
	for i := 0; i < 300; i++ {
		keys = append(keys, rbKey{fmt.Sprintf("small:%03d", i), 28})
		if i%19 == 0 && i/19 < 16 {
			size := 1<<20 + (i/19*787<<10)%(3<<20)
			keys = append(keys, rbKey{fmt.Sprintf("big:%02d", i/19), size})
		}
	}
	rc.setKeys(keys)
	if n := infoInt(t, rc.info("tiers"), "tier_rawblock_items"); n == 0 {
		t.Fatal("nothing reached the NVMe tier before the restart: the test does not exercise it")
	}
	s.stopGracefully(t)
	if code, out := runCheck(t, rawblockFile(dir)); code != 0 {
		t.Errorf("kvresp check after a graceful stop: exit %d, want 0:\n%s", code, out)
	}

	s = startServer(t, o)
	rc = s.resp(t)
	if n := rc.dbsize(); n != int64(len(keys)) {
		t.Errorf("DBSIZE = %d after the restart, want %d", n, len(keys))
	}
	if n := infoInt(t, rc.info("rawblock"), "rawblock_recovered_entries"); n == 0 {
		t.Error("rawblock_recovered_entries = 0 after a restart of a full tier")
	}
	rc.verifyKeys(keys, "after the restart")
}

// crashOp is one write of the storm: a SET of version ver, or a DEL.
type crashOp struct {
	del bool
	ver uint64
}

// crashKey is what the storm knows of one key. Each key belongs to one connection, so its
// operations are sequential and at most one is in flight; the fields are read by the test only
// after that connection's worker has returned.
type crashKey struct {
	name     string
	acked    crashOp  // the last acknowledged write; a DEL stands for "absent" at the start
	inflight *crashOp // sent but not acknowledged when the server died
}

// crashSize is the size of version ver of a key in the storm: from 28 bytes to 512 KiB, so that
// 32 keys hold several times the 4 MiB of DRAM and evictions demote to the tier.
func crashSize(ver uint64) int {
	if ver%4 == 0 {
		return 28
	}
	return 64<<10 + int(ver*7919%(448<<10))
}

// stormConn is a raw connection a storm worker uses from its own goroutine: unlike respConn it
// returns errors, because the server dies under it.
type stormConn struct {
	c net.Conn
	r *bufio.Reader
}

func (sc *stormConn) do(bufs net.Buffers) (string, error) {
	if _, err := bufs.WriteTo(sc.c); err != nil {
		return "", err
	}
	return sc.r.ReadString('\n')
}

// TestE2ERawblockCrash kills kvresp with SIGKILL in the middle of a write storm of SETs that
// overwrite a small key set and DELs, several times on the same dir, and checks after each
// restart that every key is absent or holds the last value acknowledged for it or the one in
// flight at the kill. With rawblock-write-mode always, an acknowledged value is never absent.
func TestE2ERawblockCrash(t *testing.T) {
	skipOnRedis(t, "no NVMe tier")
	var version atomic.Uint64 // unique across rounds and modes
	for _, tc := range []struct {
		name, mode, log string
		logSize         int64
		killAfter       int64 // acknowledged writes per round before the kill
	}{
		{"evict", "evict", "1gb", 1 << 30, 120},
		{"always", "always", "1gb", 1 << 30, 120},
		// A log a few regions large: reclaim (reinsertion, eviction
		// tombstones) runs during the storms the kills interrupt.
		{"evict-reclaim", "evict", "40mb", 40 << 20, 250},
	} {
		t.Run(tc.name, func(t *testing.T) { testCrash(t, tc.mode, tc.log, tc.logSize, tc.killAfter, &version) })
	}
}

func testCrash(t *testing.T, mode, logArg string, logSize, killAfter int64, version *atomic.Uint64) {
	const (
		conns       = 4
		keysPerConn = 8
		rounds      = 4
	)
	dir := t.TempDir()
	o := serverOptions{dir: dir, maxmemory: "4mb",
		extra: rawblockArgs(logArg, "4mb", "--rawblock-write-mode", mode)}
	keys := make([]*crashKey, conns*keysPerConn)
	for i := range keys {
		keys[i] = &crashKey{name: fmt.Sprintf("crash:%02d", i), acked: crashOp{del: true}}
	}
	s := startServer(t, o)
	var written int64 // value bytes sent, to keep the always mode clear of region reclaim
	evictions, reclaims := int64(0), int64(0)
	for round := 0; round < rounds; round++ {
		var (
			acked   atomic.Int64
			wg      sync.WaitGroup
			errMu   sync.Mutex
			errs    []string
			sent    atomic.Int64
			reached = make(chan struct{})
			once    sync.Once
		)
		for c := 0; c < conns; c++ {
			nc, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			nc.SetDeadline(time.Now().Add(5 * time.Minute)) // liveness bound
			sc := &stormConn{c: nc, r: bufio.NewReader(nc)}
			mine := keys[c*keysPerConn : (c+1)*keysPerConn]
			rng := rand.New(rand.NewPCG(uint64(round), uint64(c)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				for {
					k := mine[rng.IntN(len(mine))]
					var op crashOp
					var bufs net.Buffers
					if rng.IntN(5) == 0 {
						op.del = true
						bufs = net.Buffers{encodeCmd("DEL", k.name)}
					} else {
						op.ver = version.Add(1)
						v := rbValue(k.name, op.ver, crashSize(op.ver))
						sent.Add(int64(len(v)))
						hdr := fmt.Sprintf("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n", len(k.name), k.name, len(v))
						bufs = net.Buffers{[]byte(hdr), v, []byte("\r\n")}
					}
					k.inflight = &op
					reply, err := sc.do(bufs)
					if err != nil {
						return // the server died: op stays in flight
					}
					if ok := (op.del && (reply == ":0\r\n" || reply == ":1\r\n")) || (!op.del && reply == "+OK\r\n"); !ok {
						errMu.Lock()
						errs = append(errs, fmt.Sprintf("%s %+v: reply %q", k.name, op, reply))
						errMu.Unlock()
						return
					}
					k.acked, k.inflight = op, nil
					if acked.Add(1) == killAfter {
						once.Do(func() { close(reached) })
					}
				}
			}()
		}
		select {
		case <-reached:
		case <-time.After(5 * time.Minute): // liveness bound
			t.Fatalf("round %d: the storm did not reach %d acknowledged writes", round, killAfter)
		}
		// Mid-storm: the workers keep writing while INFO is read and the kill is sent.
		ctl := s.resp(t)
		evictions += infoInt(t, ctl.info("tiers"), "tier_dram_evictions")
		reclaims += infoInt(t, ctl.info("rawblock"), "rawblock_reclaims")
		if err := s.stop(t, syscall.SIGKILL, time.Minute); err == nil {
			t.Fatalf("round %d: the server exited 0 instead of being killed", round)
		}
		wg.Wait()
		written += sent.Load()
		if len(errs) > 0 {
			t.Fatalf("round %d: unexpected replies in the storm:\n%s", round, strings.Join(errs, "\n"))
		}
		if mode == "always" && written > logSize/2 {
			t.Fatalf("the storm wrote %d bytes, too close to the %d of the log for always mode's check (region reclaim may drop keys)", written, logSize)
		}
		if code, out := runCheck(t, rawblockFile(dir)); code != 0 {
			t.Errorf("round %d: kvresp check after SIGKILL: exit %d, want 0 (a torn tail is not corruption):\n%s", round, code, out)
		}

		s = startServer(t, o)
		rc := s.resp(t)
		dbsize := rc.dbsize()
		present := 0
		for _, k := range keys {
			got, ok := rc.get(k.name)
			fromFlight := k.inflight != nil
			var want []string
			if !k.acked.del {
				want = append(want, fmt.Sprintf("v%d (acked)", k.acked.ver))
			} else {
				want = append(want, "absent (acked DEL)")
			}
			if fromFlight {
				want = append(want, fmt.Sprintf("%+v in flight", *k.inflight))
			}
			if !ok {
				lost := !k.acked.del && !(fromFlight && k.inflight.del)
				if mode == "always" && lost {
					t.Errorf("round %d: %s is absent after the crash; want %s", round, k.name, strings.Join(want, " or "))
				}
				k.acked, k.inflight = crashOp{del: true}, nil
				continue
			}
			present++
			ver, vok := rbVersion(k.name, got)
			switch {
			case !vok:
				t.Errorf("round %d: %s holds %d bytes that are no value of it (%q...)", round, k.name, len(got), got[:min(len(got), 40)])
			case !bytes.Equal(got, rbValue(k.name, ver, crashSize(ver))):
				t.Errorf("round %d: %s holds version %d with wrong bytes (%d, want %d)", round, k.name, ver, len(got), crashSize(ver))
			case (k.acked.del || k.acked.ver != ver) && !(fromFlight && !k.inflight.del && k.inflight.ver == ver):
				t.Errorf("round %d: %s came back as version %d; want %s", round, k.name, ver, strings.Join(want, " or "))
			}
			k.acked, k.inflight = crashOp{ver: ver}, nil
		}
		if dbsize != int64(present) {
			t.Errorf("round %d: DBSIZE = %d after the restart, but %d keys read back", round, dbsize, present)
		}
		if t.Failed() {
			return
		}
		t.Logf("round %d: %d of %d keys present after the crash, %d value bytes sent so far", round, present, len(keys), written)
	}
	if evictions == 0 {
		t.Error("DRAM never evicted during the storms: the test does not exercise the tier")
	}
	if logSize < 64<<20 && reclaims == 0 {
		t.Error("the log never reclaimed a region during the storms: the test does not exercise reclaim")
	}
}

// TestE2ERawblockCorruption flips bytes in the backing file of a stopped server: in a stored
// value, in a sealed region's summary and in superblock copy A. kvresp check reports each
// one; the server still starts, the damaged value reads as a miss and is counted, and every
// other key reads back exact.
func TestE2ERawblockCorruption(t *testing.T) {
	skipOnRedis(t, "no NVMe tier")
	dir := t.TempDir()
	// Write-through puts values in the log in the order they are SET, so the victim lands in
	// the first region and the values after it seal that region and a few more.
	o := serverOptions{dir: dir, maxmemory: "64mb",
		extra: rawblockArgs("64mb", "1mb", "--rawblock-write-mode", "always")}
	s := startServer(t, o)
	rc := s.resp(t)
	const victim = "victim"
	victimValue := bytes.Repeat([]byte("kvresp-e2e-victim-value-pattern;"), (256<<10)/32)
	rc.setChunk(victim, victimValue)
	rc.expect("+OK\r\n")
	others := map[string][]byte{}
	for i := 0; i < 24; i++ {
		k := fmt.Sprintf("big:%02d", i)
		others[k] = rbValue(k, 1, 200<<10)
	}
	for i := 0; i < 64; i++ {
		k := fmt.Sprintf("small:%02d", i)
		others[k] = rbValue(k, 1, 28)
	}
	for k, v := range others {
		rc.setChunk(k, v)
		rc.expect("+OK\r\n")
	}
	s.stopGracefully(t)

	path := rawblockFile(dir)
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	// Geometry from superblock copy A (rawblock/format.go): block size at 12, region size at
	// 16, region count at 24, data start at 64.
	bs := int64(le.Uint32(img[12:]))
	regSize, regions, dataStart := int64(le.Uint64(img[16:])), int64(le.Uint32(img[24:])), int64(le.Uint64(img[64:]))
	if bs == 0 || regSize == 0 || dataStart == 0 || dataStart+regSize*regions > int64(len(img)) {
		t.Fatalf("unexpected superblock geometry: block %d, region %d x %d from %d", bs, regSize, regions, dataStart)
	}
	sealed := func(r int64) bool {
		end := dataStart + (r+1)*regSize
		return string(img[end-64:end-56]) == "\x00KVRSUM1"
	}
	regionOf := func(off int64) int64 { return (off - dataStart) / regSize }

	var flips []int64
	// (a) The victim's value: every copy of it in the file.
	var victimRegions []int64
	for off := 0; ; {
		i := bytes.Index(img[off:], victimValue)
		if i < 0 {
			break
		}
		at := int64(off + i)
		if !sealed(regionOf(at)) {
			t.Fatalf("the victim value at %d lies in region %d, which is not sealed: the test's layout assumption broke", at, regionOf(at))
		}
		victimRegions = append(victimRegions, regionOf(at))
		flips = append(flips, at+int64(len(victimValue))/2)
		off = int(at) + len(victimValue)
	}
	if len(victimRegions) == 0 {
		t.Fatal("the victim value is nowhere in the backing file")
	}
	// (b) The summary body of a sealed region that holds no victim copy; the trailer gives the
	// body's length at 24 and ends the region.
	sumRegion := int64(-1)
	var sumOff int64
	for r := int64(0); r < regions; r++ {
		if !sealed(r) || slices.Contains(victimRegions, r) {
			continue
		}
		end := dataStart + (r+1)*regSize
		body := int64(le.Uint64(img[end-64+24:]))
		if body == 0 {
			continue
		}
		area := (body + 64 + bs - 1) / bs * bs
		sumRegion, sumOff = r, end-area+body/2
		break
	}
	if sumRegion < 0 {
		t.Fatalf("no sealed region with a summary besides the victim's regions %v", victimRegions)
	}
	flips = append(flips, sumOff)
	// (c) Superblock copy A: a byte of the region size, inside the checksummed fields.
	flips = append(flips, 20)

	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range flips {
		if _, err := f.WriteAt([]byte{img[off] ^ 0x5a}, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	code, out := runCheck(t, path)
	t.Logf("flipped bytes at %v (victim in regions %v, summary of region %d, superblock A); kvresp check:\n%s", flips, victimRegions, sumRegion, out)
	if code != 1 {
		t.Errorf("kvresp check of a damaged log: exit %d, want 1:\n%s", code, out)
	}
	wantLines := []string{
		"region -1 offset 0:",
		fmt.Sprintf("region %d offset %d: summary:", sumRegion, dataStart+(sumRegion+1)*regSize-bs),
	}
	for _, r := range victimRegions {
		wantLines = append(wantLines, fmt.Sprintf("region %d offset ", r))
	}
	for _, w := range wantLines {
		if !strings.Contains(out, w) {
			t.Errorf("kvresp check does not report %q:\n%s", w, out)
		}
	}
	if !strings.Contains(out, `entry "victim"`) || strings.Contains(out, "superblock A:  ok") {
		t.Errorf("kvresp check does not name the damaged entry and superblock A:\n%s", out)
	}

	s = startServer(t, o)
	rc = s.resp(t)
	corrupt := infoInt(t, rc.info("rawblock"), "rawblock_corrupt_records")
	if corrupt == 0 {
		t.Error("rawblock_corrupt_records = 0 after recovering a log with a damaged summary")
	}
	for i := 0; i < 2; i++ {
		if got, ok := rc.get(victim); ok {
			t.Fatalf("GET of the damaged value returned %d bytes (equal to what was SET: %v), want a miss", len(got), bytes.Equal(got, victimValue))
		}
	}
	in := rc.info("rawblock")
	t.Logf("after recovery and two GETs of the damaged value: rawblock_checksum_failures=%s rawblock_corrupt_records=%s", in["rawblock_checksum_failures"], in["rawblock_corrupt_records"])
	// The damaged value is found by the read (a checksum failure) or, should recovery verify
	// values, as a corrupt record: either way one more error than the summary's.
	if infoInt(t, in, "rawblock_checksum_failures")+infoInt(t, in, "rawblock_corrupt_records") <= corrupt {
		t.Errorf("the damaged value is not counted: %v", in)
	}
	for k, v := range others {
		got, ok := rc.get(k)
		if !ok || !bytes.Equal(got, v) {
			t.Errorf("GET %s after recovery: present %v, exact %v", k, ok, bytes.Equal(got, v))
		}
	}
}

// TestE2ERawblockRefuseForeign: a rawblock-path holding something else is refused at start
// with a message naming it, and left byte for byte as it was; rawblock-format yes formats it.
func TestE2ERawblockRefuseForeign(t *testing.T) {
	skipOnRedis(t, "no NVMe tier")
	if serverBin == "" {
		buildServer(t)
	}
	path, digest := foreignFile(t)
	sum0, size0 := digest()

	// The size asked matters: a larger one must not grow the file before it is refused.
	for _, size := range []string{"64mb", "1gb"} {
		t.Run("size="+size, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(freePort(t)), "--dir", t.TempDir(),
				"--maxmemory", "64mb", "--metrics-addr", "", "--rawblock-path", path}
			args = append(args, rawblockArgs(size, "4mb")...)
			out, err := exec.CommandContext(ctx, serverBin, args...).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || !ee.Exited() || ee.ExitCode() == 0 {
				t.Fatalf("kvresp on a foreign rawblock-path: %v, want a non-zero exit; output:\n%s", err, out)
			}
			msg := string(out)
			if !strings.Contains(msg, path) || !strings.Contains(msg, "not a kvresp rawblock log") {
				t.Errorf("the refusal does not name %s and say what it holds:\n%s", path, msg)
			}
			if !strings.Contains(msg, "rawblock-format") {
				t.Errorf("the refusal does not tell the user the setting that formats the device (rawblock-format):\n%s", msg)
			}
			if sum, size := digest(); sum != sum0 || size != size0 {
				t.Errorf("the refused file changed: %d bytes (was %d), same content %v", size, size0, sum == sum0)
			}
		})
	}

	// A fresh file, whatever the refusals above did to theirs.
	path, _ = foreignFile(t)
	s := startServer(t, serverOptions{maxmemory: "64mb",
		extra: append(rawblockArgs("64mb", "4mb"), "--rawblock-path", path, "--rawblock-format", "yes")})
	rc := s.resp(t)
	rc.do("+OK\r\n", "SET", "k", "v")
	rc.do("$1\r\nv\r\n", "GET", "k")
	if n := infoInt(t, rc.info("rawblock"), "rawblock_regions"); n == 0 {
		t.Error("rawblock_regions = 0 after formatting the device")
	}
}

// foreignFile creates a 64 MiB file that holds 8 KiB of random bytes then zeros, and returns
// its path and a function that reads its digest and size.
func foreignFile(t *testing.T) (string, func() ([32]byte, int64)) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "foreign.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(randomBytes(8 << 10)); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path, func() ([32]byte, int64) {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != 64<<20 {
			return [32]byte{}, fi.Size() // changed; not worth reading
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b), int64(len(b))
	}
}

// TestE2ERawblockMetrics: the tier's I/O counters and its item count are in /metrics.
func TestE2ERawblockMetrics(t *testing.T) {
	skipOnRedis(t, "no NVMe tier")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s := startServer(t, serverOptions{metricsAddr: addr, maxmemory: "4mb", extra: rawblockArgs("64mb", "1mb")})
	rc := s.resp(t)
	for i := 0; i < 16; i++ {
		k := fmt.Sprintf("m:%02d", i)
		rc.setChunk(k, rbValue(k, 1, 512<<10))
		rc.expect("+OK\r\n")
	}
	waitFor(t, time.Minute, "DRAM to evict to the NVMe tier", func() bool {
		return infoInt(t, rc.info("tiers"), "tier_rawblock_items") > 0
	})
	body := scrapeMetrics(t, addr)
	for _, want := range []string{`kvresp_rawblock_io_total{op="read"}`, `kvresp_rawblock_io_total{op="write"}`, `kvresp_tier_items{tier="rawblock"}`} {
		if !strings.Contains(body, "\n"+want+" ") {
			t.Errorf("/metrics has no %s sample:\n%s", want, lastLines(body, 60))
		}
	}
	if strings.Contains(body, "\n"+`kvresp_tier_items{tier="rawblock"} 0`+"\n") {
		t.Error(`kvresp_tier_items{tier="rawblock"} is 0 after DRAM evicted to the tier`)
	}
}

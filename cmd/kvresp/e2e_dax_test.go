package main_test

// End-to-end tests of the DAX tier through the real server binary, on a file in /dev/shm
// (tmpfs: no DAX here, so the plain-file mode, durable through msync): values cascade from DRAM
// through the NVMe tier into the DAX tier and read back exact, INFO and /metrics show the tier,
// a graceful restart is warm, `kvresp check -dax` verifies the image and reports damage, and a
// damaged value reads as a miss. The in-guest test on a real DAX filesystem is dax/vm_linux_test.go.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// shmFile is a fresh path in /dev/shm for a DAX image, removed when the test ends.
func shmFile(t *testing.T) string {
	t.Helper()
	f, err := os.CreateTemp("/dev/shm", "kvresp-e2e-dax-")
	if err != nil {
		t.Skipf("no /dev/shm to put the DAX tier in: %v", err)
	}
	f.Close()
	os.Remove(f.Name())
	t.Cleanup(func() { os.Remove(f.Name()) })
	return f.Name()
}

// runKvresp runs the server binary with args (a subcommand) and returns its exit status and
// output.
func runKvresp(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, serverBin, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("kvresp %q: %v\n%s", args, err, out)
	return 0, ""
}

// TestE2EDax: 96 values of 1 MiB and 96 small ones through 24 MiB of DRAM and a 32 MiB NVMe
// tier, into a 256 MiB DAX tier; every value reads back exact, before and after a graceful
// restart; the tier is in INFO and /metrics; kvresp check -dax passes on the stopped image and
// fails once a stored value is damaged, which the server then reads as a counted miss.
//
// The cascade runs as configured by default (writes acknowledged from DRAM, reads promoted),
// so DRAM holds values only it has and evicts them into a full NVMe tier, whose reclaim sends
// values on to the DAX tier: nothing may be dropped or fail on the way (demote_dropped,
// demote_failed). That reclaim reads what it sends down into buffers of its own: read into
// DRAM's memory, they made DRAM evict into the queue whose writers wait for that very reclaim.
// A value promoted from the DAX tier is written down again when DRAM evicts it, and its older
// copy stays in the DAX log until reclaimed: the tier is sized so that it never has to evict
// (128 MiB did, and the oldest values were gone after the restart).
func TestE2EDax(t *testing.T) {
	skipOnRedis(t, "no DAX tier")
	daxPath := shmFile(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	o := serverOptions{dir: t.TempDir(), maxmemory: "24mb", metricsAddr: addr,
		extra: rawblockArgs("32mb", "2mb", "--dax-path", daxPath, "--dax-size", "256mb", "--dax-region-size", "4mb")}
	noDrops := func(rc *respConn, when string) {
		t.Helper()
		tiers := rc.info("tiers")
		if d, f := infoInt(t, tiers, "demote_dropped"), infoInt(t, tiers, "demote_failed"); d != 0 || f != 0 {
			t.Errorf("%s: %d demotions dropped and %d failed; want none", when, d, f)
		}
	}
	s := startServer(t, o)
	rc := s.resp(t)

	var keys []rbKey
	for i := 0; i < 96; i++ {
		keys = append(keys, rbKey{fmt.Sprintf("chunk:%02d", i), 1<<20 - 4096 + i*37}, rbKey{fmt.Sprintf("meta:%02d", i), 28})
	}
	rc.setKeys(keys)
	tiers := rc.info("tiers")
	if tiers["tier_order"] != "dram,rawblock,dax" {
		t.Errorf("tier_order %q, want dram,rawblock,dax", tiers["tier_order"])
	}
	if n := infoInt(t, tiers, "tier_dax_items"); n == 0 {
		t.Fatalf("nothing reached the DAX tier: the test does not exercise it; INFO tiers: %v", tiers)
	}
	rc.verifyKeys(keys, "from the cascade")
	noDrops(rc, "after the writes and reads")
	// What the NVMe tier's reclaim sent down went through its own buffers, within their bound.
	rb := rc.info("rawblock")
	if n, limit := infoInt(t, rb, "rawblock_reclaim_buffer_bytes"), infoInt(t, rb, "rawblock_reclaim_buffer_limit"); n == 0 || n > limit {
		t.Errorf("INFO rawblock: reclaim buffers of %d bytes, limit %d", n, limit)
	}
	in := rc.info("dax")
	if in["dax_device_mode"] != "file" || in["dax_device_map_sync"] != "0" || in["dax_device_flush"] != "msync" {
		t.Errorf("INFO dax on tmpfs: mode %q, map_sync %q, flush %q; want file, 0, msync", in["dax_device_mode"], in["dax_device_map_sync"], in["dax_device_flush"])
	}
	if infoInt(t, in, "dax_writes") == 0 || infoInt(t, in, "dax_reads") == 0 || infoInt(t, in, "dax_region_size") != 4<<20 {
		t.Errorf("INFO dax: %v", in)
	}
	body := scrapeMetrics(t, addr)
	for _, want := range []string{`kvresp_dax_io_total{op="write"}`, `kvresp_tier_items{tier="dax"}`, `kvresp_dax_write_bytes_total{class="hot"}`,
		`kvresp_dax_device_info{flush="msync",map_sync="false",mode="file"}`, `kvresp_rawblock_io_total{op="write"}`,
		`kvresp_rawblock_reclaim_buffer_bytes`} {
		if !strings.Contains(body, "\n"+want+" ") {
			t.Errorf("/metrics has no %s sample:\n%s", want, lastLines(body, 80))
		}
	}
	s.stopGracefully(t)

	code, out := runKvresp(t, "check", "-dax", daxPath)
	if code != 0 || !strings.Contains(out, "corruptions:   0") {
		t.Errorf("kvresp check -dax after a graceful stop: exit %d, want 0:\n%s", code, out)
	}

	s = startServer(t, o)
	rc = s.resp(t)
	if n := infoInt(t, rc.info("dax"), "dax_recovered_entries"); n == 0 {
		t.Error("dax_recovered_entries = 0 after a restart")
	}
	rc.verifyKeys(keys, "after a restart")
	noDrops(rc, "after a restart")
	s.stopGracefully(t)

	// Damage every copy of one value in the image: check finds it, the server misses it.
	img, err := os.ReadFile(daxPath)
	if err != nil {
		t.Fatal(err)
	}
	victim := keys[0]
	sig := rbValue(victim.key, 1, victim.size)[:64]
	var copies int
	for off := 0; ; {
		i := bytes.Index(img[off:], sig)
		if i < 0 {
			break
		}
		img[off+i+victim.size/2] ^= 0xff
		copies++
		off += i + len(sig)
	}
	if copies == 0 {
		t.Fatalf("%s is not in the DAX image", victim.key)
	}
	if err := os.WriteFile(daxPath, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := runKvresp(t, "check", "-dax", daxPath); code != 1 {
		t.Errorf("kvresp check -dax of a damaged image: exit %d, want 1:\n%s", code, out)
	}
	s = startServer(t, o)
	rc = s.resp(t)
	if _, ok := rc.get(victim.key); ok {
		t.Errorf("GET %s: the damaged value was served", victim.key)
	}
	in = rc.info("dax")
	if infoInt(t, in, "dax_checksum_failures")+infoInt(t, in, "dax_corrupt_records") == 0 {
		t.Errorf("no checksum failure or corrupt record counted for the damaged value: %v", in)
	}
}

// TestE2EDaxSettings: tier-order naming dax without dax-path is refused at start, with the
// reason.
func TestE2EDaxSettings(t *testing.T) {
	skipOnRedis(t, "no DAX tier")
	if serverBin == "" {
		buildServer(t)
	}
	code, out := runKvresp(t, "--port", "0", "--tier-order", "dram,rawblock,dax")
	if code != 2 || !strings.Contains(out, "dax-path is not set") {
		t.Errorf("tier-order with dax and no dax-path: exit %d, output:\n%s", code, out)
	}
}

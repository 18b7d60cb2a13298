package main_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestVMServeNVMe runs on the test machine (make vm-test; it skips elsewhere): kvresp serves
// from the FDP namespace /dev/ng0n1 through passthrough. Values set through RESP come back
// exact, from the tier and after a graceful restart; INFO fdp shows the placement in use and
// the device's statistics; `kvresp check` verifies the log on the device.
func TestVMServeNVMe(t *testing.T) {
	if os.Getenv("KVRESP_VM") == "" {
		t.Skip("runs on the test machine (make vm-test)")
	}
	ng := os.Getenv("KVRESP_TEST_NVME_NG")
	if ng == "" {
		t.Fatal("KVRESP_VM is set but KVRESP_TEST_NVME_NG (the namespace device) is not")
	}
	skipOnRedis(t, "no NVMe tier")
	o := serverOptions{dir: t.TempDir(), maxmemory: "16mb", extra: []string{
		"--rawblock-path", ng, "--rawblock-format", "yes", "--rawblock-region-size", "32mb", "--fdp-stats-interval", "1"}}
	s := startServer(t, o)
	rc := s.resp(t)
	if !strings.Contains(s.log(), "FDP placement") {
		t.Errorf("the server did not say which placement IDs it uses; log:\n%s", s.log())
	}

	// Small values and chunks of 1-3 MiB, several times maxmemory: most end up on the tier.
	var keys []rbKey
	for i := range 60 {
		keys = append(keys, rbKey{fmt.Sprintf("meta:%02d", i), 28}, rbKey{fmt.Sprintf("chunk:%02d", i), 1<<20 + i*37<<10})
	}
	rc.setKeys(keys)
	if n := infoInt(t, rc.info("tiers"), "tier_rawblock_items"); n == 0 {
		t.Fatal("nothing reached the NVMe tier")
	}
	rc.verifyKeys(keys, "from the tier")

	waitFor(t, 30*time.Second, "INFO fdp to show the device's statistics", func() bool {
		_, ok := rc.info("fdp")["fdp_host_bytes_written"]
		return ok
	})
	f := rc.info("fdp")
	for field, want := range map[string]string{"fdp_placement": "true", "fdp_enabled": "true", "fdp_pid_meta": "0", "fdp_pid_hot": "1", "fdp_pid_cold": "2",
		"fdp_reclaim_unit_bytes": fmt.Sprint(64 << 20)} {
		if f[field] != want {
			t.Errorf("INFO fdp %s = %q, want %q", field, f[field], want)
		}
	}
	if infoInt(t, f, "fdp_host_bytes_written") == 0 {
		t.Error("INFO fdp: no host bytes written")
	}
	// The region size was rounded up to the 64 MiB reclaim unit.
	if n := infoInt(t, rc.info("rawblock"), "rawblock_region_size"); n != 64<<20 {
		t.Errorf("rawblock_region_size = %d, want the reclaim unit (%d)", n, 64<<20)
	}

	s.stopGracefully(t)
	if code, out := runCheck(t, ng); code != 0 {
		t.Errorf("kvresp check %s: exit %d, want 0:\n%s", ng, code, out)
	}
	s = startServer(t, o)
	rc = s.resp(t)
	if n := infoInt(t, rc.info("rawblock"), "rawblock_recovered_entries"); n == 0 {
		t.Error("nothing recovered from the namespace after a restart")
	}
	rc.verifyKeys(keys, "after a restart")
	s.stopGracefully(t)
}

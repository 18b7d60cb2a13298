package main_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestE2EBenchUpstream runs `kvresp bench upstream` (this kvresp, a real
// redis-server): every GET of every round is checked, and the report has
// the three latencies and their ratios.
func TestE2EBenchUpstream(t *testing.T) {
	skipOnRedis(t, "no upstream")
	needTool(t, "redis-server")
	if serverBin == "" {
		buildServer(t)
	}
	code, out := runKvresp(t, "bench", "upstream", "-value-size", "1mb", "-keys", "4", "-rounds", "2", "-json", "-kvresp-bin", serverBin)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	var res struct {
		Keys, Rounds                                      int
		DirectP50, ColdP50, WarmP50, ColdRatio, WarmRatio float64
		DirectP90, ColdP90, WarmP90                       float64
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &res); err != nil {
		t.Fatalf("%v in\n%s", err, out)
	}
	if res.Keys != 4 || res.Rounds != 2 || res.DirectP50 <= 0 || res.ColdP50 <= 0 || res.WarmP50 <= 0 || res.ColdRatio <= 0 || res.WarmRatio <= 0 {
		t.Fatalf("report %+v", res)
	}
}

package main_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestE2EBenchUpstream runs `kvresp bench upstream` (this kvresp, a real
// redis-server): every GET of every round is checked, and the report has
// the five latencies and their ratios.
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
		Keys, Rounds                                    int
		DirectP50, ColdP50, WarmP50, CopyP50, SpliceP50 float64
		DirectP90, ColdP90, WarmP90, CopyP90, SpliceP90 float64
		ColdRatio, WarmRatio, CopyRatio, SpliceRatio    float64
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &res); err != nil {
		t.Fatalf("%v in\n%s", err, out)
	}
	if res.Keys != 4 || res.Rounds != 2 {
		t.Fatalf("report %+v", res)
	}
	for _, v := range []float64{res.DirectP50, res.ColdP50, res.WarmP50, res.CopyP50, res.SpliceP50,
		res.DirectP90, res.ColdP90, res.WarmP90, res.CopyP90, res.SpliceP90,
		res.ColdRatio, res.WarmRatio, res.CopyRatio, res.SpliceRatio} {
		if v <= 0 {
			t.Fatalf("report %+v: a latency or ratio is missing", res)
		}
	}
}

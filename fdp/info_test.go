package fdp

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// qemuInfo is what Probe reports for the test VM's namespace after 1 MiB written with PID 3.
func qemuInfo() *Info {
	c := qemuController()
	c.FDPSupported, c.MaxTransfer = true, 512<<10
	cfg := qemuConfig()
	ruhs := qemuRUHs()
	ruhs[3].RUAMW -= 2048
	usage := make([]RUHUsage, 8)
	for i := range usage {
		usage[i] = RUHUsage{RUHID: uint16(i), Attr: RUHAHost}
	}
	st := FDPStats{HostBytesWritten: Uint128{Lo: 1 << 20}, MediaBytesWritten: Uint128{Lo: 3 << 19}}
	return &Info{
		Device: "/dev/ng0n1", NSID: 1, ControllerPath: "/dev/nvme0", Controller: c,
		Namespace:      &IDNamespace{Size: 1 << 21, Capacity: 1 << 21, Formats: 8, LBADS: 9, LBASize: 512, DLFEAT: 1, EndGID: 1},
		EnduranceGroup: 1, FDPEnabled: true, Config: &cfg, Usage: usage, RUHs: ruhs,
		Stats: &Stats{FDPStats: st, WriteAmplification: st.WriteAmplification()},
		Events: []FDPEvent{
			{Type: EventRUNotFullyWritten, Flags: 7, PID: 3, Timestamp: 1_700_000_000_000, TimestampOrigin: 1, NSID: 1, RUHID: 3, Host: true},
			{Type: EventMediaReallocated, Timestamp: 1_700_000_001_000, TimestampOrigin: 1},
		},
	}
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := qemuInfo().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		`(?m)^Device +/dev/ng0n1 \(namespace 1\)$`,
		`(?m)^Controller +/dev/nvme0$`,
		`(?m)^Serial +deadbeef$`,
		`(?m)^Max transfer +512 KiB \(MDTS 7, in 4 KiB pages\)$`,
		`(?m)^Namespace size +1 GiB: 2097152 blocks of 512 B`,
		`(?m)^FDP +supported, enabled, configuration 0$`,
		`(?m)^  Reclaim groups +1$`,
		`(?m)^  Reclaim unit handles +8 \(0-7 initially isolated\)$`,
		`(?m)^  Reclaim unit size +64 MiB$`,
		`(?m)^  RU time limit +not reported$`,
		`(?m)^  PID +RUHID +TYPE +USE +RU AVAILABLE +RU TIME LEFT$`,
		`(?m)^  3 +3 +initially isolated +host specified +129024 blocks \(63 MiB\) +-$`,
		`(?m)^  7 +7 +initially isolated +host specified +131072 blocks \(64 MiB\) +-$`,
		`(?m)^  Host bytes written +1 MiB \(1048576\)$`,
		`(?m)^  Media bytes written +1.5 MiB \(1572864\)$`,
		`(?m)^  Write amplification +1.50$`,
		`(?m)^  2023-11-14 22:13:20.000Z +host +RU not fully written +3 +1 +0 +3$`,
		`(?m)^  2023-11-14 22:13:21.000Z +controller +media reallocated +- +- +- +-$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output lacks %s", want)
		}
	}
	if strings.Contains(out, "Warnings") {
		t.Error("warnings section without warnings")
	}
	// Aligned: every row of the RUH table starts its RU AVAILABLE column at one offset.
	var cols []int
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, "blocks ("); i > 0 {
			cols = append(cols, strings.LastIndex(line[:i], "  ")+2)
		}
	}
	for _, c := range cols {
		if c != cols[0] {
			t.Errorf("RU AVAILABLE column at %v", cols)
			break
		}
	}
	if len(cols) != 8 {
		t.Errorf("%d RUH rows", len(cols))
	}

	// Without FDP, or with it disabled, the FDP sections are absent.
	i := qemuInfo()
	i.Controller.FDPSupported, i.FDPEnabled, i.Config, i.RUHs, i.Usage, i.Stats, i.Events = false, false, nil, nil, nil, nil, nil
	i.Warnings = []string{"the namespace reports no endurance group; assuming group 1"}
	b.Reset()
	if err := i.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out = b.String()
	if !regexp.MustCompile(`(?m)^FDP +not supported$`).MatchString(out) || strings.Contains(out, "Placement IDs") ||
		strings.Contains(out, "Events") || !strings.Contains(out, "Warnings\n  the namespace reports no endurance group") {
		t.Errorf("without FDP:\n%s", out)
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := qemuInfo().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Device     string `json:"device"`
		Controller struct {
			Serial       string `json:"serial"`
			MaxTransfer  uint64 `json:"max_transfer"`
			FDPSupported bool   `json:"fdp_supported"`
		} `json:"controller"`
		Namespace struct {
			LBASize uint32 `json:"lba_size"`
		} `json:"namespace"`
		FDPEnabled bool `json:"fdp_enabled"`
		Config     struct {
			NRG  uint32 `json:"nrg"`
			NRUH uint16 `json:"nruh"`
			RUNS uint64 `json:"runs"`
			RUHs []struct {
				Type int `json:"ruht"`
			} `json:"ruhs"`
		} `json:"fdp_config"`
		RUHs  []RUHStatus `json:"ruh_status"`
		Stats struct {
			HBMW uint64  `json:"hbmw"`
			MBMW uint64  `json:"mbmw"`
			WA   float64 `json:"write_amplification"`
		} `json:"stats"`
		Events []FDPEvent `json:"events"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if got.Device != "/dev/ng0n1" || got.Controller.Serial != "deadbeef" || got.Controller.MaxTransfer != 512<<10 ||
		!got.Controller.FDPSupported || got.Namespace.LBASize != 512 || !got.FDPEnabled ||
		got.Config.NRG != 1 || got.Config.NRUH != 8 || got.Config.RUNS != 64<<20 || len(got.Config.RUHs) != 8 || got.Config.RUHs[0].Type != 1 ||
		len(got.RUHs) != 8 || got.RUHs[3].RUAMW != 129024 ||
		got.Stats.HBMW != 1<<20 || got.Stats.MBMW != 3<<19 || got.Stats.WA != 1.5 ||
		len(got.Events) != 2 || got.Events[0].PID != 3 || !got.Events[0].Host {
		t.Fatalf("decoded %+v\nfrom\n%s", got, b.String())
	}
}

func TestRecentEvents(t *testing.T) {
	evs := []FDPEvent{{Timestamp: 5}, {Timestamp: 1, Host: true}, {Timestamp: 9}, {Timestamp: 3}}
	got := recentEvents(evs, 3)
	if len(got) != 3 || got[0].Timestamp != 3 || got[1].Timestamp != 5 || got[2].Timestamp != 9 {
		t.Fatalf("%+v", got)
	}
	if got := recentEvents(nil, 3); len(got) != 0 {
		t.Fatalf("%+v", got)
	}
}

func TestIEC(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want string
	}{
		{0, "0 B"}, {512, "512 B"}, {1023, "1023 B"}, {1024, "1 KiB"}, {1536, "1.5 KiB"},
		{64 << 20, "64 MiB"}, {3 << 29, "1.5 GiB"}, {1 << 40, "1 TiB"}, {1<<64 - 1, "16.0 EiB"},
	} {
		if got := iec(tc.n); got != tc.want {
			t.Errorf("iec(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

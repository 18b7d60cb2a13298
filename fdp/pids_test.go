package fdp

import (
	"strings"
	"testing"
)

func TestDefaultPIDs(t *testing.T) {
	meta, hot, cold, err := DefaultPIDs(qemuRUHs())
	if err != nil || meta != 0 || hot != 1 || cold != 2 {
		t.Fatalf("%d %d %d %v", meta, hot, cold, err)
	}
	// The list's order, not numeric order; repeats (one PID per reclaim group) count once.
	rs := []RUHStatus{{PID: 7}, {PID: 7}, {PID: 2}, {PID: 9}, {PID: 1}}
	meta, hot, cold, err = DefaultPIDs(rs)
	if err != nil || meta != 7 || hot != 2 || cold != 9 {
		t.Fatalf("%d %d %d %v", meta, hot, cold, err)
	}
	for _, rs := range [][]RUHStatus{nil, {{PID: 0}}, {{PID: 0}, {PID: 1}}, {{PID: 4}, {PID: 4}, {PID: 5}}} {
		if _, _, _, err := DefaultPIDs(rs); err == nil || !strings.Contains(err.Error(), "needs 3") {
			t.Errorf("%v: %v", rs, err)
		}
	}
}

func TestParsePIDs(t *testing.T) {
	ruhs := qemuRUHs()
	for _, tc := range []struct {
		in   string
		ruhs []RUHStatus
		want PIDs
		errs []string // each must appear in the error
	}{
		{"meta:0,hot:1,cold:2", ruhs, PIDs{0, 1, 2}, nil},
		{" cold : 7 , meta:5,hot:6 ", ruhs, PIDs{5, 6, 7}, nil},
		{"meta:100,hot:200,cold:65535", nil, PIDs{100, 200, 65535}, nil}, // syntax only
		{"meta:0,hot:1,cold:8", ruhs, PIDs{}, []string{"cold:8: the namespace has no placement identifier 8 (it has 0-7)"}},
		{"meta:0,hot:0,cold:1", ruhs, PIDs{}, []string{"meta and hot both use placement identifier 0"}},
		{"meta:0,hot:1", ruhs, PIDs{}, []string{"cold is missing"}},
		{"", nil, PIDs{}, []string{`"" is not name:pid`, "meta is missing", "hot is missing", "cold is missing"}},
		{"meta:0,meta:1,hot:2,cold:3", nil, PIDs{}, []string{"meta is given twice"}},
		{"meta:0,warm:1,hot:2,cold:3", nil, PIDs{}, []string{`unknown name "warm"`}},
		{"meta:-1,hot:x,cold:65536", nil, PIDs{}, []string{"meta:-1: a placement", "hot:x: a placement", "cold:65536: a placement"}},
		{"meta=0,hot:1,cold:2", nil, PIDs{}, []string{`"meta=0" is not name:pid`, "meta is missing"}},
		{"meta:9,hot:10,cold:2", []RUHStatus{{PID: 2}, {PID: 4}, {PID: 5}, {PID: 6}}, PIDs{}, []string{"meta:9", "hot:10", "(it has 2, 4-6)"}},
	} {
		got, err := ParsePIDs(tc.in, tc.ruhs)
		if tc.errs == nil {
			if err != nil || got != tc.want {
				t.Errorf("%q: %+v, %v", tc.in, got, err)
			}
			if back, err := ParsePIDs(got.String(), tc.ruhs); err != nil || back != got {
				t.Errorf("%q: String %q does not read back: %v", tc.in, got.String(), err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%q: accepted as %+v", tc.in, got)
			continue
		}
		for _, want := range tc.errs {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q: error %q lacks %q", tc.in, err, want)
			}
		}
	}
}

func FuzzParsePIDs(f *testing.F) {
	f.Add("meta:0,hot:1,cold:2")
	f.Add("cold:7,hot:6,meta:5")
	f.Add("meta:0,hot:0,cold:")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePIDs(s, nil)
		if err != nil {
			return
		}
		if p.Meta == p.Hot || p.Hot == p.Cold || p.Meta == p.Cold {
			t.Fatalf("%q: PIDs not distinct: %+v", s, p)
		}
		back, err := ParsePIDs(p.String(), nil)
		if err != nil || back != p {
			t.Fatalf("%q: %+v does not read back: %+v %v", s, p, back, err)
		}
	})
}

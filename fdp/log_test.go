package fdp

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
)

func TestParseFDPFeature(t *testing.T) {
	for _, tc := range []struct {
		dw0  uint32
		want FDPFeature
	}{
		{0, FDPFeature{}},
		{1, FDPFeature{Enabled: true}},
		{0x0301, FDPFeature{Enabled: true, ConfigIndex: 3}},
		{0xFFFF0200, FDPFeature{ConfigIndex: 2}},
	} {
		if got := ParseFDPFeature(tc.dw0); got != tc.want {
			t.Errorf("%#x: %+v, want %+v", tc.dw0, got, tc.want)
		}
	}
}

func TestParseFDPConfigLog(t *testing.T) {
	cfg := qemuConfig()
	// QEMU's log: NUMFDPC 0 (one configuration), SZE the header plus the descriptor.
	page := encodeConfigLog(&FDPConfigLog{Size: 16 + 96, Configs: []FDPConfig{cfg}})
	l, err := ParseFDPConfigLog(page)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Configs) != 1 {
		t.Fatalf("%d configs", len(l.Configs))
	}
	c := l.Configs[0]
	if !c.Valid || c.ReclaimGroups != 1 || c.Handles != 8 || len(c.RUHs) != 8 || c.RUSize != 64<<20 ||
		c.MaxPIDs != 128 || c.Namespaces != 256 || c.RGIF != 0 || c.VolatileWriteCache || c.RUHs[7].Type != RUHTInitiallyIsolated {
		t.Fatalf("config %+v", c)
	}
	// Byte-level spot checks against the layout, not the encoder.
	if page[16+8] != 8 || page[16+10] != 127 || page[16+19] != 0x04 || page[16+64] != 1 {
		t.Fatalf("page bytes % x", page[16:16+68])
	}

	// Two configurations, the second with vendor bytes and a persistently isolated handle.
	c2 := FDPConfig{DescriptorSize: 64 + 2*4 + 8, FDPA: 0x80 | 0x10 | 2, VendorSize: 8, ReclaimGroups: 4, Handles: 2,
		MaxPIDs: 1, Namespaces: 1, RUSize: 1 << 30, RUTimeLimit: 3600, RUHs: []RUHDesc{{RUHTPersistentlyIsolated}, {RUHTInitiallyIsolated}}}
	page2 := encodeConfigLog(&FDPConfigLog{Version: 1, Size: 16 + 96 + 80 + 32, Configs: []FDPConfig{cfg, c2}})
	l2, err := ParseFDPConfigLog(page2)
	if err != nil {
		t.Fatal(err)
	}
	got := l2.Configs[1]
	if got.Index != 1 || got.RGIF != 2 || !got.VolatileWriteCache || got.RUTimeLimit != 3600 || got.RUHs[0].Type != RUHTPersistentlyIsolated || l2.Version != 1 {
		t.Fatalf("second config %+v", got)
	}

	bad := func(name string, want error, mutate func(b []byte) []byte) {
		t.Helper()
		b := append([]byte(nil), page2...)
		if _, err := ParseFDPConfigLog(mutate(b)); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	bad("header only", ErrTruncated, func(b []byte) []byte { return b[:15] })
	bad("shorter than SZE", ErrTruncated, func(b []byte) []byte { return b[:len(b)-1] })
	bad("SZE below header", ErrCorrupt, func(b []byte) []byte { le.PutUint32(b[4:], 8); return b })
	bad("more configs than fit", ErrCorrupt, func(b []byte) []byte { le.PutUint16(b[0:], 0xFFFF); return b })
	bad("third config past the end", ErrCorrupt, func(b []byte) []byte { le.PutUint16(b[0:], 2); return b })
	bad("DSZE too small for NRUH", ErrCorrupt, func(b []byte) []byte { le.PutUint16(b[16+8:], 9); return b })
	bad("DSZE 0", ErrCorrupt, func(b []byte) []byte { le.PutUint16(b[16:], 0); return b })
	bad("DSZE past SZE", ErrCorrupt, func(b []byte) []byte { le.PutUint16(b[16+96:], 200); return b })
	bad("VSS past DSZE", ErrCorrupt, func(b []byte) []byte { b[16+96+3] = 9; return b })
}

func TestParseRUHUsage(t *testing.T) {
	want := []RUHUsage{{0, RUHAHost}, {1, RUHAController}, {2, RUHAUnused}}
	got, err := ParseRUHUsage(encodeRUHUsage(want))
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("%+v, %v", got, err)
	}
	b := encodeRUHUsage(want)
	if _, err := ParseRUHUsage(b[:len(b)-8]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("short: %v", err)
	}
	if _, err := ParseRUHUsage(b[:7]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("7 bytes: %v", err)
	}
	if RUHAName(RUHAHost) != "host specified" || RUHAName(9) != "attribute 9" {
		t.Fatal("RUHAName")
	}
}

func TestParseFDPStats(t *testing.T) {
	want := FDPStats{
		HostBytesWritten:  Uint128{Lo: 1 << 20},
		MediaBytesWritten: Uint128{Lo: 3 << 19},
		MediaBytesErased:  Uint128{Hi: 1, Lo: 5},
	}
	b := encodeStats(want)
	if b[0] != 0 || b[2] != 0x10 || b[16+2] != 0x18 || b[32] != 5 || b[40] != 1 {
		t.Fatalf("layout % x", b[:48])
	}
	got, err := ParseFDPStats(b)
	if err != nil || got != want {
		t.Fatalf("%+v, %v", got, err)
	}
	if wa := got.WriteAmplification(); wa != 1.5 {
		t.Fatalf("write amplification %v", wa)
	}
	if wa := (FDPStats{}).WriteAmplification(); wa != 0 {
		t.Fatalf("write amplification of nothing %v", wa)
	}
	if _, err := ParseFDPStats(b[:47]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("47 bytes: %v", err)
	}
}

func TestUint128(t *testing.T) {
	for _, tc := range []struct {
		u    Uint128
		want string
	}{
		{Uint128{}, "0"},
		{Uint128{Lo: math.MaxUint64}, "18446744073709551615"},
		{Uint128{Hi: 1}, "18446744073709551616"},
		{Uint128{Hi: math.MaxUint64, Lo: math.MaxUint64}, "340282366920938463463374607431768211455"},
	} {
		if got := tc.u.String(); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.u, got, tc.want)
		}
		b, err := json.Marshal(tc.u)
		if err != nil || string(b) != tc.want {
			t.Errorf("%+v: json %s %v", tc.u, b, err)
		}
		var back Uint128
		if err := json.Unmarshal(b, &back); err != nil || back != tc.u {
			t.Errorf("%s: unmarshal %+v %v", b, back, err)
		}
	}
	var u Uint128
	for _, in := range []string{"-1", "340282366920938463463374607431768211456", `"1"`, "1.5"} {
		if err := json.Unmarshal([]byte(in), &u); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
	if f := (Uint128{Hi: 1}).Float64(); f != math.Exp2(64) {
		t.Fatalf("Float64 %v", f)
	}
}

func TestParseFDPEvents(t *testing.T) {
	want := []FDPEvent{
		{Type: EventRUNotFullyWritten, Flags: EventPIDValid | EventNSIDValid | EventLocationValid, PID: 3, Timestamp: 1_700_000_000_123, TimestampOrigin: 1, NSID: 1, RGID: 0, RUHID: 3, Host: true},
		{Type: EventInvalidPID, Flags: EventPIDValid, PID: 99, Timestamp: 5000, Host: true},
	}
	b := encodeEvents(want)
	// Byte-level spot checks: PID at 2, timestamp from 4, origin in bits 3:1 of byte 10,
	// NSID at 12, RUHID at 34, each event 64 bytes after a 64-byte header.
	e := b[64:]
	if b[0] != 2 || e[2] != 3 || e[10] != 2 || e[12] != 1 || e[34] != 3 || b[128+2] != 99 {
		t.Fatalf("layout % x", e[:40])
	}
	got, err := ParseFDPEvents(b, true)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("%+v, %v", got, err)
	}
	// The synch bit and the timestamp attributes stay out of the 48-bit milliseconds.
	e[10] |= 1
	e[11] = 0xFF
	if got, _ := ParseFDPEvents(b, true); got[0].Timestamp != want[0].Timestamp || got[0].TimestampOrigin != 1 {
		t.Fatalf("timestamp %d origin %d", got[0].Timestamp, got[0].TimestampOrigin)
	}

	realloc := []FDPEvent{{Type: EventMediaReallocated, NLBAM: 16, LBA: 0x1234_5678_9A}}
	if got, err := ParseFDPEvents(encodeEvents(realloc), false); err != nil || !reflect.DeepEqual(got, realloc) {
		t.Fatalf("realloc %+v, %v", got, err)
	}

	if _, err := ParseFDPEvents(b[:len(b)-1], true); !errors.Is(err, ErrTruncated) {
		t.Fatalf("short: %v", err)
	}
	huge := make([]byte, 64)
	le.PutUint32(huge, math.MaxUint32)
	if _, err := ParseFDPEvents(huge, true); !errors.Is(err, ErrTruncated) {
		t.Fatalf("4 billion events in 64 bytes: %v", err)
	}
	if EventTypeName(EventInvalidPID) != "invalid placement ID" || EventTypeName(0x42) != "event 0x42" {
		t.Fatal("EventTypeName")
	}
}

func TestParseRUHStatus(t *testing.T) {
	want := qemuRUHs()
	want[3].RUAMW -= 2048
	want[5].EARUTR = 77
	b := encodeRUHStatus(want)
	if len(b) != 16+8*32 || b[14] != 8 || b[16+3*32] != 3 || b[16+5*32+4] != 77 {
		t.Fatalf("layout % x", b[:48])
	}
	got, err := ParseRUHStatus(b)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("%+v, %v", got, err)
	}
	if _, err := ParseRUHStatus(b[:len(b)-1]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("short: %v", err)
	}
	if _, err := ParseRUHStatus(b[:15]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("15 bytes: %v", err)
	}
	if got, err := ParseRUHStatus(make([]byte, 16)); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
}

func FuzzFDPConfigLog(f *testing.F) {
	f.Add(encodeConfigLog(&FDPConfigLog{Size: 16 + 96, Configs: []FDPConfig{qemuConfig()}}))
	c2 := FDPConfig{DescriptorSize: 80, VendorSize: 8, Handles: 2, MaxPIDs: 1, RUHs: make([]RUHDesc, 2)}
	f.Add(encodeConfigLog(&FDPConfigLog{Size: 16 + 96 + 80 + 8, Configs: []FDPConfig{qemuConfig(), c2}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseFDPConfigLog(b)
		if err != nil {
			return
		}
		for _, c := range l.Configs {
			if len(c.RUHs) != int(c.Handles) {
				t.Fatalf("%d RUH descriptors for NRUH %d", len(c.RUHs), c.Handles)
			}
		}
		l2, err := ParseFDPConfigLog(encodeConfigLog(l))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(l, l2) {
			t.Fatalf("round trip\n%+v\n%+v", l, l2)
		}
	})
}

func FuzzRUHUsage(f *testing.F) {
	f.Add(encodeRUHUsage([]RUHUsage{{0, 1}, {1, 2}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := ParseRUHUsage(b)
		if err != nil {
			return
		}
		u2, err := ParseRUHUsage(encodeRUHUsage(u))
		if err != nil || !reflect.DeepEqual(u, u2) {
			t.Fatalf("round trip %v\n%+v\n%+v", err, u, u2)
		}
	})
}

func FuzzFDPStats(f *testing.F) {
	f.Add(encodeStats(FDPStats{HostBytesWritten: Uint128{Lo: 1 << 20}, MediaBytesWritten: Uint128{Lo: 1 << 20}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseFDPStats(b)
		if err != nil {
			return
		}
		if wa := s.WriteAmplification(); math.IsNaN(wa) || wa < 0 {
			t.Fatalf("write amplification %v", wa)
		}
		s2, err := ParseFDPStats(encodeStats(s))
		if err != nil || s != s2 {
			t.Fatalf("round trip %v\n%+v\n%+v", err, s, s2)
		}
	})
}

func FuzzFDPEvents(f *testing.F) {
	f.Add(encodeEvents([]FDPEvent{{Type: 0, Flags: 7, PID: 3, Timestamp: 12345, TimestampOrigin: 1, NSID: 1, RUHID: 3}}), true)
	f.Add(encodeEvents([]FDPEvent{{Type: EventMediaReallocated, NLBAM: 1, LBA: 2}}), false)
	f.Fuzz(func(t *testing.T, b []byte, host bool) {
		evs, err := ParseFDPEvents(b, host)
		if err != nil {
			return
		}
		evs2, err := ParseFDPEvents(encodeEvents(evs), host)
		if err != nil || !reflect.DeepEqual(evs, evs2) {
			t.Fatalf("round trip %v\n%+v\n%+v", err, evs, evs2)
		}
	})
}

func FuzzRUHStatus(f *testing.F) {
	f.Add(encodeRUHStatus(qemuRUHs()))
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := ParseRUHStatus(b)
		if err != nil {
			return
		}
		rs2, err := ParseRUHStatus(encodeRUHStatus(rs))
		if err != nil || !reflect.DeepEqual(rs, rs2) {
			t.Fatalf("round trip %v\n%+v\n%+v", err, rs, rs2)
		}
	})
}

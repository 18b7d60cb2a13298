package fdp

import (
	"errors"
	"reflect"
	"testing"
)

// qemuController is what QEMU's controller with serial=deadbeef, mdts 7 (its default) and an
// FDP subsystem reports.
func qemuController() *IDController {
	return &IDController{
		VendorID: 0x1b36, SubsystemVendorID: 0x1af4, Serial: "deadbeef", Model: "QEMU NVMe Ctrl",
		Firmware: "9.2.0", MDTS: 7, ControllerID: 0, Version: 0x20000, CTRATT: 1<<19 | 1<<4,
		EndGIDMax: 1, Namespaces: 256, ONCS: 0x1FF, SubNQN: "nqn.2019-08.org.qemu:subsys0",
	}
}

func TestParseIDController(t *testing.T) {
	want := qemuController()
	want.FDPSupported = true
	want.MaxTransfer = 512 << 10 // 2^7 × 4 KiB
	got, err := ParseIDController(encodeIDController(want))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if !got.DSMSupported() || got.VersionString() != "2.0.0" {
		t.Fatalf("DSM %v version %s", got.DSMSupported(), got.VersionString())
	}

	for _, tc := range []struct {
		mdts uint8
		want uint64
	}{{0, 0}, {1, 8192}, {5, 128 << 10}, {51, 4096 << 51}, {52, 0}, {255, 0}} {
		c := qemuController()
		c.MDTS = tc.mdts
		got, err := ParseIDController(encodeIDController(c))
		if err != nil || got.MaxTransfer != tc.want {
			t.Errorf("MDTS %d: max transfer %d (%v), want %d", tc.mdts, got.MaxTransfer, err, tc.want)
		}
	}

	c := qemuController()
	c.CTRATT = 1 << 4
	if got, _ := ParseIDController(encodeIDController(c)); got.FDPSupported {
		t.Fatal("FDP supported without CTRATT bit 19")
	}

	// Unprintable bytes do not reach a terminal; trailing spaces and NULs go.
	b := encodeIDController(qemuController())
	copy(b[4:], "ab\x1b[2Jc\xff")
	if got, _ := ParseIDController(b); got.Serial != "ab?[2Jc?" {
		t.Fatalf("serial %q", got.Serial)
	}

	if _, err := ParseIDController(b[:4095]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("4095 bytes: %v", err)
	}
}

func TestParseIDNamespace(t *testing.T) {
	formats := []nsFormat{{0, 9}, {8, 9}, {16, 9}, {64, 9}, {0, 12}, {8, 12}, {16, 12}, {64, 12}}
	base := IDNamespace{Size: 1 << 21, Capacity: 1 << 21, Utilization: 5, DLFEAT: 1, EndGID: 1}
	for _, tc := range []struct {
		name    string
		flbas   uint8
		formats []nsFormat
		lba     uint32
		ms      uint16
		index   uint8
		err     error
	}{
		{"512", 0, formats, 512, 0, 0, nil},
		{"4k+8", 5, formats, 4096, 8, 5, nil},
		{"metadata at end bit ignored", 0x10 | 4, formats, 4096, 0, 4, nil},
		{"index past NLBAF", 8, formats, 0, 0, 0, ErrCorrupt},
		{"LBADS 0", 0, []nsFormat{{0, 0}}, 0, 0, 0, ErrCorrupt},
		{"LBADS 8", 0, []nsFormat{{0, 8}}, 0, 0, 0, ErrCorrupt},
		{"LBADS 32", 0, []nsFormat{{0, 32}}, 0, 0, 0, ErrCorrupt},
		// Over 16 formats, FLBAS bits 6:5 are bits 5:4 of the index.
		{"index 33", 0x40 | 1, append(make([]nsFormat, 33), nsFormat{0, 12}), 4096, 0, 33, nil},
		{"high bits ignored with 16 formats", 0x60, append(make([]nsFormat, 15), nsFormat{0, 9}), 0, 0, 0, ErrCorrupt},
	} {
		n := base
		n.FLBAS = tc.flbas
		b := encodeIDNamespace(&n, tc.formats)
		got, err := ParseIDNamespace(b)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got.LBASize != tc.lba || got.MetadataSize != tc.ms || got.FormatIndex != tc.index || got.Formats != len(tc.formats) {
			t.Errorf("%s: lba %d ms %d index %d formats %d", tc.name, got.LBASize, got.MetadataSize, got.FormatIndex, got.Formats)
		}
		if got.Size != n.Size || got.Capacity != n.Capacity || got.Utilization != 5 || got.EndGID != 1 || !got.DeallocatedReadsZeroes() {
			t.Errorf("%s: %+v", tc.name, got)
		}
	}
	b := encodeIDNamespace(&IDNamespace{Size: 1 << 60}, []nsFormat{{0, 12}})
	if _, err := ParseIDNamespace(b); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("2^60 blocks of 4 KiB: %v", err)
	}
	if _, err := ParseIDNamespace(b[:100]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("100 bytes: %v", err)
	}
}

// identifyInput makes a fuzz input an identify page: with pad, the first 1024 bytes of b (the
// fields the parsers read all lie there) start a 4096-byte page; without, b is cut short of a
// page. Inputs past 1 KiB then find nothing new, which keeps the fuzzer fast: it minimizes each
// new input byte by byte.
func identifyInput(b []byte, pad bool) []byte {
	if !pad {
		return b[:min(len(b), IdentifySize-1)]
	}
	page := make([]byte, IdentifySize)
	copy(page, b[:min(len(b), 1024)])
	return page
}

func FuzzIdentifyController(f *testing.F) {
	f.Add(encodeIDController(qemuController())[:1024], true)
	f.Add(make([]byte, 100), false)
	f.Fuzz(func(t *testing.T, b []byte, pad bool) {
		c, err := ParseIDController(identifyInput(b, pad))
		if err != nil {
			return
		}
		// Encoding keeps only the printable fields the parser read, so go round once more.
		c2, err := ParseIDController(encodeIDController(c))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip\n%+v\n%+v", c, c2)
		}
	})
}

func FuzzIdentifyNamespace(f *testing.F) {
	f.Add(encodeIDNamespace(&IDNamespace{Size: 100, FLBAS: 1, EndGID: 1}, []nsFormat{{0, 9}, {8, 12}})[:384], true)
	f.Add(encodeIDNamespace(&IDNamespace{FLBAS: 0x21}, make([]nsFormat, 40))[:384], true)
	f.Add(make([]byte, 50), false)
	f.Fuzz(func(t *testing.T, b []byte, pad bool) {
		n, err := ParseIDNamespace(identifyInput(b, pad))
		if err != nil {
			return
		}
		if n.LBASize < 512 || int(n.FormatIndex) >= n.Formats || n.Bytes()/uint64(n.LBASize) != n.Size {
			t.Fatalf("accepted %+v", n)
		}
		formats := make([]nsFormat, n.Formats)
		formats[n.FormatIndex] = nsFormat{n.MetadataSize, n.LBADS}
		n2, err := ParseIDNamespace(encodeIDNamespace(n, formats))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(n, n2) {
			t.Fatalf("round trip\n%+v\n%+v", n, n2)
		}
	})
}

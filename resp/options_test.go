package resp

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"kvresp/store"
)

func split(s string) [][]byte {
	var out [][]byte
	for _, f := range strings.Fields(s) {
		out = append(out, []byte(f))
	}
	return out
}

func TestParseSetOptions(t *testing.T) {
	const now = 1_000_000
	tests := []struct {
		in   string
		want store.SetOptions
		err  string
	}{
		{"", store.SetOptions{}, ""},
		{"NX", store.SetOptions{Cond: store.IfAbsent}, ""},
		{"xx get", store.SetOptions{Cond: store.IfPresent, Get: true}, ""},
		{"EX 10", store.SetOptions{ExpireAt: now + 10000}, ""},
		{"PX 10", store.SetOptions{ExpireAt: now + 10}, ""},
		{"EXAT 2000", store.SetOptions{ExpireAt: 2_000_000}, ""},
		{"PXAT 2000", store.SetOptions{ExpireAt: 2000}, ""},
		{"KEEPTTL", store.SetOptions{KeepTTL: true}, ""},
		{"NX XX", store.SetOptions{}, errSyntax},
		{"EX 10 PX 10", store.SetOptions{}, errSyntax},
		{"EX 10 KEEPTTL", store.SetOptions{}, errSyntax},
		{"EX", store.SetOptions{}, errSyntax},
		{"EX abc", store.SetOptions{}, errNotInt},
		{"EX 0", store.SetOptions{}, "ERR invalid expire time in 'set' command"},
		{"PX -5", store.SetOptions{}, "ERR invalid expire time in 'set' command"},
		{"EX 9223372036854775807", store.SetOptions{}, "ERR invalid expire time in 'set' command"},
		{"FOO", store.SetOptions{}, errSyntax},
	}
	for _, tc := range tests {
		got, err := parseSetOptions(split(tc.in), func() int64 { return now })
		if err != tc.err || (err == "" && got != tc.want) {
			t.Errorf("%q: got %+v %q, want %+v %q", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseExpireCmd(t *testing.T) {
	const now = 1_000_000
	tests := []struct {
		name, in string
		at       int64
		cond     store.ExpireCond
		err      string
	}{
		{"expire", "10", now + 10000, store.ExpireAlways, ""},
		{"pexpire", "10 NX", now + 10, store.ExpireNX, ""},
		{"expireat", "5 gt", 5000, store.ExpireGT, ""},
		{"pexpireat", "5 LT lt", 5, store.ExpireLT, ""},
		{"expire", "10 XX GT", now + 10000, store.ExpireXX | store.ExpireGT, ""},
		{"expire", "10 xx lt", now + 10000, store.ExpireXX | store.ExpireLT, ""},
		{"expire", "-5", now - 5000, store.ExpireAlways, ""}, {"expireat", "-5", 1, store.ExpireAlways, ""},
		{"expire", "x", 0, 0, errNotInt},
		{"expire", "10 NX XX", 0, 0, "ERR NX and XX, GT or LT options at the same time are not compatible"},
		{"expire", "10 GT LT", 0, 0, "ERR GT and LT options at the same time are not compatible"},
		{"expire", "10 FOO", 0, 0, "ERR Unsupported option FOO"},
		{"expire", "9223372036854775807", 0, 0, "ERR invalid expire time in 'expire' command"},
	}
	for _, tc := range tests {
		at, cond, err := parseExpireCmd(tc.name, split(tc.in), now)
		if err != tc.err || (err == "" && (at != tc.at || cond != tc.cond)) {
			t.Errorf("%s %q: got %d %d %q, want %d %d %q", tc.name, tc.in, at, cond, err, tc.at, tc.cond, tc.err)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*", "abc", true}, {"*c", "abc", true},
		{"a?c", "abc", true}, {"a?c", "ac", false}, {"h[ae]llo", "hello", true},
		{"h[^e]llo", "hello", false}, {"h[a-b]llo", "hbllo", true}, {"h[b-a]llo", "hallo", true},
		{`h\*llo`, "h*llo", true}, {`h\*llo`, "hello", false}, {"*@*@*", "model@1@2", true},
		{"meta-llama/*metadata", "meta-llama/Llama@1@0@ab@bfloat16metadata", true},
		{"a*b*c", "aXbYc", true}, {"a*b*c", "aXbY", false}, {"[abc", "a", true},
	}
	for _, tc := range tests {
		if got := globMatch(tc.p, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.p, tc.s, got, tc.want)
		}
	}
}

// FuzzCommandOptions runs the option parsers of SET, GETEX, EXPIRE and SCAN
// on arbitrary arguments: they must never panic, and an accepted expiry is
// always a positive absolute time.
func FuzzCommandOptions(f *testing.F) {
	for _, s := range []string{"EX 10 NX GET", "PXAT 1 KEEPTTL", "COUNT 5 MATCH a* TYPE string", "10 GT", "PERSIST", "EX -1"} {
		f.Add(s, int64(1_000_000))
	}
	f.Fuzz(func(t *testing.T, in string, now int64) {
		if now < 0 || now > math.MaxInt64/2 {
			return
		}
		args := bytes.Split([]byte(in), []byte(" "))
		if o, e := parseSetOptions(args, func() int64 { return now }); e == "" && o.ExpireAt < 0 {
			t.Fatalf("SET options %q gave a negative expiry %d", in, o.ExpireAt)
		}
		if ch, e := parseGetExOptions(args, now); e == "" && ch.ExpireAt < 0 {
			t.Fatalf("GETEX options %q gave a negative expiry", in)
		}
		for _, name := range []string{"expire", "pexpire", "expireat", "pexpireat"} {
			if len(args) > 0 {
				if at, _, e := parseExpireCmd(name, args, now); e == "" && at <= 0 {
					t.Fatalf("%s %q gave expiry %d", name, in, at)
				}
			}
		}
		if o, e := parseScanOptions(args); e == "" && o.count < 1 {
			t.Fatalf("SCAN options %q gave count %d", in, o.count)
		}
	})
}

// FuzzGlob checks the matcher never panics and agrees with itself on the
// cases that have an obvious answer.
func FuzzGlob(f *testing.F) {
	f.Add("a*b?[c-d]\\e", "axxbycde")
	f.Fuzz(func(t *testing.T, p, s string) {
		if len(p) > 64 || len(s) > 256 {
			return
		}
		m := globMatch(p, s)
		if !strings.ContainsAny(p, `*?[\`) && m != (p == s) {
			t.Fatalf("literal pattern %q vs %q: %v", p, s, m)
		}
		if !globMatch("*", s) {
			t.Fatal("* must match everything")
		}
	})
}

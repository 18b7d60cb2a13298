package sdsargs

import (
	"slices"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string // nil: error
	}{
		{"", []string{}},
		{" \t\v\f ", []string{}},
		{"set k v", []string{"set", "k", "v"}},
		{"  a   b\t\tc\r\n", []string{"a", "b", "c"}},
		{`a "b c" d`, []string{"a", "b c", "d"}},
		{`""`, []string{""}},
		{`'' ""`, []string{"", ""}},
		{`"\n\r\t\b\a\"\\\q"`, []string{"\n\r\t\b\a\"\\q"}},
		{`"\x41\x7a\xff\x0"`, []string{"Az\xffx0"}},
		{`"\xZZ"`, []string{"xZZ"}},
		{`'it\'s' '\n'`, []string{"it's", `\n`}},
		{`'a"b'`, []string{`a"b`}},
		{`"a'b"`, []string{`a'b`}},
		{`ab"c d"`, []string{"abc d"}},
		{`ab'c d'`, []string{"abc d"}},
		{"a\vb", []string{"a\vb"}},
		{"\"a\"\v", []string{"a"}},
		{`"abc`, nil},
		{`'abc`, nil},
		{`"abc\"`, nil},
		{`"abc"d`, nil},
		{`'abc'd`, nil},
		{`"\`, nil},
	} {
		got, err := Split(tc.in)
		if tc.want == nil {
			if err == nil {
				t.Errorf("Split(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Split(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// joinArgs quotes args into one line that Split reads back.
func joinArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

// FuzzSplit: Split never panics, and quoting what it returns reads
// back the same; quoting any arguments (here: s cut at NULs) reads back too.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{"set k v", `a "b c" 'd\'e' "\x41\n"`, `"abc`, `"a"b`, "\v\f", `ab"c d"`, "\xff\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, args := range [][]string{mustSplit(s), strings.Split(s, "\x00")} {
			if args == nil {
				continue
			}
			line := joinArgs(args)
			back, err := Split(line)
			if err != nil || !slices.Equal(back, args) {
				t.Fatalf("split(join(%q)) = %q, %v (line %q)", args, back, err, line)
			}
		}
	})
}

func mustSplit(s string) []string {
	args, err := Split(s)
	if err != nil {
		return nil
	}
	return args
}

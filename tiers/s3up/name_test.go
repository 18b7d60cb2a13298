package s3up

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"kvresp/tiers"
)

// oddKeys are keys that trip up naive object naming.
var oddKeys = []string{
	"", "/", "//", "/leading", "trailing/", "a//b", ".", "..", "a/../b", "./x", "...",
	"@", "%", "%2F", "+", " ", "key with spaces", "a+b=c&d?e#f;g", "user:42", "*?<>|\\\"'`",
	"!", "!3A", "!!", "!3a", "\x00", "\t\n\r", "\x7f", "\xff\xfe", "\xc3", "ключ", "é", "日本",
	"-_.", "Z", strings.Repeat("a", 1000), strings.Repeat("\xff", 340),
}

func TestObjectNameExamples(t *testing.T) {
	for _, c := range []struct{ prefix, key, name string }{
		{"", "", "!"},
		{"p/", "", "p/!"},
		{"p/", "user.42", "p/user.42"},
		{"p/", "user:42", "p/user!3A42"},
		{"p/", "a/b", "p/a!2Fb"},
		{"p/", ".", "p/!2E"},
		{"p/", "..", "p/!2E."},
		{"p/", "a.", "p/a."},
		{"p/", "!", "p/!21"},
		{"p/", "\xff", "p/!FF"},
		{"", "é", "!C3!A9"},
	} {
		name, err := ObjectName(c.prefix, c.key)
		if err != nil || name != c.name {
			t.Errorf("ObjectName(%q, %q) = %q, %v; want %q", c.prefix, c.key, name, err, c.name)
		}
	}
}

func TestObjectNameOddKeys(t *testing.T) {
	for _, prefix := range []string{"", "odd/", "a/b c/ü/"} {
		seen := map[string]string{}
		for _, key := range oddKeys {
			name, err := ObjectName(prefix, key)
			if err != nil {
				if len(prefix) > 4 && len(key) > 300 {
					continue // the longest keys do not fit under a longer prefix
				}
				t.Fatalf("ObjectName(%q, %q): %v", prefix, key, err)
			}
			checkName(t, prefix, key, name)
			if other, dup := seen[name]; dup {
				t.Errorf("keys %q and %q share the name %q", other, key, name)
			}
			seen[name] = key
		}
	}
}

func TestObjectNameTooLong(t *testing.T) {
	for _, key := range []string{strings.Repeat("a", 1021), strings.Repeat("\xff", 341), strings.Repeat("/", 400)} {
		_, err := ObjectName("odd/", key)
		if !errors.Is(err, tiers.ErrRefused) {
			t.Errorf("ObjectName of a %d-byte key: err %v, want ErrRefused", len(key), err)
		}
	}
	if _, err := ObjectName("odd/", strings.Repeat("a", 1020)); err != nil {
		t.Errorf("a name of exactly 1024 bytes: %v", err)
	}
	if _, err := ObjectName("\xff/", "k"); err == nil {
		t.Error("a prefix that is not UTF-8 was accepted")
	}
}

func TestKeyOfRejects(t *testing.T) {
	for _, name := range []string{
		"p/", "other/x", "p/!", // "!" alone is the empty key: accepted, checked below
		"p/!3a", "p/!3", "p/!G0", "p/!41", "p/.x", "p/a/b", "p/a b", "p/é", "p/!!", "p/a!",
	} {
		key, err := KeyOf("p/", name)
		if name == "p/!" {
			if err != nil || key != "" {
				t.Errorf("KeyOf(%q) = %q, %v; want the empty key", name, key, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("KeyOf(%q) = %q, want an error", name, key)
		}
	}
}

// checkName checks that name is a valid, safe object name for key under
// prefix and that KeyOf gives key back.
func checkName(t *testing.T, prefix, key, name string) {
	t.Helper()
	if !utf8.ValidString(name) {
		t.Fatalf("ObjectName(%q, %q) = %q: not UTF-8", prefix, key, name)
	}
	if len(name) > maxObjectName {
		t.Fatalf("ObjectName(%q, %q) is %d bytes", prefix, key, len(name))
	}
	enc, ok := strings.CutPrefix(name, prefix)
	if !ok || enc == "" {
		t.Fatalf("ObjectName(%q, %q) = %q: not the prefix and something after it", prefix, key, name)
	}
	if strings.Trim(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!") != "" {
		t.Fatalf("ObjectName(%q, %q) = %q: unsafe characters", prefix, key, name)
	}
	if enc[0] == '.' {
		t.Fatalf("ObjectName(%q, %q) = %q: the key's part starts with '.'", prefix, key, name)
	}
	back, err := KeyOf(prefix, name)
	if err != nil || back != key {
		t.Fatalf("KeyOf(%q, %q) = %q, %v; want %q", prefix, name, back, err, key)
	}
}

func FuzzObjectName(f *testing.F) {
	for _, k := range oddKeys {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		for _, prefix := range []string{"", "kvresp/", "a/b/"} {
			name, err := ObjectName(prefix, key)
			if err != nil {
				if !errors.Is(err, tiers.ErrRefused) {
					t.Fatalf("ObjectName(%q, %q): %v, not ErrRefused", prefix, key, err)
				}
				if len(prefix)+len(key) <= maxObjectName/3 {
					t.Fatalf("ObjectName(%q, %q) refused a short key: %v", prefix, key, err)
				}
				continue
			}
			checkName(t, prefix, key, name)
		}
	})
}

func FuzzKeyOf(f *testing.F) {
	for _, k := range oddKeys[:20] {
		name, _ := ObjectName("p/", k)
		f.Add(name)
	}
	f.Add("p/!3a")
	f.Add("p/.")
	f.Fuzz(func(t *testing.T, name string) {
		key, err := KeyOf("p/", name)
		if err != nil {
			return
		}
		// What KeyOf accepts is exactly what ObjectName makes: one name per key.
		back, err := ObjectName("p/", key)
		if err != nil || back != name {
			t.Fatalf("KeyOf(%q) = %q, whose name is %q, %v", name, key, back, err)
		}
	})
}

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeFiles writes name → content into a new temporary directory and
// returns the directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// get is CONFIG GET of one directive's value.
func get(t *testing.T, c *Config, name string) string {
	t.Helper()
	kv := c.Get(name)
	if len(kv) != 1 {
		t.Fatalf("Get(%q) = %q, want one pair", name, kv)
	}
	return kv[0][1]
}

func TestDefaults(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Defaults().Validate() = %v", err)
	}
	mem, err := physicalMemory()
	if err != nil {
		t.Skip(err)
	}
	want := &Config{
		Port: 6379, Bind: []string{"127.0.0.1"}, Maxmemory: mem * 50 / 100, MaxmemoryPolicy: "allkeys-lru",
		Dir: "./kvresp-data", Maxclients: 10000, ProtoMaxBulkLen: 512 << 20, ClientQueryBufferLimit: 1 << 30,
		ClientOutputBufferLimit: 1 << 30, TLSAuthClients: "no", Databases: 16, Loglevel: "notice", HZ: 10,
		MetricsAddr: "127.0.0.1:9379", TierOrder: []string{"dram", "rawblock"}, RawblockSize: 8 << 30,
		RawblockRegionSize: 256 << 20, RawblockRings: 2, RawblockQueueDepth: 32, RawblockWriteMode: "evict",
		RawblockPromote: true, RawblockTrim: "auto", FDPStatsInterval: 10,
		UpstreamMode: "read-through,write-through-async,exists,del", UpstreamTimeout: time.Second, UpstreamQueue: 64,
	}
	want.rt = c.rt
	if fmt.Sprint(*c) != fmt.Sprint(*want) {
		t.Errorf("Defaults() =\n%+v\nwant\n%+v", *c, *want)
	}
}

// TestRoundTrip: every directive parses what it formats, the invariant Set
// and Validate rely on, at its default and at a non-default value.
func TestRoundTrip(t *testing.T) {
	c, err := Load([]string{"--bind", "-::1", "10.0.0.1", "*", "--unixsocketperm", "0770", "--maxmemory", "64mb",
		"--requirepass", "a b\"c", "--client-output-buffer-limit", "normal", "0", "0", "0", "--tls-port", "6380",
		"--tls-cert-file", "c.pem", "--tls-key-file", "k.pem", "--tls-auth-clients", "OPTIONAL", "--tls-ca-cert-file", "ca.pem"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Config{Defaults(), c} {
		for _, d := range directives {
			s := Defaults()
			if err := d.set(s, d.setArgs(d.format(c))); err != nil {
				t.Errorf("%s: parsing %q: %v", d.name, d.format(c), err)
			} else if d.format(s) != d.format(c) {
				t.Errorf("%s: format %q reads back as %q", d.name, d.format(c), d.format(s))
			}
		}
	}
	if got := get(t, c, "requirepass"); got != `a b"c` {
		t.Errorf("requirepass = %q", got)
	}
	if got := get(t, c, "unixsocketperm"); got != "770" {
		t.Errorf("unixsocketperm = %q", got)
	}
}

func TestLoad(t *testing.T) {
	mem, memErr := physicalMemory()
	for _, tc := range []struct {
		name  string
		files map[string]string // in a temporary directory; "kvresp.conf" is passed first
		args  []string
		want  map[string]string // CONFIG GET values
		errs  []string          // substrings, one per expected error line, in order
	}{
		{name: "empty", want: map[string]string{"port": "6379", "bind": "127.0.0.1", "save": ""}},
		{
			name: "file",
			files: map[string]string{"kvresp.conf": "# kvresp\n\n   # indented comment\nPORT 7000\r\n\tbind 10.0.0.1 -::1  \n" +
				"maxmemory 2GB\nmaxmemory-policy ALLKEYS-LRU\nrequirepass \"p\\x41ss word\"\ndir '/var/lib/kv resp'\n" +
				"timeout 30\nloglevel WARNING\nsave \"\"\nappendonly no\ndaemonize no\nhz 100\n" +
				"client-output-buffer-limit normal 2gb 0 0 replica 256mb 64mb 60\nclient-output-buffer-limit pubsub 32mb 8mb 60\n"},
			want: map[string]string{"port": "7000", "bind": "10.0.0.1 -::1", "maxmemory": strconv.Itoa(2 << 30),
				"maxmemory-policy": "allkeys-lru", "requirepass": "pAss word", "dir": "/var/lib/kv resp", "timeout": "30",
				"loglevel": "warning", "hz": "100", "client-output-buffer-limit": "normal 2147483648 0 0"},
		},
		{
			name:  "args override the file",
			files: map[string]string{"kvresp.conf": "port 7000\nbind 10.0.0.1\nmaxclients 5\n"},
			args:  []string{"--port", "7001", "--bind", "127.0.0.1", "::1", "--Timeout", "9"},
			want:  map[string]string{"port": "7001", "bind": "127.0.0.1 ::1", "maxclients": "5", "timeout": "9"},
		},
		{
			name: "args only",
			args: []string{"--port 7002", "--requirepass", "--dashes", "--save", "--unixsocket", "/tmp/kv.sock", "--save"},
			want: map[string]string{"port": "7002", "requirepass": "--dashes", "save": "", "unixsocket": "/tmp/kv.sock"},
		},
		{
			name:  "every size unit",
			files: map[string]string{"kvresp.conf": "proto-max-bulk-len 3000k\nclient-query-buffer-limit 2000M\nmaxmemory 5000000kb\n"},
			args:  []string{"--client-output-buffer-limit", "normal", "3g", "0", "0"},
			want: map[string]string{"proto-max-bulk-len": "3000000", "client-query-buffer-limit": "2000000000",
				"maxmemory": strconv.Itoa(5000000 << 10), "client-output-buffer-limit": "normal 3000000000 0 0"},
		},
		{
			name: "bytes and b",
			args: []string{"--proto-max-bulk-len", "1048576", "--client-query-buffer-limit", "2097152b", "--maxmemory", "3mb"},
			want: map[string]string{"proto-max-bulk-len": "1048576", "client-query-buffer-limit": "2097152", "maxmemory": "3145728"},
		},
		{
			name: "include",
			files: map[string]string{
				"kvresp.conf":        "port 7000\ninclude sub/local.conf\nmaxclients 7\ninclude conf.d/*.conf\n",
				"sub/local.conf":     "maxclients 6\ntimeout 6\n",
				"conf.d/a.conf":      "hz 20\n",
				"conf.d/b.conf":      "hz 30\n",
				"conf.d/ignored.txt": "hz 40\n",
			},
			want: map[string]string{"port": "7000", "maxclients": "7", "timeout": "6", "hz": "30"},
		},
		{
			name:  "include cycle",
			files: map[string]string{"kvresp.conf": "include kvresp.conf\n"},
			errs:  []string{"kvresp.conf line 1: include nested more than 10 deep"},
		},
		{
			name:  "unknown directive",
			files: map[string]string{"kvresp.conf": "port 7000\n\nmaxmemroy 1gb\n"},
			args:  []string{"--colour", "red"},
			errs:  []string{"kvresp.conf line 3: unknown directive 'maxmemroy' (did you mean 'maxmemory'?)", "--colour: unknown directive 'colour'"},
		},
		{
			name: "bad values, all reported",
			files: map[string]string{"kvresp.conf": "port abc\nbind 127.0.0.1 localhost\nmaxmemory 4tb\nmaxmemory-policy noeviction\n" +
				"maxmemory-policy lru\nappendonly yes\ndaemonize yes\nsave 900 1\nhz 0\nloglevel loud\nrequirepass\n" +
				"tls-auth-clients maybe\nclient-output-buffer-limit normal 1gb 512mb 60\nunixsocketperm 999\nmetrics-addr 9121\n" +
				"client-output-buffer-limit normal 0 0\nproto-max-bulk-len 1000\nmaxmemory 100\nport 1 2\ndir \"\"\nbind \"unterminated\n"},
			args: []string{"stray", "--port", "abc", "--timeout", "-1", "--hz"},
			errs: []string{
				`line 1: port: value "abc": not an integer`,
				`line 2: bind: values "127.0.0.1" "localhost": "localhost" is not an IP address`,
				`line 3: maxmemory: value "4tb": not a size`,
				`line 4: maxmemory-policy: value "noeviction": kvresp implements only allkeys-lru`,
				`line 5: maxmemory-policy: value "lru": argument must be one of the following: allkeys-lru`,
				`line 6: appendonly: value "yes": kvresp has no append-only file`,
				`line 7: daemonize: value "yes": kvresp does not daemonize`,
				`line 8: save: values "900" "1": kvresp writes no RDB snapshots`,
				`line 9: hz: value "0": must be between 1 and 500`,
				`line 10: loglevel: value "loud": argument must be one of the following: debug, verbose, notice, warning, nothing`,
				`line 11: requirepass: wrong number of arguments: want 1, got 0`,
				`line 12: tls-auth-clients: value "maybe"`,
				`line 13: client-output-buffer-limit: values "normal" "1gb" "512mb" "60": kvresp applies only the hard limit`,
				`line 14: unixsocketperm: value "999": not a file mode`,
				`line 15: metrics-addr: value "9121": not host:port`,
				`line 16: client-output-buffer-limit: wrong number of arguments: want at least 4, got 3`,
				`line 17: proto-max-bulk-len: value "1000": must be at least 1048576 (1mb)`,
				`line 18: maxmemory: value "100": less than 1mb`,
				`line 19: port: wrong number of arguments: want 1, got 2`,
				`line 20: dir: value "": must not be empty`,
				`line 21: unbalanced quotes`,
				`argument "stray": a value without a --directive before it`,
				`--port: value "abc": not an integer`,
				`--timeout: value "-1": must be between 0 and 2147483647`,
				`--hz: wrong number of arguments: want 1, got 0`,
			},
		},
		{
			name: "contradictions",
			args: []string{"--port", "0", "--client-query-buffer-limit", "256mb", "--client-output-buffer-limit", "normal", "128mb", "0", "0"},
			errs: []string{
				"port, tls-port and unixsocket are all off",
				"proto-max-bulk-len (512mb) is larger than client-query-buffer-limit (256mb)",
				"client-output-buffer-limit normal (128mb) is smaller than proto-max-bulk-len (512mb)",
			},
		},
		{
			name: "tls needs files",
			args: []string{"--tls-port", "6379", "--tls-auth-clients", "yes"},
			errs: []string{"port and tls-port are both 6379", "tls-cert-file is not", "tls-key-file is not", "tls-auth-clients yes needs tls-ca-cert-file"},
		},
		{
			name: "fdp",
			args: []string{"--fdp-pids", "cold:2, hot:1,meta:0", "--fdp-stats-interval", "0"},
			want: map[string]string{"fdp-pids": "cold:2, hot:1,meta:0", "fdp-stats-interval": "0"},
		},
		{
			name: "fdp errors",
			args: []string{"--fdp-pids", "meta:0,hot:0", "--fdp-stats-interval", "-1"},
			errs: []string{`--fdp-pids: value "meta:0,hot:0": fdp-pids: meta and hot both use placement identifier 0`, "fdp-pids: cold is missing",
				`--fdp-stats-interval: value "-1": must be between 0 and 86400`},
		},
		{
			name:  "missing file",
			files: map[string]string{"other.conf": ""},
			errs:  []string{"cannot read config file"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.files != nil {
				dir := writeFiles(t, tc.files)
				args = append([]string{filepath.Join(dir, "kvresp.conf")}, args...)
			}
			c, err := Load(args)
			if tc.errs == nil {
				if err != nil {
					t.Fatalf("Load(%q): %v", args, err)
				}
				for name, want := range tc.want {
					if got := get(t, c, name); got != want {
						t.Errorf("%s = %q, want %q", name, got, want)
					}
				}
				return
			}
			if c != nil || err == nil {
				t.Fatalf("Load(%q) = %v, %v; want errors", args, c, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.errs) {
				t.Errorf("got %d errors, want %d:\n%v", len(lines), len(tc.errs), err)
			}
			for i, want := range tc.errs {
				if i < len(lines) && !strings.Contains(lines[i], want) {
					t.Errorf("error %d = %q, want it to contain %q", i, lines[i], want)
				}
			}
		})
	}
	t.Run("percent maxmemory", func(t *testing.T) {
		if memErr != nil {
			t.Skip(memErr)
		}
		for arg, want := range map[string]int64{"25%": mem * 25 / 100, "0": mem * 50 / 100, "0gb": mem * 50 / 100, "100%": mem} {
			c, err := Load([]string{"--maxmemory", arg})
			if err != nil {
				t.Fatal(err)
			}
			if c.Maxmemory != want {
				t.Errorf("maxmemory %s = %d, want %d", arg, c.Maxmemory, want)
			}
		}
	})
}

func TestGet(t *testing.T) {
	c := Defaults()
	names := func(kv [][2]string) []string {
		var n []string
		for _, p := range kv {
			n = append(n, p[0])
		}
		return n
	}
	for _, tc := range []struct {
		pattern string
		want    []string
	}{
		{"*", c.Directives()},
		{"max*", []string{"maxclients", "maxmemory", "maxmemory-policy"}},
		{"MAXMEMORY", []string{"maxmemory"}},
		{"port", []string{"port"}},
		{"*port", []string{"port", "tls-port"}},
		{"tls-*-file", []string{"tls-ca-cert-file", "tls-cert-file", "tls-key-file"}},
		{"?z", []string{"hz"}},
		{"[bd]*", []string{"bind", "daemonize", "databases", "dax-format", "dax-path", "dax-region-size", "dax-size", "dir"}},
		{"nosuch", nil},
		{"include", nil},
		{"[", nil},
	} {
		if got := names(c.Get(tc.pattern)); !slices.Equal(got, tc.want) {
			t.Errorf("Get(%q) names = %q, want %q", tc.pattern, got, tc.want)
		}
	}
	if !slices.IsSorted(c.Directives()) || len(c.Directives()) != len(directives) {
		t.Errorf("Directives() = %q", c.Directives())
	}
	for name, want := range map[string]string{
		"port": "6379", "bind": "127.0.0.1", "proto-max-bulk-len": "536870912", "client-query-buffer-limit": "1073741824",
		"client-output-buffer-limit": "normal 1073741824 0 0", "appendonly": "no", "daemonize": "no", "save": "",
		"unixsocketperm": "0", "tls-auth-clients": "no", "databases": "16",
	} {
		if got := get(t, c, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestSet(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		get         string // CONFIG GET afterwards, when there is no error
		err         string // substring
	}{
		{name: "maxmemory", value: "2gb", get: "2147483648"},
		{name: "MaxMemory", value: "3mb", get: "3145728"},
		{name: "maxmemory", value: "100", err: "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - value \"100\": less than 1mb"},
		{name: "maxmemory-policy", value: "allkeys-lru", get: "allkeys-lru"},
		{name: "maxmemory-policy", value: "allkeys-lfu", err: "kvresp implements only allkeys-lru"},
		{name: "requirepass", value: "s3cret with spaces", get: "s3cret with spaces"},
		{name: "requirepass", value: "", get: ""},
		{name: "maxclients", value: "20", get: "20"},
		{name: "maxclients", value: "0", err: "must be between 1 and"},
		{name: "timeout", value: "300", get: "300"},
		{name: "proto-max-bulk-len", value: "64mb", get: "67108864"},
		{name: "proto-max-bulk-len", value: "2gb", err: "is larger than client-query-buffer-limit (1gb)"},
		{name: "client-query-buffer-limit", value: "2gb", get: "2147483648"},
		{name: "client-output-buffer-limit", value: "normal 0 0 0", get: "normal 0 0 0"},
		{name: "client-output-buffer-limit", value: "normal 1mb 0 0", err: "smaller than proto-max-bulk-len"},
		{name: "client-output-buffer-limit", value: "", err: "wrong number of arguments"},
		{name: "loglevel", value: "debug", get: "debug"},
		{name: "hz", value: "50", get: "50"},
		{name: "hz", value: "fast", err: `value "fast": not an integer`},
		{name: "save", value: "", get: ""},
		{name: "save", value: "900 1", err: "kvresp writes no RDB snapshots"},
		{name: "appendonly", value: "no", get: "no"},
		{name: "appendonly", value: "yes", err: "kvresp has no append-only file"},
		{name: "port", value: "7000", err: "ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config"},
		{name: "bind", value: "0.0.0.0", err: "can't set immutable config"},
		{name: "daemonize", value: "no", err: "can't set immutable config"},
		{name: "tls-cert-file", value: "x", err: "can't set immutable config"},
		{name: "nosuch", value: "1", err: "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'"},
		{name: "no\r\nsuch", value: "1", err: "'no; such'"},
	} {
		c := Defaults()
		before := c.Get("*")
		err := c.Set(tc.name, tc.value)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("Set(%q, %q) = %v, want an error with %q on one line", tc.name, tc.value, err, tc.err)
			}
			if after := c.Get("*"); !slices.Equal(before, after) {
				t.Errorf("Set(%q, %q) failed but changed the config", tc.name, tc.value)
			}
			continue
		}
		if err != nil {
			t.Errorf("Set(%q, %q) = %v", tc.name, tc.value, err)
			continue
		}
		if got := get(t, c, tc.name); got != tc.get {
			t.Errorf("after Set(%q, %q), Get = %q, want %q", tc.name, tc.value, got, tc.get)
		}
	}
}

func TestSetPercent(t *testing.T) {
	mem, err := physicalMemory()
	if err != nil {
		t.Skip(err)
	}
	c := Defaults()
	if err := c.Set("maxmemory", "10%"); err != nil {
		t.Fatal(err)
	}
	if got, want := get(t, c, "maxmemory"), strconv.FormatInt(mem*10/100, 10); got != want {
		t.Errorf("maxmemory 10%% = %s, want %s", got, want)
	}
}

func TestOnSet(t *testing.T) {
	c := Defaults()
	var seen []string
	c.OnSet("maxmemory", func(c *Config) error {
		seen = append(seen, "a "+get(t, c, "maxmemory"))
		return nil
	})
	c.OnSet("maxmemory", func(c *Config) error {
		seen = append(seen, "b "+strconv.FormatInt(c.Maxmemory, 10))
		if c.Maxmemory == 8<<20 {
			return errors.New("cannot shrink below what is stored")
		}
		return nil
	})
	if err := c.Set("maxmemory", "16mb"); err != nil {
		t.Fatal(err)
	}
	err := c.Set("maxmemory", "8mb")
	if err == nil || err.Error() != "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - cannot shrink below what is stored" {
		t.Errorf("failing hook: Set = %v", err)
	}
	if got := get(t, c, "maxmemory"); got != strconv.Itoa(16<<20) {
		t.Errorf("maxmemory after a failed hook = %s, want the old 16mb", got)
	}
	want := []string{"a 16777216", "b 16777216", "a 8388608", "b 8388608", "a 16777216"}
	if !slices.Equal(seen, want) {
		t.Errorf("hooks saw %q, want %q", seen, want)
	}
	if err := c.Set("timeout", "5"); err != nil || len(seen) != len(want) {
		t.Errorf("Set(timeout) = %v, ran maxmemory hooks: %q", err, seen)
	}
	for _, name := range []string{"port", "nosuch"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("OnSet(%q) did not panic", name)
				}
			}()
			c.OnSet(name, func(*Config) error { return nil })
		}()
	}
}

// TestConcurrentGetSet is for -race: Set from some goroutines while others
// Get, Snapshot and Validate, and hooks read fields.
func TestConcurrentGetSet(t *testing.T) {
	c := Defaults()
	var hookRuns int
	c.OnSet("timeout", func(c *Config) error {
		hookRuns++ // Sets are serialised, hooks too
		_ = c.Timeout
		return nil
	})
	const n = 200
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range n {
				if g%2 == 0 {
					if err := c.Set("timeout", strconv.Itoa(i)); err != nil {
						t.Error(err)
					}
					if err := c.Set("maxmemory", strconv.Itoa(i+2)+"mb"); err != nil {
						t.Error(err)
					}
					continue
				}
				if kv := c.Get("*"); len(kv) != len(directives) {
					t.Errorf("Get(*) returned %d pairs", len(kv))
				}
				if s := c.Snapshot(); s.Timeout < 0 || s.Timeout >= n {
					t.Errorf("Snapshot().Timeout = %d", s.Timeout)
				}
				if err := c.Validate(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if hookRuns != 2*n {
		t.Errorf("hook ran %d times, want %d", hookRuns, 2*n)
	}
}

func TestTierOrder(t *testing.T) {
	checkOrders(t, []orderCase{
		{[]string{"--tier-order", "dram"}, "", []string{"dram"}},
		{[]string{"--tier-order", "dram,rawblock"}, "", []string{"dram", "rawblock"}},
		{[]string{"--tier-order", " dram, rawblock "}, "", []string{"dram", "rawblock"}},
		{[]string{"--tier-order", "rawblock,dram"}, "must come in the order", nil},
		{[]string{"--tier-order", "dram,dram"}, "must come in the order", nil},
		{[]string{"--tier-order", "dram,upstream"}, "upstream is not set", nil},
		{[]string{"--tier-order", "dram,dax"}, "dax-path is not set", nil},
		{[]string{"--tier-order", "dram,nvme"}, "unknown tier", nil},
		{[]string{"--tier-order", "rawblock"}, "first tier must be dram", nil},
	})
}

// orderCase is a command line, and either the error it must give or the
// tier order it must set.
type orderCase struct {
	args []string
	err  string
	want []string
}

func checkOrders(t *testing.T, cases []orderCase) {
	t.Helper()
	for _, tc := range cases {
		c, err := Load(tc.args)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one saying %q", tc.args, err, tc.err)
		case tc.err == "" && !slices.Equal(c.TierOrder, tc.want):
			t.Errorf("%q: tier order %v, want %v", tc.args, c.TierOrder, tc.want)
		}
	}
}

// TestUpstreamSettings: the upstream joins the cascade, last, exactly when upstream is set; its
// URL scheme, modes and durations are checked when the settings are read.
func TestUpstreamSettings(t *testing.T) {
	checkOrders(t, []orderCase{
		{[]string{"--upstream", "redis://10.0.0.1:6379"}, "", []string{"dram", "rawblock", "upstream"}},
		{[]string{"--upstream", "s3://bucket/prefix", "--dax-path", "/x"}, "", []string{"dram", "rawblock", "dax", "upstream"}},
		{[]string{"--upstream", "redis-cluster://a:1,b:2", "--tier-order", "dram,upstream"}, "", []string{"dram", "upstream"}},
		{[]string{"--upstream", "redis://a:1", "--tier-order", "dram"}, "leaves it out", nil},
		{[]string{"--upstream", "memcache://a:1"}, "want a URL starting with redis://", nil},
		{[]string{"--upstream", "redis://a:1", "--upstream-mode", "read-through,bogus"}, `unknown upstream mode "bogus"`, nil},
		{[]string{"--upstream", "redis://a:1", "--upstream-mode", "write-through,write-through-async"}, "exclude each other", nil},
		{[]string{"--upstream", "redis://a:1", "--upstream-timeout", "0"}, "must be positive", nil},
		{[]string{"--upstream", "redis://a:1", "--upstream-timeout", "soon"}, "not a duration", nil},
	})
	c, err := Load([]string{"--upstream", "redis://u:secret@h:1", "--upstream-timeout", "250", "--upstream-mode", "write-back"})
	if err != nil {
		t.Fatal(err)
	}
	if c.UpstreamTimeout != 250*time.Millisecond || get(t, c, "upstream-timeout") != "250" || get(t, c, "upstream-mode") != "write-back" {
		t.Errorf("upstream-timeout %v (%s), mode %s", c.UpstreamTimeout, get(t, c, "upstream-timeout"), get(t, c, "upstream-mode"))
	}
	if got := redactURL(c.Upstream); got != "redis://u:xxxxx@h:1" {
		t.Errorf("redactURL = %q", got)
	}
}

// TestDaxSettings: the DAX tier is in the cascade exactly when dax-path is set, last by
// default; an explicit tier-order decides where, and must agree with dax-path.
func TestDaxSettings(t *testing.T) {
	checkOrders(t, []orderCase{
		{nil, "", []string{"dram", "rawblock"}},
		{[]string{"--dax-path", "/dev/dax0.0"}, "", []string{"dram", "rawblock", "dax"}},
		{[]string{"--tier-order", "dram", "--dax-path", "/mnt/pmem/kvresp.dax"}, "leaves dax out", nil},
		{[]string{"--dax-path", "/dev/dax0.0", "--tier-order", "dram,dax"}, "", []string{"dram", "dax"}},
		{[]string{"--tier-order", "dram,rawblock,dax", "--dax-path", "/dev/dax0.0"}, "", []string{"dram", "rawblock", "dax"}},
		{[]string{"--tier-order", "dram,dax,rawblock", "--dax-path", "/dev/dax0.0"}, "must come in the order dram,rawblock,dax", nil},
		{[]string{"--tier-order", "dram,rawblock,dax"}, "dax-path is not set", nil},
		{[]string{"--dax-path", "/x", "--dax-size", "1gb", "--dax-region-size", "64mb"}, "", []string{"dram", "rawblock", "dax"}},
		{[]string{"--dax-path", "/x", "--dax-size", "10000"}, "dax-size (10000) must be a multiple of 4kb", nil},
		{[]string{"--dax-path", "/x", "--dax-region-size", "64kb"}, "dax-region-size (65536) must be 0", nil},
	})

	// From a config file, the same; CONFIG GET shows the order in effect.
	conf := filepath.Join(t.TempDir(), "kvresp.conf")
	if err := os.WriteFile(conf, []byte("dax-path /mnt/pmem/kvresp.dax\ndax-size 512mb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load([]string{conf})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Get("tier-order"); len(got) != 1 || got[0][1] != "dram,rawblock,dax" {
		t.Errorf("CONFIG GET tier-order = %q", got)
	}
	if c.DaxPath != "/mnt/pmem/kvresp.dax" || c.DaxSize != 512<<20 || c.DaxRegionSize != 0 {
		t.Errorf("dax settings %q %d %d", c.DaxPath, c.DaxSize, c.DaxRegionSize)
	}
}

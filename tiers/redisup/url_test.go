package redisup

import (
	"log/slog"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"kvresp/internal/syncbuf"
)

var validURLs = []struct {
	raw  string
	want target
}{
	{"redis://localhost", target{kind: kindRedis, addrs: []string{"localhost:6379"}}},
	{"REDIS://h:1234/3", target{kind: kindRedis, addrs: []string{"h:1234"}, db: 3}},
	{"redis://h:1/", target{kind: kindRedis, addrs: []string{"h:1"}}},
	{"redis://h?db=4", target{kind: kindRedis, addrs: []string{"h:6379"}, db: 4}},
	{"redis://h/4?db=4", target{kind: kindRedis, addrs: []string{"h:6379"}, db: 4}},
	{"redis://:secret@[::1]:7000", target{kind: kindRedis, addrs: []string{"[::1]:7000"}, password: "secret"}},
	{"rediss://u:p%40ss%3A@h:6380/0?skip_verify=true&pool_size=5&read_timeout=2s",
		target{kind: kindRedis, tls: true, skipVerify: true, user: "u", password: "p@ss:", addrs: []string{"h:6380"},
			params: url.Values{"pool_size": {"5"}, "read_timeout": {"2s"}}}},
	{"redis://user@h.example.com", target{kind: kindRedis, user: "user", addrs: []string{"h.example.com:6379"}}},
	{"redis-sentinel://s1,s2:26380/mymaster/2",
		target{kind: kindSentinel, addrs: []string{"s1:26379", "s2:26380"}, master: "mymaster", db: 2}},
	{"redis-sentinel://u:p@s1:1/?master=m&sentinel_password=sp&sentinel_username=su",
		target{kind: kindSentinel, user: "u", password: "p", addrs: []string{"s1:1"}, master: "m", sentinelUser: "su", sentinelPassword: "sp"}},
	{"redis-sentinel://s1/5?master=m", target{kind: kindSentinel, addrs: []string{"s1:26379"}, master: "m", db: 5}},
	{"redis-sentinel://s1/my%2Fmaster%20x", target{kind: kindSentinel, addrs: []string{"s1:26379"}, master: "my/master x"}},
	{"rediss-sentinel://s1/m", target{kind: kindSentinel, tls: true, addrs: []string{"s1:26379"}, master: "m"}},
	{"redis-cluster://a:1,b:2,[::1]:3?read_timeout=2s",
		target{kind: kindCluster, addrs: []string{"a:1", "b:2", "[::1]:3"}, params: url.Values{"read_timeout": {"2s"}}}},
	{"redis-cluster://a:1/0", target{kind: kindCluster, addrs: []string{"a:1"}}},
	{"rediss-cluster://u,x:p@a:1", target{kind: kindCluster, tls: true, user: "u,x", password: "p", addrs: []string{"a:1"}}},
}

func TestParseURL(t *testing.T) {
	for _, c := range validURLs {
		got, err := parseURL(c.raw)
		if err != nil {
			t.Errorf("parseURL(%q): %v", c.raw, err)
			continue
		}
		if !reflect.DeepEqual(*got, c.want) {
			t.Errorf("parseURL(%q) =\n\t%+v; want\n\t%+v", c.raw, *got, c.want)
		}
	}
}

func TestParseURLErrors(t *testing.T) {
	for _, c := range []struct{ raw, want string }{
		{"", "no scheme"},
		{"localhost:6379", "no scheme"},
		{"http://h", `scheme "http"`},
		{"redis://", "no host"},
		{"redis://u:p@/0", "no host"},
		{"redis://h:0", "bad port"},
		{"redis://h:70000", "bad port"},
		{"redis://h:abc", "bad port"},
		{"redis://:6379", "no host"},
		{"redis://a,b", "takes one host"},
		{"redis-cluster://a,,b", "empty host"},
		{"redis-cluster://a,", "empty host"},
		{"redis://[::1", "no closing ]"},
		{"redis://[::1]x", "text after ]"},
		{"redis://[example.com]:1", "not an IPv6 address"},
		{"redis://::1", "brackets"},
		{"redis://h h", "character"},
		{"redis://h/x", `database "x"`},
		{"redis://h/-1", `database "-1"`},
		{"redis://h/99999999999", "database"},
		{"redis://h/1/2", "too many"},
		{"redis://h//", "empty segment"},
		{"redis://h/1?db=2", "database 1 in its path and 2"},
		{"redis://h?db=1&db=1", "given 2 times"},
		{"redis-sentinel://s1", "names no master"},
		{"redis-sentinel://s1/", "names no master"},
		{"redis-sentinel://s1/?master=", "empty master"},
		{"redis-sentinel://s1/m?master=m", `database "m"`},
		{"redis-sentinel://s1/m/1/2", "too many"},
		{"redis-cluster://a/1", "only database 0"},
		{"redis-cluster://a?db=2", "only database 0"},
		{"redis://h?master=m", "only for redis-sentinel"},
		{"redis-cluster://h?sentinel_password=x", "only for redis-sentinel"},
		{"redis://h?addr=x:1", "parameter addr is not accepted"},
		{"redis-sentinel://h/m?master_name=m", "parameter master_name is not accepted"},
		{"redis-sentinel://h/m?password=p", "parameter password is not accepted"},
		{"redis://h?context_timeout_enabled=false", "context_timeout_enabled is not accepted"},
		{"redis://h?skip_verify=true", "needs TLS"},
		{"rediss://h?skip_verify=maybe", "want true or false"},
		{"redis://h#frag", "fragment"},
		{"redis://%zz@h", "bad user"},
		{"redis://u:%zz@h", "password"},
		{"redis://h?a=%zz", "bad query"},
	} {
		_, err := parseURL(c.raw)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseURL(%q) = %v; want an error with %q", c.raw, err, c.want)
		}
	}
}

// Errors found while building go-redis's options, or by go-redis's parser, come out of Open.
func TestOpenErrors(t *testing.T) {
	for _, c := range []struct {
		raw  string
		o    Options
		want string
	}{
		{"redis://h?no_such_option=1", Options{}, "unexpected option: no_such_option"},
		{"redis://h?pool_size=many", Options{}, "invalid pool_size"},
		{"redis://h?dial_timeout=0", Options{}, "dial_timeout must be a positive"},
		{"redis://h?pool_size=-1", Options{}, "pool_size is -1"},
		{"redis://h?pool_size=99999999999", Options{}, "pool_size is 99999999999"},
		{"redis-sentinel://h/m?route_randomly=true", Options{}, "route_randomly is not supported"},
		{"redis-sentinel://h/m?replica_only=true", Options{}, "replica_only is not supported"},
		{"redis://h", Options{PoolSize: -1, DialTimeout: -time.Second}, "pool size is -1"},
		{"redis://h", Options{PoolSize: -1, DialTimeout: -time.Second}, "dial timeout is -1s"},
		{"ftp://h", Options{}, "scheme"},
	} {
		u, err := Open(c.raw, c.o)
		if err == nil {
			_ = u.Close()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%q, %+v) = %v; want an error with %q", c.raw, c.o, err, c.want)
		}
	}
}

// Passwords are masked in what is logged.
func TestURLRedacted(t *testing.T) {
	tg, err := parseURL("redis-sentinel://user:data-secret@s1/m?sentinel_password=sentinel-secret")
	if err != nil {
		t.Fatal(err)
	}
	s := tg.String()
	if strings.Contains(s, "secret") || !strings.Contains(s, "user:xxxxx@") {
		t.Errorf("String() = %q; want the passwords masked", s)
	}
}

// settings are what the precedence tests look at, whatever the kind of client.
type settings struct {
	poolSize, maxRetries, dialerRetries, pipelinePool int
	dial, read, write                                 time.Duration
	ctxTimeout                                        bool
}

func settingsOf(co clientOptions) settings {
	switch {
	case co.single != nil:
		o := co.single
		return settings{o.PoolSize, o.MaxRetries, o.DialerRetries, o.PipelinePoolSize, o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.ContextTimeoutEnabled}
	case co.failover != nil:
		o := co.failover
		return settings{o.PoolSize, o.MaxRetries, o.DialerRetries, o.PipelinePoolSize, o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.ContextTimeoutEnabled}
	}
	o := co.cluster
	return settings{o.PoolSize, o.MaxRetries, o.DialerRetries, o.PipelinePoolSize, o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.ContextTimeoutEnabled}
}

// Options set explicitly win over the URL's parameters, which win over the defaults.
func TestPrecedence(t *testing.T) {
	const params = "pool_size=3&dial_timeout=2s&read_timeout=4s&write_timeout=6s"
	explicit := Options{PoolSize: 7, DialTimeout: time.Second, ReadTimeout: 8 * time.Second, WriteTimeout: -time.Second}
	for _, base := range []string{"redis://h/1?", "redis-sentinel://s/m?", "redis-cluster://a,b?"} {
		for _, c := range []struct {
			query string
			o     Options
			want  settings
		}{
			{"", Options{}, settings{0, -1, 1, -1, defaultDialTimeout, defaultIOTimeout, defaultIOTimeout, true}},
			{params, Options{}, settings{3, -1, 1, -1, 2 * time.Second, 4 * time.Second, 6 * time.Second, true}},
			{params, explicit, settings{7, -1, 1, -1, time.Second, 8 * time.Second, -1, true}},
			{"", explicit, settings{7, -1, 1, -1, time.Second, 8 * time.Second, -1, true}},
			{"read_timeout=0&max_retries=2&pipeline_pool_size=4", Options{},
				settings{0, 2, 1, 4, defaultDialTimeout, -1, defaultIOTimeout, true}},
		} {
			tg, err := parseURL(base + c.query)
			if err != nil {
				t.Fatal(err)
			}
			co, err := tg.clientOptions(c.o)
			if err != nil {
				t.Fatalf("%s%s: %v", base, c.query, err)
			}
			if got := settingsOf(co); got != c.want {
				t.Errorf("%s%s with %+v:\n\tgot  %+v\n\twant %+v", base, c.query, c.o, got, c.want)
			}
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, c := range validURLs {
		f.Add(c.raw)
	}
	for _, s := range []string{
		"redis://h?pool_size=3&min_idle_conns=2", "redis-sentinel://a:1,b:2/m/3?sentinel_password=x&protocol=2",
		"rediss-cluster://u:p@a:1,b:2?skip_verify=1&dial_timeout=3", "redis://h?pool_size=-5", "redis://[::ffff:1.2.3.4]:5",
		"redis-sentinel://h/%zz", "redis://h/%31", "redis://h:+1", "redis://h:0x10", "redis://u:p:q@h@i",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tg, err := parseURL(raw)
		if err != nil {
			return
		}
		checkTarget(t, raw, tg)
		canon := tg.format(false)
		again, err := parseURL(canon)
		if err != nil {
			t.Fatalf("%q parses, its canonical form %q does not: %v", raw, canon, err)
		}
		if !reflect.DeepEqual(tg, again) {
			t.Fatalf("%q and its canonical form %q differ:\n\t%+v\n\t%+v", raw, canon, *tg, *again)
		}
		if s := again.format(false); s != canon {
			t.Fatalf("canonical form of %q is not stable: %q, then %q", raw, canon, s)
		}
		co, err := tg.clientOptions(Options{})
		if err != nil {
			return
		}
		var addrs []string
		switch {
		case co.single != nil:
			addrs = []string{co.single.Addr}
			_ = redis.NewClient(co.single).Close() // what go-redis panics on is refused first
		case co.failover != nil:
			addrs = co.failover.SentinelAddrs
			_ = redis.NewFailoverClient(co.failover).Close()
		default:
			addrs = co.cluster.Addrs
			_ = redis.NewClusterClient(co.cluster).Close()
		}
		if !slices.Equal(addrs, tg.addrs) {
			t.Fatalf("%q: go-redis options name %v, the URL %v", raw, addrs, tg.addrs)
		}
	})
}

// checkTarget checks what every parsed URL must satisfy.
func checkTarget(t *testing.T, raw string, tg *target) {
	t.Helper()
	fail := func(why string) { t.Fatalf("%q parsed to %+v: %s", raw, *tg, why) }
	if _, ok := schemes[tg.kind]; !ok {
		fail("unknown kind")
	}
	if len(tg.addrs) == 0 || tg.kind == kindRedis && len(tg.addrs) != 1 {
		fail("wrong number of addresses")
	}
	for _, a := range tg.addrs {
		h, p, err := net.SplitHostPort(a)
		n, perr := strconv.Atoi(p)
		if err != nil || h == "" || perr != nil || n < 1 || n > 65535 {
			fail("bad address " + a)
		}
	}
	if (tg.kind == kindSentinel) != (tg.master != "") {
		fail("a master name goes with redis-sentinel, and only with it")
	}
	if tg.kind != kindSentinel && (tg.sentinelUser != "" || tg.sentinelPassword != "") {
		fail("sentinel credentials without sentinels")
	}
	if tg.db < 0 || tg.kind == kindCluster && tg.db != 0 {
		fail("bad database")
	}
	if tg.skipVerify && !tg.tls {
		fail("skip_verify without TLS")
	}
	if tg.params != nil && len(tg.params) == 0 {
		fail("empty params kept")
	}
	for name := range tg.params {
		if _, ok := reserved[name]; ok || slices.Contains([]string{"master", "db", "sentinel_username", "sentinel_password", "skip_verify"}, name) {
			fail("parameter " + name + " left for go-redis")
		}
	}
}

// go-redis's own messages go to the logger given, not to stderr.
func TestSetLogger(t *testing.T) {
	var buf syncbuf.Buffer
	SetLogger(slog.New(slog.NewTextHandler(&buf, nil)))
	defer SetLogger(slog.Default())
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "mymaster", SentinelAddrs: []string{"127.0.0.1:1"}, DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	if err := c.Ping(t.Context()).Err(); err == nil {
		t.Fatal("PING through a sentinel that is not there succeeded")
	}
	if got := buf.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "GetMasterAddrByName") || !strings.Contains(got, "component=go-redis") {
		t.Errorf("logged %q", got)
	}
}

package redisup

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	mrand "math/rand/v2"
	"strconv"
	"testing"
	"time"

	"kvresp/internal/redistest"
	"kvresp/slab"
	"kvresp/tiers"
	"kvresp/tiers/uptest"
)

// Keys and values are bytes: these keys exercise what a URL, a shell or UTF-8 would mangle.
var oddKeys = []string{
	"plain", "a/b/c", "user@host", "100%", "%2F", "with space", "tab\tand\r\nnewline",
	"\xff\xfe\x00\x80", "ключ", "{tag}x", "",
}

func TestSingleRoundTrip(t *testing.T) {
	s := redistest.Start(t)
	u := open(t, "redis://"+s.Addr())
	if u.Name() != "redis" {
		t.Errorf("Name() = %q", u.Name())
	}
	direct := s.Client()
	a := uptest.Arena(t, 16<<20)
	ctx := t.Context()
	if err := u.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	for i, key := range oddKeys {
		val := []byte("value of " + key + "\x00\xff")
		if i%3 == 0 {
			val = nil // the empty value
		}
		if _, _, ok := uptest.Get(t, u, a, key); ok {
			t.Fatalf("Get(%q) before Put: found", key)
		}
		if _, ok, err := u.Stat(ctx, key); err != nil || ok {
			t.Fatalf("Stat(%q) before Put = %v, %v", key, ok, err)
		}
		uptest.Put(t, u, a, key, val, 0)
		got, exp, ok := uptest.Get(t, u, a, key)
		if !ok || !bytes.Equal(got, val) || exp != 0 {
			t.Errorf("Get(%q) = %q, %d, %v; want %q, 0, true", key, got, exp, ok, val)
		}
		m, ok, err := u.Stat(ctx, key)
		if err != nil || !ok || m.Size != int64(len(val)) || m.ExpireAt != 0 {
			t.Errorf("Stat(%q) = %+v, %v, %v; want size %d", key, m, ok, err, len(val))
		}
		// The key is the same bytes on the server, not an encoding of them.
		if v, err := direct.Get(ctx, key).Result(); err != nil || v != string(val) {
			t.Errorf("redis GET %q = %q, %v; want %q", key, v, err, val)
		}
	}
	for _, key := range oddKeys {
		if ok, err := u.Delete(ctx, key); err != nil || !ok {
			t.Errorf("Delete(%q) = %v, %v; want true", key, ok, err)
		}
		if ok, err := u.Delete(ctx, key); err != nil || ok {
			t.Errorf("second Delete(%q) = %v, %v; want false", key, ok, err)
		}
	}
	if n, err := direct.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Errorf("DBSIZE = %d, %v after deleting every key", n, err)
	}
}

func TestSingleExpiry(t *testing.T) {
	s := redistest.Start(t)
	u := open(t, "redis://"+s.Addr())
	direct := s.Client()
	a := uptest.Arena(t, 16<<20)
	ctx := t.Context()
	pexpiretime := func(key string) int64 {
		t.Helper()
		n, err := direct.Do(ctx, "pexpiretime", key).Int64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	exp := time.Now().Add(time.Hour).UnixMilli()
	uptest.Put(t, u, a, "k", []byte("v"), exp)
	if got := pexpiretime("k"); got != exp {
		t.Errorf("after Put with expiry %d: PEXPIRETIME = %d", exp, got)
	}
	// The expiry read back is from PTTL and the time the request left: never later
	// than the upstream's.
	_, gotExp, ok := uptest.Get(t, u, a, "k")
	if !ok || gotExp > exp || gotExp <= time.Now().UnixMilli() {
		t.Errorf("Get expiry = %d, %v; want at most %d and in the future", gotExp, ok, exp)
	}
	m, ok, err := u.Stat(ctx, "k")
	if err != nil || !ok || m.Size != 1 || m.ExpireAt > exp || m.ExpireAt <= time.Now().UnixMilli() {
		t.Errorf("Stat = %+v, %v, %v; want size 1 and expiry at most %d", m, ok, err, exp)
	}

	exp2 := exp + time.Hour.Milliseconds()
	if ok, err := u.SetExpire(ctx, "k", exp2); err != nil || !ok {
		t.Fatalf("SetExpire = %v, %v", ok, err)
	}
	if got := pexpiretime("k"); got != exp2 {
		t.Errorf("after SetExpire(%d): PEXPIRETIME = %d", exp2, got)
	}
	// Persisting answers true for a key with an expiry and for one without: PERSIST
	// alone answers 0 for the second.
	for range 2 {
		if ok, err := u.SetExpire(ctx, "k", 0); err != nil || !ok {
			t.Fatalf("SetExpire(0) = %v, %v; want true", ok, err)
		}
		if got := pexpiretime("k"); got != -1 {
			t.Errorf("after SetExpire(0): PEXPIRETIME = %d", got)
		}
		if _, gotExp, ok := uptest.Get(t, u, a, "k"); !ok || gotExp != 0 {
			t.Errorf("Get after SetExpire(0): expiry %d, %v", gotExp, ok)
		}
	}
	for _, e := range []int64{0, exp} {
		if ok, err := u.SetExpire(ctx, "absent", e); err != nil || ok {
			t.Errorf("SetExpire(absent, %d) = %v, %v; want false", e, ok, err)
		}
	}
	if n, err := direct.Exists(ctx, "absent").Result(); err != nil || n != 0 {
		t.Errorf("SetExpire created the absent key: EXISTS = %d, %v", n, err)
	}

	// A Put whose expiry has passed deletes: storing it would.
	past := time.Now().Add(-time.Second).UnixMilli()
	uptest.Put(t, u, a, "k", []byte("new"), past)
	if _, _, ok := uptest.Get(t, u, a, "k"); ok {
		t.Error("Get after Put with a past expiry: found")
	}
	if n, err := direct.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Errorf("after Put with a past expiry: EXISTS = %d, %v", n, err)
	}
	uptest.Put(t, u, a, "never", []byte("v"), past)
	if n, err := direct.Exists(ctx, "never").Result(); err != nil || n != 0 {
		t.Errorf("Put of an absent key with a past expiry: EXISTS = %d, %v; want nothing stored", n, err)
	}
	// An expiry set in the past deletes the key, which existed.
	uptest.Put(t, u, a, "k", []byte("v"), 0)
	if ok, err := u.SetExpire(ctx, "k", past); err != nil || !ok {
		t.Errorf("SetExpire(past) = %v, %v; want true", ok, err)
	}
	if _, _, ok := uptest.Get(t, u, a, "k"); ok {
		t.Error("Get after SetExpire(past): found")
	}
}

func TestSingleLargeValue(t *testing.T) {
	s := redistest.Start(t)
	u := open(t, "redis://"+s.Addr())
	a := uptest.Arena(t, 128<<20)
	val := make([]byte, 32<<20)
	r := mrand.NewChaCha8([32]byte{1})
	_, _ = r.Read(val)
	uptest.Put(t, u, a, "big", val, 0)
	got, _, ok := uptest.Get(t, u, a, "big")
	if !ok || !bytes.Equal(got, val) {
		t.Fatalf("Get of a 32 MiB value: ok=%v, %d bytes, equal=%v", ok, len(got), bytes.Equal(got, val))
	}
	if m, ok, err := u.Stat(t.Context(), "big"); err != nil || !ok || m.Size != 32<<20 {
		t.Errorf("Stat = %+v, %v, %v", m, ok, err)
	}
}

func TestSingleRefused(t *testing.T) {
	s := redistest.Start(t)
	u := open(t, "redis://"+s.Addr())
	direct := s.Client()
	a := uptest.Arena(t, 1<<20) // the smallest arena: a 2 MiB value can never fit
	ctx := t.Context()
	refusedErr := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, tiers.ErrRefused) {
			t.Errorf("%s: %v; want ErrRefused", op, err)
		}
	}

	if err := direct.LPush(ctx, "list", "x").Err(); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := uptest.TryGet(ctx, u, a, "list")
	refusedErr("Get of a list", err)
	_, _, err = u.Stat(ctx, "list")
	refusedErr("Stat of a list", err)
	if ok, err := u.SetExpire(ctx, "list", 0); err != nil || !ok {
		t.Errorf("SetExpire(list, 0) = %v, %v; want true", ok, err)
	}
	uptest.Put(t, u, a, "list", []byte("now a string"), 0) // SET replaces a value of any type
	if got, _, ok := uptest.Get(t, u, a, "list"); !ok || string(got) != "now a string" {
		t.Errorf("Get after SET over a list = %q, %v", got, ok)
	}

	// A value this node can never hold is its limit, not the upstream's failing.
	if err := direct.Set(ctx, "big", make([]byte, 2<<20), 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, _, _, err = uptest.TryGet(ctx, u, a, "big")
	refusedErr("Get of a value larger than the arena", err)
	if !errors.Is(err, slab.ErrTooLarge) {
		t.Errorf("Get of a value larger than the arena: %v; want slab.ErrTooLarge too", err)
	}
	tooLarge := func(int) (*slab.Buf, error) { return nil, tiers.ErrTooLarge }
	_, _, err = u.Get(ctx, "list", tooLarge)
	refusedErr("Get with alloc failing with tiers.ErrTooLarge", err)
	// Any other alloc error is the caller's own and is returned as it is.
	errNoRoom := errors.New("no room now")
	_, _, err = u.Get(ctx, "list", func(int) (*slab.Buf, error) { return nil, errNoRoom })
	if err != errNoRoom {
		t.Errorf("Get with alloc failing: %v; want %v as it is", err, errNoRoom)
	}
}

// An -ERR reply to a command is a refusal; the same reply while setting up a connection
// (SELECT of a database the server lacks) is the upstream being unusable.
func TestSingleErrReplies(t *testing.T) {
	s := redistest.Start(t, "--rename-command", "UNLINK", "", "--databases", "2")
	u := open(t, "redis://"+s.Addr())
	_, err := u.Delete(t.Context(), "k")
	if !errors.Is(err, tiers.ErrRefused) {
		t.Errorf("Delete with UNLINK unknown to the server: %v; want ErrRefused", err)
	}
	bad := open(t, "redis://"+s.Addr()+"/5")
	a := uptest.Arena(t, 4<<20)
	_, _, _, err = uptest.TryGet(t.Context(), bad, a, "k")
	notRefused(t, "Get from database 5 of 2", err)
	_, _, err = getStream(t, bad, a, "k")
	notRefused(t, "GetStream from database 5 of 2 (its own connection's SELECT)", err)
}

// A value beyond the upstream's proto-max-bulk-len is refused, whether Redis's error reply
// arrives or the connection is reset while the value is being written (which is what
// a value larger than the socket buffers gets), and the upstream keeps serving.
func TestSingleValueBeyondUpstreamLimit(t *testing.T) {
	s := redistest.Start(t, "--proto-max-bulk-len", "1mb")
	u := open(t, "redis://"+s.Addr())
	a := uptest.Arena(t, 64<<20)
	for _, n := range []int{1<<20 + 1, 32 << 20} {
		err := uptest.TryPut(t.Context(), u, a, "big", make([]byte, n), 0)
		if !errors.Is(err, tiers.ErrRefused) {
			t.Errorf("Put of %d bytes beyond proto-max-bulk-len: %v; want ErrRefused", n, err)
		}
	}
	uptest.Put(t, u, a, "small", []byte("v"), 0)
	if got, _, ok := uptest.Get(t, u, a, "small"); !ok || string(got) != "v" {
		t.Errorf("Get after the refused Put = %q, %v", got, ok)
	}
}

func TestSingleServerDown(t *testing.T) {
	s := redistest.Start(t)
	u := open(t, "redis://"+s.Addr())
	a := uptest.Arena(t, 16<<20)
	uptest.Put(t, u, a, "k", []byte("v"), 0)
	s.Stop()

	ctx := ctxTimeout(t, 3*time.Second)
	_, _, _, err := uptest.TryGet(ctx, u, a, "k")
	notRefused(t, "Get", err)
	_, _, err = u.Stat(ctx, "k")
	notRefused(t, "Stat", err)
	notRefused(t, "Put", uptest.TryPut(ctx, u, a, "k", []byte("v"), 0))
	_, err = u.SetExpire(ctx, "k", 0)
	notRefused(t, "SetExpire", err)
	_, err = u.Delete(ctx, "k")
	notRefused(t, "Delete", err)
	notRefused(t, "Ping", u.Ping(ctx))

	// The same Upstream serves again once a server is back on the address.
	s.Restart()
	redistest.Eventually(t, "Put after restart", func(ctx context.Context) error {
		return uptest.TryPut(ctx, u, a, "k", []byte("again"), 0)
	})
	if got, _, ok := uptest.Get(t, u, a, "k"); !ok || string(got) != "again" {
		t.Errorf("Get after restart = %q, %v", got, ok)
	}
}

// Open connects to nothing: a node starts while its upstream is down.
func TestOpenWithoutServer(t *testing.T) {
	port := strconv.Itoa(redistest.FreePort(t))
	for _, raw := range []string{
		"redis://127.0.0.1:" + port,
		"redis-sentinel://127.0.0.1:" + port + "/mymaster",
		"redis-cluster://127.0.0.1:" + port,
	} {
		u := open(t, raw)
		ctx := ctxTimeout(t, 3*time.Second)
		notRefused(t, raw+": Ping", u.Ping(ctx))
		_, _, err := u.Stat(ctx, "k")
		notRefused(t, raw+": Stat", err)
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key, _ := redistest.SelfSignedCert(t, dir)
	s := redistest.StartConfig(t, redistest.Config{Dir: dir, TLS: &tls.Config{InsecureSkipVerify: true},
		Args: func(port int) []string {
			return append([]string{"--port", "0", "--tls-port", strconv.Itoa(port),
				"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", cert,
				"--tls-auth-clients", "no"}, redistest.BaseArgs(dir)...)
		}})

	u := open(t, "rediss://"+s.Addr()+"?skip_verify=true")
	a := uptest.Arena(t, 4<<20)
	uptest.Put(t, u, a, "k", []byte("over TLS"), 0)
	if got, _, ok := uptest.Get(t, u, a, "k"); !ok || string(got) != "over TLS" {
		t.Errorf("Get over TLS = %q, %v", got, ok)
	}
	if got, ok, err := getStream(t, u, a, "k"); !ok || err != nil || string(got) != "over TLS" {
		t.Errorf("GetStream over TLS (its own connection) = %q, %v, %v", got, ok, err)
	}
	// Without skip_verify a self-signed certificate is an upstream failure.
	strict := open(t, "rediss://"+s.Addr())
	notRefused(t, "Ping with an unknown CA", strict.Ping(ctxTimeout(t, 3*time.Second)))
}

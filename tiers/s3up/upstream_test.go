package s3up

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"

	"kvresp/slab"
	"kvresp/tiers"
	"kvresp/tiers/uptest"
)

const (
	KiB = 1 << 10
	MiB = 1 << 20
)

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(b)
	return b
}

// rawStat returns the object's info as S3 holds it, ok false when absent.
func rawStat(t *testing.T, f *fakeS3, prefix, key string) (minio.ObjectInfo, bool) {
	t.Helper()
	name, err := ObjectName(prefix, key)
	if err != nil {
		t.Fatal(err)
	}
	info, err := f.rawClient(t).StatObject(context.Background(), testBucket, name, minio.StatObjectOptions{})
	if notFound(err) {
		return info, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return info, true
}

func TestMethods(t *testing.T) {
	f := newFakeS3(t)
	a := uptest.Arena(t, 64*MiB)
	u := f.open(t, "methods", Options{})
	ctx := context.Background()

	if u.Name() != "s3" {
		t.Errorf("Name() = %q", u.Name())
	}
	if err := u.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	// Absent key.
	if _, ok := getOK(t, u, a, "k"); ok {
		t.Fatal("Get of an absent key found it")
	}
	if _, ok, err := u.Stat(ctx, "k"); ok || err != nil {
		t.Fatalf("Stat of an absent key: %v, %v", ok, err)
	}
	if ok, err := u.SetExpire(ctx, "k", u.now()+1000); ok || err != nil {
		t.Fatalf("SetExpire of an absent key: %v, %v", ok, err)
	}
	if ok, err := u.Delete(ctx, "k"); ok || err != nil {
		t.Fatalf("Delete of an absent key: %v, %v", ok, err)
	}

	// Present key; Put replaces.
	uptest.Put(t, u, a, "k", []byte("first value"), 0)
	uptest.Put(t, u, a, "k", []byte("v2"), 0)
	if v, exp, ok := uptest.Get(t, u, a, "k"); !ok || string(v) != "v2" || exp != 0 {
		t.Fatalf("Get = %q, %d, %v", v, exp, ok)
	}
	if m, ok, err := u.Stat(ctx, "k"); !ok || err != nil || m.Size != 2 || m.ExpireAt != 0 {
		t.Fatalf("Stat = %+v, %v, %v", m, ok, err)
	}
	if _, ok := rawStat(t, f, "methods/", "k"); !ok {
		t.Fatal("the object is not under the URL's prefix")
	}
	if ok, err := u.Delete(ctx, "k"); !ok || err != nil {
		t.Fatalf("Delete = %v, %v", ok, err)
	}
	if _, ok := rawStat(t, f, "methods/", "k"); ok {
		t.Fatal("Delete left the object")
	}
	if _, ok := getOK(t, u, a, "k"); ok {
		t.Fatal("Get after Delete found the key")
	}

	// Empty value, and a nil buffer taken as one.
	uptest.Put(t, u, a, "empty", nil, 0)
	if v, _, ok := uptest.Get(t, u, a, "empty"); !ok || len(v) != 0 {
		t.Fatalf("empty value: %q, %v", v, ok)
	}
	if err := u.Put(ctx, "nil", tiers.Item{}); err != nil {
		t.Fatal(err)
	}
	if m, ok, err := u.Stat(ctx, "nil"); !ok || err != nil || m.Size != 0 {
		t.Fatalf("Stat of a nil-buffer Put: %+v, %v, %v", m, ok, err)
	}

	// A bucket that is not there.
	missing, err := Open("s3://no-such-bucket", Options{Endpoint: f.endpoint(), PathStyle: true, AccessKey: testAccess, SecretKey: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	defer missing.Close()
	if err := missing.Ping(ctx); !errors.Is(err, tiers.ErrRefused) {
		t.Errorf("Ping of a missing bucket: %v, want ErrRefused", err)
	}
	if _, ok, err := missing.Get(ctx, "k", a.Alloc); ok || err != nil {
		t.Errorf("Get in a missing bucket: %v, %v; want a miss", ok, err)
	}
	if err := missing.Put(ctx, "k", tiers.Item{}); !errors.Is(err, tiers.ErrRefused) {
		t.Errorf("Put in a missing bucket: %v, want ErrRefused", err)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
}

// getOK is Get that fails the test on error and releases what it got.
func getOK(t *testing.T, u *Upstream, a *slab.Arena, key string) (tiers.Item, bool) {
	t.Helper()
	it, ok, err := u.Get(context.Background(), key, a.Alloc)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if ok {
		it.Buf.Release()
	}
	return it, ok
}

func TestTTL(t *testing.T) {
	f := newFakeS3(t)
	a := uptest.Arena(t, 64*MiB)
	u := f.open(t, "ttl", Options{})
	ctx := context.Background()
	var clock atomic.Int64
	clock.Store(1_700_000_000_000)
	u.now = clock.Load
	now := clock.Load()

	uptest.Put(t, u, a, "k", []byte("value"), now+10_000)
	if v, exp, ok := uptest.Get(t, u, a, "k"); !ok || string(v) != "value" || exp != now+10_000 {
		t.Fatalf("Get = %q, %d, %v", v, exp, ok)
	}
	if m, ok, err := u.Stat(ctx, "k"); !ok || err != nil || m.ExpireAt != now+10_000 || m.Size != 5 {
		t.Fatalf("Stat = %+v, %v, %v", m, ok, err)
	}
	info, _ := rawStat(t, f, "ttl/", "k")
	if v, _ := metaValue(info.UserMetadata, metaExpireAt); v != fmt.Sprint(now+10_000) {
		t.Errorf("stored expiry %q (metadata %v)", v, info.UserMetadata)
	}

	for _, exp := range []int64{now + 20_000, 0, now + 5_000} {
		if ok, err := u.SetExpire(ctx, "k", exp); !ok || err != nil {
			t.Fatalf("SetExpire(%d) = %v, %v", exp, ok, err)
		}
		if v, got, ok := uptest.Get(t, u, a, "k"); !ok || string(v) != "value" || got != exp {
			t.Fatalf("after SetExpire(%d): Get = %q, %d, %v", exp, v, got, ok)
		}
		if m, ok, err := u.Stat(ctx, "k"); !ok || err != nil || m.ExpireAt != exp {
			t.Fatalf("after SetExpire(%d): Stat = %+v, %v, %v", exp, m, ok, err)
		}
	}

	// The expiry passes: the object is still there, but a miss everywhere.
	clock.Store(now + 5_000)
	if _, ok := getOK(t, u, a, "k"); ok {
		t.Fatal("Get of an expired key found it")
	}
	if _, ok, err := u.Stat(ctx, "k"); ok || err != nil {
		t.Fatalf("Stat of an expired key: %v, %v", ok, err)
	}
	if ok, err := u.SetExpire(ctx, "k", 0); ok || err != nil {
		t.Fatalf("SetExpire of an expired key: %v, %v", ok, err)
	}
	if _, ok := rawStat(t, f, "ttl/", "k"); !ok {
		t.Fatal("the expired object should still be stored")
	}
	if ok, err := u.Delete(ctx, "k"); ok || err != nil {
		t.Fatalf("Delete of an expired key = %v, %v; want false", ok, err)
	}
	if _, ok := rawStat(t, f, "ttl/", "k"); ok {
		t.Fatal("Delete of an expired key left its object")
	}

	// A Put or a SetExpire in the past deletes.
	now = clock.Load()
	uptest.Put(t, u, a, "p", []byte("x"), 0)
	uptest.Put(t, u, a, "p", []byte("y"), now-1)
	if _, ok := rawStat(t, f, "ttl/", "p"); ok {
		t.Fatal("Put of an expired value left the old one")
	}
	uptest.Put(t, u, a, "s", []byte("x"), 0)
	if ok, err := u.SetExpire(ctx, "s", now); !ok || err != nil {
		t.Fatalf("SetExpire(now) of a present key = %v, %v; want true", ok, err)
	}
	if _, ok := rawStat(t, f, "ttl/", "s"); ok {
		t.Fatal("SetExpire in the past left the object")
	}
	if ok, err := u.SetExpire(ctx, "s", now-1); ok || err != nil {
		t.Fatalf("SetExpire in the past of an absent key = %v, %v", ok, err)
	}
}

// TestSetExpireConflict: SetExpire's copy is conditional on the ETag its
// stat saw; when another writer got in between (412), it starts over, a
// bounded number of times.
func TestSetExpireConflict(t *testing.T) {
	f := newFakeS3(t)
	a := uptest.Arena(t, 16*MiB)
	u := f.open(t, "conflict", Options{})
	ctx := context.Background()
	uptest.Put(t, u, a, "k", []byte("value"), 0)
	info, _ := rawStat(t, f, u.Prefix(), "k")

	f.copyConflicts.Store(maxConflicts - 1)
	exp := u.now() + 60_000
	if ok, err := u.SetExpire(ctx, "k", exp); !ok || err != nil {
		t.Fatalf("SetExpire after %d conflicts = %v, %v", maxConflicts-1, ok, err)
	}
	if _, got, ok := uptest.Get(t, u, a, "k"); !ok || got != exp {
		t.Fatalf("expiry %d, %v; want %d", got, ok, exp)
	}
	f.mu.Lock()
	ifMatch := append([]string(nil), f.copyIfMatch...)
	f.mu.Unlock()
	if len(ifMatch) != maxConflicts {
		t.Fatalf("%d copies, want %d", len(ifMatch), maxConflicts)
	}
	for _, m := range ifMatch {
		if strings.Trim(m, `"`) != info.ETag {
			t.Errorf("copy conditional on ETag %q, want %q", m, info.ETag)
		}
	}

	f.copyConflicts.Store(maxConflicts)
	ok, err := u.SetExpire(ctx, "k", 0)
	if ok || !errors.Is(err, tiers.ErrRefused) {
		t.Fatalf("SetExpire with endless conflicts = %v, %v; want ErrRefused", ok, err)
	}
	if _, got, _ := uptest.Get(t, u, a, "k"); got != exp {
		t.Fatalf("a failed SetExpire changed the expiry to %d", got)
	}
}

func TestOddKeys(t *testing.T) {
	f := newFakeS3(t)
	a := uptest.Arena(t, 64*MiB)
	for _, prefix := range []string{"", "odd/keys"} {
		u := f.open(t, prefix, Options{})
		ctx := context.Background()
		var keys []string // the odd keys that fit under this prefix
		for _, key := range oddKeys {
			if _, err := ObjectName(u.Prefix(), key); err != nil {
				if err := u.Put(ctx, key, tiers.Item{}); !errors.Is(err, tiers.ErrRefused) {
					t.Fatalf("Put of a key too long to name: %v, want ErrRefused", err)
				}
				continue
			}
			keys = append(keys, key)
		}
		for i, key := range keys {
			uptest.Put(t, u, a, key, []byte(fmt.Sprintf("value %d", i)), 0)
		}
		for i, key := range keys {
			if v, _, ok := uptest.Get(t, u, a, key); !ok || string(v) != fmt.Sprintf("value %d", i) {
				t.Fatalf("prefix %q: Get(%q) = %q, %v", prefix, key, v, ok)
			}
		}
		// Every object is named as ObjectName says, and KeyOf names its key.
		n := 0
		for obj := range f.rawClient(t).ListObjects(ctx, testBucket, minio.ListObjectsOptions{Prefix: u.Prefix(), Recursive: true}) {
			if obj.Err != nil {
				t.Fatal(obj.Err)
			}
			if prefix == "" && strings.HasPrefix(obj.Key, "odd/") {
				continue
			}
			if _, err := KeyOf(u.Prefix(), obj.Key); err != nil {
				t.Errorf("listed %q: %v", obj.Key, err)
			}
			n++
		}
		if n != len(keys) {
			t.Errorf("prefix %q: %d objects listed, want %d", prefix, n, len(keys))
		}
		for _, key := range keys {
			if ok, err := u.Delete(ctx, key); !ok || err != nil {
				t.Fatalf("Delete(%q) = %v, %v", key, ok, err)
			}
			if _, ok := getOK(t, u, a, key); ok {
				t.Fatalf("Get(%q) after Delete found it", key)
			}
		}

		long := strings.Repeat("\x01", 400)
		if err := u.Put(ctx, long, tiers.Item{}); !errors.Is(err, tiers.ErrRefused) {
			t.Errorf("Put of a key too long to name: %v, want ErrRefused", err)
		}
		if _, _, err := u.Get(ctx, long, a.Alloc); !errors.Is(err, tiers.ErrRefused) {
			t.Errorf("Get of a key too long to name: %v, want ErrRefused", err)
		}
	}
}

// TestLargeValues checks exact round trips of large values, a 32 MiB one in
// one PUT (the default part size) and one in parts.
func TestLargeValues(t *testing.T) {
	f := newFakeS3(t)
	a := uptest.Arena(t, 128*MiB)
	for _, c := range []struct {
		size      int
		partSize  int64
		multipart bool
	}{
		{32 * MiB, 0, false},
		{12*MiB + 3, 5 * MiB, true},
	} {
		u := f.open(t, "large", Options{PartSize: c.partSize})
		val := randomBytes(c.size, uint64(c.size))
		from := f.logLen()
		uptest.Put(t, u, a, "big", val, 0)
		reqs := f.since(from)
		multipart := false
		for _, r := range reqs {
			if strings.Contains(r, "uploads") || strings.Contains(r, "uploadId") {
				multipart = true
			}
		}
		if multipart != c.multipart || (!multipart && len(reqs) != 1) {
			t.Errorf("Put of %d bytes with part size %d: requests %v; want multipart %v", c.size, c.partSize, reqs, c.multipart)
		}
		got, _, ok := uptest.Get(t, u, a, "big")
		if !ok || !bytes.Equal(got, val) {
			t.Fatalf("Get of the %d-byte value: ok %v, %d bytes, equal %v", c.size, ok, len(got), bytes.Equal(got, val))
		}
	}
}

// TestGetRefusedBeforeBody proves that Get asks alloc for the buffer, and
// gives up when it refuses, before any byte of the value is sent: the
// server holds the body back until the test lets it go, after Get returned.
func TestGetRefusedBeforeBody(t *testing.T) {
	f := newFakeS3(t)
	big := uptest.Arena(t, 16*MiB)
	small := uptest.Arena(t, 1*MiB)
	u := f.open(t, "refuse", Options{})
	val := randomBytes(2*MiB, 1)
	uptest.Put(t, u, big, "big", val, 0)

	release := f.setGate(t, u.Prefix(), "big")
	var asked []int
	var sentWhenAsked int64 = -1
	alloc := func(n int) (*slab.Buf, error) {
		asked = append(asked, n)
		sentWhenAsked = f.getBodyBytes.Load()
		return small.Alloc(n)
	}
	_, ok, err := u.Get(context.Background(), "big", alloc)
	if ok || !errors.Is(err, tiers.ErrRefused) || !errors.Is(err, slab.ErrTooLarge) {
		t.Fatalf("Get = %v, %v; want ErrRefused wrapping slab.ErrTooLarge", ok, err)
	}
	if len(asked) != 1 || asked[0] != len(val) {
		t.Fatalf("alloc asked for %v, want one buffer of %d bytes", asked, len(val))
	}
	<-f.headersSent // the server got as far as the body, and holds it
	if sent := f.getBodyBytes.Load(); sentWhenAsked != 0 || sent != 0 {
		t.Fatalf("%d body bytes were sent when alloc was asked, %d when Get returned; want 0", sentWhenAsked, sent)
	}
	release()

	// The same object, with memory for it, arrives whole.
	got, _, ok := uptest.Get(t, u, big, "big")
	if !ok || !bytes.Equal(got, val) {
		t.Fatal("Get with room for the value did not return it")
	}
}

// TestIntegrity: an object whose bytes no longer match its checksum, one
// whose body is cut short, and one not written by kvresp are errors, never
// values.
func TestIntegrity(t *testing.T) {
	f := newFakeS3(t)
	a := uptest.Arena(t, 16*MiB)
	u := f.open(t, "integrity", Options{})
	ctx := context.Background()
	raw := f.rawClient(t)
	val := randomBytes(100*KiB, 2)

	// Overwritten with other bytes of the same length, keeping the metadata.
	uptest.Put(t, u, a, "corrupt", val, 0)
	info, _ := rawStat(t, f, u.Prefix(), "corrupt")
	bad := bytes.Clone(val)
	bad[len(bad)/2] ^= 1
	name, _ := ObjectName(u.Prefix(), "corrupt")
	if _, err := raw.PutObject(ctx, testBucket, name, bytes.NewReader(bad), int64(len(bad)),
		minio.PutObjectOptions{UserMetadata: info.UserMetadata}); err != nil {
		t.Fatal(err)
	}
	info2, _ := rawStat(t, f, u.Prefix(), "corrupt")
	was, ok := metaValue(info.UserMetadata, metaSum)
	if !ok || was == "" {
		t.Fatalf("the object has no %s: %v", metaSum, info.UserMetadata)
	}
	if now, _ := metaValue(info2.UserMetadata, metaSum); now != was {
		t.Fatalf("the overwrite changed the stored checksum: %v, was %v", info2.UserMetadata, info.UserMetadata)
	}
	it, ok, err := u.Get(ctx, "corrupt", a.Alloc)
	if ok || it.Buf != nil || !errors.Is(err, ErrCorrupt) || !errors.Is(err, tiers.ErrRefused) {
		t.Fatalf("Get of a corrupt object = %v, %v; want ErrCorrupt", ok, err)
	}

	// A body cut short by a dropped connection: a plain (retryable) error.
	uptest.Put(t, u, a, "short", val, 0)
	f.setTruncate(t, u.Prefix(), "short", len(val)/3)
	_, ok, err = u.Get(ctx, "short", a.Alloc)
	if ok || err == nil || errors.Is(err, tiers.ErrRefused) {
		t.Fatalf("Get of a short body = %v, %v; want a plain error", ok, err)
	}
	if f.truncatedReplies.Load() == 0 {
		t.Fatal("the server did not cut the body")
	}

	// Another tool's object at a key's name.
	name, _ = ObjectName(u.Prefix(), "foreign")
	if _, err := raw.PutObject(ctx, testBucket, name, bytes.NewReader(val), int64(len(val)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := u.Get(ctx, "foreign", a.Alloc); ok || !errors.Is(err, tiers.ErrRefused) {
		t.Fatalf("Get of a foreign object = %v, %v; want ErrRefused", ok, err)
	}
	if m, ok, err := u.Stat(ctx, "foreign"); !ok || err != nil || m.Size != int64(len(val)) {
		t.Fatalf("Stat of a foreign object = %+v, %v, %v", m, ok, err)
	}
	if ok, err := u.Delete(ctx, "foreign"); !ok || err != nil {
		t.Fatalf("Delete of a foreign object = %v, %v", ok, err)
	}
}

// TestFaults runs calls against a server that fails every third request,
// alternately with a 500 and by dropping the connection: the failures are
// plain errors (for Proxy to retry and count), and once the server is well
// again every call works.
func TestFaults(t *testing.T) {
	f := newFakeS3(t)
	a := uptest.Arena(t, 16*MiB)
	u := f.open(t, "faults", Options{})
	ctx := context.Background()
	value := func(i int) []byte { return randomBytes(20*KiB+i, uint64(i)) }

	f.failEvery.Store(3)
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	const n = 12
	for i := range n {
		key := fmt.Sprint("k", i)
		note(uptest.TryPut(ctx, u, a, key, value(i), u.now()+3_600_000))
		it, ok, err := u.Get(ctx, key, a.Alloc)
		note(err)
		if ok {
			if !bytes.Equal(it.Buf.Bytes(), value(i)) {
				t.Fatalf("Get(%q) returned wrong bytes under faults", key)
			}
			it.Buf.Release()
		}
		_, _, err = u.Stat(ctx, key)
		note(err)
		_, err = u.SetExpire(ctx, key, 0)
		note(err)
	}
	for i := range n {
		_, err := u.Delete(ctx, fmt.Sprint("k", i))
		note(err)
	}
	if f.failed500.Load() == 0 || f.failedDrop.Load() == 0 {
		t.Fatalf("faults injected: %d 500s, %d drops", f.failed500.Load(), f.failedDrop.Load())
	}
	if len(errs) == 0 {
		t.Fatal("no call failed")
	}
	for _, err := range errs {
		if errors.Is(err, tiers.ErrRefused) {
			t.Errorf("a server failure was taken as a refusal: %v", err)
		}
	}
	t.Logf("%d calls failed (%d 500s, %d drops injected); e.g. %v", len(errs), f.failed500.Load(), f.failedDrop.Load(), errs[0])

	f.failEvery.Store(0)
	for i := range n {
		key := fmt.Sprint("k", i)
		uptest.Put(t, u, a, key, value(i), 0)
		if v, _, ok := uptest.Get(t, u, a, key); !ok || !bytes.Equal(v, value(i)) {
			t.Fatalf("after the faults: Get(%q) ok %v", key, ok)
		}
		if ok, err := u.Delete(ctx, key); !ok || err != nil {
			t.Fatalf("after the faults: Delete(%q) = %v, %v", key, ok, err)
		}
	}
}

// TestCredentials checks that requests are signed with the credentials
// from Options, else from each link of the chain (AWS's variables, MinIO's,
// the shared credentials file, IAM), with the region from the environment,
// and that without any credentials requests go unsigned and the chain is
// not walked again for each.
func TestCredentials(t *testing.T) {
	f := newFakeS3(t)
	a := uptest.Arena(t, 16*MiB)
	iam := clearS3Env(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", f.endpoint())
	t.Setenv("AWS_REGION", "eu-test-1")

	check := func(o Options, wantKey, wantToken string) {
		t.Helper()
		o.Logger = slog.New(slog.DiscardHandler)
		u, err := Open("s3://"+testBucket+"/creds?path-style=true", o)
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		from := f.logLen()
		uptest.Put(t, u, a, "k", []byte("v"), 0)
		if v, _, ok := uptest.Get(t, u, a, "k"); !ok || string(v) != "v" {
			t.Fatalf("Get = %q, %v", v, ok)
		}
		f.mu.Lock()
		auths, tokens := f.authHeaders[from:], f.securityTokens[from:]
		f.mu.Unlock()
		for i := range auths {
			if want := "Credential=" + wantKey + "/"; !strings.Contains(auths[i], want) || !strings.Contains(auths[i], "/eu-test-1/s3/") {
				t.Errorf("request signed %q; want %q with region eu-test-1", auths[i], want)
			}
			if tokens[i] != wantToken {
				t.Errorf("security token %q, want %q", tokens[i], wantToken)
			}
		}
	}

	check(Options{AccessKey: "AKIDOPTIONS", SecretKey: "s", SessionToken: "tok-options"}, "AKIDOPTIONS", "tok-options")

	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-env")
	t.Setenv("AWS_SESSION_TOKEN", "tok-env")
	check(Options{}, "AKIDENV", "tok-env")
	check(Options{AccessKey: "AKIDOPTIONS", SecretKey: "s"}, "AKIDOPTIONS", "")

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("MINIO_ROOT_USER", "minio-user")
	t.Setenv("MINIO_ROOT_PASSWORD", "minio-password")
	check(Options{}, "minio-user", "")

	t.Setenv("MINIO_ROOT_USER", "")
	t.Setenv("MINIO_ROOT_PASSWORD", "")
	file := t.TempDir() + "/credentials"
	if err := os.WriteFile(file, []byte("[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = secret-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", file)
	check(Options{}, "AKIDFILE", "")
	if n := iam.hits.Load(); n != 0 {
		t.Errorf("the IAM link was asked %d times while an earlier link had keys", n)
	}

	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	key := "AKIDIAM"
	iam.key.Store(&key)
	check(Options{}, "AKIDIAM", "tok-iam")

	iam.key.Store(nil)
	iam.hits.Store(0)
	u, err := Open("s3://"+testBucket+"/creds?path-style=true", Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	from := f.logLen()
	for range 3 {
		uptest.Put(t, u, a, "anon", []byte("v"), 0)
		uptest.Get(t, u, a, "anon")
	}
	f.mu.Lock()
	auths := f.authHeaders[from:]
	f.mu.Unlock()
	for _, h := range auths {
		if h != "" {
			t.Errorf("an anonymous request was signed: %q", h)
		}
	}
	if n := iam.hits.Load(); n != 1 {
		t.Errorf("with no credentials anywhere the IAM link was asked %d times for %d requests, want once", n, len(auths))
	}
}

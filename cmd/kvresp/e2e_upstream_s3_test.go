package main_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"kvresp/tiers/s3up"
	"kvresp/tiers/uptest"
)

const (
	s3Bucket = "kvresp-e2e"
	s3Access = "AKIDE2ETEST"
	s3Secret = "e2e-secret-key"
)

// s3Keys are keys whose bytes a URL, a path or UTF-8 would mangle: kvresp
// must keep each one its own object and bring back its exact value.
var s3Keys = []string{"plain", "a/b/c", "/lead", "user@host", "100%", "%2F", "with space", "\xff\xfe\x00\x80", "ключ"}

// fakeS3 is uptest's in-process S3, recording who signed each request and
// able to fail a share of them.
type fakeS3 struct {
	s3 *uptest.S3

	requests atomic.Int64
	// failing makes every third request fail with a 500, which a retry gets
	// past, and once in 60 requests four in a row, which outlast a call's
	// retries: most calls succeed after a retry, a few fail for good.
	failing atomic.Bool
	failed  atomic.Int64

	mu      sync.Mutex
	signers map[string]int // access key of each request's signature (or "" for none) → requests
}

var credentialRE = regexp.MustCompile(`Credential=([^/]+)/`)

func newFakeS3(t *testing.T) *fakeS3 {
	t.Helper()
	f := &fakeS3{signers: map[string]int{}}
	f.s3 = uptest.StartS3(t, s3Bucket, f.wrap)
	return f
}

// wrap records who signed each request and, while failing, fails a share
// of them before they reach inner, gofakes3's handler.
func (f *fakeS3) wrap(inner http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.requests.Add(1)
		signer := ""
		if m := credentialRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			signer = m[1]
		}
		f.mu.Lock()
		f.signers[signer]++
		f.mu.Unlock()
		if f.failing.Load() && (n%3 == 0 || n%60 >= 58) {
			f.failed.Add(1)
			uptest.WriteS3Error(w, http.StatusInternalServerError, "InternalError", "injected")
			return
		}
		inner.ServeHTTP(w, r)
	})
}

// signedBy returns how many requests each access key signed.
func (f *fakeS3) signedBy() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string]int{}
	for k, v := range f.signers {
		m[k] = v
	}
	return m
}

// s3Args configures the server under test over the fake's bucket, objects
// under prefix, in modes. The timeout is a liveness bound for 32 MiB values
// through an S3 in a race-instrumented test binary.
func (f *fakeS3) args(prefix, modes string, extra ...string) []string {
	return append([]string{"--upstream", "s3://" + s3Bucket + "/" + prefix, "--upstream-mode", modes,
		"--upstream-timeout", "20s", "--upstream-s3-endpoint", f.s3.URL, "--upstream-s3-path-style", "yes"}, extra...)
}

// keyArgs are the credentials as settings.
var keyArgs = []string{"--upstream-s3-access-key", s3Access, "--upstream-s3-secret-key", s3Secret}

// open returns the s3up upstream of the fake's objects under prefix, for
// writing what kvresp must read through: s3up.Put sets the metadata
// (expiry, checksum) that kvresp's reads want.
func (f *fakeS3) open(t *testing.T, prefix string) *s3up.Upstream {
	t.Helper()
	u, err := s3up.Open("s3://"+s3Bucket+"/"+prefix, s3up.Options{Endpoint: f.s3.URL, PathStyle: true,
		AccessKey: s3Access, SecretKey: s3Secret, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

// object returns the bytes of key's object under prefix, read with a plain
// minio-go client.
func (f *fakeS3) object(t *testing.T, prefix, key string) ([]byte, bool) {
	t.Helper()
	name, err := s3up.ObjectName(prefix, key)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := f.s3.Client(t, s3Access, s3Secret).GetObject(ctxT(t), s3Bucket, name, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return nil, false
	}
	if err != nil {
		t.Fatalf("object %q: %v", name, err)
	}
	return b, true
}

// TestE2EUpstreamS3: kvresp over an S3 bucket in every mode, with keys
// that are not safe object names.
func TestE2EUpstreamS3(t *testing.T) {
	skipOnRedis(t, "no upstream")
	f := newFakeS3(t)
	a := uptest.Arena(t, 64<<20)

	// Synchronous write-through, with the credentials from the
	// environment, as AWS's tools take them: every SET is an object with
	// the value's bytes once it is acknowledged; EXISTS, GET and DEL see
	// objects that only the bucket holds.
	t.Run("write-through", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env")
		t.Setenv("AWS_SESSION_TOKEN", "")
		s := startServer(t, serverOptions{extra: f.args("wt", "read-through,write-through,exists,del")})
		rc := s.resp(t)
		for _, key := range s3Keys {
			v := rbValue(key, 1, 64<<10)
			rc.setChunk(key, v)
			rc.expect("+OK\r\n")
			if got, ok := f.object(t, "wt/", key); !ok || !bytes.Equal(got, v) {
				t.Fatalf("SET %q: the object is missing or differs (found %v, %d bytes)", key, ok, len(got))
			}
			if got, ok := rc.get(key); !ok || !bytes.Equal(got, v) {
				t.Fatalf("GET %q after SET: wrong or missing value", key)
			}
		}
		up := f.open(t, "wt/")
		for _, key := range s3Keys {
			other := "other " + key
			v := rbValue(other, 2, 100<<10)
			uptest.Put(t, up, a, other, v, 0)
			rc.do(":1\r\n", "EXISTS", other)
			if got, ok := rc.get(other); !ok || !bytes.Equal(got, v) {
				t.Fatalf("GET %q: read-through gave a wrong or missing value", other)
			}
		}
		for _, key := range s3Keys {
			rc.do(":1\r\n", "DEL", key)
			if _, ok := f.object(t, "wt/", key); ok {
				t.Fatalf("DEL %q left the object", key)
			}
			rc.do(":0\r\n", "EXISTS", key)
			rc.do("$-1\r\n", "GET", key)
		}
		in := rc.info("upstream")
		if in["upstream_kind"] != "s3" || infoInt(t, in, "upstream_errors") != 0 ||
			infoInt(t, in, "upstream_admitted") != int64(len(s3Keys)) || infoInt(t, in, "upstream_write_through_failed") != 0 {
			t.Fatalf("INFO upstream: %v", in)
		}
		// kvresp signed every request with the environment's key.
		if by := f.signedBy(); by["AKIDFROMENV"] == 0 || len(by) != 2 || by[s3Access] == 0 {
			t.Fatalf("requests by signing key: %v; want kvresp's all by AKIDFROMENV, the test's by %s", by, s3Access)
		}
	})

	// Asynchronous write-through: a SET is acknowledged at once and its
	// object appears with the value's bytes.
	t.Run("write-through-async", func(t *testing.T) {
		s := startServer(t, serverOptions{extra: f.args("async", "read-through,write-through-async,exists,del", keyArgs...)})
		rc := s.resp(t)
		vals := map[string][]byte{}
		for _, key := range s3Keys {
			vals[key] = rbValue(key, 3, 256<<10)
			rc.setChunk(key, vals[key])
			rc.expect("+OK\r\n")
		}
		for key, v := range vals {
			waitFor(t, time.Minute, fmt.Sprintf("the object of %q", key), func() bool {
				got, ok := f.object(t, "async/", key)
				return ok && bytes.Equal(got, v)
			})
			if got, ok := rc.get(key); !ok || !bytes.Equal(got, v) {
				t.Fatalf("GET %q: wrong or missing value", key)
			}
		}
		in := rc.info("upstream")
		if infoInt(t, in, "upstream_queue_written") != int64(len(s3Keys)) || infoInt(t, in, "upstream_queue_failed") != 0 {
			t.Fatalf("INFO upstream: %v", in)
		}
	})

	// Read-through alone: objects written by s3up (as another node would)
	// are served exactly, once from the bucket and then from DRAM; a SET
	// stays local.
	t.Run("read-through", func(t *testing.T) {
		up := f.open(t, "rt/")
		vals := map[string][]byte{}
		for i, key := range s3Keys {
			vals[key] = rbValue(key, 4, 1000+i*(512<<10))
			uptest.Put(t, up, a, key, vals[key], 0)
		}
		s := startServer(t, serverOptions{extra: f.args("rt", "read-through", keyArgs...)})
		rc := s.resp(t)
		for range 2 {
			for key, v := range vals {
				if got, ok := rc.get(key); !ok || !bytes.Equal(got, v) {
					t.Fatalf("GET %q: wrong or missing value (found %v, %d bytes of %d)", key, ok, len(got), len(v))
				}
			}
		}
		rc.do("$-1\r\n", "GET", "absent")
		rc.do("+OK\r\n", "SET", "local", "only")
		if _, ok := f.object(t, "rt/", "local"); ok {
			t.Fatal("a SET without a write mode reached the bucket")
		}
		in := rc.info("upstream")
		if infoInt(t, in, "upstream_hits") != int64(len(s3Keys)) || infoInt(t, in, "upstream_admitted") != int64(len(s3Keys)) {
			t.Fatalf("INFO upstream: %v", in)
		}
	})

	// Write-back: a DRAM tier smaller than what is written; what it
	// evicts goes to the bucket, and every value comes back exact by
	// read-through.
	t.Run("write-back", func(t *testing.T) {
		s := startServer(t, serverOptions{maxmemory: "96mb",
			extra: f.args("wb", "write-back,read-through", append([]string{"--tier-order", "dram,upstream"}, keyArgs...)...)})
		rc := s.resp(t)
		var keys []rbKey
		for i := range 6 {
			keys = append(keys, rbKey{fmt.Sprintf("big:%d", i), 32<<20 - i*4099})
		}
		for _, k := range keys {
			rc.setChunk(k.key, rbValue(k.key, 1, k.size))
			rc.expect("+OK\r\n")
		}
		waitFor(t, time.Minute, "the write-back queue to drain", func() bool {
			return infoInt(t, rc.info("upstream"), "upstream_queue_depth") == 0
		})
		in := rc.info("upstream")
		if infoInt(t, in, "upstream_queue_written") == 0 {
			t.Fatalf("nothing was written back: the test does not exercise write-back; INFO upstream: %v", in)
		}
		rc.verifyKeys(keys, "through write-back and read-through")
		in = rc.info("upstream")
		if infoInt(t, in, "upstream_admitted") == 0 || infoInt(t, in, "upstream_queue_dropped") != 0 ||
			infoInt(t, in, "upstream_queue_failed") != 0 || infoInt(t, in, "upstream_errors") != 0 {
			t.Fatalf("INFO upstream: %v", in)
		}
	})
}

// TestE2EUpstreamS3Faults: an S3 that fails a third of its requests and,
// now and then, several in a row. kvresp
// answers every command, its local hits stay exact, a read-through gives
// the object's exact value or a miss, never anything else, INFO counts the
// failures, and every object it wrote holds exactly the value SET.
func TestE2EUpstreamS3Faults(t *testing.T) {
	skipOnRedis(t, "no upstream")
	f := newFakeS3(t)
	up := f.open(t, "faults/")
	a := uptest.Arena(t, 16<<20)
	const stored = 20
	for i := range stored {
		key := fmt.Sprintf("stored:%d", i)
		uptest.Put(t, up, a, key, rbValue(key, 1, 8<<10), 0)
	}
	s := startServer(t, serverOptions{extra: f.args("faults", "read-through,write-through,exists,del", keyArgs...)})
	rc := s.resp(t)

	// Commands go on until the breaker has opened twice: calls failed for
	// good, the breaker let them through again, and they failed again, so
	// that every command met the upstream working, failing and skipped.
	f.failing.Store(true)
	deadline := time.Now().Add(time.Minute) // a liveness bound
	n := 0
	for ; ; n++ {
		key := fmt.Sprintf("k:%d", n)
		v := rbValue(key, 1, 8<<10)
		rc.setChunk(key, v)
		rc.expect("+OK\r\n")
		if got, ok := rc.get(key); !ok || !bytes.Equal(got, v) {
			t.Fatalf("GET %s right after SET: wrong or missing value", key)
		}
		other := fmt.Sprintf("stored:%d", n%stored)
		if got, ok := rc.get(other); ok && !bytes.Equal(got, rbValue(other, 1, 8<<10)) {
			t.Fatalf("GET %s: a wrong value (%d bytes) from a failing upstream", other, len(got))
		}
		rc.send("EXISTS", other)
		if r := rc.line(); r != ":0\r\n" && r != ":1\r\n" {
			t.Fatalf("EXISTS %s: %q", other, r)
		}
		rc.do("$-1\r\n", "GET", fmt.Sprintf("absent:%d", n))
		if infoInt(t, rc.info("upstream"), "upstream_breaker_opens") >= 2 {
			n++
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the breaker did not open twice in %d rounds; INFO upstream: %v", n+1, rc.info("upstream"))
		}
		// Paced, so that the keys to check stay few while the breaker is open.
		time.Sleep(10 * time.Millisecond)
	}
	f.failing.Store(false)

	in := rc.info("upstream")
	if f.failed.Load() == 0 || infoInt(t, in, "upstream_errors") == 0 || infoInt(t, in, "upstream_retries") == 0 {
		t.Fatalf("%d requests failed; INFO upstream: %v", f.failed.Load(), in)
	}
	// Each SET was written through or counted as failed (kept locally);
	// what was written is exact.
	written := 0
	for i := range n {
		key := fmt.Sprintf("k:%d", i)
		v := rbValue(key, 1, 8<<10)
		if got, ok := f.object(t, "faults/", key); ok {
			written++
			if !bytes.Equal(got, v) {
				t.Fatalf("the object of %s differs from the value SET", key)
			}
		}
		if got, ok := rc.get(key); !ok || !bytes.Equal(got, v) {
			t.Fatalf("GET %s after the faults: wrong or missing value", key)
		}
	}
	if failed := infoInt(t, in, "upstream_write_through_failed"); int64(written)+failed != int64(n) {
		t.Fatalf("%d objects written and %d write-throughs failed, of %d SETs", written, failed, n)
	}
	t.Logf("%d of %d requests failed; %d of %d SETs written through; INFO upstream: %v", f.failed.Load(), f.requests.Load(), written, n, in)
}

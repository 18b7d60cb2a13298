package s3up

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"kvresp/tiers/uptest"
)

const (
	testBucket = "kvresp-test"
	testAccess = "AKIDTESTTEST"
	testSecret = "test-secret-key"
)

// fakeS3 is uptest's in-process S3 with a wrapper that records requests
// and can inject faults.
type fakeS3 struct {
	s3 *uptest.S3

	requests atomic.Int64
	// failEvery > 0 makes every failEvery-th request fail, alternately with
	// a 500 and with the connection dropped before any response.
	failEvery        atomic.Int64
	failed500        atomic.Int64
	failedDrop       atomic.Int64
	getBodyBytes     atomic.Int64 // object bytes sent in GET responses
	mu               sync.Mutex
	log              []string // "METHOD path?query" of every request
	authHeaders      []string
	securityTokens   []string
	gate             map[string]chan struct{} // object path → a GET's body waits for it to close
	headersSent      chan string              // told the path of a gated GET whose headers are out
	truncate         map[string]int           // object path → GET bodies cut after this many bytes
	truncatedReplies atomic.Int64
	// copyConflicts > 0 answers that many copies with 412 PreconditionFailed,
	// as S3 does when x-amz-copy-source-if-match no longer matches.
	copyConflicts atomic.Int64
	copyIfMatch   []string // the x-amz-copy-source-if-match of every copy
}

func newFakeS3(t testing.TB) *fakeS3 {
	t.Helper()
	f := &fakeS3{gate: map[string]chan struct{}{}, truncate: map[string]int{}, headersSent: make(chan string, 16)}
	f.s3 = uptest.StartS3(t, testBucket, f.wrap)
	return f
}

func (f *fakeS3) endpoint() string { return f.s3.URL }

func (f *fakeS3) wrap(inner http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.requests.Add(1)
		f.mu.Lock()
		f.log = append(f.log, r.Method+" "+r.URL.RequestURI())
		f.authHeaders = append(f.authHeaders, r.Header.Get("Authorization"))
		f.securityTokens = append(f.securityTokens, r.Header.Get("X-Amz-Security-Token"))
		gate := f.gate[r.URL.Path]
		cut, truncated := f.truncate[r.URL.Path]
		f.mu.Unlock()

		if every := f.failEvery.Load(); every > 0 && n%every == 0 {
			if (n/every)%2 == 0 {
				f.failed500.Add(1)
				uptest.WriteS3Error(w, http.StatusInternalServerError, "InternalError", "injected")
				return
			}
			f.failedDrop.Add(1)
			drop(w)
			return
		}
		if src := r.Header.Get("X-Amz-Copy-Source"); src != "" {
			f.mu.Lock()
			f.copyIfMatch = append(f.copyIfMatch, r.Header.Get("X-Amz-Copy-Source-If-Match"))
			f.mu.Unlock()
			if f.copyConflicts.Add(-1) >= 0 {
				uptest.WriteS3Error(w, http.StatusPreconditionFailed, "PreconditionFailed",
					"At least one of the pre-conditions you specified did not hold")
				return
			}
			f.copyConflicts.Store(0)
		}
		if r.Method != http.MethodGet {
			inner.ServeHTTP(w, r)
			return
		}
		cw := &countingWriter{ResponseWriter: w, n: &f.getBodyBytes}
		switch {
		case gate != nil:
			cw.beforeBody = func() {
				f.headersSent <- r.URL.Path
				cw.flush()
				<-gate
			}
		case truncated:
			cw.limit = cut
			cw.onLimit = func() {
				f.truncatedReplies.Add(1)
				cw.flush()
				drop(w)
			}
		}
		inner.ServeHTTP(cw, r)
	})
}

// drop closes the connection under a handler without a (further) response.
func drop(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

// countingWriter counts body bytes, can hold the body back until
// beforeBody returns, and can stop after limit bytes.
type countingWriter struct {
	http.ResponseWriter
	n          *atomic.Int64
	beforeBody func()
	limit      int
	onLimit    func()
	written    int
	stopped    bool
	flushed    bool // the header is out: a later WriteHeader (gofakes3 reporting a failed write) is moot
}

func (c *countingWriter) flush() {
	c.flushed = true
	http.NewResponseController(c.ResponseWriter).Flush()
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.stopped {
		return 0, errors.New("fake: connection dropped")
	}
	if c.beforeBody != nil {
		f := c.beforeBody
		c.beforeBody = nil
		f()
	}
	if c.onLimit != nil && c.written+len(p) > c.limit {
		n, _ := c.ResponseWriter.Write(p[:c.limit-c.written])
		c.written += n
		c.n.Add(int64(n))
		c.stopped = true
		c.onLimit()
		return n, errors.New("fake: connection dropped")
	}
	n, err := c.ResponseWriter.Write(p)
	c.written += n
	c.n.Add(int64(n))
	return n, err
}

func (c *countingWriter) WriteHeader(code int) {
	if !c.stopped && !c.flushed {
		c.ResponseWriter.WriteHeader(code)
	}
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// setGate holds back the body of GETs of key's object until the returned
// function is called.
func (f *fakeS3) setGate(t testing.TB, prefix, key string) (release func()) {
	t.Helper()
	ch := make(chan struct{})
	f.mu.Lock()
	f.gate[f.objectPath(t, prefix, key)] = ch
	f.mu.Unlock()
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	return release
}

func (f *fakeS3) setTruncate(t testing.TB, prefix, key string, n int) {
	f.mu.Lock()
	f.truncate[f.objectPath(t, prefix, key)] = n
	f.mu.Unlock()
}

func (f *fakeS3) objectPath(t testing.TB, prefix, key string) string {
	t.Helper()
	name, err := ObjectName(prefix, key)
	if err != nil {
		t.Fatal(err)
	}
	return "/" + testBucket + "/" + name
}

// since returns the requests logged from index i on.
func (f *fakeS3) since(i int) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log[i:]...)
}

func (f *fakeS3) logLen() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.log)
}

// rawClient is a plain minio-go client of the fake, for looking under (and
// behind) an Upstream.
func (f *fakeS3) rawClient(t testing.TB) *minio.Client {
	t.Helper()
	return f.s3.Client(t, testAccess, testSecret)
}

// open returns an Upstream of the fake with s3://testBucket/prefix.
func (f *fakeS3) open(t testing.TB, prefix string, o Options) *Upstream {
	t.Helper()
	if o.Endpoint == "" {
		o.Endpoint = f.endpoint()
	}
	if o.AccessKey == "" {
		// Never leave the credential chain to run in a test: its last link
		// asks the cloud instance metadata service over the network.
		o.AccessKey, o.SecretKey = testAccess, testSecret
	}
	o.PathStyle = true
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	u, err := Open("s3://"+testBucket+"/"+prefix, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

// credServer stands in for the container credentials endpoint that the
// credential chain's IAM link asks, so that no test reaches the network.
type credServer struct {
	hits atomic.Int64
	// key, when set, is handed out as an access key; else it answers 404.
	key atomic.Pointer[string]
}

// clearS3Env unsets the variables Open and the credential chain read, so
// that the machine's own settings do not leak into a test, and points the
// chain's IAM link at a loopback credServer.
func clearS3Env(t *testing.T) *credServer {
	t.Helper()
	for _, v := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_SESSION_TOKEN",
		"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "AWS_PROFILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"} {
		t.Setenv(v, "")
	}
	dir := t.TempDir()
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/none")
	t.Setenv("AWS_CONFIG_FILE", dir+"/none")

	cs := &credServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.hits.Add(1)
		key := cs.key.Load()
		if key == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"AccessKeyId":%q,"SecretAccessKey":"secret-iam","Token":"tok-iam","Expiration":%q}`,
			*key, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	}))
	t.Cleanup(srv.Close)
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", srv.URL+"/creds")
	return cs
}
